"""Denervation scoring: per-fiber classes, slide statistics and the parts that explain them.

:func:`score_slide` takes the per-fiber table of :func:`histo.measure.morphometry.measure_fibers` and
adds the classes (small, angular, dark, small-angular-dark = SAD, atrophic, hypertrophic), the
slide statistics (Dubowitz atrophy / hypertrophy factors and variability coefficient from
:mod:`histo.score.dubowitz`, density, class fractions), grouped atrophy (:mod:`histo.score.grouping`), fiber types (:mod:`histo.score.fibertypes`),
central nuclei (:mod:`histo.score.nuclei`) and the evidence summary (:mod:`histo.score.evidence`).
Every threshold comes from :class:`histo.score.settings.ScoringSettings`; ``docs/scoring.md`` lists
them with their sources.

Only *counted* fibers (not touching the image or tissue edge, not excluded by a reviewer) get a
class and enter the statistics; the others keep all their measurements.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import ConvexHull, QhullError

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.labels import check_labels
from histo.io.pixelsize import check_pixel_size
from histo.io.stain import Stain
from histo.measure.adjacency import fiber_adjacency
from histo.measure.darkness import local_z
from histo.measure.morphometry import size_column
from histo.score import dubowitz, evidence, fibertypes, grouping, nuclei
from histo.score.dubowitz import (  # noqa: F401  (atrophy_factor & co. re-exported: tests, callers)
    atrophy_factor,
    describe_sizes,
    hypertrophy_factor,
    size_figures,
    variability_coefficient,
)
from histo.score.settings import ScoringSettings

log = logging.getLogger(__name__)

#: Boolean columns added by :func:`classify_fibers`.
CLASS_COLUMNS = ("counted", "is_small", "is_angular", "is_dark", "is_sad", "is_atrophic",
                 "is_hypertrophic", "is_regenerating")


# ---------------------------------------------------------------------- inputs
def _size_column(fibers: pd.DataFrame, name: str) -> str | None:
    try:
        return size_column(fibers, name)
    except HistoInputError:
        return None


def _validate(fibers: Any, labels: Any) -> tuple[pd.DataFrame, np.ndarray]:
    if not isinstance(fibers, pd.DataFrame):
        raise HistoInputError(f"fibers must be the per-fiber DataFrame of measure_fibers, got "
                              f"{type(fibers).__name__}")
    if "label" not in fibers or _size_column(fibers, "min_feret") is None:
        raise HistoInputError("the fiber table lacks 'label' or a min_feret_um / min_feret_px "
                              "column; build it with histo.measure.morphometry.measure_fibers")
    return fibers, check_labels(labels, floats=False, booleans=False)


def resolve_pixel_size(fibers: pd.DataFrame, labels: np.ndarray, image: ImageLike | np.ndarray | None,
                       settings: ScoringSettings) -> tuple[float | None, str | None]:
    """The pixel size (µm) to score with, and where it came from.

    In order: the image's metadata (or the user's ``--pixel-size``, which read_image puts
    there), the fiber table (µm columns: area_um2 / pixel count); otherwise None.
    """
    ps = getattr(image, "pixel_size_um", None)
    if ps is not None:
        return check_pixel_size(ps, name="the image's pixel_size_um"), "image"
    if "area_um2" in fibers and len(fibers):
        row = fibers.iloc[int(np.argmax(fibers["area_um2"].to_numpy()))]
        n_px = int(np.count_nonzero(labels == int(row["label"])))
        if n_px > 0 and row["area_um2"] > 0:
            return float(math.sqrt(row["area_um2"] / n_px)), "fiber table"
    return None, None


def _bool(fibers: pd.DataFrame, column: str) -> np.ndarray:
    if column not in fibers:
        return np.zeros(len(fibers), dtype=bool)
    return fibers[column].fillna(False).to_numpy(dtype=bool)


def _min_feret(fibers: pd.DataFrame, pixel_size_um: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(min Feret in the table's unit, min Feret in µm or None)."""
    col = _size_column(fibers, "min_feret")
    d = fibers[col].to_numpy(dtype=float)
    if col.endswith("_um"):
        return d, d
    return d, (d * pixel_size_um if pixel_size_um is not None else None)


