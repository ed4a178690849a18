"""Files given by users: existence, emptiness, permissions, and format sniffed from the bytes.

Shared by :mod:`histo.io.image` (images) and :mod:`histo.io.masks` (masks) so that every reader
reports the same clear :class:`~histo.errors.HistoInputError` for the same problem.

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.tif"; _ = p.write_bytes(bytes([73, 73, 42, 0, 8]))
>>> sniff_format(check_file(p))
'tiff'
"""

from __future__ import annotations

import os
from pathlib import Path

from histo.errors import HistoInputError

__all__ = ["FOREIGN_HINT", "check_file", "sniff_format"]

_MAGIC = {
    b"II*\x00": "tiff", b"MM\x00*": "tiff", b"II+\x00": "tiff", b"MM\x00+": "tiff",
    b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg", b"PK\x03\x04": "zip", b"PK\x05\x06": "zip",
    b"Iout": "roi", b"\x93NUMPY": "npy", b"ZISRAWFI": "czi", b"\x00\x00\x00\x0cjP": "jp2",
    b"\xff\x4f\xff\x51": "jp2", b"BM": "bmp", b"GIF8": "gif", b"\x89HDF": "hdf5",
}
FOREIGN_HINT = {
    "czi": "a Zeiss CZI file: export it to OME-TIFF (Fiji/Bio-Formats, QuPath or bfconvert)",
    "jp2": "a JPEG 2000 file: convert it to TIFF first",
    "hdf5": "an HDF5 file: export the image to TIFF first",
    "zip": "a ZIP archive (an ImageJ ROI set?) - that is a mask, not an image",
    "roi": "an ImageJ ROI - that is a mask, not an image",
}


def check_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path if it is a readable, non-empty file; else HistoInputError."""
    path = Path(path)
    if not path.exists():
        raise HistoInputError("file not found; check the path and the current folder", path=path)
    if path.is_dir():
        raise HistoInputError("is a folder, not a file; give the image file itself", path=path)
    if not os.access(path, os.R_OK):
        raise HistoInputError("cannot be read (permission denied); check its permissions", path=path)
    if path.stat().st_size == 0:
        raise HistoInputError(
            "is empty (0 bytes): the copy or download probably failed; copy it again", path=path
        )
    return path


def sniff_format(path: str | os.PathLike) -> str:
    """Format of a file from its first bytes (never its extension): ``"tiff"``, ``"png"``,
    ``"jpeg"``, ``"zip"``, ``"roi"``, ``"json"``, ``"npy"``, ... or ``"unknown"``."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "unknown"
