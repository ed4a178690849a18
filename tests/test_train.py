"""Training: targets, data pairs, membrane rendering, a tiny run with checkpoint and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from histo.errors import HistoInputError
from histo.net import load_model
from histo.train import (
    TrainSettings,
    find_pairs,
    fiber_targets,
    median_diameter_px,
    render_membrane,
    train,
)


def _grid_labels(n=4, size=16, gap=2):
    side = n * (size + gap) + gap
    lab = np.zeros((side, side), np.int32)
    k = 1
    for i in range(n):
        for j in range(n):
            y, x = gap + i * (size + gap), gap + j * (size + gap)
            lab[y:y + size, x:x + size] = k
            k += 1
    return lab


def test_targets_touching_fibers():
    lab = np.zeros((10, 20), np.int32)
    lab[2:9, 2:9], lab[2:9, 9:16] = 1, 2  # touching squares
    fg, bd, dist = fiber_targets(lab)
    assert fg.sum() == 98
    # the shared border is boundary on both sides
    assert bd[5, 8] == 1 and bd[5, 9] == 1 and bd[5, 5] == 0
    # normalised distance peaks at 1 once per fiber, 0 outside
    assert dist[5, 5] == 1 and dist[5, 12] == 1 and dist[0].max() == 0
    assert 0 < dist[5, 8] < 0.5


def test_median_diameter_ignores_edge_fibers():
    lab = _grid_labels(n=4, size=16, gap=2)
    lab[lab == 1] = 0
    lab[0:3, 0:30] = 99  # a big edge object
    assert median_diameter_px(lab) == pytest.approx(np.sqrt(4 * 256 / np.pi))


def test_find_pairs(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8, 3), np.uint8))
    tifffile.imwrite(tmp_path / "a_labels.tif", np.zeros((8, 8), np.uint16))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((8, 8, 3), np.uint8))  # no labels: skipped
    assert [p[0].name for p in find_pairs(tmp_path)] == ["a.tif"]
    with pytest.raises(HistoInputError):
        find_pairs(tmp_path / "missing")


def test_render_membrane_bright_at_borders():
    lab = _grid_labels(n=5, size=24, gap=0)
    img = render_membrane(lab, np.random.default_rng(1))
    assert img.shape == lab.shape and img.dtype == np.float32
    from skimage.segmentation import find_boundaries

    border = find_boundaries(lab, mode="thick")
    assert img[border].mean() > img[~border].mean() + 0.2


def test_tiny_training_run_checkpoint_and_resume(tmp_path):
    lab = _grid_labels(n=6, size=20, gap=3)
    img = np.where(lab[..., None] > 0, [200, 80, 140], [245, 235, 240]).astype(np.uint8)
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "x.tif", img)
    tifffile.imwrite(data / "x_labels.tif", lab.astype(np.uint16))
    settings = TrainSettings(name="tiny", steps=6, batch_size=2, crop_px=64, channels=(8, 16),
                             real_scales=2, checkpoint_every=3, synth_pool=0)
    seen = []
    path = train(settings, tmp_path / "tiny", data_dirs=[data], use_synth=False,
                 progress=lambda *a: seen.append(a[0]))
    net, cfg = load_model(tmp_path / "tiny", device="cpu")
    assert path.exists() and cfg.name == "tiny" and cfg.extra["step"] == 6
    assert cfg.extra["data"]["real"] and not cfg.extra["data"]["synthetic"]
    ckpt_meta = json.loads((tmp_path / "tiny.ckpt.json").read_text())
    assert ckpt_meta["extra"]["step"] == 6
    # resume continues from the checkpoint up to the new step count
    longer = TrainSettings(**{**settings.__dict__, "steps": 9})
    train(longer, tmp_path / "tiny", data_dirs=[data], use_synth=False, resume=True)
    _, cfg2 = load_model(tmp_path / "tiny", device="cpu")
    assert cfg2.extra["step"] == 9


def test_no_data_is_an_error(tmp_path):
    with pytest.raises(HistoInputError, match="no training data"):
        train(TrainSettings(steps=1), tmp_path / "m", use_synth=False)
