"""The cases file (--cases): one reference per slide of a cohort; bad files fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from histo.batch.run import run_batch
from histo.batch.slides import ScoreParams, SlideJob, run_fingerprint
from histo.errors import HistoInputError
from histo.io.atomic import atomic_directory
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


def _recording_slide_fn(job, params, batch_info, progress):
    """Writes a minimal slide folder whose summary records the reference the slide got."""
    ref = params.settings.reference_in_force
    summary = {"slide": {"id": job.slide_id, "path": str(job.path)}, "n_fibers": 1,
               "statistics": {"n_counted": 1, "reference": ref.to_dict()}, "batch": batch_info}
    with atomic_directory(job.out_dir) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary))
        (tmp / "fibers.csv").write_text("label\n1\n")
        (tmp / "labels.tif").write_bytes(b"x")
    return summary


def test_a_cohort_run_gives_each_slide_its_case(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("kid.tif", "rat.tif", "other.tif"):
        (src / name).write_bytes(name.encode())
    cases_csv = tmp_path / "cases.csv"
    cases_csv.write_text("slide,sex,age,species\nkid,female,4,\nrat.tif,,,rat\n")
    params = ScoreParams(settings=ScoringSettings(), cases=read_cases(cases_csv))
    result = run_batch([src], tmp_path / "out", params=params, slide_fn=_recording_slide_fn,
                       show_progress=False, write_report=False)
    ref = result.cohort.set_index("slide_id")["reference"]
    assert ref["kid"] == "child" and ref["rat"] == "rat" and ref["other"] == "adult-male (assumed)"
