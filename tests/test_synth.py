"""Tests of histo.synth: exact labels, planted fibers, stains, determinism, datasets."""

from __future__ import annotations

import time

import numpy as np
import pytest
from skimage.measure import label as cc_label
from skimage.measure import regionprops

from histo.errors import HistoInputError
from histo.synth import STAINS, SynthDataset, SynthStream, generate_section, make_dataset, ncl
from histo.synth.labelops import clean_labels, keep_largest_component, separate_touching
from histo.synth.powerdiagram import power_cells, relax


def assert_exact_labels(labels: np.ndarray, *, may_touch: bool = False) -> None:
    """Every label is one 4-connected component and (unless ``may_touch``) no two are 8-neighbours."""
    assert labels.dtype == np.uint32
    n = int(labels.max())
    present = np.unique(labels)
    assert present[0] == 0 and len(present) == n + 1, "labels must be numbered 1..n"
    per_label = [cc_label(labels == k, connectivity=1).max() for k in range(1, n + 1)] if may_touch else None
    if may_touch:
        assert max(per_label, default=1) == 1, "a label is split in several pieces"
        return
    cc = cc_label(labels, background=0, connectivity=1)
    assert int(cc.max()) == n, "a label is split in several pieces"
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = labels[: labels.shape[0] - dy, max(0, -dx) : labels.shape[1] - max(0, dx)]
        b = labels[dy:, max(0, dx) : labels.shape[1] + min(0, dx)]
        assert not np.any((a > 0) & (b > 0) & (a != b)), "two labels touch"


def min_ferets(labels: np.ndarray) -> dict[int, float]:
    """Minimum Feret diameter of every label not cut by the image border (calipers on the hull)."""
    from scipy import ndimage as ndi
    from scipy.spatial import ConvexHull

    h, w = labels.shape
    out = {}
    for i, sl in enumerate(ndi.find_objects(labels), 1):
        if sl is None or sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == h or sl[1].stop == w:
            continue
        ys, xs = np.nonzero(labels[sl] == i)
        pts = np.stack([ys, xs], 1).astype(float)
        corners = np.concatenate([pts + o for o in ([-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5])])
        hull = corners[ConvexHull(corners).vertices]
        e = np.roll(hull, -1, 0) - hull
        nrm = np.stack([-e[:, 1], e[:, 0]], 1) / np.linalg.norm(e, axis=1, keepdims=True)
        proj = hull @ nrm.T
        out[i] = float((proj.max(0) - proj.min(0)).min())
    return out


def test_min_feret_helper_on_a_square():
    a = np.zeros((20, 20), np.uint32)
    a[5:15, 3:13] = 1
    assert min_ferets(a)[1] == pytest.approx(10.0)


# ---------------------------------------------------------------- label operations


def test_separate_touching_leaves_a_gap():
    a = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 0, 0]], np.uint32)
    out = separate_touching(a)
    kept = out > 0
    assert (out[kept] == a[kept]).all()  # nothing relabelled
    assert (out[a == 1] == 1).all()  # the lowest label never loses a pixel
    # every removed pixel touched another label, and no two labels touch any more
    assert set(map(tuple, np.argwhere((a > 0) & ~kept))) <= {(0, 2), (1, 2), (2, 0), (2, 1)}
    padded = np.pad(out, 1)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        p, q = padded[1:-1, 1:-1], np.roll(np.roll(padded, -dy, 0), -dx, 1)[1:-1, 1:-1]
        assert not np.any((p > 0) & (q > 0) & (p != q))


def test_keep_largest_component_drops_small_piece():
    a = np.zeros((5, 9), np.uint32)
    a[0:3, 0:3] = 1
    a[4, 8] = 1
    a[0:2, 5:7] = 2
    out = keep_largest_component(a)
    assert out[4, 8] == 0 and (out[0:3, 0:3] == 1).all() and (out[0:2, 5:7] == 2).all()


def test_clean_labels_relabels_and_drops_slivers():
    a = np.zeros((10, 10), np.int32)
    a[1:5, 1:5] = 7
    a[8, 8] = 9
    out, mapping = clean_labels(a, min_area_px=3)
    assert out.max() == 1 and mapping[7] == 1 and mapping[9] == 0


