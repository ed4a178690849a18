"""Hostile input (issue 15, "never lose a user's data"): every probe ends in a one-line error
or a safe result, and nothing histo did not write is ever deleted or overwritten."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_batch import _fake_slide_fn, _touch

from histo.batch.run import run_batch
from histo.cli import main
from histo.errors import HistoInputError


# ----------------------------------------------------------------------------- helpers
def _slide(folder: Path, name: str = "good") -> tuple[Path, Path]:
    """A 64x64 'H&E' image with 16 square fibers and its label mask (PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    lab = np.zeros((64, 64), np.uint8)
    k = 1
    for y in range(0, 64, 16):
        for x in range(0, 64, 16):
            lab[y + 2:y + 14, x + 2:x + 14] = k
            k += 1
    img = np.full((64, 64, 3), 230, np.uint8)
    img[lab > 0] = (200, 80, 120)
    Image.fromarray(img).save(folder / f"{name}.png")
    Image.fromarray(lab).save(folder / f"{name}_mask.png")
    return folder / f"{name}.png", folder / f"{name}_mask.png"


def _measure(capsys, image, mask, out, *extra) -> tuple[int, str]:
    code = main(["measure", str(image), str(mask), "-o", str(out), "--pixel-size", "2", *extra])
    return code, capsys.readouterr().err


def _one_line_error(err: str, *names: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], (name, lines[0])


def _run(inputs, out, **kw):
    kw.setdefault("slide_fn", _fake_slide_fn)
    kw.setdefault("show_progress", False)
    kw.setdefault("write_report", False)
    return run_batch(inputs, out, **kw)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- 1. ownership
def test_measure_refuses_a_folder_it_did_not_write_and_deletes_nothing(tmp_path, capsys):
    image, mask = _slide(tmp_path / "in")
    mine = tmp_path / "out" / "good"
    _touch(mine / "thesis.docx", b"years of work")
    before = _tree(tmp_path / "out")
    code, err = _measure(capsys, image, mask, tmp_path / "out")
    assert code == 2
    _one_line_error(err, str(mine), "did not write")
    assert _tree(tmp_path / "out") == before


def test_measure_replaces_only_its_own_files_and_keeps_the_review(tmp_path, capsys):
    image, mask = _slide(tmp_path / "in")
    out = tmp_path / "out"
    assert _measure(capsys, image, mask, out)[0] == 0
    folder = out / "good"
    assert (folder / ".histo-result").is_file()
    (folder / "review.json").write_text('{"format": "histo-review"}')
    _touch(folder / "review" / "labels-x.tif", b"edited")
    _touch(folder / "notes.txt", b"mine")
    assert _measure(capsys, image, mask, out)[0] == 0
    assert (folder / "review.json").read_text() == '{"format": "histo-review"}'
    assert (folder / "review" / "labels-x.tif").read_bytes() == b"edited"
    assert (folder / "notes.txt").read_bytes() == b"mine"
    assert (folder / "summary.json").is_file()


def test_a_folder_of_the_previous_version_is_recognised_by_its_summary(tmp_path, capsys):
    image, mask = _slide(tmp_path / "in")
    out = tmp_path / "out"
    assert _measure(capsys, image, mask, out)[0] == 0
    (out / "good" / ".histo-result").unlink()  # written before the marker existed
    assert _measure(capsys, image, mask, out)[0] == 0
    (out / "good" / ".histo-result").unlink()
    (out / "good" / "summary.json").write_text('{"title": "someone else\'s"}')
    code, err = _measure(capsys, image, mask, out)
    assert code == 2 and (out / "good" / "fibers.csv").is_file()


def test_measure_refuses_inputs_inside_the_slide_folder(tmp_path, capsys):
    image, mask = _slide(tmp_path / "P" / "good")
    before = _tree(tmp_path / "P")
    code, err = _measure(capsys, image, mask, tmp_path / "P")
    assert code == 2
    _one_line_error(err, "inside")
    assert _tree(tmp_path / "P") == before


def test_score_refuses_inputs_inside_the_results_folder(tmp_path, capsys):
    _touch(tmp_path / "X" / "case1" / "s1.tif", b"aaaa")
    _touch(tmp_path / "X" / "s1" / "precious.txt", b"keep")
    before = _tree(tmp_path / "X")
    code = main(["score", str(tmp_path / "X" / "case1"), "-o", str(tmp_path / "X"),
                 "--method", "classical", "--no-progress"])
    assert code == 2
    _one_line_error(capsys.readouterr().err, "inside")
    assert _tree(tmp_path / "X") == before


def test_batch_makes_an_error_row_for_a_foreign_folder_and_goes_on(tmp_path):
    src = tmp_path / "in"
    _touch(src / "a.tif", b"aaaa")
    _touch(src / "b.tif", b"bbb")
    out = tmp_path / "out"
    _touch(out / "a" / "data.csv", b"not histo's")
    res = _run([src], out)
    assert list(res.cohort["status"]) == ["error", "scored"]
    assert str(out / "a") in res.cohort.loc[0, "error"]
    assert (out / "a" / "data.csv").read_bytes() == b"not histo's"


def test_output_folder_that_is_a_file_or_read_only_is_a_one_line_error(tmp_path, capsys):
    image, mask = _slide(tmp_path / "in")
    _touch(tmp_path / "file", b"x")
    code, err = _measure(capsys, image, mask, tmp_path / "file")
    assert code == 2
    _one_line_error(err, "file")
    code = main(["score", str(image), "-o", str(tmp_path / "file"), "--method", "classical",
                 "--no-progress"])
    assert code == 2
    _one_line_error(capsys.readouterr().err, "file")
    if os.geteuid() == 0:
        return  # root writes into read-only folders
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, err = _measure(capsys, image, mask, ro)
        assert code == 2
        _one_line_error(err, "ro")
    finally:
        ro.chmod(0o700)


def test_killed_between_the_two_renames_the_old_folder_is_restored(tmp_path):
    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    out = tmp_path / "out"
    _run([tmp_path / "in"], out)
    (out / "a" / "review.json").write_text('{"format": "histo-review"}')
    os.replace(out / "a", out / ".a.old-1234abcd")  # the swap was killed half way
    res = _run([tmp_path / "in"], out)
    assert res.cohort.loc[0, "status"] == "unchanged"
    assert (out / "a" / "review.json").is_file()


# ----------------------------------------------------------------------------- 5. lock and links
def test_lock_file_symlink_is_refused_not_followed(tmp_path):
    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    victim = _touch(tmp_path / "victim.txt", b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".histo-lock").symlink_to(victim)
    with pytest.raises(HistoInputError, match="symbolic link"):
        _run([tmp_path / "in"], out)
    assert victim.read_bytes() == b"precious"


def test_lock_is_exclusive_and_taken_over_from_a_dead_run(tmp_path):
    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".histo-lock").write_text(f"{socket.gethostname()} 999999999")  # dead pid
    assert _run([tmp_path / "in"], out).cohort.loc[0, "status"] == "scored"
    assert not (out / ".histo-lock").exists()


