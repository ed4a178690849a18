"""Read images and slides: pixels in one of three layouts, plus a pixel size never guessed.

Every reader returns pixels in one of three layouts (``axes``):

* ``"YX"``  - one grey plane;
* ``"YXS"`` - RGB, ``uint8``; alpha is dropped, 16-bit and float RGB are rescaled to 8 bits
  (by the bit depth actually in use: 12-bit data in 16-bit files stays bright);
* ``"CYX"`` - several channels (fluorescence), in the file's data type.

The pixel size in µm comes from, in this order: OME ``PhysicalSizeX`` (+ unit), the ImageJ
``unit`` with the TIFF ``XResolution``, the Aperio ``MPP`` of an SVS file, the TIFF
resolution tags in inch or cm (NDPI and most scanners), or the PNG/JPEG density. A value
outside 0.05-50 µm/px (72 dpi screenshots, "1 pixel per pixel") is ignored with a warning,
and without metadata the size is ``None``: it is never guessed. Free-text metadata (ImageJ
"Info", which for some files holds the OME of a *parent* image) is deliberately not parsed.

Unreadable input raises one :class:`~histo.errors.HistoInputError` naming the file and the fix.
Lazy access to large pyramidal slides is :func:`open_slide` (see :mod:`histo.io.slide`).

Examples
--------
>>> import tempfile, pathlib, numpy as np, tifffile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "grey.tif"
>>> tifffile.imwrite(path, np.zeros((4, 6), np.uint16), imagej=True,
...                  resolution=(2.0, 2.0), metadata={"unit": "um"})
>>> img = read_image(path)
>>> img.axes, img.shape_yx, img.pixel_size_um, img.pixel_size_source
('YX', (4, 6), 0.5, 'imagej')
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import tifffile
from PIL import Image

from histo.errors import HistoInputError
from histo.io.files import FOREIGN_HINT, check_file, sniff_format
from histo.io.pixelsize import PIXEL_SIZE_RANGE_UM, check_pixel_size, pil_pixel_size, tiff_pixel_size

logger = logging.getLogger(__name__)

__all__ = [
    "PIXEL_SIZE_RANGE_UM",
    "SUPPORTED_FORMATS",
    "ImageData",
    "ImageLike",
    "check_file",
    "image_checksum",
    "read_image",
    "sniff_format",
]

SUPPORTED_FORMATS = "TIFF, OME-TIFF, ImageJ TIFF, SVS, NDPI, pyramidal TIFF, PNG or JPEG"
#: Files whose full-resolution pixels exceed this are refused by read_image (use open_slide).
MAX_IN_MEMORY_BYTES = 4 * 1024**3
#: Environment variable overriding :func:`max_pixels` (a pixel count, e.g. ``200e6``).
MAX_PIXELS_ENV = "HISTO_MAX_PIXELS"
#: Bytes of memory histo budgets per image pixel when reading and analysing it whole.
BYTES_PER_PIXEL_BUDGET = 16
_MAX_PIXELS_CAP = MAX_IN_MEMORY_BYTES // 4          # 1 Gpx whatever the machine
_MAX_PIXELS_FLOOR = 64 * 1024**2                    # 67 Mpx even on a busy small machine


def _available_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def max_pixels() -> int:
    """Largest image (pixels, from the file header) histo decodes whole.

    ``$HISTO_MAX_PIXELS`` when set; otherwise the available memory / 16 bytes per pixel,
    between 67 Mpx and 1 Gpx. The header is checked before any pixel is decoded, so a small
    file announcing a huge image (a decompression bomb) costs nothing.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if text:
        try:
            value = int(float(text))
        except ValueError as err:
            raise HistoInputError(f"{MAX_PIXELS_ENV}={text!r} is not a number of pixels; set it "
                                  "to e.g. 200e6 or unset it") from err
        if value <= 0:
            raise HistoInputError(f"{MAX_PIXELS_ENV}={text!r} must be a positive number of pixels")
        return value
    avail = _available_memory_bytes()
    if avail is None:
        return _MAX_PIXELS_CAP
    return int(min(_MAX_PIXELS_CAP, max(_MAX_PIXELS_FLOOR, avail // BYTES_PER_PIXEL_BUDGET)))


def check_pixel_budget(height: int, width: int, path: Path | None = None) -> None:
    """Refuse an image of ``height`` x ``width`` pixels above :func:`max_pixels` (one line)."""
    n, limit = int(height) * int(width), max_pixels()
    if n > limit:
        raise HistoInputError(
            f"announces {width} x {height} pixels ({n / 1e6:.0f} Mpx), more than histo decodes whole "
            f"here ({limit / 1e6:.0f} Mpx, from the free memory or ${MAX_PIXELS_ENV}); if the image "
            f"is genuine, convert it to a pyramidal TIFF (whole slides are read tile by tile) or "
            f"raise ${MAX_PIXELS_ENV}", path=path)


# --------------------------------------------------------------------------- files
def image_checksum(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, streamed (constant memory), as a hex string.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"; _ = p.write_bytes(b"abc")
    >>> image_checksum(p)[:16]
    'ba7816bf8f01cfea'
    """
    path = check_file(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- data
class ImageLike(Protocol):
    """What histo reads from an image (:class:`ImageData`, from :func:`read_image` or a slide level).

    Functions that take an image are typed with this protocol (``ImageLike | np.ndarray``
    where a bare array is accepted too), so any object with these attributes can stand in
    for an :class:`ImageData` (e.g. a viewer layer's pixels with their metadata).
    """

    @property
    def pixels(self) -> np.ndarray: ...
    @property
    def axes(self) -> str: ...
    @property
    def pixel_size_um(self) -> float | None: ...
    @property
    def pixel_size_source(self) -> str | None: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def shape_yx(self) -> tuple[int, int]: ...
    @property
    def n_channels(self) -> int: ...
    @property
    def is_rgb(self) -> bool: ...
    def plane(self, channel: int | None = None) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class ImageData:
    """Pixels of one image plus what histo needs to know about them.

    Attributes
    ----------
    pixels : ndarray
        ``(Y, X)``, ``(Y, X, 3)`` uint8 RGB, or ``(C, Y, X)``.
    axes : {"YX", "YXS", "CYX"}
    pixel_size_um : float or None
        Micrometres per pixel; ``None`` when the file does not say (never guessed).
    pixel_size_source : str or None
        ``"ome"``, ``"imagej"``, ``"aperio"``, ``"tiff-resolution"``, ``"png-resolution"``,
        ``"jpeg-resolution"``, ``"user"`` or ``None``.
    path : Path or None
    channel_names : tuple of str or None
        From OME metadata when present.
    channel : int or None
        The analysis channel chosen at reading (validated), used by :meth:`plane`.
    """

    pixels: np.ndarray
    axes: str
    pixel_size_um: float | None = None
    pixel_size_source: str | None = None
    path: Path | None = None
    channel_names: tuple[str, ...] | None = None
    channel: int | None = field(default=None)

    def __post_init__(self) -> None:
        expected = {"YX": 2, "YXS": 3, "CYX": 3}
        if self.axes not in expected or np.ndim(self.pixels) != expected[self.axes]:
            raise ValueError(f"axes {self.axes!r} do not fit pixels of shape {np.shape(self.pixels)}")

    @property
    def is_rgb(self) -> bool:
        return self.axes == "YXS"

    @property
    def n_channels(self) -> int:
        """1 for grey, 3 for RGB, C for multichannel."""
        return {"YX": 1, "YXS": int(self.pixels.shape[-1]), "CYX": int(self.pixels.shape[0])}[self.axes]

    @property
    def shape_yx(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        shape = self.pixels.shape
        return (int(shape[1]), int(shape[2])) if self.axes == "CYX" else (int(shape[0]), int(shape[1]))

    def plane(self, channel: int | None = None) -> np.ndarray:
        """One 2-D ``(Y, X)`` plane.

        ``channel`` (default: the channel chosen at reading) picks a channel of a multichannel
        image or a colour component of RGB. Without one, RGB gives its luminance (uint8,
        Rec. 709 weights) and a multichannel image raises HistoInputError asking for a channel.
        """
        c = self.channel if channel is None else validate_channel(channel, self)
        if self.axes == "YX":
            return self.pixels
        if self.axes == "YXS":
            if c is None:
                grey = self.pixels[..., :3].astype(np.float32) @ np.float32([0.2125, 0.7154, 0.0721])
                return np.clip(np.rint(grey), 0, 255).astype(np.uint8)
            return self.pixels[..., c]
        if c is None:
            raise HistoInputError(
                f"has {self.n_channels} channels; choose the one to analyse with channel=N "
                f"(--channel N, 0 to {self.n_channels - 1})", path=self.path,
            )
        return self.pixels[c]


def validate_channel(channel: int | str | None, image: ImageData) -> int | None:
    """Channel index (or OME channel name) checked against ``image``; HistoInputError if invalid."""
    if channel is None:
        return None
    n = image.n_channels
    names = image.channel_names or ()
    if isinstance(channel, str) and not channel.strip().lstrip("-").isdigit():
        lowered = [name.lower() for name in names]
        if channel.lower() in lowered:
            return lowered.index(channel.lower())
        known = f"its channels are {', '.join(names)}" if names else "it has no channel names"
        raise HistoInputError(f"no channel named {channel!r}: {known}; give an index 0 to {n - 1}",
                              path=image.path)
    try:
        index = int(channel)
    except (TypeError, ValueError) as err:
        raise HistoInputError(f"channel must be an integer index, got {channel!r}", path=image.path) from err
    if not 0 <= index < n:
        what = {"YX": "is a single grey plane (only channel 0)",
                "YXS": "is RGB (channels 0=red, 1=green, 2=blue)"}.get(image.axes, f"has {n} channels")
        raise HistoInputError(f"channel {index} does not exist: the image {what}; "
                              f"pass --channel between 0 and {n - 1}", path=image.path)
    return index


# --------------------------------------------------------------------------- layout
def normalise_axes(arr: np.ndarray, axes: str, path: Path | None = None, *,
                   log: bool = True) -> tuple[np.ndarray, str]:
    """Any reader's array + axes string -> ``(pixels, "YX" | "YXS" | "CYX")``.

    Singleton axes are dropped; ``S`` (samples) of size 3/4 becomes RGB (alpha dropped),
    size 2 (grey + alpha) becomes grey; one extra axis of channels (``C``, or an unnamed
    stack ``I``/``Q``) becomes ``CYX``. Z stacks, time series and more than one extra axis
    are refused with a message saying how to save a single plane.
    """
    if len(axes) != arr.ndim:
        raise HistoInputError(f"metadata axes {axes!r} do not match the pixel array {arr.shape}", path=path)
    keep = [i for i, a in enumerate(axes) if a in "YX" or arr.shape[i] > 1]
    arr = arr.reshape([arr.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if "Y" not in axes or "X" not in axes:
        raise HistoInputError(f"is not a 2-D image (axes {axes!r}, shape {arr.shape})", path=path)
    extra = [a for a in axes if a not in "YXS"]
    if "S" in axes:
        s = arr.shape[axes.index("S")]
        if s > 4 and not extra:  # many samples per pixel: multispectral channels
            return normalise_axes(arr, axes.replace("S", "C"), path, log=log)
        if extra:
            raise HistoInputError(f"has RGB samples and extra axes {''.join(extra)!r} ({arr.shape}); "
                                  "save a single RGB plane", path=path)
        arr = np.moveaxis(arr, [axes.index("Y"), axes.index("X"), axes.index("S")], [0, 1, 2])
        if s == 2:
            if log:
                logger.info("%s: grey + alpha image; alpha dropped", path)
            return arr[..., 0], "YX"
        if s == 4 and log:
            logger.info("%s: RGBA image; alpha channel dropped", path)
        return arr[..., :3], "YXS"
    if not extra:
        return np.moveaxis(arr, [axes.index("Y"), axes.index("X")], [0, 1]), "YX"
    if len(extra) > 1:
        raise HistoInputError(f"has axes {axes!r} {arr.shape}: histo measures one 2-D section; "
                              "save the plane to analyse as its own file (Fiji: Image > Duplicate)", path=path)
    a = extra[0]
    n = arr.shape[axes.index(a)]
    if a in "ZT":
        what = {"Z": "a z-stack", "T": "a time series"}[a]
        raise HistoInputError(f"is {what} of {n} planes: histo measures one 2-D section; save the "
                              "plane to analyse as its own file (Fiji: Image > Duplicate)", path=path)
    if a != "C" and log:
        logger.info("%s: treating the %d planes of the stack (axis %r) as channels", path, n, a)
    return np.moveaxis(arr, [axes.index(a), axes.index("Y"), axes.index("X")], [0, 1, 2]), "CYX"


def _bit_depth_max(arr: np.ndarray) -> float:
    """Largest value representable by the bit depth in use (8, 10, 12, 14 or 16 bits)."""
    top = float(arr.max()) if arr.size else 0.0
    for bits in (8, 10, 12, 14, 16):
        if top <= 2**bits - 1:
            return float(2**bits - 1)
    return top


def normalise_values(pixels: np.ndarray, axes: str, path: Path | None = None) -> np.ndarray:
    """Refuse NaN/inf/complex pixels, turn RGB into uint8 and booleans into 0/255 uint8."""
    kind = pixels.dtype.kind
    if kind not in "buif":
        raise HistoInputError(f"has pixels of type {pixels.dtype}, which histo cannot analyse; "
                              "save it as 8/16-bit integers or 32-bit float", path=path)
    if kind == "f":
        bad = ~np.isfinite(pixels)
        n_bad = int(bad.sum())
        if n_bad:
            raise HistoInputError(
                f"has {n_bad} NaN or infinite pixels ({100 * n_bad / bad.size:.2g}% of the image); "
                "replace them before analysis (Fiji: Process > Math > Remove NaNs) or crop them away",
                path=path)
    if kind == "b":
        return pixels.astype(np.uint8) * np.uint8(255)
    if axes != "YXS" or pixels.dtype == np.uint8:
        return pixels
    if pixels.size and float(pixels.min()) < 0:
        raise HistoInputError("is an RGB image with negative values; save it as 8-bit RGB", path=path)
    if kind == "f":
        top = float(pixels.max()) if pixels.size else 1.0
        scale = 1.0 if top <= 1.0 else (255.0 if top <= 255.0 else top)
    else:
        scale = _bit_depth_max(pixels)
    logger.info("%s: %s RGB converted to 8-bit (0..%g -> 0..255)", path, pixels.dtype, scale)
    return np.clip(np.rint(pixels.astype(np.float32) * (255.0 / scale)), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- readers
def _read_tiff(path: Path) -> tuple[np.ndarray, str, float | None, str | None, tuple[str, ...] | None]:
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise HistoInputError("is a TIFF file without any image in it", path=path)
        series = tif.series[0]
        nbytes = math.prod(series.shape) * series.dtype.itemsize
        yx = [n for n, ax in zip(series.shape, series.axes) if ax in "YX"]
        if len(yx) == 2 and not series.is_pyramidal:
            check_pixel_budget(yx[0], yx[1], path)
        if nbytes > MAX_IN_MEMORY_BYTES:
            raise HistoInputError(
                f"is too large to load whole ({nbytes / 1024**3:.1f} GiB at full resolution); "
                "open it lazily with histo.io.slide.open_slide (histo score does this for whole slides)",
                path=path)
        arr = series.asarray(level=0) if series.is_pyramidal else series.asarray()
        axes = series.axes
        size_um, source, names = tiff_pixel_size(tif, path)
    return arr, axes, size_um, source, names


def open_pil_checked(path: Path):
    """``PIL.Image.open`` (header only, nothing decoded) with :func:`check_pixel_budget` applied."""
    budget = max_pixels()
    limit = Image.MAX_IMAGE_PIXELS  # PIL's own guard follows histo's budget while opening
    Image.MAX_IMAGE_PIXELS = budget
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as err:
        raise HistoInputError(f"is too large to decode whole ({err}); convert it to a pyramidal "
                              f"TIFF or raise ${MAX_PIXELS_ENV}", path=path) from err
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    width, height = im.size
    try:
        check_pixel_budget(height, width, path)
    except HistoInputError:
        im.close()
        raise
    return im


def _read_pil(path: Path, fmt: str) -> tuple[np.ndarray, str, float | None, str | None, None]:
    im_file = open_pil_checked(path)
    with im_file as im:
        im.load()
        mode = im.mode
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        elif mode == "1":
            im = im.convert("L")
        size_um, source = pil_pixel_size(im.info, fmt, path)
        arr = np.asarray(im)
    axes = "YX" if arr.ndim == 2 else "YXS"
    return arr, axes, size_um, source, None


def image_from_array(pixels, *, pixel_size_um: float | None = None, axes: str | None = None,
                     channel: int | str | None = None) -> ImageData:
    """An in-memory array as an :class:`ImageData`, as :func:`read_image` would give it.

    Parameters
    ----------
    pixels : array-like
        ``(Y, X)`` grey, ``(Y, X, 3|4)`` RGB(A) or ``(C, Y, X)`` channels.
    pixel_size_um : float, optional
        Micrometres per pixel (``pixel_size_source="user"``); None: unknown, sizes in pixels.
    axes : str, optional
        Axes of ``pixels`` (``"YX"``, ``"YXS"``, ``"CYX"``, or any :func:`normalise_axes`
        takes); default guessed from the shape as above.
    channel : int or str, optional
        Analysis channel of a multichannel image.

    Examples
    --------
    >>> img = image_from_array(np.zeros((20, 30, 3), np.uint8), pixel_size_um=0.5)
    >>> img.axes, img.shape_yx, img.pixel_size_um, img.pixel_size_source
    ('YXS', (20, 30), 0.5, 'user')
    """
    arr = np.asarray(pixels)
    if axes is None:
        if arr.ndim == 2:
            axes = "YX"
        elif arr.ndim == 3 and arr.shape[2] in (3, 4):
            axes = "YXS"
        elif arr.ndim == 3:
            axes = "CYX"
        else:
            raise HistoInputError(f"image must be (Y, X), (Y, X, 3) or (C, Y, X); got shape {arr.shape}")
    arr, axes = normalise_axes(arr, axes)
    arr = normalise_values(arr, axes)
    size = check_pixel_size(pixel_size_um, name="pixel_size_um", in_range=True)
    image = ImageData(pixels=arr, axes=axes, pixel_size_um=size,
                      pixel_size_source="user" if size is not None else None)
    if channel is not None:
        image = dataclasses.replace(image, channel=validate_channel(channel, image))
    return image


def read_image(path: str | os.PathLike, *, pixel_size_um: float | None = None,
               channel: int | str | None = None) -> ImageData:
    """Read an image file into an :class:`ImageData`.

    Parameters
    ----------
    path : str or Path
        TIFF, OME-TIFF, ImageJ TIFF, SVS/NDPI/pyramidal TIFF (full resolution level), PNG or
        JPEG. The format is recognised from the file's content, not its extension.
    pixel_size_um : float, optional
        Micrometres per pixel; overrides the metadata (``pixel_size_source="user"``).
    channel : int or str, optional
        Analysis channel (index, or OME channel name), validated against the image.

    Returns
    -------
    ImageData

    Raises
    ------
    HistoInputError
        Missing, empty, truncated, corrupt or unsupported files, stacks, NaN pixels,
        an implausible ``pixel_size_um`` or a channel that does not exist.
    """
    path = check_file(path)
    fmt = sniff_format(path)
    try:
        if fmt == "tiff":
            arr, axes, size_um, source, names = _read_tiff(path)
        elif fmt in ("png", "jpeg", "bmp", "gif"):
            arr, axes, size_um, source, names = _read_pil(path, fmt)
        else:
            hint = FOREIGN_HINT.get(fmt, "not an image histo can read")
            raise HistoInputError(f"is {hint}; histo reads {SUPPORTED_FORMATS}", path=path)
    except HistoInputError:
        raise
    except MemoryError as err:
        raise HistoInputError("does not fit in memory; open it with histo.io.slide.open_slide", path=path) from err
    except Exception as err:  # noqa: BLE001 - any decoder failure is the same user problem
        raise HistoInputError(
            f"could not be read as {fmt.upper()} ({type(err).__name__}: {err}); the file is probably "
            "truncated or corrupt: copy it again or re-export it", path=path) from err
    pixels, axes = normalise_axes(np.asarray(arr), axes, path)
    pixels = normalise_values(pixels, axes, path)
    if pixel_size_um is not None:
        user = check_pixel_size(pixel_size_um, name="pixel size", path=path, in_range=True)
        if size_um is not None and abs(user - size_um) > 0.01 * size_um:
            logger.warning("%s: --pixel-size %g µm overrides %g µm from the %s metadata",
                           path, user, size_um, source)
        size_um, source = user, "user"
    image = ImageData(pixels=pixels, axes=axes, pixel_size_um=size_um, path=path,
                      channel_names=names, pixel_size_source=source)
    if channel is not None:
        image = ImageData(pixels=pixels, axes=axes, pixel_size_um=size_um, path=path,
                          channel_names=names, pixel_size_source=source,
                          channel=validate_channel(channel, image))
    logger.debug("%s: %s %s %s, pixel size %s (%s)", path, axes, pixels.shape, pixels.dtype,
                 size_um, source)
    return image
