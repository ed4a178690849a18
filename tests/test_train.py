"""Training: targets, data pairs, membrane rendering, a tiny run with checkpoint and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from histo.errors import HistoInputError
from histo.segment.net import load_model
from histo.train.loop import TrainSettings, find_pairs, render_membrane, train
from histo.train.trainset import make_batch, membrane_sample, synth_sample


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


def test_find_pairs(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8, 3), np.uint8))
    tifffile.imwrite(tmp_path / "a_labels.tif", np.zeros((8, 8), np.uint16))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((8, 8, 3), np.uint8))  # no labels: skipped
    assert [p[0].name for p in find_pairs(tmp_path)] == ["a.tif"]
    with pytest.raises(HistoInputError):
        find_pairs(tmp_path / "missing")


def test_batches_carry_the_modality_channel():
    rng = np.random.default_rng(0)
    settings = TrainSettings(stains=("he", "if"), synth_shape_px=96, diameter_range_px=(20.0, 24.0))
    he = synth_sample(np.random.default_rng(1), TrainSettings(**{**settings.__dict__, "stains": ("he",)}))
    fl = synth_sample(np.random.default_rng(1), TrainSettings(**{**settings.__dict__, "stains": ("if",)}))
    assert he.image.ndim == 3 and fl.image.ndim == 2
    x, y = make_batch([he, fl], rng, 64, in_channels=4)
    assert x.shape == (2, 4, 64, 64) and y.shape == (2, 4, 64, 64)  # targets + size weights
    assert float(x[0, 3].abs().max()) == 0.0 and float(x[1, 3].min()) == 1.0
    assert np.allclose(x[1, 0], x[1, 1]) and np.allclose(x[1, 0], x[1, 2])  # one plane, three copies
    assert make_batch([he], rng, 64)[0].shape == (1, 3, 64, 64)


def test_membrane_samples_follow_the_membrane_convention():
    lab = _grid_labels(n=4, size=24, gap=3)
    s = membrane_sample(lab, np.random.default_rng(2), TrainSettings(membrane_gap_frac=0.15))
    fg = s.targets[0] > 0
    assert fg.sum() > (lab > 0).sum()  # the gaps between neighbours are split between them
    assert fg[lab > 0].all()


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
