"""Finding slides in folders and naming their result folders.

Pure path logic used by :mod:`histo.batch.run`: which files under a folder are slides (images and
whole-slide files, not label files, not our own result folders) and a unique, stable id per
slide even when two folders hold files with the same name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from histo.batch.pipeline import slide_id
from histo.errors import HistoInputError

#: Files scored when found in a folder (``.ome.tif`` is covered by ``.tif``).
SLIDE_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".bif", ".png", ".jpg", ".jpeg")
#: Microscopy formats we recognise but cannot read: listed as error rows, never silently dropped.
UNSUPPORTED_SUFFIXES = (".czi", ".vsi", ".mrxs", ".lif", ".nd2", ".oib", ".oir", ".ims", ".zvi")
#: Mask and label files that sit beside their images (ours, Cellpose, ImageJ habits).
LABEL_MARKERS = ("_labels", "_label", "_cp_masks", "_masks", "_mask", "_rois")

def _is_label_file(path: Path) -> bool:
    stem = path.name.lower().split(".")[0]
    return any(stem.endswith(marker) for marker in LABEL_MARKERS)


def _is_result_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in ("summary.json", "cohort.csv", ".histo-result"))


def _wanted_suffix(path: Path) -> bool:
    return path.suffix.lower() in SLIDE_SUFFIXES + UNSUPPORTED_SUFFIXES


def find_slides(inputs: Iterable[str | Path], *, exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Slide files among ``inputs``: files as given, folders searched recursively.

    In folders, files are kept by suffix (:data:`SLIDE_SUFFIXES`, plus
    :data:`UNSUPPORTED_SUFFIXES` so they surface as error rows); label files, hidden entries,
    result folders (holding ``summary.json``, ``cohort.csv`` or ``.histo-result``) and the ``exclude`` folders are
    skipped. A file named explicitly is always kept. Duplicates are removed, order is sorted.

    Raises
    ------
    HistoInputError
        When an input does not exist or no slide is found.
    """
    excluded = {Path(p).resolve() for p in exclude}
    found: dict[Path, None] = {}
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise HistoInputError("no such file or folder; check the path", path=path)
        if path.is_file():
            found[path.resolve()] = None
            continue
        for sub in sorted(path.rglob("*")):
            rel_parts = sub.relative_to(path).parts
            if any(part.startswith(".") for part in rel_parts) or not sub.is_file():
                continue
            parents = [path.joinpath(*rel_parts[:i]) for i in range(1, len(rel_parts))]
            if any(p.resolve() in excluded or _is_result_dir(p) for p in [path, *parents]):
                continue
            if _wanted_suffix(sub) and not _is_label_file(sub):
                found[sub.resolve()] = None
    if not found:
        names = ", ".join(str(p) for p in inputs)
        raise HistoInputError(f"no slide files found in {names} (looked for "
                              f"{', '.join(SLIDE_SUFFIXES)})")
    return sorted(found)


def assign_slide_ids(paths: Sequence[Path]) -> list[str]:
    """A unique, filesystem-safe id per slide, stable for the same set of inputs.

    The id is the file stem (:func:`histo.batch.pipeline.slide_id`). Slides sharing a stem get the
    names of just enough parent folders to tell them apart (``caseA__slide1``), then the file
    suffix (``slide1_png``), then a counter. Comparison ignores case (macOS, Windows).

    Examples
    --------
    >>> assign_slide_ids([Path("/d/a/s1.tif"), Path("/d/b/s1.tif"), Path("/d/a/s2.tif")])
    ['a__s1', 'b__s1', 's2']
    """
    ids = [slide_id(p) for p in paths]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, sid in enumerate(ids):
        groups[sid.lower()].append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        depth = max(len(paths[i].parent.parts) for i in members)
        for k in range(1, depth + 1):
            cand = {i: "__".join([*(_safe(q) for q in paths[i].parent.parts[-k:]), ids[i]])
                    for i in members}
            if len({c.lower() for c in cand.values()}) == len(members):
                break
        for i in members:
            ids[i] = cand[i]
        if len({ids[i].lower() for i in members}) < len(members):
            for i in members:
                ids[i] = f"{ids[i]}_{_safe(paths[i].suffix.lstrip('.'))}"
    seen: dict[str, int] = {}
    for i, sid in enumerate(ids):  # last resort, also guards against made-up collisions
        n = seen.get(sid.lower(), 0)
        seen[sid.lower()] = n + 1
        if n:
            ids[i] = f"{sid}_{n + 1}"
    return ids


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"
