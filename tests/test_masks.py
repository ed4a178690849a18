"""Masks from other tools: label images, ImageJ ROI sets, QuPath GeoJSON; validation rules."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import roifile
import tifffile
from PIL import Image

from histo.errors import HistoInputError
from histo.io.masks import read_labels, validate_labels


def per_fiber_iou(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """IoU of every reference fiber with its best-overlapping fiber in ``other``."""
    ious = []
    for label in np.unique(reference)[1:]:
        mask = reference == label
        hits = np.bincount(other[mask])
        hits[0] = 0
        best = int(hits.argmax())
        inter = hits[best]
        ious.append(inter / (mask.sum() + (other == best).sum() - inter) if best else 0.0)
    return np.array(ious)


# --------------------------------------------------------------------------- real files
def test_cellpose_png_labels(real_data):
    lab = read_labels(real_data / "he" / "cn_img01_labels.png", shape=(1002, 1002))
    assert lab.dtype == np.uint32 and lab.shape == (1002, 1002)
    assert len(np.unique(lab)) - 1 == 66


def test_real_imagej_roi_set_matches_the_label_image(real_data):
    """fs_rat_rois.zip was exported from fs_rat_labels.tif with vertices on the boundary
    pixels' centres; read with ImageJ's own rule (pixel centre inside the outline) each
    fiber loses about half a pixel all round, so small fibers score lowest."""
    rois = read_labels(real_data / "if" / "fs_rat_rois.zip", shape=(592, 592))
    ref = read_labels(real_data / "if" / "fs_rat_labels.tif")
    assert len(np.unique(rois)) - 1 == len(np.unique(ref)) - 1 == 82
    ious = per_fiber_iou(ref, rois)
    assert np.median(ious) >= 0.96
    assert ious.min() >= 0.85
    assert ((rois > 0) & (ref == 0)).sum() == 0  # never outside the reference fibers


# --------------------------------------------------------------------------- ROI sets
def _square(x0, y0, side):
    return np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])


def test_roi_types_names_and_skipped_lines(tmp_path, caplog):
    poly = roifile.ImagejRoi.frompoints(_square(2, 2, 4), name="7")
    poly.roitype = roifile.ROI_TYPE.POLYGON
    rect = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, left=10, top=1, right=13, bottom=3, name="9")
    oval = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.OVAL, left=0, top=10, right=10, bottom=20, name="3")
    line = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.LINE, x1=0, y1=0, x2=5, y2=5, name="line")
    path = tmp_path / "set.zip"
    roifile.roiwrite(path, [poly, rect, oval, line])
    lab = read_labels(path, shape=(24, 24))
    assert "skipped 1 ROIs" in caplog.text
    # names are not all integers ("line" is skipped, the rest are): numbering by name
    assert (lab == 7).sum() == 16 and (lab[2:6, 2:6] == 7).all()
    assert (lab == 9).sum() == 6 and (lab[1:3, 10:13] == 9).all()
    disk = lab == 3
    assert abs(int(disk.sum()) - np.pi * 25) < 6 and disk[15, 5]


def test_roi_names_that_are_not_numbers_give_file_order(tmp_path):
    rois = [roifile.ImagejRoi.frompoints(_square(1 + 5 * i, 1, 3), name=f"0001-00{i}") for i in range(3)]
    path = tmp_path / "s.zip"
    roifile.roiwrite(path, rois)
    lab = read_labels(path, shape=(6, 20))
    assert lab[2, 2] == 1 and lab[2, 7] == 2 and lab[2, 12] == 3


def test_single_roi_file_and_composite_with_hole(tmp_path):
    roi = roifile.ImagejRoi.frompoints(_square(0, 0, 6), name="1")
    path = tmp_path / "one.roi"
    roi.tofile(path)
    assert (read_labels(path, shape=(8, 8)) > 0).sum() == 36
    # composite ROI (ShapeRoi): outer square with a square hole, as MOVETO/LINETO/CLOSE path
    path_ops = [0, 0, 0, 1, 8, 0, 1, 8, 8, 1, 0, 8, 4, 0, 2, 2, 1, 6, 2, 1, 6, 6, 1, 2, 6, 4]
    comp = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, left=0, top=0, right=8, bottom=8,
                             shape_roi_size=len(path_ops), multi_coordinates=np.array(path_ops, np.float32))
    lab = read_labels_from_roi(comp, tmp_path, (10, 10))
    assert (lab > 0).sum() == 64 - 16 and lab[4, 4] == 0


def read_labels_from_roi(roi, tmp_path, shape):
    path = tmp_path / "c.roi"
    roi.tofile(path)
    return read_labels(path, shape=shape)


def test_outlines_need_shape_and_must_lie_on_the_image(tmp_path):
    path = tmp_path / "s.zip"
    roifile.roiwrite(path, [roifile.ImagejRoi.frompoints(_square(500, 500, 10), name="1")])
    with pytest.raises(HistoInputError, match="pass the image shape"):
        read_labels(path)
    with pytest.raises(HistoInputError, match="outside the 100x100 image") as err:
        read_labels(path, shape=(100, 100))
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------- GeoJSON
def _feature(ring, name=None, otype="detection", holes=()):
    props = {"objectType": otype}
    if name is not None:
        props["name"] = name
    coords = [np.vstack([ring, ring[:1]]).tolist()] + [np.vstack([h, h[:1]]).tolist() for h in holes]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": coords}, "properties": props}


def test_geojson_collection_holes_and_annotations(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="histo.io.masks")
    tissue = _feature(_square(0, 0, 30), otype="annotation")
    a = _feature(_square(2, 2, 10), holes=[_square(5, 5, 3)])
    b = _feature(_square(15, 2, 5))
    multi = {"type": "Feature", "properties": {"objectType": "detection"},
             "geometry": {"type": "MultiPolygon", "coordinates": [[np.vstack([_square(2, 20, 2), _square(2, 20, 2)[:1]]).tolist()],
                                                                  [np.vstack([_square(8, 20, 2), _square(8, 20, 2)[:1]]).tolist()]]}}
    path = tmp_path / "qupath.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [tissue, a, b, multi]}))
    lab = read_labels(path, shape=(30, 30))
    assert "ignoring 1 annotations" in caplog.text
    assert sorted(np.unique(lab)) == [0, 1, 2, 3]  # file order of the detections
    assert (lab == 1).sum() == 100 - 9 and lab[6, 6] == 0
    assert (lab == 2).sum() == 25
    assert (lab == 3).sum() == 8 and lab[21, 3] == 3 and lab[21, 9] == 3 and lab[21, 6] == 0


def test_geojson_list_single_feature_and_bare_geometry(tmp_path):
    feats = [_feature(_square(1, 1, 3), name="5"), _feature(_square(6, 1, 3), name="2")]
    (tmp_path / "l.json").write_text(json.dumps(feats))
    lab = read_labels(tmp_path / "l.json", shape=(6, 12))
    assert lab[2, 2] == 5 and lab[2, 7] == 2  # integer names are used as labels
    (tmp_path / "f.json").write_text(json.dumps(feats[0]))
    assert (read_labels(tmp_path / "f.json", shape=(6, 12)) == 5).sum() == 9
    (tmp_path / "g.json").write_text(json.dumps(feats[0]["geometry"]))
    assert (read_labels(tmp_path / "g.json", shape=(6, 12)) == 1).sum() == 9


def test_geojson_errors(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(HistoInputError, match="not valid GeoJSON"):
        read_labels(bad, shape=(5, 5))
    pts = tmp_path / "points.geojson"
    pts.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": {}}]}))
    with pytest.raises(HistoInputError, match="no area outlines"):
        read_labels(pts, shape=(5, 5))
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(HistoInputError, match="not GeoJSON"):
        read_labels(other, shape=(5, 5))


# --------------------------------------------------------------------------- label images
def test_label_image_formats(tmp_path):
    lab = np.zeros((20, 30), np.uint16)
    lab[2:8, 3:9], lab[10:15, 10:20] = 1, 300
    tifffile.imwrite(tmp_path / "l.tif", lab[None])  # singleton axis dropped
    Image.fromarray(lab).save(tmp_path / "l_cp_masks.png")
    np.save(tmp_path / "l.npy", lab.astype(np.int64))
    for name in ("l.tif", "l_cp_masks.png", "l.npy"):
        out = read_labels(tmp_path / name, shape=(20, 30))
        assert out.dtype == np.uint32 and np.array_equal(out, lab)
    assert read_labels(tmp_path / "l.tif", relabel=True).max() == 2


def test_bad_label_files(tmp_path):
    for name, data in [("empty.png", b""), ("notes.tif", b"my notes\n" * 5)]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(HistoInputError) as err:
            read_labels(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)
    Image.fromarray(np.random.default_rng(0).integers(0, 9, (300, 300), np.uint16)).save(tmp_path / "w.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "w.png").read_bytes()[:2000])
    with pytest.raises(HistoInputError, match="truncated or corrupt"):
        read_labels(tmp_path / "cut.png")


# --------------------------------------------------------------------------- validation
def _two_fibers(dtype=np.uint16):
    lab = np.zeros((10, 12), dtype)
    lab[1:4, 1:4], lab[5:9, 6:11] = 1, 2
    return lab


@pytest.mark.parametrize("shape,hint", [((12, 10), "swapped"), ((20, 24), "2x larger"), ((11, 12), "")])
def test_wrong_shape(shape, hint):
    with pytest.raises(HistoInputError, match=r"labels have shape \(10, 12\) but the image is") as err:
        validate_labels(_two_fibers(), image_shape=shape, path="m.png")
    assert hint in str(err.value) and "m.png" in str(err.value)


def test_empty_nan_float_negative_rgb():
    with pytest.raises(HistoInputError, match="empty"):
        validate_labels(np.zeros((5, 5), np.uint8), path="e.png")
    nan = _two_fibers(np.float32)
    nan[0, 0] = np.nan
    with pytest.raises(HistoInputError, match="1 NaN"):
        validate_labels(nan, path="n.tif")
    frac = _two_fibers(np.float32) * 0.5
    with pytest.raises(HistoInputError, match="non-integer values"):
        validate_labels(frac)
    whole = validate_labels(_two_fibers(np.float64))
    assert whole.dtype == np.uint32 and whole.max() == 2
    neg = _two_fibers(np.int32)
    neg[0, 0] = -1
    with pytest.raises(HistoInputError, match="negative"):
        validate_labels(neg)
    with pytest.raises(HistoInputError, match="colour image"):
        validate_labels(np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(HistoInputError, match="2-D"):
        validate_labels(np.zeros((2, 5, 5), np.uint8))


def test_foreground_mask_is_refused():
    lab = np.ones((20, 20), np.uint8)
    lab[:1] = 0
    with pytest.raises(HistoInputError, match="label 1 covers 95%.*foreground"):
        validate_labels(lab)


def test_binary_mask_is_split_or_refused(caplog):
    mask = np.zeros((10, 10), np.uint8)
    mask[1:4, 1:4] = 255
    mask[6:9, 1:9] = 255
    out = validate_labels(mask, path="b.png")
    assert sorted(np.unique(out)) == [0, 1, 2] and "split into 2" in caplog.text
    with pytest.raises(HistoInputError, match="binary mask"):
        validate_labels(mask, binary="error")
    single = np.zeros((5, 5), bool)
    single[1:3, 1:3] = True
    assert validate_labels(single).max() == 1  # one object stays one fiber


def test_relabel_only_when_asked():
    lab = _two_fibers()
    lab[lab == 2] = 40
    assert validate_labels(lab).max() == 40
    assert validate_labels(lab, relabel=True).max() == 2
