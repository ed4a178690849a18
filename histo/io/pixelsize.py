"""Pixel size (µm per pixel) from image metadata: OME, ImageJ, Aperio, TIFF and PNG/JPEG tags.

Used by :mod:`histo.io.image` and :mod:`histo.io.slide`. Each source is tried in a fixed order and the
first *plausible* value (0.05 to 50 µm/px for a muscle section) wins; implausible values,
such as the 72 dpi most image editors write, are reported in the log and ignored. Free-text
fields (ImageJ "Info", image descriptions of other vendors) are not parsed on purpose: they
may describe a different (parent) image.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path

from histo.errors import HistoInputError

logger = logging.getLogger(__name__)

__all__ = ["PIXEL_SIZE_RANGE_UM", "check_pixel_size", "pil_pixel_size", "plausible", "tiff_pixel_size",
           "unit_to_um"]

#: Plausible pixel sizes in µm for a muscle section (20x scan ~0.25-0.5, thumbnails ~10-20).
PIXEL_SIZE_RANGE_UM: tuple[float, float] = (0.05, 50.0)

_UNIT_UM = {
    "µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
    "micrometers": 1.0, "micrometres": 1.0, "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3,
    "millimeter": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6, "pm": 1e-6,
    "å": 1e-4, "angstrom": 1e-4, "in": 25400.0, "inch": 25400.0,
}


def plausible(size_um: float | None) -> bool:
    """True for a finite pixel size inside :data:`PIXEL_SIZE_RANGE_UM`.

    Examples
    --------
    >>> plausible(0.5), plausible(352.8), plausible(None)
    (True, False, False)
    """
    if size_um is None:
        return False
    lo, hi = PIXEL_SIZE_RANGE_UM
    return lo <= float(size_um) <= hi  # NaN compares False


def check_pixel_size(value, *, name: str = "pixel_size_um", path: str | Path | None = None,
                     in_range: bool = False) -> float | None:
    """A pixel size given by a user or a caller, as a float in µm per pixel (None stays None).

    The one check of a pixel size at histo's public edge.

    Parameters
    ----------
    value : float, str or None
    name : str, default "pixel_size_um"
        What the caller calls the value (``"--pixel-size"``, ``"pixel size"``), named in
        the messages.
    path : str or Path, optional
        The file the value belongs to, prefixed to the messages.
    in_range : bool, default False
        Also refuse values outside :data:`PIXEL_SIZE_RANGE_UM` (implausible for a muscle
        section: most often pixels per micrometre given instead of micrometres per pixel).

    Raises
    ------
    HistoInputError
        Not a number, not finite or not > 0, or outside the range with ``in_range``.

    Examples
    --------
    >>> check_pixel_size("0.5"), check_pixel_size(None)
    (0.5, None)
    >>> check_pixel_size(0)
    Traceback (most recent call last):
    ...
    histo.errors.HistoInputError: pixel_size_um must be > 0 (micrometres per pixel), got 0
    """
    if value is None:
        return None
    try:
        size = float(value)
    except (TypeError, ValueError) as err:
        raise HistoInputError(f"{name} must be a number of micrometres per pixel, got {value!r}",
                              path=path) from err
    if not math.isfinite(size) or size <= 0:
        raise HistoInputError(f"{name} must be > 0 (micrometres per pixel), got {size:g}", path=path)
    if in_range and not plausible(size):
        lo, hi = PIXEL_SIZE_RANGE_UM
        raise HistoInputError(
            f"{name} {size:g} µm/px is implausible for a muscle section (expected {lo:g} to "
            f"{hi:g}); give micrometres per pixel, not pixels per micrometre", path=path)
    return size


def unit_to_um(unit: str | None) -> float | None:
    """Micrometres in one ``unit`` (OME/ImageJ spelling), or None if not a length unit.

    Examples
    --------
    >>> unit_to_um("micron"), unit_to_um("\\\\u00B5m"), unit_to_um("nm"), unit_to_um("pixel")
    (1.0, 1.0, 0.001, None)
    """
    if not unit:
        return None
    u = str(unit).strip().lower().replace("\\u00b5", "µ").replace("μ", "µ")  # greek mu -> micro sign
    return _UNIT_UM.get(u)


def _take(size_um: float | None, source: str, path, *, loud: bool) -> float | None:
    if size_um is None:
        return None
    if plausible(size_um):
        return float(size_um)
    lo, hi = PIXEL_SIZE_RANGE_UM
    (logger.warning if loud else logger.info)(
        "%s: ignoring the pixel size %.4g µm/px from the %s metadata (outside %g-%g); "
        "pass --pixel-size to set it", path, size_um, source, lo, hi)
    return None


def _ratio(value) -> float | None:
    """TIFF RATIONAL (num, den) or number -> float, None when absent or zero."""
    if value is None:
        return None
    if isinstance(value, tuple):
        num, den = value[0], value[1]
        return None if not den or not num else num / den
    return float(value) or None


def _ome(tif, path) -> tuple[float | None, tuple[str, ...] | None]:
    try:
        root = ET.fromstring(tif.ome_metadata)
    except (ET.ParseError, TypeError, ValueError):
        logger.warning("%s: unreadable OME-XML metadata; pixel size not taken from it", path)
        return None, None
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None, None
    names = tuple(el.get("Name") or f"C{i}" for i, el in enumerate(
        c for c in pixels if c.tag.rsplit("}", 1)[-1] == "Channel"))
    names = names if names and any(not n.startswith("C") or not n[1:].isdigit() for n in names) else None
    size = None
    if pixels.get("PhysicalSizeX"):
        factor = unit_to_um(pixels.get("PhysicalSizeXUnit", "µm"))
        try:
            size = float(pixels.get("PhysicalSizeX")) * factor if factor else None
        except ValueError:
            size = None
        if size and pixels.get("PhysicalSizeY"):
            try:
                size_y = float(pixels.get("PhysicalSizeY")) * (unit_to_um(pixels.get("PhysicalSizeYUnit", "µm")) or 1)
                if abs(size_y - size) > 0.01 * size:
                    logger.warning("%s: pixels are not square (%g x %g µm); using the x size", path, size, size_y)
            except ValueError:
                pass
    return size, names


def tiff_pixel_size(tif, path: Path | str | None = None) -> tuple[float | None, str | None, tuple[str, ...] | None]:
    """Pixel size, its source and OME channel names of an open :class:`tifffile.TiffFile`.

    Returns
    -------
    size_um : float or None
    source : {"ome", "imagej", "aperio", "tiff-resolution"} or None
    channel_names : tuple of str or None
    """
    page = tif.pages.first
    tags = page.tags
    xres = _ratio(tags["XResolution"].value) if "XResolution" in tags else None
    res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    names = None
    if tif.is_ome:
        size, names = _ome(tif, path)
        if (size := _take(size, "OME", path, loud=True)) is not None:
            return size, "ome", names
    if tif.is_imagej:
        meta = tif.imagej_metadata or {}
        factor = unit_to_um(meta.get("unit"))
        if factor and xres:
            if (size := _take(factor / xres, "ImageJ", path, loud=True)) is not None:
                return size, "imagej", names
    description = page.description or ""
    if description.startswith("Aperio"):
        from tifffile.tifffile import svs_description_metadata

        try:
            mpp = svs_description_metadata(description).get("MPP")
        except ValueError:
            mpp = None
        if (size := _take(float(mpp) if mpp else None, "Aperio MPP", path, loud=True)) is not None:
            return size, "aperio", names
    if xres and res_unit in (2, 3):
        per_unit_um = 25400.0 if res_unit == 2 else 10000.0
        if (size := _take(per_unit_um / xres, "TIFF resolution", path, loud=False)) is not None:
            return size, "tiff-resolution", names
    return None, None, names


def pil_pixel_size(info: dict, fmt: str, path=None) -> tuple[float | None, str | None]:
    """Pixel size from a PIL image's ``info["dpi"]`` (PNG pHYs, JPEG JFIF density)."""
    dpi = info.get("dpi")
    if not dpi:
        return None, None
    try:
        x_dpi = float(dpi[0])
    except (TypeError, ValueError, IndexError):
        return None, None
    if not x_dpi > 0:
        return None, None
    size = _take(25400.0 / x_dpi, f"{fmt.upper()} density", path, loud=False)
    return (size, f"{fmt}-resolution") if size is not None else (None, None)
