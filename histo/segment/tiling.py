"""Tile geometry for large images: cover with overlap, one owner tile per object, label offsets.

Pure geometry over label arrays, no model inside (the pattern of stardist's ``big.py``):

1. :func:`tile_cover` cuts a (Y, X) image into *core* regions that partition it; each tile
   is read with a *halo* around its core (the *outer* region, clipped to the image).
2. An object segmented inside a tile's outer region is *owned* by that tile when its centroid
   lies in the core and it does not touch a side of the outer region that cuts the image
   (:func:`owned_labels`).
3. :func:`write_owned` writes the owned objects into any array-like output (numpy, memmap,
   zarr, ...) with labels offset so they are unique across tiles.

Assumption (tested): every object is smaller than the halo in both axes. Then an object that
lies whole in the outer regions of several tiles has the same centroid in each, and exactly
one core contains it, so it is written exactly once; an object cut by a tile's outer border has
all its pixels within the halo and is never owned by that tile.

Examples
--------
>>> labels = np.zeros((10, 10), np.uint32); labels[1:3, 1:3] = 5; labels[6:9, 6:9] = 7
>>> out = np.zeros_like(labels)
>>> offset = 0
>>> for tile in tile_cover(labels.shape, tile_px=5, halo_px=4):
...     local = labels[tile.outer]
...     offset = write_owned(out, local, tile, owned_labels(local, tile, labels.shape), offset)
>>> sorted(np.unique(out[labels > 0]).tolist()), offset
([1, 2], 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile of a cover: the core it owns and the outer region it reads (image coords).

    Attributes
    ----------
    index : int
        Position in the cover (raster order).
    core : (slice, slice)
        Region this tile owns; the cores of a cover partition the image.
    outer : (slice, slice)
        Core plus halo, clipped to the image: the region read and segmented.
    """

    index: int
    core: tuple[slice, slice]
    outer: tuple[slice, slice]

    @property
    def core_in_outer(self) -> tuple[slice, slice]:
        """The core in the outer region's own coordinates."""
        return tuple(
            slice(c.start - o.start, c.stop - o.start) for c, o in zip(self.core, self.outer)
        )

    @property
    def outer_shape(self) -> tuple[int, int]:
        return tuple(s.stop - s.start for s in self.outer)


def _starts(n: int, tile: int, align: int = 1) -> list[int]:
    count = max(1, int(np.ceil(n / tile)))
    # equal cores (differ by at most one pixel, or one ``align`` step) rather than a thin last tile
    starts = [int(round(i * n / count / align)) * align for i in range(count)]
    return sorted(set(starts)) + [n]


