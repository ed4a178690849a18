"""Partial annotations (histo.train.partial): rasterisation, targets, samples, the loss, the files, training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from histo.train.loop import TrainSettings, loss_fn, train  # noqa: E402
from histo.train.partial import (  # noqa: E402
    annotation_summary,
    partial_targets,
    prepare_partial,
    read_features,
    read_image,
    read_partial,
)
from histo.train.trainset import make_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ANN = ROOT / "data" / "real" / "annotations"
IMAGES = {
    "regen_section": ROOT / "data/real/he/regen_section.jpg",
    "cn_img01": ROOT / "data/real/he/cn_img01.tif",
    "cn_img02": ROOT / "data/real/he/cn_img02.tif",
    "fs_psr_patch": ROOT / "data/real/psr/fs_psr_patch.tif",
    "fs_psr_crop": ROOT / "data/real/psr/fs_psr_crop.tif",
}
SHAPES = {"regen_section": (3905, 3209), "cn_img01": (1002, 1002), "cn_img02": (1002, 1002),
          "fs_psr_patch": (499, 499), "fs_psr_crop": (692, 788)}


def _feature(ring, cls, split="train"):
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"classification": {"name": cls}, "split": split}}


def _write(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_read_partial_square_known_answer(tmp_path):
    # pixel-corner frame: the square (2,2)-(5,5) covers pixels 2..4 in x and y; (6,1)-(8,3) no_fiber
    p = _write(tmp_path / "a.geojson", [
        _feature([[2, 2], [5, 2], [5, 5], [2, 5], [2, 2]], "fiber"),
        _feature([[6, 1], [8, 1], [8, 3], [6, 3], [6, 1]], "no_fiber"),
        _feature([[0, 6], [3, 6], [3, 8], [0, 8], [0, 6]], "fiber", "eval"),
    ])
    lab, known = read_partial(p, (8, 9))
    expect = np.zeros((8, 9), np.int32)
    expect[2:5, 2:5] = 1
    np.testing.assert_array_equal(lab, expect)
    k = expect > 0
    k[1:3, 6:8] = True
    np.testing.assert_array_equal(known, k)
    assert lab.dtype == np.int32 and known.dtype == bool
    lab_e, known_e = read_partial(p, (8, 9), split="eval")
    assert lab_e.max() == 1 and int(known_e.sum()) == 6 and bool(lab_e[6:8, 0:3].all())


def test_bad_class_is_an_error(tmp_path):
    from histo.errors import HistoInputError

    p = _write(tmp_path / "b.geojson", [_feature([[0, 0], [2, 0], [2, 2], [0, 0]], "muscle")])
    with pytest.raises(HistoInputError):
        read_partial(p, (4, 4))


def test_partial_targets_weight_zero_outside_polygons():
    lab = np.zeros((20, 20), np.int32)
    lab[3:9, 3:9] = 1
    lab[12:15, 12:15] = 2  # small: weighted up
    known = lab > 0
    known[0:2, 10:20] = True  # a no_fiber strip
    t = partial_targets(lab, known, 3.0, outside_ring_px=0)
    assert t.shape == (4, 20, 20) and t.dtype == np.float16
    w = t[3].astype(np.float32)
    np.testing.assert_array_equal(w > 0, known)
    assert float(w[0, 15]) == 1.0 and float(t[0, 0, 15]) == 0.0  # known background
    assert float(w[13, 13]) > 1.0  # the small fiber counts more
    # the boundary channel is the fibers' inner edge: inside the polygon, so known
    assert (w[t[1] > 0] > 0).all() and (lab[t[1] > 0] > 0).all()
    # with a ring, one pixel around each fiber is known background
    t1 = partial_targets(lab, known, 3.0, outside_ring_px=1)
    assert float(t1[3, 2, 5]) == 1.0 and float(t1[0, 2, 5]) == 0.0 and float(t1[3, 5, 0]) == 0.0


def test_loss_ignores_unknown_pixels_exactly():
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(2, 4, 16, 16)
    target[:, 0, 4:10, 4:10] = 1
    target[:, 2, 4:10, 4:10] = 0.5
    target[:, 1, 4, 4:10] = 1
    target[:, 3, :12, :12] = 1.0  # known; the rest is ignored
    logits = torch.randn(2, 3, 16, 16, generator=g)
    other = logits.clone()
    other[..., 12:, :] = torch.randn(2, 3, 4, 16, generator=g) * 10
    other[..., :, 12:] = -7.0
    assert torch.equal(loss_fn(logits, target), loss_fn(other, target))
    # known answer: all-zero logits, all weights 0 -> loss exactly 0; all weights 1 -> the plain BCE
    zero_w = target.clone()
    zero_w[:, 3] = 0
    assert float(loss_fn(torch.zeros(2, 3, 16, 16), zero_w)) == 0.0
    one_w = target.clone()
    one_w[:, 3] = 1
    ln2 = float(np.log(2.0))
    w_bd = float((1 + 2 * target[:, 1]).mean())
    assert float(loss_fn(torch.zeros(2, 3, 16, 16), one_w)) == pytest.approx(ln2 + ln2 * w_bd + 2 * ln2, rel=1e-6)


@pytest.mark.parametrize("stem", sorted(SHAPES))
def test_annotation_files_parse_and_are_valid(stem):
    shapely = pytest.importorskip("shapely.geometry")
    path = ANN / f"{stem}.geojson"
    feats = read_features(path)
    assert feats
    h, w = SHAPES[stem]
    img = read_image(IMAGES[stem])
    assert img.shape[:2] == (h, w)
    for f in feats:
        ring = f["rings_xy"][0]
        poly = shapely.Polygon(ring)
        assert poly.is_valid and poly.area > 20, (stem, ring[:3])
        assert ring[:, 0].min() >= 0 and ring[:, 1].min() >= 0
        assert ring[:, 0].max() <= w and ring[:, 1].max() <= h
    summary = annotation_summary(path)
    classes = {k.split("/")[0] for k in summary}
    assert classes == {"fiber", "no_fiber"}
    splits = {k.split("/")[1] for k in summary}
    assert splits == ({"eval"} if stem == "cn_img02" else {"train", "eval"} if stem == "regen_section" else {"train"})


def test_prepare_partial_on_a_real_annotation():
    settings = TrainSettings(crop_px=96, partial_scales=2, small_weight_max=3.0)
    samples = prepare_partial(IMAGES["fs_psr_patch"], ANN / "fs_psr_patch.geojson", settings)
    assert samples and all(s.kind == "partial" and s.labels is None for s in samples)
    for s in samples:
        assert s.targets.shape == (4,) + s.image.shape[:2] and s.image.dtype == np.uint8
        w = s.targets[3].astype(np.float32)
        assert (w > 0).any() and (w == 0).any()
        assert set(np.unique(s.targets[0])) <= {0.0, 1.0}
    # the fiber size of the annotation is brought into the training range
    fg = sum(float(s.targets[0].sum()) for s in samples)
    assert fg > 0
    x, y = make_batch(samples[:2], np.random.default_rng(0), 96, 4)
    assert x.shape == (2, 4, 96, 96) and y.shape == (2, 4, 96, 96)
    assert (y[:, 3] > 0).any(dim=(1, 2)).all()  # crops centred on annotated pixels


def test_make_batch_mixes_weighted_and_unweighted_targets():
    from histo.train.trainset import Sample

    img = np.full((40, 40, 3), 128, np.uint8)
    a = Sample(img, np.zeros((3, 40, 40), np.float16), "real")
    t = np.zeros((4, 40, 40), np.float16)
    t[3, 10:20, 10:20] = 1
    b = Sample(img, t, "partial")
    _, y = make_batch([a, b], np.random.default_rng(1), 32)
    assert y.shape == (2, 4, 32, 32) and float(y[0, 3].min()) == 1.0
    assert float(y[1, 3].sum()) > 0


def test_tiny_training_run_on_a_partial_annotation_only(tmp_path):
    settings = TrainSettings(name="tiny-partial", steps=3, batch_size=2, crop_px=64, channels=(8, 16),
                             partial=((str(IMAGES["fs_psr_patch"]), str(ANN / "fs_psr_patch.geojson")),),
                             partial_scales=1, checkpoint_every=100, bf16=False)
    out = train(settings, tmp_path / "m", use_synth=False, device="cpu")
    assert out.exists()
    meta = json.loads(out.with_suffix(".json").read_text())
    extra = meta.get("extra", meta)
    assert extra["data"]["partial"] == [[str(IMAGES["fs_psr_patch"]), str(ANN / "fs_psr_patch.geojson")]]
    assert extra["settings"]["partial"][0][1].endswith("fs_psr_patch.geojson")