def test_slide_folder_symlink_is_refused(tmp_path):
    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    elsewhere = tmp_path / "elsewhere"
    _touch(elsewhere / "keep.txt", b"keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").symlink_to(elsewhere, target_is_directory=True)
    res = _run([tmp_path / "in"], out)
    assert res.cohort.loc[0, "status"] == "error" and "symbolic link" in res.cohort.loc[0, "error"]
    assert _tree(elsewhere) == {"keep.txt": b"keep"}


def test_atomic_path_never_moves_a_symlink_into_place(tmp_path):
    from histo.io.atomic import atomic_path

    victim = _touch(tmp_path / "victim", b"v")
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.symlink_to(victim)
    assert not (tmp_path / "a.txt").exists() and victim.read_bytes() == b"v"


# ----------------------------------------------------------------------------- 2. damaged files
@pytest.mark.parametrize("tamper", [{"version": "abc"}, {"flags": [1, 2]}, {"saved_at": 12345},
                                    {"flags": {"x": "excluded"}}, {"software": "histo"}])
def test_damaged_review_json_is_one_line_error_and_the_report_goes_on(tmp_path, capsys, tamper):
    from histo.review.state import load_review, save_review

    out = tmp_path / "out"
    for name in ("good", "other"):
        image, mask = _slide(tmp_path / "in", name)
        assert _measure(capsys, image, mask, out)[0] == 0
    save_review(out / "good", None, {1: "excluded"})
    doc = json.loads((out / "good" / "review.json").read_text())
    doc.update(tamper)
    (out / "good" / "review.json").write_text(json.dumps(doc))
    with pytest.raises(HistoInputError, match="review.json") as info:
        load_review(out / "good")
    assert "\n" not in str(info.value)
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "saved review not applied" in html and "other" in html


