"""Tests of histo.segment.interior: the per-stain fiber-interior maps of the classical baseline."""

from __future__ import annotations

import numpy as np
import pytest

from histo.errors import HistoInputError
from histo.segment import classical
from histo.segment.interior import interior_map


def _two_tone(inside, outside, shape=(40, 40)):
    """A square 'fiber' (rows/cols 10..29) in a different colour than its surround."""
    img = np.empty(shape + (len(inside),), np.uint8)
    img[:] = outside
    img[10:30, 10:30] = inside
    return img


def test_he_chroma_is_high_on_pink_fibers_and_low_on_white_endomysium():
    f = interior_map(_two_tone((225, 120, 170), (245, 240, 244)), stain="he")
    assert f.dtype == np.float32 and f.shape == (40, 40)
    assert f[20, 20] == 1.0 and f[0, 0] == 0.0


def test_enzyme_stains_use_optical_density_and_psr_inverts_it_on_tissue_only():
    dark_fibers = _two_tone((90, 60, 120), (230, 225, 235))
    assert interior_map(dark_fibers, stain="nadh")[20, 20] == 1.0
    assert interior_map(dark_fibers, stain="nadh")[0, 0] == 0.0
    grey = dark_fibers[..., 0]
    assert interior_map(grey, stain="atpase")[20, 20] == 1.0          # (Y, X): grey OD
    # PSR: four pale yellow fibers in red collagen (left), empty white glass (right)
    psr = np.full((60, 90, 3), 250, np.uint8)
    psr[:, :60] = (200, 30, 40)
    for y in (2, 32):
        for x in (2, 32):
            psr[y:y + 26, x:x + 26] = (235, 225, 150)
    f = interior_map(psr, stain="psr")
    assert f[15, 15] > 0.5 and f[45, 45] > 0.5 and f[30, 15] < 0.1   # fibers vs collagen
    assert (f[:, 60:] == 0).all()                                       # off the tissue


def test_fluorescence_inverts_the_membrane_channel():
    cyx = np.zeros((2, 40, 40), np.uint16)
    cyx[1, ::10, :] = 4000                                             # membranes, channel 1
    cyx[0] = 3000                                                      # another channel
    f = interior_map(cyx, stain="if", channel=1)
    assert f[0, 5] == 0.0 and f[5, 5] == 1.0
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[::10, :, 2] = 255
    assert interior_map(rgb, stain="if")[0, 5] == 0.0                 # max over channels
    assert (interior_map(rgb, stain="if", channel=0) == 1.0).all()    # a blank channel: flat


def test_channels_first_rgb_and_rgba_are_read_as_rgb():
    rgb = _two_tone((225, 120, 170), (245, 240, 244))
    ref = interior_map(rgb, stain="he")
    assert np.array_equal(interior_map(np.moveaxis(rgb, -1, 0), stain="he"), ref)
    rgba = np.concatenate([rgb, np.full((40, 40, 1), 255, np.uint8)], axis=-1)
    assert np.array_equal(interior_map(rgba, stain="he"), ref)


@pytest.mark.parametrize("image, kwargs, match", [
    (np.zeros((3, 8, 8)), {"stain": "if"}, "needs channel="),
    (np.zeros((3, 8, 8)), {"stain": "if", "channel": 3}, "channel 3 out of range"),
    (np.zeros((8, 8)), {"stain": "trichrome"}, "unknown stain 'trichrome'"),
    (np.zeros((4, 8, 8)), {"stain": "sdh"}, "must be RGB or grey, got 4 channels"),
    (np.zeros((2, 2, 2, 2)), {"stain": "he"}, r"got shape \(2, 2, 2, 2\)"),
])
def test_bad_inputs_name_the_problem(image, kwargs, match):
    with pytest.raises(HistoInputError, match=match):
        interior_map(image, **kwargs)


def test_classical_still_exports_interior_map():
    assert classical.interior_map is interior_map
