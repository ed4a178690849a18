"""Re-measuring only the fibers a reviewer edited.

When a pathologist paints, erases, merges or splits fibers (``plugins/napari_histo``), the
slide's table is brought up to date without measuring the whole slide again:
:func:`changed_labels` finds the labels whose pixels changed and :func:`recompute_changed`
measures just those, in a window around the edit, and updates their neighbours' counts. The
result equals a full :func:`histo.measure.morphometry.measure_fibers` pass on the edited labels.

No Qt, no napari.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.stain import darkness_signal, guess_stain, he_cytoplasm, image_layout, white_level
from histo.measure.adjacency import fiber_adjacency, gap_in_pixels
from histo.measure.darkness import fiber_darkness
from histo.measure.morphometry import measure_fibers, table_columns

log = logging.getLogger(__name__)


def changed_labels(labels_before: np.ndarray, labels_after: np.ndarray) -> np.ndarray:
    """Labels whose set of pixels differs between two label images (sorted, 0 left out).

    A fiber painted over, erased, split, merged into another or newly drawn is listed; a
    fiber whose pixels are all unchanged is not.

    Examples
    --------
    >>> a = np.array([[1, 1, 0], [2, 2, 0]])
    >>> b = np.array([[1, 2, 0], [2, 2, 3]])
    >>> changed_labels(a, b).tolist()
    [1, 2, 3]
    """
    before = np.asarray(labels_before)
    after = np.asarray(labels_after)
    if before.shape != after.shape:
        raise HistoInputError(f"label images differ in shape: {before.shape} vs {after.shape}")
    diff = before != after
    values = np.union1d(before[diff], after[diff])
    return values[values != 0].astype(np.int64)


#: Position columns shifted from a crop's grid back to the slide's.
_PX_POSITION_COLUMNS = (("centroid_y_px", 0), ("centroid_x_px", 1), ("bbox_y0_px", 0),
                        ("bbox_y1_px", 0), ("bbox_x0_px", 1), ("bbox_x1_px", 1))
_UM_POSITION_COLUMNS = (("centroid_y_um", 0), ("centroid_x_um", 1))


def _bbox_of(mask_rows: np.ndarray, mask_cols: np.ndarray) -> list[int] | None:
    if mask_rows.size == 0:
        return None
    return [int(mask_rows[0]), int(mask_cols[0]), int(mask_rows[-1]) + 1, int(mask_cols[-1]) + 1]


def _union(a: list[int] | None, b: list[int] | None) -> list[int] | None:
    if a is None:
        return b
    if b is None:
        return a
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


def _signal_means(image: ImageLike | np.ndarray | None, stain: str | None, channel: int | None, crop_labels: np.ndarray,
                  ys: slice, xs: slice, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mean_od`` and ``basophilia`` of the ``wanted`` labels of a crop, from the signals of
    the *whole* image.

    The signal may depend on whole-image statistics (immunofluorescence is divided by its
    99.5th percentile, brightfield OD uses the image's white level), so it is computed on
    the whole image, exactly as the first measurement did, and only then cut to the window.
    NaN pixels (the masked nuclei of H&E) are left out of the means.
    """
    nan = np.full(len(wanted), np.nan)
    if image is None:
        return nan, nan
    arr, axes = image_layout(image)
    if axes == "CYX" and channel is None and arr.shape[0] > 1:
        return nan, nan
    if stain in (None, "auto"):
        stain = guess_stain(image)
    if stain == "he" and axes == "YXS":
        total, hema = he_cytoplasm(arr[..., :3], background=white_level(arr)[:3])
        mean_od = _crop_means(total[ys, xs], crop_labels, wanted)
        return mean_od, _crop_means(hema[ys, xs], crop_labels, wanted) / mean_od
    signal = np.asarray(darkness_signal(image, stain, channel))[ys, xs]
    return _crop_means(signal, crop_labels, wanted), nan