def test_batch_notes_a_damaged_review_and_goes_on(tmp_path):
    src = tmp_path / "in"
    _touch(src / "a.tif", b"aaaa")
    _touch(src / "b.tif", b"bbb")
    out = tmp_path / "out"
    _run([src], out)
    (out / "a" / "review.json").write_text('{"format": "histo-review", "version": "abc", "flags": []}')
    res = _run([src], out, force=True, write_report=True)
    assert list(res.cohort["status"]) == ["scored", "scored"]
    assert "damaged" in res.cohort.loc[0, "note"]
    assert (out / "a" / "review.json").is_file() and (out / "report.html").is_file()


@pytest.mark.parametrize("summary", ["[]", '{"slide": "x", "n_fibers": 3}',
                                     '{"slide": {}, "evidence": {"figures": [1, 2]}}',
                                     '{"slide": {}, "qc": [], "settings": "x", "statistics": 5}'])
def test_tampered_summary_is_an_error_row_in_the_report(tmp_path, capsys, summary):
    out = tmp_path / "out"
    for name in ("good", "other"):
        image, mask = _slide(tmp_path / "in", name)
        assert _measure(capsys, image, mask, out)[0] == 0
    (out / "good" / "summary.json").write_text(summary)
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "summary.json" in html and "other" in html


# ----------------------------------------------------------------------------- 4. bombs
def _bomb_png(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A PNG of a few hundred bytes whose header announces width x height RGB pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def test_png_bomb_is_refused_from_its_header(tmp_path, capsys, monkeypatch):
    from histo.io.image import read_image

    bomb = _bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1000
    with pytest.raises(HistoInputError, match="40000 x 40000") as info:
        read_image(bomb)  # default budget: at most 1 Gpx, this is 1.6 Gpx
    assert "HISTO_MAX_PIXELS" in str(info.value)
    image, mask = _slide(tmp_path / "in")
    monkeypatch.setenv("HISTO_MAX_PIXELS", "1000")
    code, err = _measure(capsys, image, mask, tmp_path / "out")  # 64 x 64 = 4096 px > 1000
    assert code == 2
    _one_line_error(err, "good.png", "HISTO_MAX_PIXELS")
    monkeypatch.setenv("HISTO_MAX_PIXELS", "5000")
    assert read_image(image).shape_yx == (64, 64)
    code, err = _measure(capsys, image, _bomb_png(tmp_path / "mask.png", 80, 80), tmp_path / "out")
    assert code == 2
    _one_line_error(err, "mask.png", "HISTO_MAX_PIXELS")
    monkeypatch.setenv("HISTO_MAX_PIXELS", "lots")
    code, err = _measure(capsys, image, mask, tmp_path / "out")
    assert code == 2
    _one_line_error(err, "HISTO_MAX_PIXELS")


def test_default_pixel_budget_is_sized_to_the_machine(monkeypatch):
    from histo.io import image

    monkeypatch.delenv("HISTO_MAX_PIXELS", raising=False)
    assert 64 * 1024**2 <= image.max_pixels() <= 1024**3
    monkeypatch.setattr(image, "_available_memory_bytes", lambda: 16 * 100_000_000)
    assert image.max_pixels() == 100_000_000


# ----------------------------------------------------------------------------- 6. one-line errors
def _square(name=None, properties=None) -> dict:
    props = {"name": name} if properties is None else properties
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [[[2, 2], [14, 2], [14, 14], [2, 14], [2, 2]]]}}


