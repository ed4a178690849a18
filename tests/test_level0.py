"""Issue 12 (1): every per-slide output of a whole slide is in the slide's level-0 pixel frame.

A small two-level pyramidal OME-TIFF is made from a real H&E image (data/real/he/cn_img01.tif):
level 1 is a crop of the image at 0.5 µm/px, level 0 the same crop at twice the size
(0.25 µm/px). The whole-slide path analyses level 1 (the classical segmenter's scale), and
GeoJSON, ROIs, ``*_px`` columns and labels.tif must all come out on level 0's grid: the
outlines overlaid on level 0 rasterise to labels.tif's base level pixel for pixel.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi

from histo.batch.wsi import Level0Labels, level0_outlines, level0_table
from histo.io.image import read_image
from histo.io.masks import read_labels
from histo.io.polygons import label_shapes, polygons_to_labels

LEVEL1_CROP = (432, 512)  # (Y, X) of the analysis level; level 0 is twice that


def _polygons(geometry: dict) -> list[list]:
    """The polygons (lists of rings) of a GeoJSON Polygon or MultiPolygon."""
    coords = geometry["coordinates"]
    return [coords] if geometry["type"] == "Polygon" else coords


def _pyramid(path, real_data) -> tuple[int, int]:
    """Write the two-level OME-TIFF; return level 0's (H, W)."""
    img = read_image(real_data / "he" / "cn_img01.tif").pixels[: LEVEL1_CROP[0], : LEVEL1_CROP[1]]
    level0 = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    meta = {"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": 0.25, "PhysicalSizeYUnit": "µm"}
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(level0, tile=(256, 256), photometric="rgb", subifds=1, metadata=meta, compression="zlib")
        tw.write(level0[::2, ::2], tile=(256, 256), photometric="rgb", subfiletype=1, compression="zlib")
    return level0.shape[:2]


@pytest.fixture(scope="module")
def scored_slide(tmp_path_factory, real_data):
    from histo.batch.run import ScoreParams, run_batch

    root = tmp_path_factory.mktemp("level0")
    (root / "slides").mkdir()
    shape0 = _pyramid(root / "slides" / "pyr.ome.tif", real_data)
    res = run_batch([root / "slides"], root / "out", show_progress=False,
                    params=ScoreParams(method="classical", stain="he"), write_report=False)
    assert list(res.cohort["status"]) == ["scored"], res.cohort["error"].tolist()
    return root / "out" / "pyr", shape0