def test_power_cells_tile_the_plane_and_relax_to_target_areas():
    rng = np.random.default_rng(0)
    bounds = (0.0, 0.0, 300.0, 300.0)
    sites = rng.uniform(0, 300, (80, 2))
    cells = power_cells(sites, np.zeros(80), bounds, spacing=30)
    # unweighted: the cells of sites well inside cover their share of the square
    assert np.all(cells.area > 0)
    target = rng.uniform(0.5, 2.0, 80)
    target *= 300 * 300 / target.sum()
    _, _, relaxed = relax(sites, target, bounds, spacing=30, iterations=15)
    inner = (relaxed.centroid > 40).all(1) & (relaxed.centroid < 260).all(1)
    ratio = relaxed.area[inner] / target[inner]
    assert np.median(np.abs(np.log(ratio / np.median(ratio)))) < 0.1
    assert 0.8 < np.median(ratio) < 1.5


# ---------------------------------------------------------------- generated sections


@pytest.mark.parametrize("stain", STAINS)
def test_every_stain_renders_with_exact_labels(stain):
    s = generate_section((192, 224), stain=stain, fiber_diameter_px=28, rng=3, geometry="packing")
    if stain == "if":
        assert s.image.dtype == np.uint16 and s.image.shape == (192, 224)
        assert s.image.max() <= 4095 and s.image.std() > 10
    else:
        assert s.image.dtype == np.uint8 and s.image.shape == (192, 224, 3)
        assert s.image.std() > 5
    assert s.labels.shape == (192, 224)
    assert_exact_labels(s.labels, may_touch=stain == "if")  # IF: neighbours meet mid-membrane
    assert s.stain == stain
    assert set(s.fiber_types) == set(range(1, int(s.labels.max()) + 1))
    assert set(s.fiber_types.values()) <= {"1", "2A", "2B"}


def test_fibers_are_darker_than_interstitium_in_brightfield_and_dimmer_in_if():
    for stain in ("he", "nadh", "psr"):
        s = generate_section((256, 256), stain=stain, fiber_diameter_px=32, rng=5, geometry="packing",
                             tissue_edge=False)
        img = s.image.astype(float)
        inter = (s.labels == 0) & s.tissue
        if stain == "psr":  # red collagen between yellow fibers
            red = img[..., 0] - img[..., 1]
            assert red[inter].mean() > red[s.labels > 0].mean() + 10
        else:
            grey = img.mean(-1)
            assert grey[s.labels > 0].mean() < grey[inter].mean(), stain
    s = generate_section((256, 256), stain="if", fiber_diameter_px=32, rng=5, geometry="packing")
    inner = s.labels > 0
    from scipy import ndimage as ndi

    core = ndi.binary_erosion(inner, iterations=4)
    ring = inner & ~ndi.binary_erosion(inner, iterations=1)
    assert s.image[core].mean() < s.image[ring].mean()


def test_planted_fibers_are_small_and_exist():
    """Planted fibers: min Feret mostly 0.3-0.6 of the mean of the normal fibers."""
    ratios = []
    for seed in range(4):
        s = generate_section((384, 384), stain="nadh", fiber_diameter_px=36, rng=100 + seed,
                             geometry="packing", planted_groups=4, tissue_edge=False, fascicles=False)
        assert len(s.planted) > 0
        assert set(s.planted.tolist()) <= set(range(1, int(s.labels.max()) + 1))
        mf = min_ferets(s.labels)
        planted = set(s.planted.tolist())
        normal = np.mean([v for k, v in mf.items() if k not in planted])
        ratios += [mf[p] / normal for p in planted if p in mf]
    ratios = np.array(ratios)
    assert len(ratios) >= 10
    assert 0.3 < np.median(ratios) < 0.6
    assert np.percentile(ratios, 5) > 0.12 and np.percentile(ratios, 95) < 0.8