@pytest.mark.parametrize("text", [
    json.dumps({"type": "FeatureCollection", "features": [_square(properties="x")]}),
    json.dumps({"type": "FeatureCollection", "features": "abc"}),
    "[" * 100_000 + "]" * 100_000,
    '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": '
    + '{"type": "GeometryCollection", "geometries": [' * 3000 + "{}" + "]}" * 3000 + "}]}",
])
def test_hostile_geojson_is_a_one_line_error(tmp_path, capsys, text):
    image, _ = _slide(tmp_path / "in")
    (tmp_path / "p.geojson").write_text(text)
    code, err = _measure(capsys, image, tmp_path / "p.geojson", tmp_path / "out")
    assert code == 2
    _one_line_error(err, "p.geojson")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["²", "4294967296", "-3", "1e3"])
def test_geojson_names_that_are_not_labels_are_numbered(tmp_path, capsys, name):
    image, _ = _slide(tmp_path / "in")
    (tmp_path / "p.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                    "features": [_square(name)]}))
    code, err = _measure(capsys, image, tmp_path / "p.geojson", tmp_path / "out")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "out" / "good" / "fibers.csv")["label"].tolist() == [1]


@pytest.mark.parametrize("address", ["not a url", "tcp://", "/no/such/scheduler.json"])
def test_bad_scheduler_address_is_a_one_line_error(tmp_path, capsys, address):
    image, _ = _slide(tmp_path / "in")
    code = main(["score", str(image), "-o", str(tmp_path / "out"), "--method", "classical",
                 "--no-progress", "--scheduler", address])
    assert code == 2
    _one_line_error(capsys.readouterr().err, "scheduler")
    assert not (tmp_path / "out").exists()


def test_scheduler_file_is_read_or_refused_in_one_line(tmp_path, capsys):
    from histo.batch.parallel import resolve_scheduler

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"address": "tcp://127.0.0.1:8786", "type": "Scheduler"}))
    assert resolve_scheduler(str(good)) == "tcp://127.0.0.1:8786"
    bad = tmp_path / "sched.json"
    bad.write_text("{}")
    image, _ = _slide(tmp_path / "in")
    code = main(["score", str(image), "-o", str(tmp_path / "out"), "--method", "classical",
                 "--no-progress", "--scheduler", str(bad)])
    assert code == 2
    _one_line_error(capsys.readouterr().err, "sched.json", "scheduler file")


# ----------------------------------------------------------------------------- 3. reviews tied to content
def _grid_labels(split: bool = False, offset: int = 0) -> np.ndarray:
    lab = np.zeros((64, 64), np.uint32)
    k = 1
    for y in range(0, 64, 16):
        for x in range(0, 64, 16):
            lab[y + 2:y + 14, x + 2:x + 14] = k + offset
            k += 1
    if split:  # fiber 2 cut in two halves, fiber 1 a bit smaller (IoU 0.83)
        lab[2:14, 18:24] = 99
        lab[2:4, 2:14] = 0
    return lab