def _crop_means(signal: np.ndarray, crop_labels: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    lab = crop_labels.ravel()
    val = signal.ravel().astype(np.float64)
    ok = np.isfinite(val)
    sums = np.bincount(lab[ok], weights=val[ok], minlength=int(lab.max()) + 1)
    counts = np.bincount(lab[ok], minlength=int(lab.max()) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[wanted] > 0, sums[wanted] / np.maximum(counts[wanted], 1), np.nan)


def _edge_set(labels: np.ndarray, gap_px: int) -> set[tuple[int, int]]:
    pairs = np.asarray(fiber_adjacency(labels, max_gap_px=gap_px)).reshape(-1, 2)
    return {(int(min(a, b)), int(max(a, b))) for a, b in pairs if a != b}


def recompute_changed(
    labels_before: np.ndarray,
    labels_after: np.ndarray,
    fibers: pd.DataFrame,
    image: ImageLike | np.ndarray | None,
    *,
    pixel_size_um: float | None = None,
    stain: str | None = None,
    channel: int | None = None,
    tissue_mask: np.ndarray | None = None,
    max_gap_um: float = 3.0,
) -> pd.DataFrame:
    """Per-fiber measurements after a label edit, re-measuring only the changed fibers.

    The changed fibers (:func:`changed_labels`) are measured with
    :func:`histo.measure.morphometry.measure_fibers` on a window of the slide that holds them whole
    plus a margin wider than the adjacency gap, and their positions shifted back to the
    slide's grid. Two slide-wide quantities are then brought up to date for *every* fiber:

    * ``n_neighbors``: the adjacency graph is compared before and after the edit on a window
      around the changed pixels (2 gaps wide), and each fiber's degree moves by the edges it
      gained or lost. Adjacency is local (within the gap), so this is exact.
    * ``darkness`` and ``darkness_ref``: re-referenced to the slide's non-edge fibers by
      :func:`histo.measure.darkness.fiber_darkness`, as a full measurement does.

    ``mean_od`` of a re-measured fiber is the mean of the darkness signal computed on the
    whole image (:func:`histo.io.stain.darkness_signal`), since that signal may be normalised
    by whole-image statistics. The result equals a full ``measure_fibers`` of the edited
    labels (tested), at the cost of the changed fibers' window plus one pass of the signal.

    Parameters
    ----------
    labels_before, labels_after : (Y, X) integer arrays
        The labels ``fibers`` was measured on, and the edited labels.
    fibers : DataFrame
        Per-fiber table of ``labels_before`` (measure_fibers columns; scoring and review
        columns are ignored and left out of the result).
    image : histo.io.image.ImageData, ndarray or None
        The slide's pixels (as passed to ``measure_fibers``).
    pixel_size_um, stain, channel, tissue_mask, max_gap_um
        As for :func:`histo.measure.morphometry.measure_fibers`; use the values of the first
        measurement so that unchanged and re-measured rows agree.

    Returns
    -------
    DataFrame
        The measurement table of ``labels_after``: one row per label, sorted, index 0..n-1,
        the columns of ``measure_fibers``. Score it again (:func:`histo.score.scoring.score_slide`)
        for the classes and slide figures.

    Examples
    --------
    Three fibers in a row; deleting the third leaves the middle one with one neighbour:

    >>> import numpy as np
    >>> from histo.measure.morphometry import measure_fibers
    >>> labels = np.zeros((40, 60), np.int32)
    >>> labels[5:15, 5:15] = 1; labels[5:15, 17:27] = 2; labels[5:15, 29:39] = 3
    >>> pixels = np.random.default_rng(0).integers(100, 200, (40, 60, 3), dtype=np.uint8)
    >>> before = measure_fibers(labels, pixels, pixel_size_um=0.5, stain="he")
    >>> before["n_neighbors"].astype(int).tolist()
    [1, 2, 1]
    >>> edited = labels.copy(); edited[edited == 3] = 0
    >>> after = recompute_changed(labels, edited, before, pixels, pixel_size_um=0.5, stain="he")
    >>> after[["label", "n_neighbors"]].astype(int).values.tolist()
    [[1, 1], [2, 1]]
    >>> after.equals(measure_fibers(edited, pixels, pixel_size_um=0.5, stain="he"))
    True
    """
    before = np.asarray(labels_before)
    after = np.asarray(labels_after)
    if before.shape != after.shape:
        raise HistoInputError(f"edited labels have shape {after.shape}, the measured ones {before.shape}")
    if "label" not in fibers:
        raise HistoInputError("the fibers table has no 'label' column; pass a table from measure_fibers")
    changed = changed_labels(before, after)
    table = fibers.reset_index(drop=True)
    columns = [c for c in table_columns(pixel_size_um is not None) if c in table]
    if changed.size == 0:
        return table[columns].copy()
    h, w = after.shape
    gap = gap_in_pixels(max_gap_um, pixel_size_um)

    diff = before != after
    diff_box = _bbox_of(np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0)))
    # Changed fibers whole: the changed pixels plus the old extent of every changed fiber
    # that was in the table (a relabelled fiber may keep pixels outside the edit).
    box = diff_box
    old = table[table["label"].isin(changed)]
    if len(old) and {"bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px"} <= set(old):
        box = _union(box, [int(old["bbox_y0_px"].min()), int(old["bbox_x0_px"].min()),
                           int(old["bbox_y1_px"].max()), int(old["bbox_x1_px"].max())])
    pad = gap + 2
    y0, x0 = max(0, box[0] - pad), max(0, box[1] - pad)
    y1, x1 = min(h, box[2] + pad), min(w, box[3] + pad)
    ys, xs = slice(y0, y1), slice(x0, x1)
    present = changed[np.isin(changed, after[ys, xs])]
    new_rows = None
    if present.size:
        crop_labels = np.ascontiguousarray(after[ys, xs])
        crop = measure_fibers(
            crop_labels, None, pixel_size_um=pixel_size_um, stain=stain, channel=channel,
            tissue_mask=None if tissue_mask is None else np.asarray(tissue_mask)[ys, xs],
            max_gap_um=max_gap_um,
        )
        new_rows = crop[crop["label"].isin(present)].copy()
        if "mean_od" in new_rows:
            mean_od, basophilia = _signal_means(image, stain, channel, crop_labels, ys, xs,
                                                new_rows["label"].to_numpy(np.int64))
            new_rows["mean_od"] = mean_od
            if "basophilia" in new_rows:
                new_rows["basophilia"] = basophilia
        for col, axis in _PX_POSITION_COLUMNS:
            if col in new_rows:
                new_rows[col] = new_rows[col] + (y0, x0)[axis]
        if pixel_size_um:
            for col, axis in _UM_POSITION_COLUMNS:
                if col in new_rows:
                    new_rows[col] = new_rows[col] + (y0, x0)[axis] * pixel_size_um
        columns = list(crop.columns)

    kept = table[~table["label"].isin(changed)]
    parts = [kept[[c for c in columns if c in kept]]]
    if new_rows is not None and len(new_rows):
        parts.append(new_rows[columns])
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
    out = out.sort_values("label", kind="stable", ignore_index=True)

    if "n_neighbors" in out:
        out["n_neighbors"] = _updated_degrees(before, after, diff_box, gap, table, out)
    if "mean_od" in out and "darkness" in out and "is_edge" in out:
        resolved = guess_stain(image) if stain in (None, "auto") and image is not None else stain
        darkness, darkness_ref, _ = fiber_darkness(out, stain=resolved)
        out["darkness"] = darkness
        if "darkness_ref" in out:
            out["darkness_ref"] = darkness_ref
    log.info("re-measured %d changed fibers (%d gone)", present.size, changed.size - present.size)
    return out


