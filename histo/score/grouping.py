"""Grouping on the fiber adjacency graph: connected groups and join-count permutation tests.

The graph is an ``(E, 2)`` array of label pairs (:func:`histo.measure.adjacency.fiber_adjacency`);
the functions here take it as given, so they work on any hand-built graph. A *join* is an edge
whose two fibers share a class (both atrophic, or both of one fiber type). Clustering beyond
chance is tested by keeping the graph and shuffling which fibers carry which class (a label
permutation test, vectorised over permutations), as in Cliff & Ord, *Spatial Processes* (1981).
The expected join count and its variance under that shuffling are exact (hypergeometric
moments), so ``z`` needs no simulation; the p-value comes from the permutations.

Honest wording: with fewer than :data:`MIN_EXPECTED_JOINS` joins expected by chance the join
count is far from Gaussian, so no ``z`` is given, and a result that is not significant is
*too few to test* (the test could not have found grouping), not "not grouped". A significant
permutation p stays valid at any count. Beside the observed groups,
:func:`expected_group_count` gives the number of groups expected by chance.

Examples
--------
A path 1-2-3-4 with fibers 1 and 2 atrophic: one atrophic-atrophic join.

>>> edges = np.array([[1, 2], [2, 3], [3, 4]])
>>> nodes = np.array([1, 2, 3, 4])
>>> members = np.array([True, True, False, False])
>>> connected_groups(edges, nodes, members).tolist()
[1, 1, 0, 0]
>>> r = join_count_test(edges, nodes, members, n_permutations=0)
>>> r.statistic, round(r.expected, 3)
(1, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from histo.errors import HistoInputError
from histo.score.settings import ScoringSettings

#: Upper bound on the elements of one block of permutations (memory stays ~tens of MB).
_BLOCK_ELEMENTS = 4_000_000
#: Below this many joins expected by chance the join count is not Gaussian (no z) and a
#: non-significant test is "too few to test" (the chi-square rule of thumb of 5 expected).
MIN_EXPECTED_JOINS = 5.0
#: Shuffles used for the number of groups expected by chance.
GROUP_SHUFFLES = 199
#: Fewer shuffles on big graphs: at most this many node visits in all (at least 20 shuffles).
_GROUP_SHUFFLE_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class JoinCountResult:
    """A join-count test: observed joins, their exact null mean/variance, z and p."""

    statistic: int
    """Observed number of joins (edges whose two fibers are both in the class)."""
    expected: float
    """Expected joins under random relabelling (same graph, same class counts)."""
    variance: float
    """Variance of the joins under random relabelling (exact)."""
    z: float | None
    """(statistic - expected) / sqrt(variance); None when the variance is 0 or fewer than
    :data:`MIN_EXPECTED_JOINS` joins are expected (the count is then not Gaussian)."""
    p_value: float | None
    """Permutation p-value of grouping beyond chance, (1 + #{perm >= observed}) / (P + 1);
    None without permutations or when the test is meaningless (fewer than 2 members)."""
    n_permutations: int
    n_nodes: int
    n_edges: int
    n_members: int
    too_few_to_test: bool = False
    """Fewer than :data:`MIN_EXPECTED_JOINS` joins expected: the test has little power; a p
    above alpha means "too few to test", not "not grouped" (the p-value is kept)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)

    def verdict(self, alpha: float) -> bool | None:
        """Grouped beyond chance (True), not (False), or None: no test, or too few to test.

        Examples
        --------
        >>> JoinCountResult(0, 0.8, 0.7, None, 1.0, 999, 50, 90, 6, True).verdict(0.05) is None
        True
        """
        if self.p_value is None:
            return None
        if self.p_value < alpha:
            return True
        return None if self.too_few_to_test else False