def _labels_slide_fn(job, params, batch_info, progress):
    """Writes real result folders (labels.tif with its random OME UUID) without segmenting;
    stain 'nadh' gives changed labels (renumbered, fiber 2 split)."""
    from histo.results.writer import write_slide_outputs

    labels = _grid_labels(split=params.stain == "nadh", offset=100 if params.stain == "nadh" else 0)
    ids = np.unique(labels[labels > 0])
    fibers = pd.DataFrame({"label": ids, "area_px": [int((labels == i).sum()) for i in ids]})
    summary = {"slide": {"id": job.slide_id, "path": str(job.path)}, "n_fibers": len(ids),
               "batch": batch_info}
    write_slide_outputs(job.out_dir, labels=labels, fibers=fibers, summary=summary)
    return summary


def test_review_survives_force_and_settings_change_with_the_same_labels(tmp_path):
    from histo.review.state import load_review, save_review

    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    out = tmp_path / "out"
    _run([tmp_path / "in"], out, slide_fn=_labels_slide_fn)
    save_review(out / "a", None, {1: "excluded", 2: "confirmed_sad"})
    res = _run([tmp_path / "in"], out, slide_fn=_labels_slide_fn, force=True)
    assert res.cohort.loc[0, "note"] == "saved review kept"
    assert load_review(out / "a").flags == {1: "excluded", 2: "confirmed_sad"}
    # a review saved before pixel checksums existed is re-tied by comparing the pixels
    doc = json.loads((out / "a" / "review.json").read_text())
    del doc["base_labels_pixels_sha256"]
    (out / "a" / "review.json").write_text(json.dumps(doc))
    res = _run([tmp_path / "in"], out, slide_fn=_labels_slide_fn, force=True)
    assert res.cohort.loc[0, "note"] == "saved review kept"
    assert load_review(out / "a").flags == {1: "excluded", 2: "confirmed_sad"}


def test_changed_labels_carry_flags_by_overlap_and_list_the_rest(tmp_path):
    from histo.review.state import load_review, save_review

    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    out = tmp_path / "out"
    _run([tmp_path / "in"], out, slide_fn=_labels_slide_fn)
    save_review(out / "a", None, {1: "excluded", 2: "confirmed_sad", 5: "not_sad"})
    res = _run([tmp_path / "in"], out, slide_fn=_labels_slide_fn, params=_params("nadh"),
               write_report=True)
    note = res.cohort.loc[0, "note"]
    assert "2 of 3 review flag(s) carried over" in note and "1 need re-review" in note
    review = load_review(out / "a")
    assert review.flags == {101: "excluded", 105: "not_sad"}
    assert review.needs_rereview == ({"previous_label": 2, "flag": "confirmed_sad"},)
    summary = json.loads((out / "a" / "summary.json").read_text())
    assert summary["review"]["needs_rereview"] == [{"previous_label": 2, "flag": "confirmed_sad"}]
    assert "need re-review" in (out / "report.html").read_text()
    save_review(out / "a", None, {101: "excluded"})  # a later save keeps the list
    assert load_review(out / "a").needs_rereview == ({"previous_label": 2, "flag": "confirmed_sad"},)


def test_measure_carries_a_review_to_remeasured_labels(tmp_path, capsys):
    from histo.review.state import load_review, save_review

    image, mask = _slide(tmp_path / "in")
    out = tmp_path / "out"
    assert _measure(capsys, image, mask, out)[0] == 0
    save_review(out / "good", None, {1: "excluded", 2: "confirmed_sad"})
    assert _measure(capsys, image, mask, out)[0] == 0  # same mask: same pixels, new file
    assert load_review(out / "good").flags == {1: "excluded", 2: "confirmed_sad"}
    Image.fromarray(_grid_labels(split=True).astype(np.uint8)).save(mask)
    code, err = _measure(capsys, image, mask, out)
    assert code == 0 and "need re-review" in err
    assert load_review(out / "good").flags == {1: "excluded"}


def _params(stain):
    from histo.batch.slides import ScoreParams

    return ScoreParams(stain=stain)


