"""Connected groups and join-count tests on hand-built graphs with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from histo.errors import HistoInputError
from histo.score.grouping import (
    category_join_test,
    connected_groups,
    expected_group_count,
    group_summary,
    index_edges,
    join_count_test,
    join_moments,
)


def grid_graph(ny: int, nx: int, first_label: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels of an ny x nx grid (row-major) and its 4-neighbour edges."""
    idx = np.arange(ny * nx).reshape(ny, nx) + first_label
    edges = np.concatenate([
        np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
        np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1),
    ])
    return idx, edges


def test_index_edges_drops_foreign_self_and_duplicate_edges():
    edges = np.array([[10, 20], [20, 10], [20, 20], [10, 99], [30, 20]])
    nodes = np.array([30, 10, 20])
    pairs = index_edges(edges, nodes)
    # 10 -> index 1, 20 -> 2, 30 -> 0: edges (1, 2) and (0, 2)
    assert pairs.tolist() == [[0, 2], [1, 2]]
    assert index_edges(np.empty((0, 2)), nodes).shape == (0, 2)
    with pytest.raises(HistoInputError):
        index_edges(np.array([1, 2, 3]), nodes)


def test_planted_groups_found_and_ranked_by_size():
    idx, edges = grid_graph(6, 6)
    members = np.zeros((6, 6), dtype=bool)
    members[0:2, 0:2] = True        # group of 4
    members[4, 3:6] = True          # group of 3
    members[2, 5] = True            # singleton (diagonal-free from the others)
    ids = connected_groups(edges, idx.ravel(), members.ravel(), min_size=2).reshape(6, 6)
    assert set(ids[0:2, 0:2].ravel()) == {1}
    assert set(ids[4, 3:6]) == {2}
    assert ids[2, 5] == 0           # below min_size
    assert np.all(ids[~members] == 0)
    summary = group_summary(ids)
    assert summary["group_sizes"] == [4, 3]
    assert summary["n_fibers_in_groups"] == 7
    assert summary["size_histogram"] == {"4": 1, "3": 1}
    ids1 = connected_groups(edges, idx.ravel(), members.ravel(), min_size=1)
    assert ids1.max() == 3


def test_groups_ignore_edges_through_non_nodes():
    # 1-2-3 path, but node 2 is not in the graph (e.g. an edge fiber): 1 and 3 stay apart
    edges = np.array([[1, 2], [2, 3]])
    ids = connected_groups(edges, np.array([1, 3]), np.array([True, True]))
    assert sorted(ids.tolist()) == [1, 2]


def brute_force_moments(pairs, n, k):
    counts = []
    for members in itertools.combinations(range(n), k):
        m = np.zeros(n, dtype=bool)
        m[list(members)] = True
        counts.append(np.count_nonzero(m[pairs[:, 0]] & m[pairs[:, 1]]))
    counts = np.asarray(counts, dtype=float)
    return counts.mean(), counts.var()


@pytest.mark.parametrize("k", [2, 3, 4])
def test_exact_moments_match_enumeration(k):
    # an irregular 7-node graph (triangle, pendant, square)
    edges = np.array([[0, 1], [1, 2], [2, 0], [2, 3], [3, 4], [4, 5], [5, 6], [6, 3], [1, 5]])
    pairs = index_edges(edges, np.arange(7))
    deg = np.bincount(pairs.ravel(), minlength=7)
    mean, var = join_moments(len(pairs), float(np.sum(deg * (deg - 1))), 7, [k])
    bf_mean, bf_var = brute_force_moments(pairs, 7, k)
    assert mean == pytest.approx(bf_mean)
    assert var == pytest.approx(bf_var)


def test_category_moments_match_enumeration():
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [0, 2], [3, 4], [4, 5]])
    pairs = index_edges(edges, np.arange(6))
    base = np.array(["a", "a", "b", "b", "c", "c"])
    totals = []
    for perm in itertools.permutations(range(6)):
        c = base[list(perm)]
        totals.append(np.count_nonzero(c[pairs[:, 0]] == c[pairs[:, 1]]))
    res = category_join_test(edges, np.arange(6), base, n_permutations=0)
    assert res["total"].expected == pytest.approx(np.mean(totals))
    assert res["total"].variance == pytest.approx(np.var(totals))


