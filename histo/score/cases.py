"""The cases file: who each slide of a cohort comes from, so each gets its own reference.

``histo score --cases cases.csv`` reads a CSV with the columns ``slide, sex, age, species,
muscle`` (any order; only ``slide`` is required, empty cells are unknown). ``slide`` names a
slide by its id, its file name or its file stem. Each row sets the slide's normal reference
(:mod:`histo.score.reference`):

* species ``mouse`` or ``rat``: that reference (relative criterion);
* species ``human`` or empty: ``child`` at ``age`` below 15 years, otherwise the adult range
  of ``sex``; without sex the adult male range is assumed and every figure says so.

A bad file fails at once with one line naming the file, the row and the fix.

Examples
--------
>>> cases = parse_cases("slide,sex,age,species,muscle\\nb1,female,6,,deltoid\\nr1,,,rat,TA\\n")
>>> cases["b1"].overrides()
{'reference': 'child', 'age_years': 6.0, 'sex': 'female', 'muscle': 'deltoid'}
>>> cases["r1"].overrides()
{'reference': 'rat', 'muscle': 'TA'}
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from histo.errors import HistoInputError
from histo.score.reference import ADULT_FROM_YEARS, SPECIES

#: Columns a cases file may have (``slide`` is required).
CASE_COLUMNS = ("slide", "sex", "age", "species", "muscle")
_SEXES = {"male": "male", "m": "male", "female": "female", "f": "female"}


@dataclass(frozen=True)
class Case:
    """One row of a cases file."""

    slide: str
    sex: str | None = None
    age_years: float | None = None
    species: str = "human"
    muscle: str | None = None

    def overrides(self) -> dict[str, Any]:
        """The scoring settings this case sets (``ScoringSettings.replace(**overrides)``)."""
        out: dict[str, Any] = {}
        if self.species in ("mouse", "rat"):
            out["reference"] = self.species
        elif self.age_years is not None and self.age_years < ADULT_FROM_YEARS:
            out["reference"] = "child"
        elif self.sex is not None:
            out["reference"] = f"adult-{self.sex}"
        if self.age_years is not None:
            out["age_years"] = self.age_years
        if self.sex is not None:
            out["sex"] = self.sex
        if self.muscle:
            out["muscle"] = self.muscle
        return out


def _row_error(path: str | Path | None, line: int, message: str) -> HistoInputError:
    return HistoInputError(f"row {line}: {message}", path=path)


def parse_cases(text: str, *, path: str | Path | None = None) -> dict[str, Case]:
    """Cases by slide from the text of a cases CSV (see the module docstring).

    Raises
    ------
    HistoInputError
        Missing ``slide`` column, an unknown column, a bad sex / age / species, a slide named
        twice; the message names ``path`` and the row (line number in the file).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    if "slide" not in header:
        raise HistoInputError(f"no 'slide' column; the header must name the columns "
                              f"{', '.join(CASE_COLUMNS)}", path=path)
    unknown = [h for h in header if h not in CASE_COLUMNS]
    if unknown:
        raise HistoInputError(f"unknown column(s) {', '.join(map(repr, unknown))}; allowed: "
                              f"{', '.join(CASE_COLUMNS)}", path=path)
    reader.fieldnames = header
    cases: dict[str, Case] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            raise _row_error(path, line, "more cells than columns in the header")
        cell = {k: (v or "").strip() for k, v in row.items()}
        if not any(cell.values()):
            continue
        slide = cell.get("slide", "")
        if not slide:
            raise _row_error(path, line, "empty 'slide' cell; name the slide (id, file name or stem)")
        sex_text = cell.get("sex", "").lower()
        if sex_text and sex_text not in _SEXES:
            raise _row_error(path, line, f"sex {cell['sex']!r} must be male, female (m, f) or empty")
        age = None
        if cell.get("age"):
            try:
                age = float(cell["age"])
            except ValueError:
                raise _row_error(path, line, f"age {cell['age']!r} must be a number of years "
                                 "or empty") from None
            if not 0 <= age <= 130:
                raise _row_error(path, line, f"age {cell['age']!r} must be between 0 and 130 years")
        species = cell.get("species", "").lower() or "human"
        if species not in SPECIES:
            raise _row_error(path, line, f"species {cell['species']!r} must be one of "
                             f"{', '.join(SPECIES)} or empty (human)")
        if slide in cases:
            raise _row_error(path, line, f"slide {slide!r} is named twice")
        cases[slide] = Case(slide, _SEXES.get(sex_text), age, species,
                            cell.get("muscle") or None)
    return cases


def read_cases(path: str | Path) -> dict[str, Case]:
    """Cases by slide from a cases CSV file (see :func:`parse_cases`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise HistoInputError(f"cannot read the cases file ({err.strerror or err})",
                              path=path) from err
    except UnicodeDecodeError as err:
        raise HistoInputError("the cases file is not UTF-8 text; save it as CSV (UTF-8)",
                              path=path) from err
    return parse_cases(text, path=path)


def case_for(cases: dict[str, Case], slide_id: str, path: str | Path | None = None) -> Case | None:
    """The case of a slide: by slide id, then file name, then file stem; None when absent.

    Examples
    --------
    >>> case_for({"a.tif": Case("a.tif")}, "a", "/data/a.tif").slide
    'a.tif'
    """
    keys = [slide_id]
    if path is not None:
        keys += [Path(path).name, Path(path).stem]
    for key in keys:
        if key in cases:
            return cases[key]
    return None
