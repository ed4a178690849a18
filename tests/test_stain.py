"""Tests of histo.io.stain: optical density, H&E deconvolution, darkness signal, stain guess."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from histo.errors import HistoInputError
from histo.io.stain import (
    EOSIN_OD,
    HEMATOXYLIN_OD,
    STAINS,
    darkness_signal,
    deconvolve_he,
    estimate_background,
    guess_stain,
    he_cytoplasm,
    image_layout,
    optical_density,
)

RNG = np.random.default_rng(5)
H_UNIT = HEMATOXYLIN_OD / np.linalg.norm(HEMATOXYLIN_OD)
E_UNIT = EOSIN_OD / np.linalg.norm(EOSIN_OD)


def _mix(h: np.ndarray, e: np.ndarray, i0: float = 255.0) -> np.ndarray:
    """RGB float image with the given hematoxylin and eosin OD amounts (Beer-Lambert)."""
    od = h[..., None] * H_UNIT + e[..., None] * E_UNIT
    return i0 * 10.0 ** -od


def _field(colour, shape=(64, 64), noise=4.0, dtype=np.uint8, glass=None) -> np.ndarray:
    """An image of a flat colour with noise, optionally with a band of glass."""
    img = np.asarray(colour, float) + RNG.normal(0, noise, size=shape + (len(colour),))
    if glass is not None:
        img[:, : shape[1] // 5] = glass
    return np.clip(img, 0, np.iinfo(dtype).max).astype(dtype)


# ------------------------------------------------------------------ optical density
def test_optical_density_values():
    rgb = np.array([[[255, 25, 128]]], np.uint8)
    od = optical_density(rgb, background=255)
    np.testing.assert_allclose(od[0, 0], -np.log10([1.0, 25 / 255, 128 / 255]), rtol=1e-6)
    assert od.dtype == np.float32 and od.shape == rgb.shape


def test_optical_density_background_forms():
    rgb = np.full((10, 10, 3), 100, np.uint8)
    rgb[:3] = (230, 240, 250)
    per_channel = optical_density(rgb, background=(230, 240, 250))
    assert np.allclose(per_channel[:3], 0)
    mask = np.zeros((10, 10), bool)
    mask[:3] = True
    np.testing.assert_allclose(optical_density(rgb, background=mask), per_channel)
    np.testing.assert_allclose(optical_density(rgb), per_channel)  # auto: glass found
    assert (optical_density(rgb, background=200)[:3] == 0).all()  # brighter than I0 clips


def test_estimate_background_glass_or_full_scale():
    with_glass = _field((180, 120, 170), glass=(235, 238, 240))
    np.testing.assert_allclose(estimate_background(with_glass), (235, 238, 240), atol=3)
    no_glass = _field((180, 120, 170))
    assert estimate_background(no_glass).tolist() == [255.0, 255.0, 255.0]
    grey16 = np.full((20, 20), 30000, np.uint16)
    assert estimate_background(grey16).tolist() == [65535.0]
    assert estimate_background(np.full((4, 4), 0.2)).tolist() == [1.0]


def test_optical_density_zero_intensity_is_finite():
    od = optical_density(np.zeros((2, 2, 3), np.uint8), background=255)
    assert np.isfinite(od).all() and od.max() == pytest.approx(np.log10(510), rel=1e-5)


@pytest.mark.parametrize("kw, match", [
    ({"background": np.zeros((3, 3), bool)}, "shape"),
    ({"background": np.zeros((4, 4), bool)}, "empty"),
    ({"background": 0}, "positive"),
])
def test_optical_density_bad_background(kw, match):
    with pytest.raises(HistoInputError, match=match):
        optical_density(np.full((4, 4, 3), 100, np.uint8), **kw)


def test_optical_density_rejects_nan():
    with pytest.raises(HistoInputError, match="NaN"):
        optical_density(np.full((3, 3, 3), np.nan))


# ------------------------------------------------------------------ deconvolution
def test_deconvolve_recovers_known_amounts():
    h = RNG.uniform(0, 1.2, size=(20, 30))
    e = RNG.uniform(0, 1.0, size=(20, 30))
    hh, ee, rr = deconvolve_he(_mix(h, e), background=255)
    np.testing.assert_allclose(hh, h, atol=1e-4)
    np.testing.assert_allclose(ee, e, atol=1e-4)
    np.testing.assert_allclose(rr, 0, atol=1e-4)
    assert hh.dtype == np.float32 and hh.shape == (20, 30)


def test_deconvolve_pure_stains_and_rgba():
    pure_e = _mix(np.zeros((4, 4)), np.full((4, 4), 0.7))
    h, e, _ = deconvolve_he(pure_e, background=255)
    assert abs(h).max() < 1e-4 and e.mean() == pytest.approx(0.7, abs=1e-4)
    rgba = np.concatenate([np.round(pure_e).astype(np.uint8),
                           np.full((4, 4, 1), 255, np.uint8)], axis=-1)
    h2, e2, _ = deconvolve_he(rgba, background=255)
    assert e2.mean() == pytest.approx(0.7, abs=0.01)


def test_deconvolve_needs_rgb():
    with pytest.raises(HistoInputError, match="RGB"):
        deconvolve_he(np.zeros((10, 10), np.uint8))


def test_hematoxylin_agrees_with_skimage_on_real_he(real_data):
    tifffile = pytest.importorskip("tifffile")
    from skimage.color import rgb2hed

    rgb = tifffile.imread(real_data / "he" / "cn_img01.tif")[::4, ::4]
    h = deconvolve_he(rgb, background=255)[0]
    ref = rgb2hed(rgb)[..., 0]
    assert np.corrcoef(h.ravel(), ref.ravel())[0, 1] > 0.95


# ------------------------------------------------------------------ darkness signal
def test_darkness_signal_he_is_cytoplasm_with_nuclei_masked():
    """Issue 11: H&E darkness is the cytoplasmic H+E optical density, nuclei left out."""
    h = np.full((20, 20), 0.02)
    e = np.full((20, 20), 0.3)
    h[4:9, 4:9] = 0.9                       # a nucleus
    h[12:18, 12:18] = 0.12                  # basophilic cytoplasm: not a nucleus
    rgb = _mix(h, e).astype(np.float32) / 255.0
    sig = darkness_signal(rgb, "he")
    assert sig.shape == (20, 20) and sig.dtype == np.float32
    assert np.isnan(sig[6, 6]) and np.isnan(sig[3, 6])      # nucleus, grown by one pixel
    assert sig[0, 19] == pytest.approx(0.32, abs=0.01)
    assert sig[15, 15] == pytest.approx(0.42, abs=0.01)
    total, hema = he_cytoplasm(rgb, background=1.0)
    np.testing.assert_allclose(total, sig, rtol=1e-5)
    assert hema[15, 15] == pytest.approx(0.12, abs=0.01) and np.isnan(hema[6, 6])


@pytest.mark.parametrize("stain", ["nadh", "sdh", "atpase", "esterase", "psr"])
def test_darkness_signal_brightfield_is_total_od(stain):
    rgb = _field((120, 90, 160))
    np.testing.assert_allclose(darkness_signal(rgb, stain), optical_density(rgb).sum(-1),
                               rtol=1e-5)


def test_darkness_signal_grey_brightfield():
    grey = np.full((8, 8), 100, np.uint8)
    np.testing.assert_allclose(darkness_signal(grey, "atpase"), -np.log10(100 / 255), rtol=1e-5)
    np.testing.assert_allclose(darkness_signal(grey, "he"), -np.log10(100 / 255), rtol=1e-5)


def test_darkness_signal_fluorescence():
    img = np.zeros((3, 20, 20), np.uint16)
    img[1] = RNG.integers(100, 4000, size=(20, 20))
    sig = darkness_signal(img, "if", channel=1)
    assert sig.shape == (20, 20)
    assert np.percentile(sig, 99.5) == pytest.approx(1.0, rel=1e-3)
    assert (sig > 0).all()
    single = darkness_signal(img[1], "if")
    np.testing.assert_allclose(single, sig)
    blank = darkness_signal(np.zeros((1, 5, 5), np.uint16), "if")
    assert (blank == 0).all()
    rgb = _field((10, 200, 30))
    assert 0.9 < darkness_signal(rgb, "if", channel=1).mean() < 1.0  # mean / 99.5th pct


def test_darkness_signal_errors():
    img = np.zeros((4, 20, 20), np.uint16)
    with pytest.raises(HistoInputError, match="channel=0..3"):
        darkness_signal(img, "if")
    with pytest.raises(HistoInputError, match="out of range"):
        darkness_signal(img, "if", channel=4)
    with pytest.raises(HistoInputError, match="unknown stain"):
        darkness_signal(np.zeros((5, 5, 3), np.uint8), "trichrome")


def test_darkness_signal_auto_and_imagedata():
    rgb = _field((200, 110, 180), glass=(240, 240, 240))  # pink
    np.testing.assert_allclose(darkness_signal(rgb, "auto"), darkness_signal(rgb, "he"))
    data = SimpleNamespace(pixels=np.zeros((2, 9, 9), np.uint16), axes="CYX")
    assert darkness_signal(data, "if", channel=0).shape == (9, 9)


# ------------------------------------------------------------------ guess
@pytest.mark.parametrize("path, want", [
    ("he/cn_img01.tif", "he"),
    ("he/cn_img02.tif", "he"),
    ("he/fs_he_patch.tif", "he"),
    ("he/regen_section.jpg", "he"),
    ("psr/fs_psr_patch.tif", "psr"),
    ("psr/fs_psr_crop.tif", "psr"),
    ("if/fs_rat.tif", "if"),
])
def test_guess_stain_real_images(real_data, path, want):
    tifffile = pytest.importorskip("tifffile")
    from PIL import Image

    f = real_data / path
    pixels = np.asarray(Image.open(f)) if f.suffix == ".jpg" else tifffile.imread(f)
    assert guess_stain(pixels) == want


def test_guess_stain_single_channel_uint16_is_if(real_data):
    tifffile = pytest.importorskip("tifffile")
    membrane = tifffile.imread(real_data / "if" / "fs_rat.tif")[3]
    assert guess_stain(membrane) == "if"


@pytest.mark.parametrize("colour, want", [
    ((70, 60, 150), "nadh"),  # blue-purple formazan
    ((150, 150, 145), "atpase"),  # grey
    ((150, 95, 60), "esterase"),  # red-brown
    ((215, 190, 90), "psr"),  # yellow
    ((205, 120, 185), "he"),  # pink
])
def test_guess_stain_colours(colour, want):
    assert guess_stain(_field(colour, glass=(238, 238, 236))) == want


def test_guess_stain_dark_images_are_fluorescence():
    dark = _field((10, 40, 15), noise=3)
    assert guess_stain(dark) == "if"
    assert guess_stain(np.full((30, 30), 12, np.uint8)) == "if"
    assert guess_stain(np.full((30, 30), 200, np.uint8)) == "atpase"
    assert guess_stain(np.zeros((5, 30, 30), np.uint8)) == "if"
    assert guess_stain(np.full((3, 30, 30), 200, np.uint8)) == "if"  # channels first
    assert guess_stain(SimpleNamespace(pixels=np.zeros((2, 9, 9)), axes="CYX")) == "if"


def test_guess_stain_returns_known_names():
    for _ in range(5):
        assert guess_stain(RNG.integers(0, 256, size=(40, 40, 3)).astype(np.uint8)) in STAINS


def test_image_layout():
    assert image_layout(np.zeros((50, 60)))[1] == "YX"
    arr, axes = image_layout(np.zeros((50, 60, 4), np.uint8))
    assert axes == "YXS" and arr.shape == (50, 60, 3)
    assert image_layout(np.zeros((3, 50, 60)))[1] == "CYX"
    arr, axes = image_layout(np.zeros((50, 60, 2)))
    assert axes == "CYX" and arr.shape == (2, 50, 60)
    with pytest.raises(HistoInputError, match="not an image"):
        image_layout(np.zeros((2, 3, 4, 5)))


@pytest.mark.parametrize("module", ["histo.io.stain"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_he_cytoplasm_keeps_a_whole_deeply_basophilic_fiber():
    """Nuclei are small blobs: a blob far larger than the typical nucleus is not masked."""
    h = np.full((60, 60), 0.02)
    e = np.full((60, 60), 0.3)
    for y, x in ((5, 5), (5, 50), (50, 5), (50, 50), (28, 5)):
        h[y:y + 4, x:x + 4] = 0.9            # nuclei
    h[20:45, 20:45] = 0.6                     # a deeply basophilic fiber (H > 1.5 E)
    total, _ = he_cytoplasm(_mix(h, e), background=255)
    assert np.isnan(total[6, 6]) and np.isnan(total[51, 51])
    assert np.isfinite(total[20:45, 20:45]).all()
    assert total[30, 30] == pytest.approx(0.9, abs=0.02)