# ----------------------------------------------------------------------------- 7. cohort, workers
def test_cohort_and_report_cover_every_slide_in_the_results_folder(tmp_path):
    _touch(tmp_path / "caseA" / "a.tif", b"aaaa")
    _touch(tmp_path / "caseB" / "b.tif", b"bbb")
    out = tmp_path / "out"
    _run([tmp_path / "caseA"], out)
    res = _run([tmp_path / "caseB"], out)
    assert list(res.cohort["slide_id"]) == ["b", "a"]
    assert list(res.cohort["status"]) == ["scored", "unchanged"]
    assert "earlier run" in res.cohort.loc[1, "note"] and res.n_failed == 0
    assert list(pd.read_csv(out / "cohort.csv")["slide_id"]) == ["b", "a"]


def test_more_workers_than_slides_are_capped_with_a_warning(tmp_path, monkeypatch, caplog):
    import histo.batch.run as run_mod

    seen = {}

    def fake_dask(jobs, params, force, slide_fn, progress, workers, scheduler):
        seen["workers"] = workers
        return [run_mod.process_slide(j, params, force=force, slide_fn=slide_fn) for j in jobs]

    monkeypatch.setattr(run_mod, "run_dask", fake_dask)
    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    with caplog.at_level("WARNING"):
        _run([tmp_path / "in"], tmp_path / "out", workers=64)
    assert seen["workers"] == 1 and "more than the 1 slide" in caplog.text


def test_absurd_pixel_sizes_are_refused_or_ignored(tmp_path, capsys):
    import tifffile

    from histo.io.image import read_image

    image, mask = _slide(tmp_path / "in")
    for value in ("inf", "1e-300", "5000"):
        code, err = _measure(capsys, image, mask, tmp_path / "out", f"--pixel-size={value}")
        assert code == 2
        _one_line_error(err, "pixel size")
    tif = tmp_path / "meta.tif"
    tifffile.imwrite(tif, np.asarray(Image.open(image)), photometric="rgb",
                     metadata={"PhysicalSizeX": 1e-9, "PhysicalSizeY": 1e-9})
    assert read_image(tif).pixel_size_um is None  # implausible metadata is not trusted


def test_a_review_set_aside_twice_keeps_both(tmp_path):
    src = tmp_path / "in"
    a = _touch(src / "a.tif", b"aaaa")
    out = tmp_path / "out"
    _run([src], out, slide_fn=_labels_slide_fn)
    (out / "a" / "review.json").write_text('{"format": "histo-review", "flags": {"1": "excluded"}}')
    a.write_bytes(b"second")
    assert "review-of-previous-input/" in _run([src], out, slide_fn=_labels_slide_fn).cohort.loc[0, "note"]
    (out / "a" / "review.json").write_text('{"format": "histo-review", "flags": {"2": "excluded"}}')
    a.write_bytes(b"third")
    assert "review-of-previous-input-2/" in _run([src], out, slide_fn=_labels_slide_fn).cohort.loc[0, "note"]
    assert '"1"' in (out / "a" / "review-of-previous-input" / "review.json").read_text()
    assert '"2"' in (out / "a" / "review-of-previous-input-2" / "review.json").read_text()


def test_segment_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    image, _ = _slide(tmp_path / "in")
    theirs = _touch(tmp_path / "out" / "good" / "labels.tif", b"my own labels")
    code = main(["segment", str(image), "-o", str(tmp_path / "out"), "--method", "classical"])
    assert code == 2
    _one_line_error(capsys.readouterr().err, "did not write")
    assert theirs.read_bytes() == b"my own labels"
    code = main(["segment", str(image), "-o", str(tmp_path / "in"), "--method", "classical"])
    assert code == 0 and (tmp_path / "in" / "good" / ".histo-result").is_file()
    code = main(["segment", str(image), "-o", str(tmp_path / "in"), "--method", "classical"])
    assert code == 0  # its own folder: rewritten


