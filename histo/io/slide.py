"""Lazy, level-by-level access to large slides (SVS, NDPI, pyramidal TIFF, OME-TIFF pyramids).

A :class:`Slide` holds only metadata and the file path; pixels are read on demand, tile by
tile, through tifffile's Zarr view of the file. :meth:`Slide.to_dask` returns a dask array
whose blocks re-open the file in whichever process computes them (file handles are cached
per process), so the array can be sent to a Dask cluster: workers need the same path only.

Pixels come out in the same layouts as :func:`histo.io.image.read_image` (``"YX"``, ``"YXS"``
uint8 RGB, ``"CYX"``); 16-bit RGB is scaled to 8 bits by the bit depth found on the
smallest level. Unlike ``read_image``, slides are not scanned for NaN pixels.

Examples
--------
>>> import tempfile, pathlib, numpy as np, tifffile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "pyr.tif"
>>> rgb = np.full((600, 400, 3), 200, np.uint8)
>>> with tifffile.TiffWriter(path) as tw:
...     tw.write(rgb, tile=(256, 256), subifds=1, photometric="rgb")
...     tw.write(rgb[::2, ::2], tile=(256, 256), subfiletype=1, photometric="rgb")
>>> slide = Slide(path)
>>> slide.level_count, slide.level_shapes, slide.axes
(2, [(600, 400), (300, 200)], 'YXS')
>>> slide.read_region(1, 10, 20, 5, 7).shape
(5, 7, 3)
>>> slide.to_dask(0).chunksize
(256, 256, 3)
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
import tifffile
from skimage.transform import resize

from histo.errors import HistoInputError
from histo.io.files import check_file, sniff_format
from histo.io.image import ImageData, _bit_depth_max, normalise_axes, normalise_values, read_image
from histo.io.pixelsize import tiff_pixel_size

logger = logging.getLogger(__name__)

__all__ = ["Slide", "open_slide"]


@functools.lru_cache(maxsize=16)
def _open_level(path: str, mtime_ns: int, level: int):
    """(TiffFile, zarr array) of one pyramid level, cached per process."""
    import zarr

    tif = tifffile.TiffFile(path)
    store = tif.series[0].aszarr(level=level)
    return tif, zarr.open(store, mode="r")


class _Level:
    """Array-like view of one level in normalised axes; picklable (path + numbers only)."""

    def __init__(self, path: str, level: int, raw_axes: str, raw_shape: tuple[int, ...],
                 axes: str, shape: tuple[int, ...], dtype: np.dtype, rgb_scale: float | None,
                 memory: np.ndarray | None = None):
        self.path, self.level, self.raw_axes, self.raw_shape = path, level, raw_axes, raw_shape
        self.axes, self.shape, self.dtype, self.rgb_scale = axes, shape, np.dtype(dtype), rgb_scale
        self.ndim = len(shape)
        self._memory = memory
        self._mtime_ns = os.stat(path).st_mtime_ns if memory is None else 0

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Window ``[y0:y1, x0:x1]`` (clipped by the caller) in normalised axes."""
        if self._memory is not None:
            return self._memory[:, y0:y1, x0:x1] if self.axes == "CYX" else self._memory[y0:y1, x0:x1]
        _tif, z = _open_level(self.path, self._mtime_ns, self.level)
        key = tuple(slice(y0, y1) if a == "Y" else slice(x0, x1) if a == "X" else slice(None)
                    for a in self.raw_axes)
        block, axes = normalise_axes(np.asarray(z[key]), self.raw_axes, Path(self.path), log=False)
        if axes == "YXS" and block.dtype != np.uint8:
            block = np.clip(np.rint(block.astype(np.float32) * (255.0 / self.rgb_scale)), 0, 255).astype(np.uint8)
        return block

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        iy, ix = (1, 2) if self.axes == "CYX" else (0, 1)
        ys, xs = key[iy], key[ix]
        h, w = self.shape[iy], self.shape[ix]
        (y0, y1, sy), (x0, x1, sx) = ys.indices(h), xs.indices(w)
        block = self.read(y0, max(y0, y1), x0, max(x0, x1))
        rest = list(key)
        rest[iy], rest[ix] = slice(None, None, sy), slice(None, None, sx)
        return block[tuple(rest)]


