"""Which folders histo may write into, and which files in them are its own.

A slide's result folder ``OUT/<slide-id>/`` is histo's when

* it does not exist yet or is empty, or
* it holds the marker file :data:`MARKER` (``.histo-result``, written with every result), or
* it was written by an earlier histo without the marker: its ``summary.json`` is a JSON
  object with a ``slide`` object and at least one of ``software``, ``batch``, ``n_fibers``
  (every summary histo has written carries them).

Anything else (a file, a symbolic link, a folder of the user's own) is refused with a
:class:`histo.errors.HistoInputError` naming the folder; nothing is deleted. In a folder that
is histo's, only the files of the output contract (:data:`OUTPUT_FILES`) are replaced; every
other entry (the napari review ``review.json`` + ``review/``, a reviewer's notes, ...) is
carried into the new folder (:func:`histo.io.atomic.atomic_directory` with ``keep``).

Examples
--------
>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "s1"
>>> check_result_dir(out) == out          # absent: histo may create it
True
>>> with result_directory(out) as tmp:
...     _ = (tmp / "summary.json").write_text("{}")
>>> sorted(p.name for p in out.iterdir())
['.histo-result', 'summary.json']
>>> _ = (out / "notes.txt").write_text("mine")
>>> with result_directory(out) as tmp:
...     _ = (tmp / "summary.json").write_text("{}")
>>> sorted(p.name for p in out.iterdir())
['.histo-result', 'notes.txt', 'summary.json']
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from histo.errors import HistoInputError
from histo.io.atomic import atomic_directory

__all__ = ["MARKER", "OUTPUT_FILES", "ROOT_FILES", "check_inputs_outside", "check_result_dir",
           "check_root_file", "is_histo_result", "result_directory"]

#: Marker file written into every slide result folder: "this folder is histo's".
MARKER = ".histo-result"
#: The files histo writes into a slide folder (the output contract); only these are replaced.
OUTPUT_FILES = frozenset({"labels.tif", "fibers.csv", "fibers.parquet", "summary.json",
                          "fibers.geojson", "rois.zip", "overlay.png", MARKER})
_SUMMARY_KEYS = ("software", "batch", "n_fibers")


def is_histo_result(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is a slide result folder written by histo (marker or summary)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    if (folder / MARKER).is_file():
        return True
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(summary, dict) and isinstance(summary.get("slide"), dict)
            and any(k in summary for k in _SUMMARY_KEYS))


def check_result_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` when histo may write its results there; else a one-line error.

    Raises
    ------
    HistoInputError
        ``out_dir`` (or its parent) is a file or a symbolic link, or a folder histo did not write.
    """
    out_dir = Path(out_dir)
    parent = out_dir.parent
    if parent.exists() and not parent.is_dir():
        raise HistoInputError("is a file, not a folder; choose another -o folder", path=parent)
    if out_dir.is_symlink():
        raise HistoInputError("is a symbolic link; histo does not write through links: remove it "
                              "or choose another -o folder", path=out_dir)
    if not out_dir.exists():
        return out_dir
    if not out_dir.is_dir():
        raise HistoInputError("exists and is not a folder, so histo will not write a result "
                              "there; move it or choose another -o folder", path=out_dir)
    if not is_histo_result(out_dir) and any(out_dir.iterdir()):
        raise HistoInputError(f"is a folder histo did not write (no {MARKER}, no histo "
                              "summary.json); nothing was changed: move it or choose another "
                              "-o folder", path=out_dir)
    return out_dir


def check_inputs_outside(inputs, out_dir: str | os.PathLike, *, what: str = "results folder") -> None:
    """Refuse inputs that lie in (or are) ``out_dir``: writing there could replace them."""
    out = Path(out_dir).resolve()
    for item in inputs:
        path = Path(item).resolve()
        if path == out or out in path.parents:
            raise HistoInputError(f"is inside the {what} {out}, where histo writes its results; "
                                  "nothing was changed: choose an -o folder outside the inputs",
                                  path=item)


def _cohort_is_ours(head: str) -> bool:
    return head.startswith("slide_id,")


def _report_is_ours(head: str) -> bool:
    return '<meta name="generator" content="histo' in head


#: Files histo writes at the top of a results folder, with how to recognise its own.
ROOT_FILES = {"cohort.csv": _cohort_is_ours, "report.html": _report_is_ours}


def check_root_file(path: str | os.PathLike) -> Path:
    """``path`` when histo may (re)write it (absent, or a cohort.csv / report.html of its own).

    Raises
    ------
    HistoInputError
        A symbolic link, a folder, or a file of the same name that histo did not write.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return path
    recognise = ROOT_FILES.get(path.name, _report_is_ours if path.suffix == ".html" else None)
    ours = False
    if path.is_file() and not path.is_symlink() and recognise is not None:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                ours = recognise(fh.read(4096))
        except OSError:
            ours = False
    if not ours:
        raise HistoInputError("exists and was not written by histo (or is a link or a folder); "
                              "nothing was changed: move it or choose another -o folder", path=path)
    return path


def _not_ours(name: str) -> bool:
    return name not in OUTPUT_FILES


@contextlib.contextmanager
def result_directory(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Write a slide folder atomically, replacing only histo's own files in it.

    Checks ownership (:func:`check_result_dir`), yields an empty temporary folder, adds the
    :data:`MARKER` and swaps it into place, carrying every entry of the old folder that is
    not in :data:`OUTPUT_FILES` (reviews, the user's files) into the new one.
    OS errors (read-only disk, no space, permissions) become a one-line HistoInputError.
    """
    out_dir = check_result_dir(out_dir)
    try:
        with atomic_directory(out_dir, keep=_not_ours) as tmp:
            yield tmp
            (tmp / MARKER).write_text("histo slide result folder: histo replaces only its own "
                                      "files here (labels.tif, fibers.*, summary.json, rois.zip, "
                                      "overlay.png)\n", encoding="utf-8")
    except HistoInputError:
        raise
    except OSError as err:
        raise HistoInputError(f"cannot write the results here ({err.strerror or err}); check "
                              "the disk space and permissions, or choose another -o folder",
                              path=out_dir) from err