def test_planted_fibers_are_dark_in_nadh_and_esterase():
    for stain in ("nadh", "esterase", "he"):
        s = generate_section((320, 320), stain=stain, fiber_diameter_px=36, rng=21, geometry="packing",
                             planted_groups=3, tissue_edge=False)
        grey = s.image.mean(-1)
        pl = np.isin(s.labels, s.planted)
        other = (s.labels > 0) & ~pl
        assert grey[pl].mean() < grey[other].mean() - 5, stain


def test_size_spread_matches_request():
    s = generate_section((512, 512), stain="he", fiber_diameter_px=30, rng=2, geometry="packing",
                         size_cv=0.3, planted_groups=0, fascicles=False, tissue_edge=False, gap_fraction=0)
    props = regionprops(s.labels.astype(np.int32))
    h, w = s.labels.shape
    inside = [p for p in props if p.bbox[0] > 0 and p.bbox[1] > 0 and p.bbox[2] < h and p.bbox[3] < w]
    d = np.array([p.equivalent_diameter_area for p in inside])
    assert 27 < d.mean() < 33
    assert 0.15 < d.std() / d.mean() < 0.4


def test_tissue_edge_leaves_empty_glass():
    for stain in ("he", "if"):
        s = generate_section((256, 256), stain=stain, fiber_diameter_px=30, rng=9, geometry="packing",
                             tissue_edge=True)
        glass = ~s.tissue
        assert 0.05 < glass.mean() < 0.7
        assert not np.any(s.labels[glass])
        img = s.image.astype(float)
        if stain == "he":  # bright glass, darker tissue
            assert img[glass].mean() > img[s.labels > 0].mean() + 20
        else:  # dark glass (camera offset only), bright membranes in the tissue
            assert np.percentile(img[glass], 50) < np.percentile(img[s.tissue], 90)


def test_regenerating_he_has_exact_labels_and_a_crowded_interstitium():
    s = generate_section((256, 256), stain="he", fiber_diameter_px=24, rng=1, geometry="packing", regenerating=True)
    q = generate_section((256, 256), stain="he", fiber_diameter_px=24, rng=1, geometry="packing", regenerating=False)
    assert s.info["regenerating"] and not q.info["regenerating"]
    assert_exact_labels(s.labels)
    # more interstitium, and it is stained (cellular), not empty
    assert (s.labels == 0).mean() > (q.labels == 0).mean()
    inter = (s.labels == 0) & s.tissue
    assert s.image[inter].mean() < 225


def test_deterministic_for_a_seed():
    a = generate_section((160, 160), stain="he", fiber_diameter_px=24, rng=7)
    b = generate_section((160, 160), stain="he", fiber_diameter_px=24, rng=7)
    c = generate_section((160, 160), stain="he", fiber_diameter_px=24, rng=8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.planted, b.planted) and a.fiber_types == b.fiber_types
    assert not np.array_equal(a.image, c.image)


def test_small_and_large_diameters_work():
    for d in (6.0, 120.0):
        s = generate_section((200, 200), stain="atpase", fiber_diameter_px=d, rng=1, geometry="packing")
        assert_exact_labels(s.labels)
        assert s.labels.max() > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stain": "trichrome"},
        {"fiber_diameter_px": 1.0},
        {"shape": (8, 8)},
        {"geometry": "voronoi"},
        {"colour": "red"},
        {"rng": "seed"},
    ],
)
def test_bad_inputs_raise_histo_input_error(kwargs):
    with pytest.raises(HistoInputError):
        generate_section(**{"shape": (64, 64), **kwargs})


def test_speed_sanity():
    generate_section((512, 512), stain="he", rng=0, geometry="packing")  # warm-up
    t0 = time.perf_counter()
    for i, stain in enumerate(STAINS):
        generate_section((512, 512), stain=stain, fiber_diameter_px=40, rng=i, geometry="packing")
    per = (time.perf_counter() - t0) / len(STAINS)
    assert per < 2.0  # generous: about 0.1 s on one core when the machine is free


# ---------------------------------------------------------------- NCL-SM geometry


