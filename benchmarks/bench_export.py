"""Outline and label-file speed on a real whole-section mask (NCL-SM S60: 9720x10132, 586 fibers).

Run: .venv/bin/python benchmarks/bench_export.py [path/to/labels.tiff]

Prints seconds for histo's exact outline tracing, rasterisation, pyramidal OME-TIFF writing and
ROI/GeoJSON export, each with its ratio to a common baseline measured in the same process:
cv2.findContours on the same per-label crops (boundary-pixel centres, not exact), cv2.fillPoly,
and one flat tifffile.imwrite of the whole array.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage as ndi

from histo.io.masks import read_labels
from histo.io.polygons import label_polygons, polygons_to_labels
from histo.results.writer import fibers_geojson, write_labels_pyramid, write_roi_zip

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def cv2_contours(labels):
    out = {}
    for i, sl in enumerate(ndi.find_objects(labels)):
        if sl is None:
            continue
        crop = (labels[sl] == i + 1).astype(np.uint8)
        cs, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        best = max(cs, key=cv2.contourArea)[:, 0, :] + [sl[1].start, sl[0].start]
        out[i + 1] = best
    return out


def cv2_fill(polys, shape):
    out = np.zeros(shape, np.int32)
    for label, ring in polys.items():
        cv2.fillPoly(out, [np.round(ring).astype(np.int32)], int(label))
    return out


def main(path: Path) -> None:
    labels, t_read = timed(read_labels, path)
    n = len(np.unique(labels)) - 1
    print(f"{path.name}: {labels.shape}, {n} fibers, read+validate {t_read:.2f} s")
    rings, t_trace = timed(label_polygons, labels)
    base, t_base = timed(cv2_contours, labels)
    print(f"label_polygons (exact pixel edges)  {t_trace:7.2f} s | cv2.findContours {t_base:6.2f} s | ratio {t_trace / t_base:5.2f}")
    back, t_fill = timed(polygons_to_labels, rings, labels.shape)
    _, t_cv = timed(cv2_fill, rings, labels.shape)
    print(f"polygons_to_labels                  {t_fill:7.2f} s | cv2.fillPoly     {t_cv:6.2f} s | ratio {t_fill / t_cv:5.2f}")
    print(f"  round trip identical pixels: {(back == labels).mean() * 100:.4f}% "
          f"({int((back != labels).sum())} px differ, diagonal-only pixels)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, t_pyr = timed(write_labels_pyramid, tmp / "labels.tif", labels, pixel_size_um=0.5)
        _, t_flat = timed(tifffile.imwrite, tmp / "flat.tif", labels, compression="zlib")
        print(f"write_labels_pyramid (tiled, levels) {t_pyr:6.2f} s | flat imwrite      {t_flat:6.2f} s | ratio {t_pyr / t_flat:5.2f}"
              f" | sizes {(tmp / 'labels.tif').stat().st_size / 1e6:.1f} MB vs {(tmp / 'flat.tif').stat().st_size / 1e6:.1f} MB")
        fibers = pd.DataFrame({"label": sorted(rings), "area_px": 1.0})
        geo, t_geo = timed(fibers_geojson, None, fibers, rings)
        _, t_roi = timed(write_roi_zip, tmp / "rois.zip", rings, fibers)
        n_vertices = sum(len(r) for r in rings.values())
        print(f"fibers_geojson {t_geo:.2f} s, write_roi_zip {t_roi:.2f} s ({n_vertices} vertices)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "real" / "masks" / "nclsm_S60_labels.tiff")