@pytest.mark.parametrize("name", ["cohort.csv", "report.html"])
def test_cohort_and_report_of_someone_else_are_not_overwritten(tmp_path, capsys, name):
    image, mask = _slide(tmp_path / "in")
    out = tmp_path / "out"
    theirs = _touch(out / name, b"a,b\n1,2\n")
    code = main(["score", str(image), "-o", str(out), "--method", "classical", "--no-progress"])
    assert code == 2
    _one_line_error(capsys.readouterr().err, name, "not written by histo")
    assert theirs.read_bytes() == b"a,b\n1,2\n" and not (out / "good").exists()
    theirs.unlink()
    assert _measure(capsys, image, mask, out)[0] == 0
    _touch(out / name, b"a,b\n1,2\n")
    if name == "report.html":
        assert main(["report", str(out)]) == 2
        assert theirs.read_bytes() == b"a,b\n1,2\n"


@pytest.mark.parametrize("coords", ['[[[2], [14], [14], [2], [2]]]', '[[[2, 2], [NaN, 2], [14, 14], [2, 2]]]',
                                    '[[[2, 2], [Infinity, 2], [14, 14], [2, 2]]]'])
def test_geojson_with_bad_points_is_a_one_line_error(tmp_path, capsys, coords):
    image, _ = _slide(tmp_path / "in")
    (tmp_path / "p.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
        '"geometry": {"type": "Polygon", "coordinates": ' + coords + '}}]}')
    code, err = _measure(capsys, image, tmp_path / "p.geojson", tmp_path / "out")
    assert code == 2
    _one_line_error(err, "p.geojson", "malformed geometry")


def test_roi_zip_bomb_is_refused_before_unpacking(tmp_path, capsys, monkeypatch):
    import zipfile

    import histo.io.masks as masks

    image, _ = _slide(tmp_path / "in")
    bomb = tmp_path / "rois.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("1.roi", b"\0" * 2_000_000)
    monkeypatch.setattr(masks, "MAX_ROI_ZIP_BYTES", 1_000_000)
    code, err = _measure(capsys, image, bomb, tmp_path / "out")
    assert code == 2
    _one_line_error(err, "rois.zip", "unpacks to")


def test_read_only_disk_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import contextlib
    import errno

    import histo.results.folder as folder

    @contextlib.contextmanager
    def read_only(out_dir, keep=None):
        raise OSError(errno.EROFS, "Read-only file system", str(out_dir))
        yield  # pragma: no cover

    monkeypatch.setattr(folder, "atomic_directory", read_only)
    image, mask = _slide(tmp_path / "in")
    code, err = _measure(capsys, image, mask, tmp_path / "out")
    assert code == 2
    _one_line_error(err, "Read-only file system", str(tmp_path / "out" / "good"))


def test_report_survives_a_tampered_cohort_and_covers_folders_added_later(tmp_path, capsys):
    out = tmp_path / "out"
    image, mask = _slide(tmp_path / "in")
    assert _measure(capsys, image, mask, out)[0] == 0
    (out / "cohort.csv").write_text("a,b\n1,2\n")
    assert main(["report", str(out)]) == 2
    _one_line_error(capsys.readouterr().err, "cohort.csv", "slide_id")
    (out / "cohort.csv").write_text("slide_id,status\n../../etc,scored\n,scored\n")
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "not a slide folder name" in html and "good" in html  # good: not listed, found


def test_discovery_skips_folders_marked_as_histo_results(tmp_path):
    from histo.batch.discovery import find_slides

    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    _touch(tmp_path / "in" / "seg" / "a" / "labels.tif", b"x")  # written by histo segment
    _touch(tmp_path / "in" / "seg" / "a" / ".histo-result", b"")
    assert [p.name for p in find_slides([tmp_path / "in"])] == ["a.tif"]