def index_edges(edges: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Edges as index pairs into ``nodes``, keeping only edges between two listed nodes.

    Self-loops and duplicates (in either orientation) are dropped.

    Parameters
    ----------
    edges : (E, 2) int array
        Label pairs.
    nodes : (n,) int array
        The labels of the graph's nodes (any order, unique).

    Returns
    -------
    (E', 2) int64 array of indices ``i < j`` into ``nodes``, sorted.
    """
    edges = np.asarray(edges)
    if edges.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise HistoInputError(f"edges must be an (E, 2) array of label pairs, got shape {edges.shape}")
    nodes = np.asarray(nodes).astype(np.int64, copy=False)
    order = np.argsort(nodes, kind="stable")
    sorted_nodes = nodes[order]
    if np.any(sorted_nodes[1:] == sorted_nodes[:-1]):
        raise HistoInputError("nodes must be unique labels")
    if len(nodes) == 0:
        return np.empty((0, 2), dtype=np.int64)
    e = edges.astype(np.int64, copy=False)
    pos = np.searchsorted(sorted_nodes, e)
    pos_clipped = np.minimum(pos, len(nodes) - 1)
    found = (sorted_nodes[pos_clipped] == e).all(axis=1)
    idx = order[pos_clipped[found]]
    idx = np.sort(idx, axis=1)
    idx = idx[idx[:, 0] != idx[:, 1]]
    if len(idx) == 0:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(idx, axis=0)


def connected_groups(edges: np.ndarray, nodes: np.ndarray, members: np.ndarray, *,
                     min_size: int = 1) -> np.ndarray:
    """Connected groups of member fibers on the graph (edges between members only).

    Parameters
    ----------
    edges : (E, 2) int array
        Label pairs of the adjacency graph.
    nodes : (n,) int array
        Labels of the fibers that may take part (e.g. the counted fibers).
    members : (n,) bool array
        Which of ``nodes`` are in the class (e.g. atrophic).
    min_size : int
        Groups smaller than this get id 0.

    Returns
    -------
    (n,) int array: group id per node, 0 for non-members and groups below ``min_size``,
    otherwise 1, 2, ... by decreasing group size (ties: smallest label first).
    """
    nodes = np.asarray(nodes)
    members = np.asarray(members, dtype=bool)
    if members.shape != nodes.shape:
        raise HistoInputError(f"members has shape {members.shape}, nodes {nodes.shape}")
    out = np.zeros(len(nodes), dtype=np.int64)
    member_idx = np.flatnonzero(members)
    if len(member_idx) == 0:
        return out
    sub = index_edges(edges, nodes[member_idx])
    m = len(member_idx)
    graph = coo_matrix((np.ones(len(sub)), (sub[:, 0], sub[:, 1])), shape=(m, m))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    first_label = np.full(len(sizes), np.iinfo(np.int64).max)
    np.minimum.at(first_label, comp, nodes[member_idx].astype(np.int64))
    ranked = np.lexsort((first_label, -sizes))  # by size desc, then smallest label
    ranked = ranked[sizes[ranked] >= min_size]
    new_id = np.zeros(len(sizes), dtype=np.int64)
    new_id[ranked] = np.arange(1, len(ranked) + 1)
    out[member_idx] = new_id[comp]
    return out


def group_summary(group_ids: np.ndarray) -> dict[str, Any]:
    """Sizes of the groups found by :func:`connected_groups` (id 0 ignored)."""
    ids = np.asarray(group_ids)
    sizes = np.bincount(ids[ids > 0]) if np.any(ids > 0) else np.zeros(1, dtype=int)
    sizes = sorted((int(s) for s in sizes[1:] if s > 0), reverse=True)
    histogram: dict[str, int] = {}
    for s in sizes:
        histogram[str(s)] = histogram.get(str(s), 0) + 1
    return {
        "n_groups": len(sizes),
        "n_fibers_in_groups": int(sum(sizes)),
        "largest_group": int(sizes[0]) if sizes else 0,
        "group_sizes": sizes,
        "size_histogram": histogram,
    }


def _falling(k: float, m: int) -> float:
    out = 1.0
    for i in range(m):
        out *= k - i
    return max(out, 0.0)


def join_moments(n_edges: int, degree_pairs: float, n_nodes: int,
                 counts: list[int] | np.ndarray) -> tuple[float, float]:
    """Exact mean and variance of the joins within the given classes under relabelling.

    Parameters
    ----------
    n_edges : int
        Edges of the graph (E).
    degree_pairs : float
        sum_i d_i (d_i - 1): ordered pairs of distinct edges sharing a node.
    n_nodes : int
        Nodes of the graph (n).
    counts : sequence of int
        Number of nodes of each class whose joins are summed (one entry for a BB count).

    Returns
    -------
    (mean, variance)
    """
    n = n_nodes
    counts = [int(k) for k in counts]
    f2 = [_falling(k, 2) for k in counts]
    p2 = sum(f2) / _falling(n, 2) if n >= 2 else 0.0
    p3 = sum(_falling(k, 3) for k in counts) / _falling(n, 3) if n >= 3 else 0.0
    p4 = ((sum(f2) ** 2 - sum(f * f for f in f2) + sum(_falling(k, 4) for k in counts))
          / _falling(n, 4)) if n >= 4 else 0.0
    mean = n_edges * p2
    second = n_edges * p2 + degree_pairs * p3 + (n_edges * n_edges - n_edges - degree_pairs) * p4
    return mean, max(second - mean * mean, 0.0)


def _permuted_joins(pairs: np.ndarray, codes: np.ndarray, targets: list[int],
                    n_permutations: int, seed: int) -> np.ndarray:
    """Joins within each target code for ``n_permutations`` shuffles of ``codes``."""
    rng = np.random.default_rng(seed)
    n = len(codes)
    u, v = pairs[:, 0], pairs[:, 1]
    out = np.empty((n_permutations, len(targets)), dtype=np.int64)
    block = max(1, _BLOCK_ELEMENTS // max(n, len(u), 1))
    base = codes.astype(np.int16)
    for start in range(0, n_permutations, block):
        m = min(block, n_permutations - start)
        perm = rng.permuted(np.broadcast_to(base, (m, n)), axis=1)
        cu, cv = perm[:, u], perm[:, v]
        same = cu == cv
        for j, t in enumerate(targets):
            out[start:start + m, j] = np.count_nonzero(same & (cu == t), axis=1)
    return out


def _result(observed: int, perm: np.ndarray | None, pairs: np.ndarray, n: int,
            counts: list[int], n_members: int) -> JoinCountResult:
    degrees = np.bincount(pairs.ravel(), minlength=n).astype(float)
    mean, var = join_moments(len(pairs), float(np.sum(degrees * (degrees - 1))), n, counts)
    z = (observed - mean) / math.sqrt(var) if var > 1e-12 and mean >= MIN_EXPECTED_JOINS else None
    p = None
    if perm is not None and len(perm) and n_members >= 2 and len(pairs):
        p = float((1 + np.count_nonzero(perm >= observed)) / (len(perm) + 1))
    return JoinCountResult(
        statistic=int(observed), expected=float(mean), variance=float(var),
        z=None if z is None else float(z), p_value=p,
        n_permutations=0 if perm is None else int(len(perm)),
        n_nodes=int(n), n_edges=int(len(pairs)), n_members=int(n_members),
        too_few_to_test=bool(mean < MIN_EXPECTED_JOINS),
    )


def expected_group_count(edges: np.ndarray, nodes: np.ndarray, n_members: int, *,
                         min_size: int = 2, n_shuffles: int = GROUP_SHUFFLES,
                         seed: int = 0) -> float | None:
    """Mean number of groups of ``>= min_size`` connected members when ``n_members`` of
    ``nodes`` are placed at random on the graph (``n_shuffles`` shuffles).

    The number to read beside the observed groups: a handful of pairs of small fibers is
    expected by chance in any section with some small fibers.

    Examples
    --------
    A path of 4 with 2 members: of the 6 placements, 3 are adjacent (one group).

    >>> round(expected_group_count(np.array([[1, 2], [2, 3], [3, 4]]), np.arange(1, 5), 2,
    ...                            n_shuffles=2000), 1)
    0.5
    """
    nodes = np.asarray(nodes)
    n = len(nodes)
    if n_shuffles <= 0 or n == 0:
        return None
    if n_members < min_size:
        return 0.0
    pairs = index_edges(edges, nodes)
    rng = np.random.default_rng(seed)
    # big graphs: the count is concentrated, fewer placements give the same mean to < 1 %
    n_shuffles = max(min(n_shuffles, _GROUP_SHUFFLE_ELEMENTS // max(n, 1)), min(n_shuffles, 20))
    k = int(n_members)
    total = 0
    for _ in range(n_shuffles):
        where = np.full(n, -1, dtype=np.int64)
        where[rng.choice(n, size=k, replace=False)] = np.arange(k)
        u, v = where[pairs[:, 0]], where[pairs[:, 1]]
        both = (u >= 0) & (v >= 0)
        graph = coo_matrix((np.ones(int(both.sum())), (u[both], v[both])), shape=(k, k))
        _, comp = connected_components(graph, directed=False)
        total += int(np.count_nonzero(np.bincount(comp) >= min_size))
    return total / n_shuffles


def join_count_test(edges: np.ndarray, nodes: np.ndarray, members: np.ndarray, *,
                    n_permutations: int = 999, seed: int = 0) -> JoinCountResult:
    """Join-count test of clustering of one class (e.g. atrophic fibers) on the graph.

    The statistic is the number of member-member edges ("BB joins"). The null keeps the graph
    and the number of members and shuffles which nodes are members.

    Parameters
    ----------
    edges : (E, 2) int array
        Label pairs of the adjacency graph; edges touching labels not in ``nodes`` are ignored.
    nodes : (n,) int array
        Labels of the fibers in the test (e.g. the counted fibers).
    members : (n,) bool array
        Which nodes are in the class.
    n_permutations : int
        Shuffles for the p-value (0: no p-value, exact mean/variance/z only).
    seed : int
        Random seed.

    Returns
    -------
    JoinCountResult
    """
    nodes = np.asarray(nodes)
    members = np.asarray(members, dtype=bool)
    if members.shape != nodes.shape:
        raise HistoInputError(f"members has shape {members.shape}, nodes {nodes.shape}")
    pairs = index_edges(edges, nodes)
    observed = int(np.count_nonzero(members[pairs[:, 0]] & members[pairs[:, 1]]))
    k = int(members.sum())
    perm = (_permuted_joins(pairs, members.astype(np.int16), [1], n_permutations, seed)[:, 0]
            if n_permutations > 0 and len(pairs) else None)
    return _result(observed, perm, pairs, len(nodes), [k], k)


def category_join_test(edges: np.ndarray, nodes: np.ndarray, categories: np.ndarray, *,
                       n_permutations: int = 999, seed: int = 0) -> dict[str, Any]:
    """Join-count test of grouping of several classes at once (e.g. fiber types).

    The overall statistic is the number of edges joining two fibers of the same class; each
    class also gets its own join count. All use the same shuffles of the class labels.

    Parameters
    ----------
    edges : (E, 2) int array
        Label pairs of the adjacency graph.
    nodes : (n,) int array
        Labels of the fibers in the test.
    categories : (n,) array of hashable
        Class of each node (e.g. ``"1"``, ``"2"``).
    n_permutations, seed
        As in :func:`join_count_test`.

    Returns
    -------
    dict with ``"total"`` (:class:`JoinCountResult` of same-class joins) and ``"per_class"``
    ({class: JoinCountResult}).

    Examples
    --------
    A 2 x 2 checkerboard on a 4-cycle has no same-type joins:

    >>> res = category_join_test(np.array([[1, 2], [2, 4], [4, 3], [3, 1]]), np.array([1, 2, 3, 4]),
    ...                          np.array(["a", "b", "b", "a"]), n_permutations=0)
    >>> res["total"].statistic
    0
    """
    nodes = np.asarray(nodes)
    categories = np.asarray(categories)
    if categories.shape != nodes.shape:
        raise HistoInputError(f"categories has shape {categories.shape}, nodes {nodes.shape}")
    names, codes = np.unique(categories, return_inverse=True)
    codes = codes.reshape(-1)
    pairs = index_edges(edges, nodes)
    targets = list(range(len(names)))
    same = codes[pairs[:, 0]] == codes[pairs[:, 1]]
    observed = [int(np.count_nonzero(same & (codes[pairs[:, 0]] == t))) for t in targets]
    counts = np.bincount(codes, minlength=len(names))
    perm = (_permuted_joins(pairs, codes, targets, n_permutations, seed)
            if n_permutations > 0 and len(pairs) and len(names) else None)
    per_class = {}
    for t, name in enumerate(names):
        per_class[str(name)] = _result(observed[t], None if perm is None else perm[:, t], pairs,
                                       len(nodes), [int(counts[t])], int(counts[t]))
    total = _result(sum(observed), None if perm is None else perm.sum(axis=1), pairs, len(nodes),
                    [int(c) for c in counts], len(nodes) if len(names) > 1 else 0)
    return {"total": total, "per_class": per_class}


def atrophy_groups(fibers, edges: np.ndarray, settings: ScoringSettings, *, pixel_size_known: bool
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """Grouped atrophy of a classified fiber table (:func:`histo.score.scoring.classify_fibers`).

    The fibers named by ``settings.group_on`` (small, atrophic or SAD; atrophic needs a pixel
    size, small stands in without one) form groups on the graph of the counted fibers, and
    their join count is tested by permutation.

    Returns
    -------
    (group id per row, 0 = none; the ``grouping`` summary dict)
    """
    counted = fibers["counted"].to_numpy(dtype=bool)
    on, note = settings.group_on, None
    if on == "atrophic" and not pixel_size_known:
        on, note = "small", "no pixel size: grouped the small fibers instead of the atrophic ones"
    column = {"small": "is_small", "atrophic": "is_atrophic", "sad": "is_sad"}[on]
    nodes = fibers["label"].to_numpy()[counted]
    members = fibers[column].to_numpy(dtype=bool)[counted]
    ids = connected_groups(edges, nodes, members, min_size=settings.min_group_size)
    group_col = np.zeros(len(fibers), dtype=np.int64)
    group_col[counted] = ids
    test = join_count_test(edges, nodes, members, n_permutations=settings.permutations,
                           seed=settings.seed)
    n_shuffles = min(GROUP_SHUFFLES, settings.permutations)
    info = {"on": on, "min_group_size": settings.min_group_size, **group_summary(ids),
            "expected_groups": expected_group_count(
                edges, nodes, int(members.sum()), min_size=settings.min_group_size,
                n_shuffles=n_shuffles, seed=settings.seed),
            "expected_groups_method": (f"mean over {n_shuffles} random placements of the same "
                                       "number of fibers on the same graph"),
            "join_count": test.to_dict(),
            "beyond_chance": test.verdict(settings.alpha)}
    if note:
        info["note"] = note
    return group_col, info