@pytest.mark.slow
def test_whole_slide_outputs_are_in_the_level0_frame(scored_slide):
    folder, (h0, w0) = scored_slide
    summary = json.loads((folder / "summary.json").read_text())
    s = summary["slide"]
    assert s["analysis_level"] == 1 and s["analysis_downsample"] == 2.0
    assert s["shape"] == [h0, w0] and s["pixel_size_um"] == 0.25 and s["analysis_pixel_size_um"] == 0.5
    assert s["labels_downsample"] == 1.0

    # labels.tif: base level is level 0, with level 0's pixel size and a description saying so
    with tifffile.TiffFile(folder / "labels.tif") as tif:
        levels = tif.series[0].levels
        assert levels[0].shape == (h0, w0) and levels[1].shape == (h0 // 2, w0 // 2)
        base = levels[0].asarray()
        assert 'PhysicalSizeX="0.25"' in tif.ome_metadata and "level 0" in tif.ome_metadata
    fibers = pd.read_csv(folder / "fibers.csv")
    assert set(np.unique(base[base > 0])) == set(fibers["label"])

    # GeoJSON: maxima reach level 0's extent (not half of it), and the outlines overlaid on
    # level 0 are labels.tif's pixels exactly (holes included)
    geo = json.loads((folder / "fibers.geojson").read_text())
    xy = np.concatenate([np.asarray(r, float) for f in geo["features"]
                         for poly in _polygons(f["geometry"]) for r in poly])
    assert xy[:, 0].max() == w0 and xy[:, 1].max() == h0
    assert xy.min() >= 0
    assert np.array_equal(read_labels(folder / "fibers.geojson", shape=(h0, w0)), base)
    assert np.array_equal(read_labels(folder / "rois.zip", shape=(h0, w0)), base)
    holes = sum(any(len(poly) > 1 for poly in _polygons(f["geometry"])) for f in geo["features"])
    with_holes = sum(
        bool((ndi.binary_fill_holes(base[sl] == lab, structure=np.ones((3, 3))) & (base[sl] != lab)).any())
        for lab, sl in enumerate(ndi.find_objects(base), start=1) if sl is not None)
    assert holes == with_holes

    # *_px columns: level 0's bounding boxes and centroids of labels.tif
    table = fibers.set_index("label")
    for lab, sl in enumerate(ndi.find_objects(base), start=1):
        if sl is None:
            continue
        row = table.loc[lab]
        assert (row["bbox_y0_px"], row["bbox_x0_px"], row["bbox_y1_px"], row["bbox_x1_px"]) == \
            (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop), lab
    cy, cx = np.asarray(ndi.center_of_mass(base > 0, base, table.index.to_numpy())).T
    assert np.allclose(table["centroid_y_px"], cy) and np.allclose(table["centroid_x_px"], cx)
    assert np.allclose(table["centroid_x_um"], table["centroid_x_px"] * 0.25)


@pytest.mark.parametrize("shape0", [(40, 60), (41, 59), (97, 31), (120, 88)])
def test_level0_labels_outlines_and_boxes_agree(shape0):
    """Upsampled labels, scaled outlines and scaled boxes are one frame, also for odd sizes."""
    rng = np.random.default_rng(sum(shape0))
    small = ndi.label(rng.random(((shape0[0] + 1) // 2, (shape0[1] + 1) // 2)) > 0.45)[0].astype(np.uint32)
    up = Level0Labels(small, shape0)
    full = up[:, :]
    assert full.shape == shape0 and set(np.unique(full)) <= set(np.unique(small))
    assert np.array_equal(up[3:17:2, 5:], full[3:17:2, 5:])
    scale = (shape0[0] / small.shape[0], shape0[1] / small.shape[1])
    rings = level0_outlines(label_shapes(small), scale)
    drawn = polygons_to_labels(rings, shape0)
    if all(float(v).is_integer() for v in scale):
        assert np.array_equal(drawn, full)
    else:  # a level-0 pixel centre can fall exactly on a scaled edge: a tie either way
        assert (drawn != full).mean() < 1e-3
    boxes = pd.DataFrame([(lab, sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
                          for lab, sl in enumerate(ndi.find_objects(small), start=1) if sl is not None],
                         columns=["label", "bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px"])
    moved = level0_table(boxes, scale).set_index("label")
    for lab, sl in enumerate(ndi.find_objects(full), start=1):
        if sl is not None:
            assert tuple(moved.loc[lab]) == (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)


def test_level0_labels_pyramid_written_from_the_analysis_zarr(tmp_path):
    """labels.tif's levels come straight from the analysis labels (no half-size copy on disk)."""
    import zarr

    from histo.results.writer import write_labels_pyramid

    rng = np.random.default_rng(0)
    small = np.repeat(np.repeat(rng.integers(0, 3000, (30, 40), np.uint32), 7, 0), 7, 1)[:205, :277]
    store = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=small.shape, chunks=(64, 64),
                              dtype=np.uint32)
    store[:] = small
    up = Level0Labels(store, (410, 554))
    full = Level0Labels(small, (410, 554))[:, :]
    path = write_labels_pyramid(tmp_path / "labels.tif", up, pixel_size_um=0.25, tile=64)
    with tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        assert len(levels) == 5 and levels[0].keyframe.is_tiled
        for k, level in enumerate(levels):
            assert np.array_equal(level.asarray(), full[:: 2**k, :: 2**k]), k
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "labels.tif"]