def _updated_degrees(before: np.ndarray, after: np.ndarray, diff_box: list[int], gap: int,
                     old_table: pd.DataFrame, new_table: pd.DataFrame) -> np.ndarray:
    """``n_neighbors`` after an edit: old degree + edges gained - edges lost near the edit."""
    h, w = after.shape
    pad = 2 * gap + 2
    ys = slice(max(0, diff_box[0] - pad), min(h, diff_box[2] + pad))
    xs = slice(max(0, diff_box[1] - pad), min(w, diff_box[3] + pad))
    e_before = _edge_set(np.ascontiguousarray(before[ys, xs]), gap)
    e_after = _edge_set(np.ascontiguousarray(after[ys, xs]), gap)
    delta: dict[int, int] = {}
    for sign, edges in ((+1, e_after - e_before), (-1, e_before - e_after)):
        for a, b in edges:
            delta[a] = delta.get(a, 0) + sign
            delta[b] = delta.get(b, 0) + sign
    old_degree = dict(zip(old_table["label"].astype(int), old_table["n_neighbors"].fillna(0).astype(int)))
    labels = new_table["label"].astype(int).to_numpy()
    return np.array([old_degree.get(int(lab), 0) + delta.get(int(lab), 0) for lab in labels], dtype=np.int64)