@pytest.mark.skipif(not ncl.available(), reason="NCL-SM masks not found")
def test_ncl_crops_are_exact_and_scaled():
    s = generate_section((320, 320), stain="if", fiber_diameter_px=40, rng=4, geometry="ncl",
                         source="nclsm_S60_labels.tiff", planted_groups=2)
    assert_exact_labels(s.labels, may_touch=True)
    assert s.info["geometry"] == "ncl"
    props = regionprops(s.labels.astype(np.int32))
    planted = set(s.planted.tolist())
    h, w = s.labels.shape
    d = [p.equivalent_diameter_area for p in props if p.label not in planted
         and p.bbox[0] > 0 and p.bbox[1] > 0 and p.bbox[2] < h and p.bbox[3] < w]
    assert 28 < np.median(d) < 56
    assert len(planted) >= 2
    assert all(p.equivalent_diameter_area < 40 for p in props if p.label in planted)


# ---------------------------------------------------------------- datasets


def test_stream_and_cached_dataset_agree(tmp_path):
    stream = SynthStream(3, seed=5, shape=(96, 96), stains=("he", "if"), fiber_diameter_px=(16, 24),
                         geometry="packing")
    paths = make_dataset(tmp_path, 3, seed=5, shape=(96, 96), stains=("he", "if"), fiber_diameter_px=(16, 24),
                         geometry="packing")
    assert len(paths) == 3 and all(p.is_file() for p in paths)
    ds = SynthDataset(tmp_path)
    assert len(ds) == 3
    for i in range(3):
        a, b = stream[i], ds[i]
        assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
        assert a.fiber_types == b.fiber_types and a.stain == b.stain
        assert np.array_equal(a.planted, b.planted)
    assert ds[1].image.dtype == np.uint16
    # a rerun keeps the files; other parameters in the same folder are refused
    assert make_dataset(tmp_path, 3, seed=5, shape=(96, 96), stains=("he", "if"), fiber_diameter_px=(16, 24),
                        geometry="packing") == paths
    with pytest.raises(HistoInputError):
        make_dataset(tmp_path, 3, seed=6, shape=(96, 96))


# ---------------------------------------------------------------- unlabelled structures (IF)


def test_interstitium_carves_unlabelled_structures_and_keeps_the_truth_exact():
    from histo.synth.geometry import generate_packing
    from histo.synth.interstitium import carve_interstitium

    d = 30.0
    geom = generate_packing((256, 256), d, np.random.default_rng(3), planted_groups=2)
    out, signal, info = carve_interstitium(geom, d, np.random.default_rng(4), capillaries=0.3, large=3.0)
    assert info["capillaries"] > 0 and info["nerves"] + info["vessels"] > 0
    assert_exact_labels(out.labels)
    assert set(out.fiber_types) == set(range(1, int(out.labels.max()) + 1))
    assert len(out.planted) == len(geom.planted)  # planted fibers are never carved
    # the structures are bright and mostly where no fiber is labelled
    assert signal.max() > 0.3
    assert (out.labels[signal > 0.3] == 0).mean() > 0.95
    # fibers only lose pixels, never gain them
    moved = (out.labels > 0) & (geom.labels == 0)
    assert not moved.any()


def test_if_sections_render_interstitium_by_default_and_on_request_only():
    s = generate_section((256, 256), stain="if", fiber_diameter_px=30, rng=15, geometry="packing")
    assert "interstitium" in s.info
    plain = generate_section((256, 256), stain="if", fiber_diameter_px=30, rng=15, geometry="packing",
                             interstitium=False)
    assert "interstitium" not in plain.info
    assert "interstitium" not in generate_section((128, 128), stain="he", rng=1, geometry="packing").info


def test_if_truth_follows_the_membrane_convention():
    from histo.synth.generate import IF_GAP_FRACTION, make_geometry

    s = generate_section((256, 256), stain="if", fiber_diameter_px=32, rng=8, geometry="packing",
                         interstitium=False)
    geom = make_geometry((256, 256), 32.0, np.random.default_rng(8), geometry="packing")
    assert IF_GAP_FRACTION > 0
    touching = (s.labels[:, 1:] > 0) & (s.labels[:, :-1] > 0) & (s.labels[:, 1:] != s.labels[:, :-1])
    assert touching.sum() > 100  # neighbours meet mid-membrane
    assert (s.labels > 0).sum() > (geom.labels > 0).sum()  # the endomysium went to the fibers


