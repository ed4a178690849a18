"""Tile geometry: covers partition the image, ownership is exact, reassembly reproduces labels."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation import relabel_sequential

from histo.segment.tiling import Tile, owned_labels, tile_cover, write_owned


def _random_labels(shape, n_seeds, max_extent, rng):
    """Voronoi-like label image with objects smaller than ``max_extent`` in both axes."""
    from scipy import ndimage as ndi

    seeds = np.zeros(shape, np.int32)
    ys, xs = rng.integers(0, shape[0], n_seeds), rng.integers(0, shape[1], n_seeds)
    seeds[ys, xs] = np.arange(1, n_seeds + 1)
    _, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[iy, ix]
    # keep gaps (background) and split any object that got too big
    labels[rng.random(shape) < 0.05] = 0
    out = np.zeros(shape, np.int64)
    nxt = 1
    for sl_i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        comp, n = ndi.label(labels[sl] == sl_i)
        for c in range(1, n + 1):
            m = comp == c
            yy, xx = np.nonzero(m)
            if np.ptp(yy) < max_extent and np.ptp(xx) < max_extent:
                out[sl][m] = nxt
                nxt += 1
    return out


def _same_partition(a, b):
    """True when two label images are equal up to a renaming of labels."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def test_cover_partitions_image():
    shape = (101, 257)
    tiles = tile_cover(shape, tile_px=40, halo_px=7)
    hits = np.zeros(shape, int)
    for t in tiles:
        hits[t.core] += 1
        (ys, xs), (cy, cx) = t.outer, t.core
        assert ys.start == max(0, cy.start - 7) and xs.stop == min(shape[1], cx.stop + 7)
    assert (hits == 1).all()
    assert [t.index for t in tiles] == list(range(len(tiles)))


def test_cover_single_tile_when_image_small():
    (t,) = tile_cover((30, 20), tile_px=64, halo_px=10)
    assert t.core == t.outer == (slice(0, 30), slice(0, 20))
    assert t.core_in_outer == (slice(0, 30), slice(0, 20))


@pytest.mark.parametrize("bad", [dict(shape_yx=(0, 5), tile_px=4, halo_px=1),
                                 dict(shape_yx=(5, 5), tile_px=0, halo_px=1),
                                 dict(shape_yx=(5, 5), tile_px=3, halo_px=-1)])
def test_cover_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        tile_cover(**bad)


def test_owned_by_centroid_and_not_cut():
    tile = Tile(0, core=(slice(0, 10), slice(10, 20)), outer=(slice(0, 15), slice(5, 25)))
    labels = np.zeros((15, 20), np.int32)
    labels[2:5, 6:9] = 1   # centroid in the core (x = 12..13 in image coords)
    labels[2:5, 0:3] = 2   # centroid in the halo (x = 5..7)
    labels[12:15, 8:10] = 3  # centroid at y = 13: below the core
    labels[6:9, 17:20] = 4   # touches the cut right side -> never owned
    owned = owned_labels(labels, tile, shape_yx=(15, 40))
    assert owned.tolist() == [1]


def test_reassembly_reproduces_labels_exactly():
    rng = np.random.default_rng(3)
    labels = _random_labels((230, 310), 160, max_extent=30, rng=rng)
    for tile_px, halo in [(64, 31), (50, 40), (1000, 0)]:
        out = np.zeros(labels.shape, np.uint32)
        offset = 0
        for tile in tile_cover(labels.shape, tile_px, halo):
            local = labels[tile.outer]
            offset = write_owned(out, local, tile, owned_labels(local, tile, labels.shape), offset)
        assert offset == len(np.unique(labels)) - 1
        assert _same_partition(out, labels)
        assert np.array_equal(relabel_sequential(out)[0] > 0, labels > 0)


def test_write_into_zarr_array():
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(0)
    labels = _random_labels((120, 90), 50, max_extent=25, rng=rng)
    out = zarr.zeros(labels.shape, chunks=(32, 32), dtype="u4")
    offset = 0
    for tile in tile_cover(labels.shape, 40, 26):
        local = labels[tile.outer]
        offset = write_owned(out, local, tile, owned_labels(local, tile, labels.shape), offset)
    assert _same_partition(np.asarray(out[:]), labels)


def test_write_keeps_existing_pixels():
    out = np.zeros((4, 4), np.uint32)
    out[0, 0] = 9
    tile = Tile(0, (slice(0, 4), slice(0, 4)), (slice(0, 4), slice(0, 4)))
    local = np.ones((4, 4), np.int32)
    assert write_owned(out, local, tile, np.array([1]), offset=9) == 10
    assert out[0, 0] == 9 and (out[1:] == 10).all()