def test_clustered_block_is_grouped_beyond_chance():
    idx, edges = grid_graph(10, 10)
    members = np.zeros((10, 10), dtype=bool)
    members[2:6, 2:6] = True                       # 16 touching atrophic fibers
    res = join_count_test(edges, idx.ravel(), members.ravel(), n_permutations=999, seed=1)
    assert res.statistic == 24                     # 4 x 3 horizontal + 3 x 4 vertical joins
    assert res.p_value < 0.01
    assert res.expected < 5 and res.too_few_to_test and res.z is None   # 4.4 expected: no z
    assert res.verdict(0.05) is True               # a significant permutation p stands
    assert res.n_members == 16 and res.n_nodes == 100 and res.n_edges == 180


def test_dispersed_members_are_not_grouped():
    idx, edges = grid_graph(10, 10)
    members = np.zeros((10, 10), dtype=bool)
    members[::3, ::3] = True                       # no two touch
    res = join_count_test(edges, idx.ravel(), members.ravel(), n_permutations=999, seed=1)
    assert res.statistic == 0
    assert res.p_value == 1.0
    assert res.z is None and res.verdict(0.05) is None   # 4.4 joins expected: too few to test


def test_permutations_are_reproducible_and_optional():
    idx, edges = grid_graph(8, 8)
    rng = np.random.default_rng(5)
    members = rng.random(64) < 0.3
    a = join_count_test(edges, idx.ravel(), members, n_permutations=499, seed=3)
    b = join_count_test(edges, idx.ravel(), members, n_permutations=499, seed=3)
    assert a == b
    none = join_count_test(edges, idx.ravel(), members, n_permutations=0)
    assert none.p_value is None and none.n_permutations == 0
    assert none.expected == pytest.approx(a.expected)


def test_checkerboard_types_show_no_grouping_and_blocks_do():
    idx, edges = grid_graph(10, 10)
    yy, xx = np.indices((10, 10))
    checker = np.where((yy + xx) % 2 == 0, "1", "2").ravel()
    res = category_join_test(edges, idx.ravel(), checker, n_permutations=999, seed=0)
    assert res["total"].statistic == 0
    assert res["total"].p_value == 1.0
    assert res["per_class"]["1"].statistic == 0

    blocks = np.where(xx < 5, "1", "2").ravel()
    res = category_join_test(edges, idx.ravel(), blocks, n_permutations=999, seed=0)
    assert res["total"].statistic == 180 - 10      # only the 10 edges across the middle differ
    assert res["total"].p_value < 0.01
    assert res["per_class"]["2"].p_value < 0.01


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(HistoInputError, match="members"):
        join_count_test(np.array([[1, 2]]), np.array([1, 2]), np.array([True]))


def test_z_only_when_enough_joins_are_expected():
    idx, edges = grid_graph(20, 20)
    rng = np.random.default_rng(3)
    members = rng.random(400) < 0.3                # ~120 members: ~ 68 joins expected
    res = join_count_test(edges, idx.ravel(), members, n_permutations=199, seed=1)
    assert res.expected >= 5 and not res.too_few_to_test
    assert res.z is not None and abs(res.z) < 4
    assert res.verdict(0.05) in (True, False)


def test_expected_groups_match_enumeration_on_a_small_graph():
    idx, edges = grid_graph(3, 3)
    nodes = idx.ravel()
    # enumerate every placement of 3 members on the 3 x 3 grid: mean groups of >= 2
    counts = []
    for combo in itertools.combinations(range(9), 3):
        m = np.zeros(9, dtype=bool)
        m[list(combo)] = True
        counts.append(connected_groups(edges, nodes, m, min_size=2).max())
    exact = float(np.mean(counts))
    est = expected_group_count(edges, nodes, 3, min_size=2, n_shuffles=4000, seed=0)
    assert est == pytest.approx(exact, abs=0.03)
    assert expected_group_count(edges, nodes, 1, min_size=2) == 0.0
