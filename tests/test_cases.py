"""The cases file (--cases): one reference per slide of a cohort; bad files fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from histo.batch.slides import ScoreParams, SlideJob, run_fingerprint
from histo.errors import HistoInputError
from histo.score.cases import Case, case_for, read_cases
from histo.score.settings import ScoringSettings

GOOD = """slide,sex,age,species,muscle
boy_quadriceps,male,6,human,quadriceps
woman.tif,F,44,,deltoid
rat_ta,,,rat,tibialis anterior
anon,,,,
"""


def test_a_good_cases_file_sets_each_slides_reference(tmp_path: Path):
    path = tmp_path / "cases.csv"
    path.write_text(GOOD)
    cases = read_cases(path)
    assert set(cases) == {"boy_quadriceps", "woman.tif", "rat_ta", "anon"}
    base = ScoringSettings(permutations=99)
    refs = {k: base.replace(**c.overrides()).reference_in_force for k, c in cases.items()}
    assert refs["boy_quadriceps"].name == "child" and "6 years" in refs["boy_quadriceps"].label
    assert refs["woman.tif"].name == "adult-female" and "deltoid" in refs["woman.tif"].label
    assert refs["rat_ta"].min_feret_um is None and "tibialis anterior" in refs["rat_ta"].label
    assert refs["anon"].assumed                                  # no sex, no age: said
    assert case_for(cases, "woman", "/data/woman.tif").sex == "female"   # by file name


def test_cases_apply_per_slide_and_enter_the_fingerprint(tmp_path: Path):
    cases = {"a": Case("a", species="mouse")}
    params = ScoreParams(stain="he", settings=ScoringSettings(), cases=cases)
    a = params.for_slide(SlideJob(tmp_path / "a.tif", "a", tmp_path / "out" / "a"))
    b = params.for_slide(SlideJob(tmp_path / "b.tif", "b", tmp_path / "out" / "b"))
    assert a.settings.reference == "mouse" and b.settings.reference is None
    assert a.cases is None and b.cases is None
    assert run_fingerprint("0" * 64, a) != run_fingerprint("0" * 64, b)
    assert params.as_dict() == ScoreParams(stain="he", settings=ScoringSettings()).as_dict()


@pytest.mark.parametrize("text, words", [
    ("slide,sex\na,male\nb,maybe\n", ["row 3", "sex 'maybe'", "male, female"]),
    ("slide,age\na,six\n", ["row 2", "age 'six'", "number of years"]),
    ("slide,species\na,horse\n", ["row 2", "species 'horse'", "human, mouse, rat"]),
    ("slide,sex\na,male\na,female\n", ["row 3", "named twice"]),
    ("name,sex\na,male\n", ["no 'slide' column"]),
    ("slide,weight\na,70\n", ["unknown column", "'weight'"]),
    ("slide,age\n,4\n", ["row 2", "empty 'slide' cell"]),
])
def test_a_bad_cases_file_is_one_line_naming_the_file_and_the_row(tmp_path: Path, text, words):
    path = tmp_path / "cases.csv"
    path.write_text(text)
    with pytest.raises(HistoInputError) as err:
        read_cases(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for w in words:
        assert w in message, message


def test_a_missing_cases_file(tmp_path: Path):
    with pytest.raises(HistoInputError, match="cannot read the cases file"):
        read_cases(tmp_path / "nope.csv")
