"""Atomic file and folder writes: a reader sees the old version or the new one, never half.

A killed process (Ctrl-C, out of memory, a batch worker shut down) must not leave a truncated
``fibers.csv`` or half a slide folder that a resumed batch would mistake for a finished one.
Every writer in histo therefore builds its output under a temporary name in the *same*
directory (same file system, so the final :func:`os.replace` is atomic), flushes it to disk
and only then renames it into place.

Temporary names start with a dot and contain ``.partial-`` so that leftovers of a process
killed with SIGKILL are easy to recognise (and :func:`partial_leftovers` lists them).

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.txt", "hello")
>>> (d / "a.txt").read_text()
'hello'
>>> with atomic_directory(d / "slide") as tmp:
...     _ = (tmp / "fibers.csv").write_text("label\\n1\\n")
>>> sorted(p.name for p in (d / "slide").iterdir())
['fibers.csv']
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

_PARTIAL = ".partial-"

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "partial_leftovers",
]


def _partial_name(path: Path) -> Path:
    """A unique hidden sibling of ``path`` that keeps its suffix (writers infer formats from it)."""
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return path.with_name(f".{path.stem}{_PARTIAL}{token}{path.suffix}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    """Persist a rename: fsync the directory entry (a no-op where unsupported, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Write a file under a temporary name, then move it over ``path`` in one step.

    Yields a path in the same directory with the same suffix; write the file there with any
    library. On success it is flushed to disk and renamed to ``path`` (replacing an older
    file); on error it is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        Final location. Its parent directory must exist.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> with atomic_path(target) as tmp:
    ...     np.save(tmp, np.arange(3))
    >>> np.load(target).tolist()
    [0, 1, 2]
    """
    path = Path(path)
    tmp = _partial_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written to the temporary file for {path}")
        if tmp.is_symlink() or not tmp.is_file():  # never move a link into place
            raise FileNotFoundError(f"{tmp}: the temporary file for {path} is not a regular file")
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode(encoding))


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (same inode: nothing is lost if either folder goes), or copy."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(old: Path, new: Path, keep) -> None:
    """Link (or copy) the entries of ``old`` that ``keep(name)`` selects into ``new``."""
    if keep is None or not old.is_dir() or old.is_symlink():
        return
    for entry in sorted(old.iterdir()):
        target = new / entry.name
        if not keep(entry.name) or target.exists() or target.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(target))


@contextlib.contextmanager
def atomic_directory(out_dir: str | os.PathLike, *, keep=None) -> Iterator[Path]:
    """Build a folder in a temporary sibling, then rename it to ``out_dir``.

    The yielded folder is empty. When the ``with`` block ends without error, every file in
    it is flushed to disk, an existing ``out_dir`` is moved aside, the new folder is renamed
    to ``out_dir`` and the old one is deleted. On error (or KeyboardInterrupt) the temporary
    folder is deleted and ``out_dir`` is untouched, so a reader never sees a half-written folder.

    The swap is two renames: if the process is killed *between* them (a window of
    microseconds), ``out_dir`` is missing and the complete new folder stays under its hidden
    temporary name; it is never half-written.

    Parameters
    ----------
    out_dir : str or Path
        Final folder. Its parent is created if needed.
    keep : callable, optional
        ``keep(name) -> bool``: entries of the existing ``out_dir`` to carry into the new
        folder (hard links, or copies where links are impossible) just before the swap, e.g.
        a user's files beside histo's outputs. Without it the old folder is replaced whole.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_name(out_dir)
    tmp.mkdir()
    try:
        yield tmp
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                _fsync_file(Path(root) / name)
            _fsync_dir(Path(root))
        _carry_over(out_dir, tmp, keep)
        old = None
        if out_dir.exists() or out_dir.is_symlink():
            old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(out_dir, old)
        try:
            os.replace(tmp, out_dir)
        except BaseException:
            if old is not None:  # put the previous result back
                os.replace(old, out_dir)
            raise
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(out_dir.parent)
    if old is not None:
        _remove(old)
    logger.debug("wrote %s atomically", out_dir)


def partial_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Temporary files or folders left in ``folder`` by a writer that was killed.

    Parameters
    ----------
    folder : str or Path
        Folder to look into (not recursive).

    Returns
    -------
    list of Path
        Hidden ``.*.partial-*`` entries; safe to delete when no writer is running.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and _PARTIAL in p.name)
