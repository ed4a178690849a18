"""Running the network on regions: labels on the input grid, the scale search and its map reuse."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from histo.segment import inference
from histo.segment.net import NetConfig
from histo.segment.netinput import network_input
from histo.segment.targets import median_diameter_px


def _disk_canonical_maps(n_cells=2, radius=14.0):
    """Ideal canonical maps (3, 64 k, 64 k) of a row of touching disks."""
    side = 64 * n_cells
    yy, xx = np.mgrid[:side, :side] + 0.5
    centres = [(side / 2, 32 + 28 * i) for i in range(n_cells + 1)]
    d = np.stack([np.hypot(yy - cy, xx - cx) for cy, cx in centres])
    own, second = d.min(0), np.sort(d, 0)[1]
    fg = own < radius
    edge = np.minimum(radius - own, (second - own) / 2)
    return np.stack([fg, fg & (edge < 1.5), np.clip(edge / radius, 0, 1) * fg]).astype(np.float32)


@pytest.mark.parametrize("period", [32, 64, 256])  # input coarser, equal, finer than canonical
def test_region_labels_on_the_input_grid(period):
    maps = _disk_canonical_maps()
    config = NetConfig(fg_threshold=0.5, seed_threshold=0.3, min_area_frac=0.02)
    shape = (2 * period - 3, 2 * period)  # a region a little smaller than its canonical grid
    labels = inference.region_labels(maps, config, period, shape, is_rgb=True)
    assert labels.shape == shape and labels.dtype == np.int32
    assert labels.max() == 3 and len(np.unique(labels)) == 4
    # the middle disk's area scales with the grid (within 6 %)
    area_canonical = (maps[0] > 0.5).sum() / 3
    middle = labels[shape[0] // 2, shape[1] // 2]
    assert (labels == middle).sum() == pytest.approx(area_canonical * (period / 64) ** 2, rel=0.06)


def test_network_input_modality_channel():
    rgb = np.full((4, 5, 3), 100, np.uint8)
    stats = np.array([[0, 200]] * 3, np.float32)
    x = network_input(rgb, stats, in_channels=4)
    assert x.shape == (4, 4, 5) and np.allclose(x[:3], 0.5) and (x[3] == 0).all()
    assert x.transpose(1, 2, 0).flags["C_CONTIGUOUS"]  # channels-last memory, no copy


def test_scale_search_finds_the_fibers_and_its_maps_are_reused(real_data, monkeypatch):
    from histo.segment import net as _net
    from histo.segment.imagesource import image_source
    from histo.segment.segmenter import load_segmenter, segment_image
    from histo.segment.tissue import tissue_mask

    img = tifffile.imread(real_data / "he" / "cn_img02.tif")
    ref = median_diameter_px(np.asarray(Image.open(real_data / "he" / "cn_img02_labels.png")).astype(np.int32))
    calls = []
    real_predict = _net.predict_maps
    monkeypatch.setattr(_net, "predict_maps", lambda *a, **k: calls.append(a[1].shape) or real_predict(*a, **k))
    net, config = load_segmenter(None)
    src, _ = image_source(img, None)
    stats = inference.image_stats(src, config.percentiles)
    cache = inference.MapsCache()
    mask, _ = tissue_mask(img)
    d, factor = inference.estimate_scale(net, config, src, stats, next(net.parameters()).device, cache=cache,
                                         tissue_mask=mask)
    assert d == pytest.approx(ref, rel=0.12)
    n_search = len(calls)
    # cheap: small crops (several places in the tissue when one crop does not cover the image)
    searched_px = sum(c[1] * c[2] for c in calls)
    assert n_search <= inference.ESTIMATE_PATCHES * len(inference.COARSE_DIAMETERS_PX) + 2
    assert searched_px < 0.5e6
    labels = segment_image(img)  # the whole image fits the last search crop: no extra network run
    assert len(calls) == 2 * n_search and labels.max() > 30