def tile_cover(shape_yx: tuple[int, int], tile_px: int, halo_px: int, *, align: int = 1) -> list[Tile]:
    """Cover a (Y, X) image with tiles whose cores partition it.

    Parameters
    ----------
    shape_yx : (int, int)
        Image height and width in pixels.
    tile_px : int
        Largest core side; cores are made near-equal so no thin last tile is left.
    halo_px : int
        Overlap added on every side of the core (clipped at the image border). Must exceed
        the largest object's extent for :func:`owned_labels` to be exact.
    align : int
        Cores and outer regions start at multiples of ``align`` (the halo is rounded up to a
        multiple of it), so that per-tile processing on a coarser grid lines up with the
        same processing of the whole image.

    Returns
    -------
    list of Tile
        In raster order.

    Examples
    --------
    >>> [t.core for t in tile_cover((4, 6), tile_px=4, halo_px=1)]
    [(slice(0, 4, None), slice(0, 3, None)), (slice(0, 4, None), slice(3, 6, None))]
    """
    h, w = (int(s) for s in shape_yx)
    if h < 1 or w < 1:
        raise ValueError(f"shape_yx must be positive, got {shape_yx}")
    if tile_px < 1 or halo_px < 0 or align < 1:
        raise ValueError(f"tile_px, align must be >= 1 and halo_px >= 0, got {tile_px}, {halo_px}, {align}")
    halo_px = -(-halo_px // align) * align
    ys, xs = _starts(h, tile_px, align), _starts(w, tile_px, align)
    tiles = []
    for y0, y1 in zip(ys[:-1], ys[1:]):
        for x0, x1 in zip(xs[:-1], xs[1:]):
            core = (slice(y0, y1), slice(x0, x1))
            outer = (
                slice(max(0, y0 - halo_px), min(h, y1 + halo_px)),
                slice(max(0, x0 - halo_px), min(w, x1 + halo_px)),
            )
            tiles.append(Tile(len(tiles), core, outer))
    return tiles


def _cut_sides(tile: Tile, shape_yx) -> tuple[bool, bool, bool, bool]:
    """Which sides of the outer region (top, bottom, left, right) cut the image."""
    (ys, xs), (h, w) = tile.outer, shape_yx
    return ys.start > 0, ys.stop < h, xs.start > 0, xs.stop < w


def owned_labels(labels: np.ndarray, tile: Tile, shape_yx: tuple[int, int]) -> np.ndarray:
    """Labels of ``labels`` (the tile's outer region) that this tile owns.

    An object is owned when its centroid lies in the core and it does not touch a side of the
    outer region that cuts the image (such an object is seen whole by another tile).

    Parameters
    ----------
    labels : (Y, X) int array
        Instance labels of the tile's outer region, 0 = background.
    tile : Tile
    shape_yx : (int, int)
        Shape of the whole image.

    Returns
    -------
    1-D array of the owned label values, sorted.
    """
    labels = np.asarray(labels)
    if labels.shape != tile.outer_shape:
        raise ValueError(f"labels shape {labels.shape} differs from the tile's outer {tile.outer_shape}")
    flat = labels.ravel()
    n = int(flat.max()) + 1 if flat.size else 1
    if n <= 1:
        return np.zeros(0, dtype=labels.dtype)
    count = np.bincount(flat, minlength=n).astype(np.float64)
    (cys, cxs) = tile.core_in_outer
    top, bottom, left, right = _cut_sides(tile, shape_yx)
    if tile.core == tile.outer and not (top or bottom or left or right):  # the whole image
        return np.flatnonzero(count[1:] > 0).astype(labels.dtype) + 1
    h, w = labels.shape
    cy = np.bincount(flat, weights=np.repeat(np.arange(h, dtype=np.float64), w), minlength=n) / np.maximum(count, 1)
    cx = np.bincount(flat, weights=np.tile(np.arange(w, dtype=np.float64), h), minlength=n) / np.maximum(count, 1)
    # centroid in the core: half-open [start, stop) on the rounded-down coordinate
    ok = (count > 0) & (np.floor(cy) >= cys.start) & (np.floor(cy) < cys.stop)
    ok &= (np.floor(cx) >= cxs.start) & (np.floor(cx) < cxs.stop)
    ok[0] = False
    for cut, edge in ((top, labels[0]), (bottom, labels[-1]), (left, labels[:, 0]), (right, labels[:, -1])):
        if cut:
            ok[np.unique(edge)] = False
    return np.flatnonzero(ok).astype(labels.dtype)


def write_owned(out, labels: np.ndarray, tile: Tile, owned: np.ndarray, offset: int) -> int:
    """Write the owned objects of a tile into ``out`` as ``offset+1, offset+2, ...``.

    Pixels already labelled in ``out`` (by an earlier tile's object) are kept, so each pixel
    belongs to one object. ``out`` may be any array-like supporting ``out[slices]`` reads and
    writes (numpy, memmap, zarr, h5py).

    Returns
    -------
    int
        The new offset (``offset + len(owned)``).
    """
    owned = np.asarray(owned)
    if owned.size == 0:
        return offset
    labels = np.asarray(labels)
    top = offset + owned.size
    dtype = np.uint32 if top < 2**32 else np.uint64
    lut = np.zeros(int(labels.max()) + 1, dtype=dtype)
    lut[owned] = np.arange(offset + 1, top + 1, dtype=dtype)
    new = lut[labels]
    rows, cols = np.flatnonzero(new.any(1)), np.flatnonzero(new.any(0))
    if rows.size == 0:
        return top
    # touch only the bounding box of the owned objects
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    oy, ox = tile.outer[0].start, tile.outer[1].start
    region_sl = (slice(oy + y0, oy + y1), slice(ox + x0, ox + x1))
    region = np.array(out[region_sl])
    patch = new[y0:y1, x0:x1]
    write = (patch > 0) & (region == 0)
    region[write] = patch[write].astype(region.dtype)
    out[region_sl] = region
    return offset + owned.size
