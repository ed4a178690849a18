"""napari sample data: the bundled H&E mouse muscle slide (``histo.sample_data``)."""

from __future__ import annotations

from napari_histo._reader import read_slide


def sample_slide():
    """The bundled H&E sample (1002 x 1002 RGB, pixel size not recorded) as layer data."""
    from histo.sample_data import demo_image_path

    return read_slide(demo_image_path(), name="cn_img02 (H&E sample)")
