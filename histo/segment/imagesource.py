"""Reading the image to segment: a lazy (Y, X) or (Y, X, 3) view of any array-like.

:func:`image_source` wraps an ``ImageData`` or a raw numpy / dask / zarr array shaped (Y, X),
(Y, X, 3|4) or (C, Y, X) (with the membrane ``channel``), validates it, and reads regions of
it on demand, so large images are never loaded whole. A (Y, X) plane is fluorescence; RGB is
brightfield.
"""

from __future__ import annotations

import numpy as np

from histo.errors import HistoInputError
from histo.io.channels import pick_channel
from histo.io.image import ImageLike


class ImageSource:
    """Lazy (Y, X) or (Y, X, 3) view of an image, read region by region."""

    def __init__(self, array, axes: str, channel: int | None, path=None):
        self.array, self.axes, self.channel, self.path = array, axes, channel, path
        shape = array.shape
        self.shape_yx = tuple(int(s) for s in (shape[1:3] if axes == "CYX" else shape[:2]))

    @property
    def is_rgb(self) -> bool:
        return self.axes == "YXS"

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        if self.axes == "CYX":
            return np.asarray(self.array[self.channel, ys, xs])
        if self.axes == "YXS":
            return np.asarray(self.array[ys, xs, :3])
        return np.asarray(self.array[ys, xs])

    def strided(self, step: int) -> np.ndarray:
        return self.read(slice(None, None, step), slice(None, None, step))


def image_source(image: ImageLike | np.ndarray, channel: int | None) -> tuple[ImageSource, float | None]:
    """Wrap an ImageData or a raw array-like; return it with its pixel size (if any)."""
    pixel_size = getattr(image, "pixel_size_um", None)
    path = getattr(image, "path", None)
    if hasattr(image, "pixels") and hasattr(image, "axes"):
        array, axes = image.pixels, image.axes
    else:
        array = image
        if not hasattr(array, "shape") or not hasattr(array, "__getitem__"):
            raise HistoInputError(f"image must be an ImageData or an array-like, got {type(image).__name__}")
        if len(array.shape) == 2:
            axes = "YX"
        elif len(array.shape) == 3 and array.shape[2] in (3, 4):
            axes = "YXS"
        elif len(array.shape) == 3:
            axes = "CYX"
        else:
            raise HistoInputError(
                f"image must be (Y, X), (Y, X, 3) or (C, Y, X); got shape {tuple(array.shape)}", path=path
            )
    if axes == "CYX":
        channel = pick_channel(array.shape[0], channel, path=path)
    src = ImageSource(array, axes, channel, path)
    if min(src.shape_yx) < 8:
        raise HistoInputError(f"image too small to segment: {src.shape_yx}", path=path)
    return src, pixel_size
