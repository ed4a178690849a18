"""Issue 12 (5): outlines keep their holes (GeoJSON interior rings, ImageJ composite ROIs),
``fiber_type`` reaches QuPath's classification, and labels.tif opens in plain ImageJ."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import roifile
import shapely
import tifffile
from scipy import ndimage as ndi

from histo.io.masks import read_labels
from histo.io.polygons import label_polygons, label_shapes, polygons_to_labels, ring_area
from histo.measure.morphometry import measure_fibers
from histo.results.writer import fibers_geojson, qupath_type_name, write_roi_zip, write_slide_outputs


def _holed_labels() -> np.ndarray:
    """Three fibers: 1 with an empty hole, 2 with a hole holding fiber 3, 4 without hole."""
    lab = np.zeros((40, 60), np.uint32)
    lab[2:20, 2:20] = 1
    lab[8:12, 8:11] = 0
    lab[2:30, 25:50] = 2
    lab[10:16, 32:40] = 3
    lab[32:38, 2:20] = 4
    return lab


def test_label_shapes_keep_holes_exactly():
    lab = _holed_labels()
    shapes = label_shapes(lab)
    assert [len(shapes[k]) for k in (1, 2, 3, 4)] == [2, 2, 1, 1]
    assert ring_area(shapes[1][0]) == 18 * 18 and ring_area(shapes[1][1]) == -12
    assert np.array_equal(shapes[1][0], label_polygons(lab)[1])  # same outer ring
    assert np.array_equal(polygons_to_labels(shapes, lab.shape), lab)
    assert all(shapely.Polygon(r[0], r[1:]).is_valid for r in shapes.values())


def test_label_shapes_on_random_labels_are_exact_and_valid():
    rng = np.random.default_rng(3)
    for _ in range(40):
        lab = ndi.label(ndi.binary_opening(rng.random((40, 40)) > 0.35))[0]
        shapes = label_shapes(lab)
        assert np.array_equal(polygons_to_labels(shapes, lab.shape), lab)
        assert all(shapely.Polygon(r[0], r[1:]).is_valid for r in shapes.values())


def test_label_in_pieces_keeps_every_piece_as_a_multipolygon(tmp_path):
    lab = _holed_labels()
    lab[33:36, 40:45] = 1  # a second piece of fiber 1
    shapes = label_shapes(lab)
    assert [ring_area(r) for r in shapes[1]] == [18 * 18, -12, 15]  # largest piece first
    assert np.array_equal(shapes[1][0], label_polygons(lab)[1])
    assert np.array_equal(polygons_to_labels(shapes, lab.shape), lab)
    geo = fibers_geojson(lab, measure_fibers(lab, None, pixel_size_um=0.5))
    one = next(f for f in geo["features"] if f["properties"]["name"] == "1")["geometry"]
    assert one["type"] == "MultiPolygon" and [len(p) for p in one["coordinates"]] == [2, 1]
    assert shapely.geometry.shape(one).is_valid
    path = write_roi_zip(tmp_path / "r.zip", shapes)
    assert np.array_equal(read_labels(path, shape=lab.shape), lab)


def _table(lab: np.ndarray) -> pd.DataFrame:
    fibers = measure_fibers(lab, None, pixel_size_um=0.5)
    fibers["fiber_type"] = pd.Series(["I", pd.NA, "IIa", None], dtype=object).to_numpy()
    return fibers


def test_geojson_interior_rings_and_fiber_type_classification():
    lab = _holed_labels()
    geo = fibers_geojson(lab, _table(lab))
    feats = {f["properties"]["name"]: f for f in geo["features"]}
    assert len(feats["1"]["geometry"]["coordinates"]) == 2 and len(feats["4"]["geometry"]["coordinates"]) == 1
    hole = np.asarray(feats["1"]["geometry"]["coordinates"][1])
    assert hole[0].tolist() == hole[-1].tolist() and ring_area(hole[:-1]) == -12
    # QuPath >= 0.4 reads "names" + "color" as the derived class "<class>: Type I"
    cls = feats["1"]["properties"]["classification"]
    assert cls["names"][1] == "Type I" and len(cls["color"]) == 3
    assert feats["1"]["properties"]["metadata"] == {"fiber_type": "I"}
    assert feats["3"]["properties"]["classification"]["names"][1] == "Type IIa"
    assert "names" not in feats["2"]["properties"]["classification"] and "metadata" not in feats["2"]["properties"]
    assert "name" in feats["4"]["properties"]["classification"]
    assert qupath_type_name("type 2") == "type 2" and qupath_type_name("1") == "Type 1"


def test_roi_zip_composite_for_holes_and_subpixel_far_from_origin(tmp_path):
    lab = _holed_labels()
    shapes = label_shapes(lab)
    path = write_roi_zip(tmp_path / "rois.zip", shapes, _table(lab))
    rois = {r.name: r for r in roifile.roiread(path)}
    assert rois["0001"].composite and rois["0002"].composite and not rois["0004"].composite
    assert rois["0004"].roitype == roifile.ROI_TYPE.TRACED
    assert np.array_equal(read_labels(path, shape=lab.shape), lab)
    # whole-slide level-0 coordinates beyond ImageJ's 16-bit range: sub-pixel polygons
    far = {k: [r + np.array([70000, 40000]) for r in v] for k, v in shapes.items()}
    rois = {r.name: r for r in roifile.roiread(write_roi_zip(tmp_path / "far.zip", far))}
    assert rois["0004"].roitype == roifile.ROI_TYPE.POLYGON and rois["0004"].subpixelresolution
    assert rois["0004"].coordinates().min(axis=0).tolist() == [70002.0, 40032.0]
    outer, inner = rois["0001"].coordinates(multi=True)
    assert outer.min(axis=0).tolist() == [70002.0, 40002.0] and inner.min(axis=0).tolist() == [70008.0, 40008.0]


def test_slide_folder_outlines_round_trip_with_holes_and_striped_labels(tmp_path):
    lab = _holed_labels()
    out = write_slide_outputs(tmp_path / "s", labels=lab, fibers=_table(lab), summary={}, pixel_size_um=0.5)
    for name in ("fibers.geojson", "rois.zip"):
        assert np.array_equal(read_labels(out / name, shape=lab.shape), lab), name
    geo = json.loads((out / "fibers.geojson").read_text())
    assert sum(len(f["geometry"]["coordinates"]) > 1 for f in geo["features"]) == 2
    with tifffile.TiffFile(out / "labels.tif") as tif:  # plain ImageJ 1.x reads strips, not tiles
        assert not tif.pages.first.is_tiled and tif.pages.first.dtype == np.uint32
        assert np.array_equal(tif.asarray(), lab)


@pytest.mark.parametrize("value", [None, np.nan, pd.NA, ""])
def test_unknown_fiber_type_leaves_the_plain_class(value):
    lab = _holed_labels()
    fibers = measure_fibers(lab, None, pixel_size_um=0.5)
    fibers["fiber_type"] = pd.Series([value] * len(fibers), dtype=object).to_numpy()
    geo = fibers_geojson(lab, fibers)
    assert all("name" in f["properties"]["classification"] for f in geo["features"])