# ---------------------------------------------------------------------- classes
def reviewed_sad(auto: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """The SAD call after review: ``"confirmed_sad"`` -> True, ``"not_sad"`` -> False, else ``auto``.

    Examples
    --------
    >>> reviewed_sad(np.array([True, False, False]), np.array(["not_sad", "confirmed_sad", ""])).tolist()
    [False, True, False]
    """
    flags = np.asarray(flags, dtype=object)
    return (np.asarray(auto, dtype=bool) | (flags == "confirmed_sad")) & (flags != "not_sad")


def not_fiber(fibers: pd.DataFrame) -> np.ndarray:
    """Objects the fiber score rejected (column ``rejected``) that no reviewer ``"restored"``.

    Examples
    --------
    >>> not_fiber(pd.DataFrame({"rejected": [True, True, False], "review_flag": ["", "restored", ""]})).tolist()
    [True, False, False]
    """
    rej = _bool(fibers, "rejected")
    if "review_flag" in fibers:
        rej = rej & (fibers["review_flag"].fillna("").to_numpy(dtype=object) != "restored")
    return np.asarray(rej, bool)


def classify_fibers(fibers: pd.DataFrame, settings: ScoringSettings, *, stain: Stain,
                    pixel_size_um: float | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Add ``counted`` and the class flags; return the table and the thresholds used.

    Parameters
    ----------
    fibers : DataFrame
        Per-fiber table (``label``, a min Feret column, ``angularity``, ``darkness``,
        ``is_edge``, optional ``excluded`` and ``review_flag``). A ``review_flag`` of
        ``"confirmed_sad"`` / ``"not_sad"`` (histo.review.state) overrides the SAD call, and the
        classifier's own call is kept in ``is_sad_auto``.
    settings : ScoringSettings
    stain : str
        Darkness counts only on ``settings.dark_stains``.
    pixel_size_um : float, optional
        Converts a pixel table to µm for the absolute rules.

    Returns
    -------
    (DataFrame, dict)
        A copy with the :data:`CLASS_COLUMNS` added, and ``{"small_rule_used", ...}``.
    """
    out = fibers.copy()
    counted = ~_bool(out, "is_edge") & ~_bool(out, "excluded") & ~not_fiber(out)
    d, d_um = _min_feret(out, pixel_size_um)
    reference = settings.reference_in_force
    rng = reference.min_feret_um
    lo, hi = rng if rng is not None else (None, None)
    info: dict[str, Any] = {"normal_range_um": None if rng is None else [lo, hi],
                            "reference": reference.tag, "notes": []}

    rule = settings.small_rule
    if rule == "auto":
        rule = "absolute" if d_um is not None and rng is not None else "relative"
    elif d_um is None and rule != "relative":
        info["notes"].append(f"small_rule {rule!r} needs µm; the relative rule was used instead")
        rule = "relative"
    elif rng is None and settings.small_max_um is None and rule != "relative":
        info["notes"].append(f"small_rule {rule!r} needs a normal range and {reference.tag} has none; "
                             "the relative rule was used instead")
        rule = "relative"
    info["small_rule_used"] = rule
    ref = d[counted & np.isfinite(d)]
    if settings.small_percentile is not None:
        cutoff = float(np.percentile(ref, settings.small_percentile)) if ref.size else math.nan
        info["small_relative"] = f"below percentile {settings.small_percentile:g} of the slide"
    else:
        cutoff = settings.small_median_fraction * float(np.median(ref)) if ref.size else math.nan
        info["small_relative"] = (f"below {settings.small_median_fraction:g} x the slide median "
                                  "min Feret")
    info["small_relative_cutoff"] = None if math.isnan(cutoff) else cutoff
    info["small_relative_cutoff_unit"] = "um" if _size_column(out, "min_feret").endswith("_um") else "px"
    small_max_um = settings.small_max_um if settings.small_max_um is not None else lo
    relative = d < cutoff if not math.isnan(cutoff) else np.zeros(len(d), dtype=bool)
    absolute = (d_um < small_max_um if d_um is not None and small_max_um is not None
                else np.zeros(len(d), dtype=bool))
    if rule in ("absolute", "either", "both"):
        info["small_max_um"] = small_max_um
    small = {"absolute": absolute, "relative": relative, "either": absolute | relative,
             "both": absolute & relative}[rule]

    if "angularity" in out:
        angular = out["angularity"].to_numpy(dtype=float) >= settings.angular_min
    else:
        angular = np.zeros(len(out), dtype=bool)
        info["notes"].append("no angularity column: no fiber is angular")
    info["angular_min"] = settings.angular_min

    dark_applies = stain in settings.dark_stains
    info["dark_applies"] = dark_applies
    info["dark_min_z"] = settings.dark_min_z
    darkness = (out["darkness"].to_numpy(dtype=float) if "darkness" in out
                else np.full(len(out), np.nan))
    if not dark_applies:
        info["notes"].append(f"darkness is not a sign of atrophy on stain {stain!r}: no fiber is "
                             "dark or SAD")
    elif not np.isfinite(darkness[counted]).any():
        info["notes"].append("no darkness measured (no image?): no fiber is dark or SAD")
    dark = dark_applies & (darkness >= settings.dark_min_z)

    out["counted"] = counted
    out["is_small"] = counted & small
    out["is_angular"] = counted & angular
    out["is_dark"] = counted & dark
    regenerating = regenerating_fibers(out, settings, stain=stain, info=info)
    out["is_regenerating"] = regenerating
    sad = ((out["is_small"] & out["is_angular"] & out["is_dark"]).to_numpy(dtype=bool)
           & ~regenerating.fillna(False).to_numpy(dtype=bool))
    if "review_flag" in out:  # a reviewer's call overrides the classifier (histo.review.state)
        flag = out["review_flag"].fillna("").astype(str).to_numpy()
        out["is_sad_auto"] = sad
        sad = counted & reviewed_sad(sad, flag)
        info["reviewed_sad_calls"] = int(np.isin(flag, ("confirmed_sad", "not_sad")).sum())
    out["is_sad"] = sad
    nope = np.zeros(len(out), dtype=bool)
    out["is_atrophic"] = counted & (d_um < lo if d_um is not None and rng is not None else nope)
    out["is_hypertrophic"] = counted & (d_um >= hi if d_um is not None and rng is not None
                                        else nope)
    if d_um is None:
        info["notes"].append("no pixel size: is_atrophic / is_hypertrophic are all False")
    elif rng is None:
        info["notes"].append(f"no normal range ({reference.tag}): is_atrophic / is_hypertrophic are "
                             "all False")
    return out, info


def regenerating_fibers(fibers: pd.DataFrame, settings: ScoringSettings, *, stain: Stain,
                        info: dict[str, Any] | None = None) -> pd.Series:
    """Regenerating-like fibers on H&E: basophilic beyond their neighbours and centrally nucleated.

    A counted fiber is regenerating-like when its ``basophilia`` (cytoplasmic hematoxylin
    share, :func:`histo.io.stain.he_cytoplasm`) is at least ``settings.regenerating_min_z``
    robust SDs above the median of its 12 nearest fibers
    (:func:`histo.measure.darkness.local_z`) and it has a central nucleus
    (``is_centrally_nucleated``). Such fibers are their own class and never SAD: basophilia
    with central nuclei is regeneration, not denervation.

    Returns
    -------
    Series of nullable boolean
        NA for every fiber when not assessed (not H&E, no ``basophilia`` or no nucleus calls);
        ``info["regenerating"]`` (when given) says how it was decided or why not.
    """
    n = len(fibers)
    na = pd.Series(pd.array([pd.NA] * n, dtype="boolean"), index=fibers.index)
    need = {"basophilia", "is_centrally_nucleated", "centroid_y_px", "centroid_x_px"}
    why = None
    if stain != "he":
        why = "regenerating fibers are assessed on H&E only"
    elif not need <= set(fibers.columns):
        why = "needs basophilia and central nuclei (colour H&E with nuclei counted)"
    else:
        baso = fibers["basophilia"].to_numpy(float)
        cn = fibers["is_centrally_nucleated"]
        if not np.isfinite(baso).any() or cn.isna().all():
            why = "needs basophilia and central nuclei (colour H&E with nuclei counted)"
    if why is not None:
        if info is not None:
            info["regenerating"] = {"assessed": False, "reason": why}
        return na
    counted = fibers["counted"].to_numpy(dtype=bool)
    z, _, scale = local_z(baso, fibers["centroid_y_px"].to_numpy(float),
                                   fibers["centroid_x_px"].to_numpy(float), counted)
    basophilic = np.nan_to_num(z, nan=-np.inf) >= settings.regenerating_min_z
    regen = counted & basophilic & cn.fillna(False).to_numpy(dtype=bool)
    if info is not None:
        info["regenerating"] = {
            "assessed": True, "regenerating_min_z": settings.regenerating_min_z,
            "basophilia_local_sd": scale, "n_basophilic": int(np.count_nonzero(counted & basophilic)),
            "n_regenerating": int(regen.sum())}
    return pd.Series(pd.array(regen, dtype="boolean"), index=fibers.index)


# ---------------------------------------------------------------------- slide statistics
def _hull_area_px(mask: np.ndarray) -> float:
    """Area (px) of the convex hull of the pixel squares of ``mask``."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0.0
    sub = mask[rows]
    x0 = sub.argmax(axis=1)
    x1 = sub.shape[1] - sub[:, ::-1].argmax(axis=1)
    pts = np.concatenate([np.stack([rows, x0], 1), np.stack([rows, x1], 1),
                          np.stack([rows + 1, x0], 1), np.stack([rows + 1, x1], 1)]).astype(float)
    try:
        return float(ConvexHull(pts).volume)
    except QhullError:
        return float(mask.sum())


def area_basis(fibers: pd.DataFrame, labels: np.ndarray, pixel_size_um: float | None,
               tissue_area_um2: float | None) -> dict[str, Any]:
    """The area densities are computed on, and the fiber count that goes with it.

    With ``tissue_area_um2``: every non-excluded fiber counts, those cut by the image border
    as half a fiber. Otherwise: the counted fibers over the convex hull of their pixels.
    """
    counted = fibers["counted"].to_numpy(dtype=bool)
    if tissue_area_um2 is not None:
        h, w = labels.shape
        cut = np.zeros(len(fibers), dtype=bool)
        if {"bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px"} <= set(fibers.columns):
            cut = ((fibers["bbox_y0_px"] <= 0) | (fibers["bbox_x0_px"] <= 0)
                   | (fibers["bbox_y1_px"] >= h) | (fibers["bbox_x1_px"] >= w)).to_numpy()
        kept = ~_bool(fibers, "excluded") & ~not_fiber(fibers)
        n = float(np.count_nonzero(kept & ~cut) + 0.5 * np.count_nonzero(kept & cut))
        return {"source": "tissue area given", "area_um2": float(tissue_area_um2),
                "area_px": None, "n_fibers": n}
    ids = fibers["label"].to_numpy().astype(np.int64)
    lut = np.zeros(max(int(labels.max()), int(ids.max(initial=0))) + 1, dtype=bool)
    lut[ids[counted]] = True
    area_px = _hull_area_px(lut[labels])
    return {"source": "convex hull of the counted fibers", "area_px": area_px,
            "area_um2": None if pixel_size_um is None else area_px * pixel_size_um ** 2,
            "n_fibers": float(counted.sum())}


def fiber_counts(fibers: pd.DataFrame) -> dict[str, int]:
    """Counts of a classified table: all fibers, counted, at an edge, excluded, and each class.

    ``n_small``, ``n_angular``, ``n_dark``, ``n_sad`` count counted fibers only. A table
    without ``counted`` counts the fibers neither at an edge nor excluded.

    Examples
    --------
    >>> df = pd.DataFrame({"counted": [True, True, False], "is_sad": [True, False, True]})
    >>> fiber_counts(df)["n_sad"]
    1
    """
    counted = (_bool(fibers, "counted") if "counted" in fibers
               else ~(_bool(fibers, "is_edge") | _bool(fibers, "excluded") | not_fiber(fibers)))
    out = {"n_fibers": int(len(fibers)), "n_counted": int(counted.sum()),
           "n_edge": int(_bool(fibers, "is_edge").sum()),
           "n_excluded": int(_bool(fibers, "excluded").sum()),
           "n_rejected": int(not_fiber(fibers).sum())}
    for name in ("small", "angular", "dark", "sad", "regenerating"):
        out[f"n_{name}"] = int((_bool(fibers, f"is_{name}") & counted).sum())
    return out


def slide_statistics(fibers: pd.DataFrame, labels: np.ndarray, settings: ScoringSettings, *,
                     pixel_size_um: float | None, tissue_area_um2: float | None = None
                     ) -> dict[str, Any]:
    """Slide figures from a classified table (:func:`classify_fibers`): counts, density,
    size distribution, Dubowitz figures and the fraction and density of each class."""
    counted = fibers["counted"].to_numpy(dtype=bool)
    sub = fibers[counted]
    d_col, a_col = _size_column(fibers, "min_feret"), _size_column(fibers, "area")
    in_um = d_col.endswith("_um")
    sizes = size_figures(
        None if in_um else sub[d_col].to_numpy(float),
        None if (a_col is None or a_col.endswith("_um2")) else sub[a_col].to_numpy(float),
        pixel_size_um, settings.normal_range,
        min_feret_um=sub[d_col].to_numpy(float) if in_um else None,
        area_um2=sub[a_col].to_numpy(float) if a_col and a_col.endswith("_um2") else None,
        reference=settings.reference_in_force)
    if in_um and pixel_size_um:
        sizes["min_feret_px"] = describe_sizes(sub[d_col].to_numpy(float) / pixel_size_um)
        if a_col:
            sizes["area_px"] = describe_sizes(sub[a_col].to_numpy(float) / pixel_size_um ** 2)
    basis = area_basis(fibers, labels, pixel_size_um, tissue_area_um2)
    area_mm2 = None if basis["area_um2"] is None else basis["area_um2"] / 1e6
    counts = fiber_counts(fibers)
    n_counted = counts["n_counted"]
    stats: dict[str, Any] = {
        **{k: counts[k] for k in ("n_fibers", "n_counted", "n_edge", "n_excluded", "n_rejected")},
        "area_basis": basis,
        "density_per_mm2": (basis["n_fibers"] / area_mm2) if area_mm2 else None,
        **sizes,
        "normal_range_source": ("normal_range_um" if settings.normal_range_um is not None
                                else f"reference: {settings.reference_in_force.tag}"),
        "reference": settings.reference_in_force.to_dict(),
    }
    if area_mm2 is None:
        stats["reasons"]["density_per_mm2"] = "no pixel size and no tissue area"
    classes = {}
    for name in ("small", "angular", "dark", "sad", "regenerating"):
        n = counts[f"n_{name}"]
        classes[name] = {"n": n, "fraction": n / n_counted if n_counted else None,
                         "density_per_mm2": n / area_mm2 if area_mm2 else None}
    stats["classes"] = classes
    return stats


# ---------------------------------------------------------------------- the whole slide
def score_slide(fibers: pd.DataFrame, labels: np.ndarray, image: ImageLike | np.ndarray | None,
                settings: ScoringSettings | None = None, *, stain: Stain,
                edges: np.ndarray | None = None,
                tissue_area_um2: float | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Classify fibers and compute every slide figure.

    Parameters
    ----------
    fibers : DataFrame
        From :func:`histo.measure.morphometry.measure_fibers` (an ``excluded`` column is honoured).
    labels : (Y, X) int array
        The instance labels the table was measured on.
    image : histo.io.image.ImageData, ndarray or None
        The slide (pixel size, nuclear and type channels); None skips nuclei and typing by
        intensity unless the table has ``mean_od``.
    settings : ScoringSettings, optional
    stain : str
        ``"he"``, ``"nadh"``, ``"sdh"``, ``"atpase"``, ``"esterase"``, ``"if"`` or ``"psr"``.
    edges : (E, 2) int array, optional
        Adjacency graph as label pairs; computed with
        :func:`histo.measure.adjacency.fiber_adjacency` when None.
    tissue_area_um2 : float, optional
        Tissue area for densities; else the convex hull of the counted fibers.

    Returns
    -------
    (DataFrame, dict)
        The table with ``counted``, ``is_small``, ``is_angular``, ``is_dark``, ``is_sad``,
        ``is_atrophic``, ``is_hypertrophic``, ``atrophy_group``, ``fiber_type``, ``n_nuclei``,
        ``n_central_nuclei``, ``is_centrally_nucleated``; and the JSON-able summary
        ``{"settings", "statistics", "grouping", "fiber_types", "nuclei", "evidence"}``.
    """
    settings = settings or ScoringSettings()
    if not isinstance(settings, ScoringSettings):
        raise HistoInputError(f"settings must be a ScoringSettings, got {type(settings).__name__}")
    fibers, labels = _validate(fibers, labels)
    ps, ps_source = resolve_pixel_size(fibers, labels, image, settings)
    # nuclei first: the regenerating class (H&E) needs the central nuclei; a table whose
    # nuclei were counted elsewhere (tile by tile) keeps its calls when nuclei are off here
    counted0 = ~_bool(fibers, "is_edge") & ~_bool(fibers, "excluded") & ~not_fiber(fibers)
    nuc_table, nuc_info = nuclei.central_nuclei(fibers.assign(counted=counted0), labels, image,
                                                settings, stain=stain, pixel_size_um=ps)
    if nuc_info.get("method") is not None or "is_centrally_nucleated" not in fibers:
        fibers = fibers.copy()
        for col in ("n_nuclei", "n_central_nuclei", "is_centrally_nucleated"):
            fibers[col] = nuc_table[col].to_numpy()
    out, class_info = classify_fibers(fibers, settings, stain=stain, pixel_size_um=ps)
    stats = slide_statistics(out, labels, settings, pixel_size_um=ps,
                             tissue_area_um2=tissue_area_um2)
    stats["pixel_size_um"], stats["pixel_size_source"] = ps, ps_source
    stats["size_unit"] = "um" if ps is not None else "px"
    stats["thresholds"] = class_info

    edges_source = "given"
    gap_px = None
    if edges is None:
        gap_px = settings.gap_px(ps)
        edges = fiber_adjacency(labels, max_gap_px=gap_px)
        edges_source = f"fiber_adjacency(max_gap_px={gap_px})"
    edges = np.asarray(edges).reshape(-1, 2)
    out["atrophy_group"], group_info = grouping.atrophy_groups(out, edges, settings,
                                                               pixel_size_known=ps is not None)
    group_info["adjacency"] = {"n_edges": int(len(edges)), "source": edges_source,
                               "max_gap_px": gap_px}

    types, type_info = fibertypes.type_fibers(out, labels, image, settings, stain=stain)
    out["fiber_type"] = types
    if type_info.get("types"):
        type_info.update(fibertypes.type_statistics(out, edges, settings))

    if type_info.get("types") and type_info.get("per_type"):
        per_type_dubowitz(out, ps, settings, type_info)

    summary = {
        "settings": settings.to_dict(),
        "statistics": stats,
        "grouping": group_info,
        "fiber_types": type_info,
        "nuclei": nuc_info,
    }
    summary["evidence"] = evidence.build_evidence(summary, settings)
    log.info("scored %d fibers (%d counted): %s", len(out), stats["n_counted"],
             summary["evidence"]["text"])
    return out, summary


def per_type_dubowitz(out: pd.DataFrame, ps: float | None, settings: ScoringSettings,
                      type_info: dict[str, Any]) -> dict[str, Any]:
    """Add the Dubowitz figures per fiber type to ``type_info`` (in place, and returned).

    Each ``type_info["per_type"][t]`` gains ``sizes`` (AF / HF / VC and the size distribution
    of that type, :func:`histo.score.dubowitz.size_figures`), ``histogram`` (min-Feret counts
    on ``type_info["histogram_edges"]``), ``n_sad`` and the centrally nucleated count; the part
    gains ``sad_types`` and ``predominance`` (:func:`histo.score.dubowitz.type_figures`).
    """
    counted = out["counted"].to_numpy(dtype=bool)
    d_col, a_col = _size_column(out, "min_feret"), _size_column(out, "area")
    d = out[d_col].to_numpy(float)
    unit = "um"
    if not d_col.endswith("_um"):
        if ps is None:
            unit = "px"
        else:
            d = d * ps
    area = out[a_col].to_numpy(float) if a_col else None
    if area is not None and a_col.endswith("_px") and ps is not None:
        area = area * ps ** 2
    cn = (out["is_centrally_nucleated"].astype(object).to_numpy()
          if "is_centrally_nucleated" in out and out["is_centrally_nucleated"].notna().any()
          else None)
    figs = dubowitz.type_figures(
        d[counted], out["fiber_type"].astype(object).to_numpy()[counted], unit=unit,
        normal_range_um=settings.normal_range, reference=settings.reference_in_force,
        area=None if area is None else area[counted],
        is_sad=out["is_sad"].to_numpy(dtype=bool)[counted],
        is_central=None if cn is None else cn[counted])
    for name, entry in figs.pop("per_type").items():
        type_info["per_type"].setdefault(name, {}).update(
            {k: v for k, v in entry.items() if k not in ("n", "fraction")})
    type_info.update(figs)
    return type_info


# ---------------------------------------------------------------------- without pixels
#: Per-fiber calls that need the slide's pixels (fiber type, nuclei): scoring without pixels
#: cannot make them, so they come from where they were made.
PIXEL_COLUMNS = ("fiber_type", "n_nuclei", "n_central_nuclei", "is_centrally_nucleated")


class _PixelSize:
    """Stand-in image for :func:`score_slide` when only the pixel size is known
    (nuclei and type channels are then read elsewhere or not at all)."""

    def __init__(self, pixel_size_um: float | None, path=None):
        self.pixel_size_um, self.path = pixel_size_um, path


def score_table(fibers: pd.DataFrame, shape_yx, *, pixel_size_um: float | None, stain: str,
                settings: ScoringSettings, edges: np.ndarray, tissue_area_um2: float | None = None,
                labels: np.ndarray | None = None, path=None) -> tuple[pd.DataFrame, dict]:
    """Score a fiber table without the slide's pixels (whole slides, reviewed tables).

    Runs :func:`score_slide` with nuclei and fiber typing switched off (they
    need pixels; typing by intensity levels stays on for ATPase/NADH/SDH tables with
    ``mean_od`` and no ``fiber_type``) and the adjacency ``edges`` given; per-fiber calls that need pixels
    (``fiber_type``, nucleus counts) already in ``fibers`` (made tile by tile) are kept. ``labels`` is only used for the density
    area when ``tissue_area_um2`` is None; without it an all-zero view of ``shape_yx`` (no
    memory) stands in, so pass ``tissue_area_um2`` then.
    """
    if labels is None:
        labels = np.broadcast_to(np.zeros((), np.uint32), tuple(int(s) for s in shape_yx))
    # intensity levels need only mean_od (and the centroids): a whole slide without types is
    # typed here, slide-wide, with the fit its darkness was measured against
    from_table = (stain in fibertypes.INTENSITY_STAINS and "fiber_type" not in fibers
                  and "mean_od" in fibers and np.isfinite(fibers["mean_od"].to_numpy(float)).any())
    off = settings.replace(nuclei={"enabled": False},
                           **({} if from_table else {"fiber_types": {"enabled": False}}))
    out, part = score_slide(fibers, labels, _PixelSize(pixel_size_um, path), off, stain=stain,
                            edges=edges, tissue_area_um2=tissue_area_um2)
    for col in PIXEL_COLUMNS:
        if col in fibers:
            out[col] = fibers[col].to_numpy()
    part["settings"] = settings.to_dict()
    return out, part