# ---------------------------------------------------------------- non-fiber tissue (brightfield)

BRIGHTFIELD = [s for s in STAINS if s != "if"]


def test_carve_brightfield_draws_dense_unlabelled_nuclei_and_keeps_planted_fibers():
    from histo.synth.bf_interstitium import COMPONENTS, carve_brightfield
    from histo.synth.geometry import generate_packing

    d = 30.0
    geom = generate_packing((256, 256), d, np.random.default_rng(3), planted_groups=3, tissue_edge=False)
    out, nf, info = carve_brightfield(geom, d, np.random.default_rng(4), inflammation=0.25)
    assert set(nf.maps) == set(COMPONENTS)
    assert info["fibers_replaced"] > 0 and info["infiltrate_nuclei"] > 100
    assert_exact_labels(out.labels)
    assert set(out.fiber_types) == set(range(1, int(out.labels.max()) + 1))
    assert int(out.labels.max()) < int(geom.labels.max())  # the infiltrate replaced fibers
    # planted fibers: all kept, pixel for pixel
    assert len(out.planted) == len(geom.planted) > 0
    before = sorted(int((geom.labels == p).sum()) for p in geom.planted)
    after = sorted(int((out.labels == p).sum()) for p in out.planted)
    assert before == after
    assert not ((out.labels > 0) & (geom.labels == 0)).any()  # fibers never grow
    for m in nf.maps.values():  # nothing drawn on a fiber
        assert m.dtype == np.float32 and not m[out.labels > 0].any()
    # dense nuclei (about 0.1-0.2 d across) packed in unlabelled tissue
    nuc = nf.maps["nuc"] > 0.5
    win = int(d)
    dense = [nuc[y:y + win, x:x + win].mean() for y in range(0, 256 - win, win // 2) for x in range(0, 256 - win, win // 2)
             if (out.labels[y:y + win, x:x + win] == 0).all()]
    assert max(dense) > 0.2
    n_nuc = int(cc_label(nuc, connectivity=1).max())
    assert n_nuc > 50


@pytest.mark.parametrize("stain", BRIGHTFIELD)
def test_brightfield_infiltrate_is_unlabelled_stained_tissue(stain):
    kw = dict(stain=stain, fiber_diameter_px=30, rng=11, geometry="packing", tissue_edge=False, planted_groups=3,
              regenerating=False)
    s = generate_section((256, 256), inflammation=0.25, **kw)
    plain = generate_section((256, 256), interstitium=False, **kw)
    assert_exact_labels(s.labels)
    info = s.info["nonfiber"]
    assert info["inflammation"] == 0.25 and info["infiltrate_nuclei"] > 100
    assert "nonfiber" not in plain.info
    assert s.labels.max() < plain.labels.max()  # fibers replaced by the infiltrate
    # planted fibers are never covered: same number, same sizes
    assert len(s.planted) == len(plain.planted) > 0
    assert sorted(np.bincount(s.labels.ravel())[s.planted]) == sorted(np.bincount(plain.labels.ravel())[plain.planted])
    # the replacing tissue is stained (cells), not empty glass
    od = -np.log((s.image.astype(float) + 1) / 256).sum(-1)
    new = (s.labels == 0) & (plain.labels > 0) & s.tissue
    assert new.sum() > 0.05 * new.size
    glass = -np.log((plain.image.astype(float) + 1) / 256).sum(-1)[~plain.tissue] if (~plain.tissue).any() else None
    assert glass is None or od[new].mean() > glass.mean()
    assert od[new].mean() > 0.15
    if stain == "he":  # dark purple-blue nuclei: blue above red, dark
        img = s.image.astype(float)
        purple = (img[..., 2] > img[..., 0] + 10) & (img.mean(-1) < 140)
        assert purple[new].mean() > 0.1
        normal = (s.labels > 0) & ~np.isin(s.labels, s.planted)  # planted fibers are basophilic
        assert purple[new].mean() > 3 * purple[normal].mean()


def test_brightfield_sections_have_random_non_fiber_tissue_by_default():
    amounts = []
    for seed in range(12):
        s = generate_section((128, 128), stain="he", fiber_diameter_px=20, rng=seed, geometry="packing")
        assert_exact_labels(s.labels)
        amounts.append(s.info["nonfiber"]["inflammation"])
        assert {"low_mag", "overlays"} <= set(s.info)
    amounts = np.array(amounts)
    assert (amounts == 0).any() and (amounts > 0).any()


def test_tint_is_a_colour_cast_and_nothing_else():
    kw = dict(stain="he", fiber_diameter_px=30, rng=5, geometry="packing", seams=False, stitch_fill=False,
              annotations=False)
    plain = generate_section((192, 192), tint=False, **kw)
    brown = generate_section((192, 192), tint="brown", **kw)
    assert np.array_equal(plain.labels, brown.labels)
    assert brown.info["overlays"]["tint"]["kind"] == "brown" and "tint" not in plain.info["overlays"]
    p, b = plain.image.astype(float).mean((0, 1)), brown.image.astype(float).mean((0, 1))
    assert abs(b[0] - p[0]) < 3  # red kept
    assert b[2] < 0.85 * p[2] and b[1] < p[1]  # blue lost most, green some
    with pytest.raises(HistoInputError):
        generate_section((64, 64), tint="purple")


def test_seams_are_steps_on_a_grid():
    kw = dict(stain="nadh", fiber_diameter_px=24, rng=6, geometry="packing", tint=False, stitch_fill=False,
              annotations=False)
    plain = generate_section((256, 256), seams=False, **kw)
    seams = generate_section((256, 256), seams=True, **kw)
    assert np.array_equal(plain.labels, seams.labels)
    tile = seams.info["overlays"]["seams"]["tile_px"]
    ratio = (seams.image.astype(float) + 1).sum(-1) / (plain.image.astype(float) + 1).sum(-1)
    off_y, off_x = seams.info["overlays"]["seams"]["offset_px"]
    ty = ((np.arange(256) + off_y) // tile).astype(int)
    tx = ((np.arange(256) + off_x) // tile).astype(int)
    tiles = ty[:, None] * 1000 + tx[None, :]
    ids = np.unique(tiles)
    assert len(ids) >= 2
    medians = np.array([np.median(ratio[tiles == t]) for t in ids])
    spread = np.array([np.percentile(ratio[tiles == t], 75) - np.percentile(ratio[tiles == t], 25) for t in ids])
    assert medians.max() - medians.min() > 0.02  # brightness steps between tiles
    assert spread.max() < 0.03  # constant within a tile


def test_stitch_fill_and_annotations_are_unlabelled_flat_paint():
    s = generate_section((256, 256), stain="psr", fiber_diameter_px=30, rng=2, geometry="packing", planted_groups=3,
                         stitch_fill=True, annotations=True)
    plain = generate_section((256, 256), stain="psr", fiber_diameter_px=30, rng=2, geometry="packing",
                             planted_groups=3, stitch_fill=False, annotations=False)
    ov = s.info["overlays"]
    assert "stitch_fill" in ov and "scale_bar" in ov["annotations"]["items"]
    value = ov["stitch_fill"]["value"]
    fill = (s.image == value).all(-1) & ~s.tissue
    assert fill.mean() > 0.5 * ov["stitch_fill"]["fraction"]
    assert not s.labels[fill].any()
    assert_exact_labels(s.labels)
    assert len(s.planted) == len(plain.planted)
    ink = (s.image == ov["annotations"]["value"]).all(-1) & s.tissue
    assert ink.sum() > 20 and not s.labels[ink].any()


def test_low_mag_packs_tightly_with_a_faint_endomysium():
    s = generate_section((192, 192), stain="he", fiber_diameter_px=14, rng=3, geometry="packing", low_mag=True)
    assert s.info["low_mag"] and s.info["endomysium_px"] <= 1.6
    assert "faint_endomysium" in s.info["render"]
    assert_exact_labels(s.labels)
    assert s.labels.max() > 50
