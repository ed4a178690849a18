"""Nuclei: detection, the MyoQuant central rule, per-fiber counts, DAPI and real H&E."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from histo.errors import HistoInputError
from histo.score.nuclei import border_ratio, central_nuclei, count_nuclei, detect_nuclei
from histo.score.settings import ScoringSettings


def disk_mask(shape, cy, cx, r):
    yy, xx = np.indices(shape)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2


def test_detect_nuclei_threshold_size_and_centroids():
    img = np.zeros((40, 40))
    img[5:10, 5:10] = 1.0          # 25 px nucleus
    img[20:22, 20:22] = 1.0        # 4 px speck
    img[30:34, 25:31] = 0.6        # dimmer nucleus
    cents, thr = detect_nuclei(img, min_area_px=9, smooth_px=0)
    assert cents.tolist() == [[7.0, 7.0], [31.5, 27.5]]
    assert 0 < thr < 0.6
    cents, thr = detect_nuclei(img, min_area_px=9, threshold=0.8, smooth_px=0)
    assert cents.tolist() == [[7.0, 7.0]] and thr == 0.8
    assert detect_nuclei(np.zeros((10, 10)), min_area_px=1)[0].shape == (0, 2)
    with pytest.raises(HistoInputError):
        detect_nuclei(np.zeros((3, 4, 5)), min_area_px=1)


def test_border_ratio_on_a_disk():
    labels = disk_mask((61, 61), 30, 30, 20).astype(np.int32)
    fib = np.array([1, 1, 1, 1])
    cent = np.tile([30.0, 30.0], (4, 1))
    nuc = np.array([[30.0, 30.0], [30.0, 40.0], [15.0, 30.0], [30 + 12.0, 30 + 12.0]])
    r = border_ratio(labels, fib, cent, nuc)
    assert r[0] == 0.0
    assert r[1] == pytest.approx(10 / 20.5, abs=0.03)
    assert r[2] == pytest.approx(15 / 20.5, abs=0.03)
    assert r[3] == pytest.approx(np.hypot(12, 12) / 20.5, abs=0.03)


def test_count_nuclei_central_peripheral_and_outside():
    labels = np.zeros((60, 120), np.int32)
    labels[disk_mask(labels.shape, 30, 30, 25)] = 1
    labels[disk_mask(labels.shape, 30, 90, 25)] = 2
    fibers = pd.DataFrame({"label": [1, 2], "counted": [True, True]})
    nuclei = np.array([
        [30, 31],      # fiber 1, central
        [30, 52],      # fiber 1, just inside the border: peripheral (ratio ~0.85)
        [8, 30],       # fiber 1, peripheral
        [30, 95],      # fiber 2, central
        [30, 60],      # in the gap between the fibers: no fiber
    ], dtype=float)
    table, host, ratio = count_nuclei(fibers, labels, nuclei, central_ratio=0.75)
    assert table["n_nuclei"].tolist() == [3, 1]
    assert table["n_central_nuclei"].tolist() == [1, 1]
    assert table["is_centrally_nucleated"].tolist() == [True, True]
    assert host.tolist() == [1, 1, 1, 2, 0]
    assert np.isnan(ratio[4]) and ratio[1] > 0.75
    table, _, _ = count_nuclei(fibers, labels, nuclei, central_ratio=0.02)
    assert table["n_central_nuclei"].tolist() == [0, 0]


def test_dapi_channel_on_a_synthetic_if_image():
    labels = np.zeros((80, 160), np.int32)
    labels[disk_mask(labels.shape, 40, 40, 30)] = 1
    labels[disk_mask(labels.shape, 40, 120, 30)] = 2
    image = np.full((2, 80, 160), 50, np.uint16)                 # 0: DAPI, 1: membrane
    image[0][disk_mask(labels.shape, 42, 38, 3)] = 2000          # central nucleus in fiber 1
    image[0][disk_mask(labels.shape, 40, 147, 3)] = 2000         # peripheral nucleus in fiber 2
    fibers = pd.DataFrame({"label": [1, 2], "counted": [True, True],
                           "min_feret_px": [60.0, 60.0]})
    settings = ScoringSettings(nuclei={"channel": 0})
    table, info = central_nuclei(fibers, labels, image, settings, stain="if")
    assert table["n_nuclei"].tolist() == [1, 1]
    assert table["is_centrally_nucleated"].tolist() == [True, False]
    assert info["pct_centrally_nucleated"] == 50.0 and info["method"] == "channel 0 (DAPI)"

    table, info = central_nuclei(fibers, labels, image, ScoringSettings(), stain="if")
    assert table["n_nuclei"].isna().all() and "nuclei.channel" in info["reason"]
    with pytest.raises(HistoInputError, match="nuclear channel 5"):
        central_nuclei(fibers, labels, image, ScoringSettings(nuclei={"channel": 5}), stain="if")


def test_real_he_regenerating_mouse_muscle(real_data):
    from skimage.color import rgb2hed

    rgb = tifffile.imread(real_data / "he" / "cn_img01.tif")
    labels = np.array(Image.open(real_data / "he" / "cn_img01_labels.png")).astype(np.int64)
    ids = np.unique(labels)[1:]
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fibers = pd.DataFrame({"label": ids, "counted": ~np.isin(ids, border)})
    table, info = central_nuclei(fibers, labels, rgb, ScoringSettings(), stain="he")
    # young regenerating muscle: most fibers carry a central nucleus
    assert 50 <= info["pct_centrally_nucleated"] <= 90
    assert info["n_counted"] == 46
    # independent check of the nucleus detection with skimage's H&E deconvolution
    cents, _ = detect_nuclei(rgb2hed(rgb)[..., 0], min_area_px=info["min_nucleus_area_px"],
                             region=labels > 0)
    assert abs(len(cents) - info["n_nuclei_detected"]) <= 0.15 * len(cents)
