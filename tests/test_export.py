"""Per-slide outputs: contents, QuPath/ImageJ round trips, pyramidal labels, atomicity."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from PIL import Image
from skimage.draw import disk, polygon

from histo.errors import HistoInputError
from histo.io.atomic import partial_leftovers
from histo.io.image import read_image
from histo.io.jsonable import to_jsonable
from histo.io.masks import read_labels
from histo.measure.fiber_table import COLUMN_NAMES
from histo.results.tables import read_fiber_table
from histo.results.writer import render_overlay, write_labels_pyramid, write_slide_outputs
from histo.score.classes import CLASS_COLORS

FILES = [".histo-result", "fibers.csv", "fibers.geojson", "fibers.parquet", "labels.tif", "overlay.png", "rois.zip", "summary.json"]


def per_fiber_iou(reference: np.ndarray, other: np.ndarray) -> dict[int, float]:
    """IoU of every reference label with the same label in ``other``."""
    out = {}
    for label in np.unique(reference)[1:]:
        a, b = reference == label, other == label
        out[int(label)] = (a & b).sum() / (a | b).sum()
    return out


def table_for(labels: np.ndarray) -> pd.DataFrame:
    ids = np.unique(labels)[1:]
    area = np.bincount(labels.ravel())[ids]
    return pd.DataFrame({
        "label": ids, "area_px": area.astype(float), "is_small": area < np.median(area),
        "is_sad": ids % 7 == 0, "darkness": np.where(ids % 5 == 0, np.nan, 0.25),
        "fiber_type": pd.array(["I" if i % 2 else None for i in ids], dtype=object),
    })


def synthetic_shapes() -> np.ndarray:
    """Disks, squares, rotated rectangles, triangles and one-pixel fibers on a 200x240 grid."""
    lab = np.zeros((200, 240), np.uint32)
    n = 0
    for i, r in enumerate([3, 6, 11, 18]):
        n += 1
        lab[disk((25 + 45 * i, 30), r, shape=lab.shape)] = n
    for i, side in enumerate([2, 7, 15, 30]):
        n += 1
        lab[10 + 45 * i: 10 + 45 * i + side, 70: 70 + side] = n
    for i, angle in enumerate([10, 33, 60, 81]):
        n += 1
        t = np.deg2rad(angle)
        corners = np.array([[-20, -6], [20, -6], [20, 6], [-20, 6]]) @ np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        lab[polygon(25 + 45 * i + corners[:, 1], 150 + corners[:, 0], lab.shape)] = n
    for i in range(3):
        n += 1
        lab[polygon([20 + 60 * i, 50 + 60 * i, 50 + 60 * i], [200, 190, 230], lab.shape)] = n
    for i in range(3):
        n += 1
        lab[195, 5 + 10 * i] = n
    return lab


# --------------------------------------------------------------------------- folder
def test_slide_folder_on_real_he(real_data, tmp_path):
    img = read_image(real_data / "he" / "cn_img01.tif")
    labels = read_labels(real_data / "he" / "cn_img01_labels.png", shape=img.shape_yx)
    fibers = table_for(labels)
    summary = {"slide": {"id": "cn_img01", "pixel_size_um": None, "channel": None},
               "statistics": {"vc": np.float64(np.nan), "n": np.int64(66), "ok": np.bool_(True)}}
    out = write_slide_outputs(tmp_path / "res" / "cn_img01", labels=labels, fibers=fibers,
                              summary=summary, image=img, pixel_size_um=0.5)
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert partial_leftovers(out.parent) == []

    back = json.loads((out / "summary.json").read_text())
    assert back["statistics"] == {"vc": None, "n": 66, "ok": True}
    csv = pd.read_csv(out / "fibers.csv")
    assert csv["label"].tolist() == fibers["label"].tolist()
    # the exported schema (histo.measure.fiber_table.COLUMNS), read back as the table given
    assert pd.read_parquet(out / "fibers.parquet").shape == (len(fibers), len(COLUMN_NAMES))
    back = read_fiber_table(out)
    same = [c for c in fibers.columns if c != "fiber_type"]
    pd.testing.assert_frame_equal(back[same], fibers[same], check_dtype=False)
    assert back["fiber_type"].fillna("").tolist() == fibers["fiber_type"].fillna("").tolist()

    with tifffile.TiffFile(out / "labels.tif") as tif:
        assert tif.is_ome and tif.pages.first.dtype == np.uint32
        assert tif.pages.first.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert 'PhysicalSizeX="0.5"' in tif.ome_metadata
        assert np.array_equal(tif.asarray(), labels)

    # round trips through the two outline formats: every fiber IoU >= 0.95 (exact but for
    # pixels that touch the rest of their fiber only at a corner)
    for name in ("rois.zip", "fibers.geojson"):
        again = read_labels(out / name, shape=labels.shape)
        ious = per_fiber_iou(labels, again)
        assert len(ious) == 66 and min(ious.values()) >= 0.95, name
        assert (again != labels).sum() <= 5

    geo = json.loads((out / "fibers.geojson").read_text())
    props = [f["properties"] for f in geo["features"]]
    assert all(p["objectType"] == "detection" for p in props)
    sad = next(p for p in props if p["name"] == "14")  # fiber type unknown: the display class
    assert sad["classification"] == {"name": "sad", "color": list(CLASS_COLORS["sad"])}
    typed = next(p for p in props if p["name"] == "7")  # type I: QuPath's derived class "sad: Type I"
    assert typed["classification"] == {"names": ["sad", "Type I"], "color": list(CLASS_COLORS["sad"])}
    assert typed["metadata"] == {"fiber_type": "I"}
    five = next(p for p in props if p["name"] == "5")["measurements"]
    assert "darkness" not in five and five["is_sad"] == 0.0 and "fiber_type" not in five

    overlay = np.asarray(Image.open(out / "overlay.png"))
    assert overlay.shape == (1002, 1002, 3)
    assert (overlay == CLASS_COLORS["sad"]).all(axis=-1).sum() > 50


def test_synthetic_shapes_round_trip(tmp_path):
    labels = synthetic_shapes()
    out = write_slide_outputs(tmp_path / "s", labels=labels, fibers=table_for(labels), summary={})
    for name in ("rois.zip", "fibers.geojson"):
        again = read_labels(out / name, shape=labels.shape)
        ious = per_fiber_iou(labels, again)
        assert len(ious) == labels.max() and min(ious.values()) >= 0.95, (name, ious)
    with tifffile.TiffFile(out / "labels.tif") as tif:
        assert "PhysicalSizeX" not in tif.ome_metadata


def test_replaces_old_folder_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    labels = synthetic_shapes()
    out = tmp_path / "slide"
    write_slide_outputs(out, labels=labels, fibers=table_for(labels), summary={"run": 1})
    write_slide_outputs(out, labels=labels, fibers=table_for(labels), summary={"run": 2})
    assert json.loads((out / "summary.json").read_text()) == {"run": 2}

    import histo.results.writer as export

    def broken(*args, **kwargs):
        raise MemoryError("killed while drawing the overlay")

    monkeypatch.setattr(export, "render_overlay", broken)
    with pytest.raises(MemoryError):
        write_slide_outputs(out, labels=labels, fibers=table_for(labels), summary={"run": 3})
    assert json.loads((out / "summary.json").read_text()) == {"run": 2}
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slide"]


@pytest.mark.parametrize("bad", [
    {"labels": np.zeros((4, 4), float)},
    {"labels": np.zeros((2, 4, 4), np.uint8)},
    {"fibers": pd.DataFrame({"x": [1]})},
    {"summary": {"obj": object()}},
])
def test_bad_arguments_write_nothing(tmp_path, bad):
    labels = synthetic_shapes()
    kwargs = {"labels": labels, "fibers": table_for(labels), "summary": {}, **bad}
    with pytest.raises(HistoInputError) as err:
        write_slide_outputs(tmp_path / "slide", **kwargs)
    assert str(tmp_path / "slide") in str(err.value)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- pyramid
@pytest.mark.parametrize("kind", ["numpy", "dask", "zarr"])
def test_labels_pyramid_from_any_array(tmp_path, kind):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.repeat(rng.integers(0, 5000, (70, 50), np.uint32), 9, 0), 9, 1)[:620, :440]
    if kind == "dask":
        source = da.from_array(labels, chunks=(100, 130))
    elif kind == "zarr":
        source = zarr.create_array(store=str(tmp_path / "l.zarr"), shape=labels.shape, chunks=(128, 128),
                                   dtype=np.uint32)
        source[:] = labels
    else:
        source = labels
    path = write_labels_pyramid(tmp_path / "labels.tif", source, pixel_size_um=0.9224, tile=128)
    with tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        assert [lv.shape for lv in levels] == [(620, 440), (310, 220), (155, 110), (78, 55)]
        if kind == "numpy":  # in memory and small: base level in strips, for plain ImageJ
            assert not tif.pages.first.is_tiled and levels[1].keyframe.is_tiled
        else:  # lazy labels (whole slides) stay tiled
            assert tif.pages.first.is_tiled and tif.pages.first.tilewidth == 128
        for k, lv in enumerate(levels):
            assert np.array_equal(lv.asarray(), labels[:: 2**k, :: 2**k]), k
        assert 'PhysicalSizeX="0.9224"' in tif.ome_metadata
    assert partial_leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tif") == ["labels.tif"]


def test_labels_pyramid_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="multiple of 16"):
        write_labels_pyramid(tmp_path / "x.tif", np.zeros((4, 4), np.uint32), pixel_size_um=None, tile=100)
    with pytest.raises(HistoInputError, match="negative"):
        write_labels_pyramid(tmp_path / "x.tif", -np.ones((4, 4), np.int32), pixel_size_um=None)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- overlay and JSON
def test_overlay_thumbnail_for_fluorescence_and_large_labels(real_data):
    img = read_image(real_data / "if" / "fs_rat.tif", channel=3)
    labels = read_labels(real_data / "if" / "fs_rat_labels.tif")
    fibers = table_for(labels)
    ov = render_overlay(labels, fibers, img)
    assert ov.shape == (592, 592, 3) and ov.dtype == np.uint8
    inside = labels > 0
    assert ov[~inside].std() > 10  # the membrane channel is visible
    big = np.kron(labels, np.ones((5, 5), np.uint32))  # 2960 px: thumbnail at most 2048
    ov = render_overlay(big, fibers, img)  # image smaller than labels: resampled to fit
    assert max(ov.shape[:2]) <= 2048 and ov.shape[0] == ov.shape[1]
    none = render_overlay(labels, fibers.iloc[:0], None)
    assert (none[labels == 0] == 40).all()
    assert (none == CLASS_COLORS["normal"]).all(axis=-1).any()


def test_to_jsonable_types(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Settings:
        lo_um: float = 40.0

    got = to_jsonable({"a": np.arange(3), "b": pd.Series([1.5, np.inf]), "p": tmp_path, "s": Settings(),
                       "na": pd.NA, 3: {np.float32(2.0)}})
    assert got == {"a": [0, 1, 2], "b": [1.5, None], "p": str(tmp_path), "s": {"lo_um": 40.0},
                   "na": None, "3": [2.0]}
    with pytest.raises(TypeError, match="cannot store"):
        to_jsonable(object())


# --------------------------------------------------------------------------- bad input, end to end
def _bad_inputs(tmp_path, real_data):
    """(image, labels) pairs that must fail with the offending path named, nothing written."""
    image = real_data / "he" / "cn_img01.tif"
    labels = real_data / "he" / "cn_img01_labels.png"
    zero = tmp_path / "zero.tif"
    zero.write_bytes(b"")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(image.read_bytes()[:1_000_000])
    text = tmp_path / "notes.tif"
    text.write_text("not an image\n")
    small = tmp_path / "small.png"
    Image.fromarray(np.ones((100, 120), np.uint16)).save(small)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((1002, 1002), np.uint16)).save(empty)
    nan = tmp_path / "nan.tif"
    arr = read_labels(labels).astype(np.float32)
    arr[5, 5] = np.nan
    tifffile.imwrite(nan, arr)
    frac = tmp_path / "float.tif"
    tifffile.imwrite(frac, read_labels(labels).astype(np.float32) / 3)
    return {"zero-byte image": (zero, labels, zero), "truncated tiff": (cut, labels, cut),
            "text renamed .tif": (text, labels, text), "zero-byte labels": (image, zero, zero),
            "labels of the wrong shape": (image, small, small), "empty mask": (image, empty, empty),
            "NaN labels": (image, nan, nan), "float labels": (image, frac, frac)}


CASES = ["zero-byte image", "truncated tiff", "text renamed .tif", "zero-byte labels",
         "labels of the wrong shape", "empty mask", "NaN labels", "float labels"]


@pytest.mark.parametrize("case", CASES)
def test_measure_file_refuses_bad_input_and_writes_nothing(tmp_path, real_data, case):
    from histo.batch.pipeline import measure_file

    image, labels, culprit = _bad_inputs(tmp_path, real_data)[case]
    out_root = tmp_path / "results"
    with pytest.raises(HistoInputError) as err:
        measure_file(image, labels, out_root, stain="he")
    assert str(culprit) in str(err.value)
    assert not out_root.exists() or list(out_root.rglob("*")) == []


@pytest.mark.parametrize("kind", ["rgba", "rgb16"])
def test_measure_file_handles_rgba_and_16bit_rgb(tmp_path, kind):
    from histo.batch.pipeline import measure_file

    labels = synthetic_shapes()
    rgb = np.where(labels[..., None] > 0, [200, 90, 150], [240, 230, 235]).astype(np.uint8)
    if kind == "rgba":
        path = tmp_path / "slide.png"
        Image.fromarray(np.dstack([rgb, np.full(labels.shape, 255, np.uint8)])).save(path)
    else:
        path = tmp_path / "slide.tif"
        tifffile.imwrite(path, rgb.astype(np.uint16) * 257, photometric="rgb")
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "labels.png")
    out, result = measure_file(path, tmp_path / "labels.png", tmp_path / "results", stain="he")
    assert len(result.fibers) == labels.max()
    assert sorted(p.name for p in out.iterdir()) == FILES