class Slide:
    """A slide opened for lazy reading (see the module docstring).

    Parameters
    ----------
    path : str or Path
        Pyramidal TIFF, SVS, NDPI, OME-TIFF; any other image histo reads becomes a
        one-level slide held in memory.

    Attributes
    ----------
    path : Path
    axes : {"YX", "YXS", "CYX"}
    dtype : numpy dtype of the pixels returned
    level_count : int
    level_shapes : list of (height, width), level 0 first
    level_downsamples : list of float, level 0 is 1.0
    pixel_size_um : float or None (level 0)
    pixel_size_source : str or None
    channel_names : tuple of str or None
    n_channels : int
    """

    def __init__(self, path: str | os.PathLike):
        self.path = check_file(path)
        self.channel_names = None
        if sniff_format(self.path) == "tiff":
            self._levels = self._open_tiff()
        else:
            image = read_image(self.path)
            self.pixel_size_um, self.pixel_size_source = image.pixel_size_um, image.pixel_size_source
            self._levels = [_Level(str(self.path), 0, image.axes, image.pixels.shape, image.axes,
                                   image.pixels.shape, image.pixels.dtype, None, memory=image.pixels)]
        first = self._levels[0]
        self.axes, self.dtype = first.axes, first.dtype
        self.level_count = len(self._levels)
        iy = 1 if self.axes == "CYX" else 0
        self.level_shapes = [(lv.shape[iy], lv.shape[iy + 1]) for lv in self._levels]
        h0, w0 = self.level_shapes[0]
        self.level_downsamples = [float((h0 / h + w0 / w) / 2) for h, w in self.level_shapes]
        self.n_channels = 1 if self.axes == "YX" else int(first.shape[-1] if self.axes == "YXS" else first.shape[0])

    def _open_tiff(self) -> list[_Level]:
        try:
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                raw_axes = series.axes
                raw_shapes = [tuple(lv.shape) for lv in series.levels]
                dtype = series.dtype
                size, source, self.channel_names = tiff_pixel_size(tif, self.path)
        except Exception as err:  # noqa: BLE001 - any parse failure is a bad file for the user
            raise HistoInputError(f"could not be opened as a slide ({type(err).__name__}: {err}); the "
                                  "file is probably truncated or corrupt", path=self.path) from err
        self.pixel_size_um, self.pixel_size_source = size, source
        probe = np.broadcast_to(np.zeros((), dtype), raw_shapes[0])  # no memory: layout only
        _, axes = normalise_axes(probe, raw_axes, self.path)
        rgb_scale = None
        if axes == "YXS" and dtype != np.uint8:
            _tif, z = _open_level(str(self.path), os.stat(self.path).st_mtime_ns, len(raw_shapes) - 1)
            rgb_scale = float(np.max(z[...])) if dtype.kind == "f" else _bit_depth_max(np.asarray(z[...]))
            rgb_scale = rgb_scale or 1.0
        out_dtype = np.dtype(np.uint8) if axes == "YXS" else dtype
        levels = []
        for i, raw_shape in enumerate(raw_shapes):
            shape = normalise_axes(np.broadcast_to(np.zeros((), dtype), raw_shape), raw_axes, log=False)[0].shape
            levels.append(_Level(str(self.path), i, raw_axes, raw_shape, axes, shape, out_dtype, rgb_scale))
        return levels

    def __repr__(self) -> str:
        return (f"Slide({str(self.path)!r}, axes={self.axes!r}, levels={self.level_shapes}, "
                f"pixel_size_um={self.pixel_size_um})")

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop this process's cached file handles (reopened on the next read)."""
        _open_level.cache_clear()

    def _check_level(self, level: int) -> _Level:
        if not 0 <= int(level) < self.level_count:
            raise ValueError(f"level {level} does not exist: {self.path} has levels 0 to {self.level_count - 1}")
        return self._levels[int(level)]

    def level_pixel_size_um(self, level: int) -> float | None:
        """Micrometres per pixel at ``level`` (None when level 0's is unknown)."""
        self._check_level(level)
        return None if self.pixel_size_um is None else self.pixel_size_um * self.level_downsamples[level]

    def read_region(self, level: int, y: int, x: int, h: int, w: int) -> np.ndarray:
        """Pixels of the window ``[y:y+h, x:x+w]`` in *that level's* coordinates.

        The window is clipped to the level, so it may come back smaller at the edges.
        """
        lv = self._check_level(level)
        H, W = self.level_shapes[level]
        y0, x0 = max(0, int(y)), max(0, int(x))
        y1, x1 = min(H, int(y) + int(h)), min(W, int(x) + int(w))
        if y1 <= y0 or x1 <= x0:
            raise ValueError(f"region y={y} x={x} h={h} w={w} lies outside level {level} of shape {(H, W)}")
        return lv.read(y0, y1, x0, x1)

    def to_dask(self, level: int = 0, chunks: tuple[int, int] | None = None):
        """Lazy dask array of a whole level; blocks follow the file's tiles by default."""
        import dask.array as da

        lv = self._check_level(level)
        ty, tx = chunks or self._native_chunks(level)
        iy = 1 if self.axes == "CYX" else 0
        block = list(lv.shape)
        block[iy], block[iy + 1] = min(ty, lv.shape[iy]), min(tx, lv.shape[iy + 1])
        return da.from_array(lv, chunks=tuple(block), lock=False, asarray=True, fancy=False,
                             meta=np.empty((0,) * lv.ndim, lv.dtype), name=f"slide-{self.path.name}-{level}-"
                             f"{lv._mtime_ns}-{ty}-{tx}")

    def _native_chunks(self, level: int) -> tuple[int, int]:
        if self._levels[level]._memory is not None:
            return (1024, 1024)
        _tif, z = _open_level(str(self.path), self._levels[level]._mtime_ns, level)
        raw = dict(zip(self._levels[level].raw_axes, z.chunks))
        ty, tx = int(raw.get("Y", 512)), int(raw.get("X", 512))
        if tx >= self.level_shapes[level][1] and ty < 256:  # strips: group rows, cap width
            ty = max(256, ty)
        return max(ty, 64), min(max(tx, 64), 4096)

    def image(self, level: int = 0) -> ImageData:
        """A whole level as :class:`~histo.io.image.ImageData` (pixel size scaled to the level)."""
        lv = self._check_level(level)
        H, W = self.level_shapes[level]
        pixels = normalise_values(lv.read(0, H, 0, W), self.axes, self.path)
        return ImageData(pixels=pixels, axes=self.axes, pixel_size_um=self.level_pixel_size_um(level),
                         path=self.path, channel_names=self.channel_names,
                         pixel_size_source=self.pixel_size_source)

    def thumbnail(self, max_px: int = 1024) -> np.ndarray:
        """The whole slide with its long side at most ``max_px`` pixels, in :attr:`axes` layout."""
        fits = [i for i, (h, w) in enumerate(self.level_shapes) if max(h, w) >= max_px]
        level = fits[-1] if fits else 0
        H, W = self.level_shapes[level]
        factor = max(H, W) / max_px
        if factor >= 4:  # big single level: average blocks lazily, never hold the level
            k = int(factor)
            arr = self.to_dask(level)
            axes_k = {1: k, 2: k} if self.axes == "CYX" else {0: k, 1: k}
            arr = da_coarsen(arr, axes_k).compute()
        else:
            arr = self.read_region(level, 0, 0, H, W)
        if self.axes == "CYX":
            arr = np.moveaxis(arr, 0, -1)
        h, w = arr.shape[:2]
        scale = min(1.0, max_px / max(h, w))
        out_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
        if out_hw != (h, w):
            dtype = arr.dtype
            arr = resize(arr, out_hw + arr.shape[2:], preserve_range=True, anti_aliasing=True)
            arr = np.rint(arr).astype(dtype) if dtype.kind in "iu" else arr.astype(dtype)
        return np.moveaxis(arr, -1, 0) if self.axes == "CYX" else arr


def da_coarsen(arr, axes_k: dict[int, int]):
    """Block means of a dask array (excess trimmed), in the array's dtype."""
    import dask.array as da

    dtype = arr.dtype
    arr = arr.rechunk({ax: max(k, arr.chunksize[ax] // k * k) for ax, k in axes_k.items()})
    out = da.coarsen(np.mean, arr.astype(np.float32), axes_k, trim_excess=True)
    return out.round().astype(dtype) if dtype.kind in "iu" else out.astype(dtype)


def open_slide(path: str | os.PathLike) -> Slide:
    """Open a slide for lazy, level-by-level access; see :class:`Slide`.

    Pyramidal TIFF, SVS, NDPI and OME-TIFF pyramids are read tile by tile; other images
    (plain TIFF, PNG, JPEG) become a one-level slide.
    """
    return Slide(path)
