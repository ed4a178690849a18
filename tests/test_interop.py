"""Outputs other tools read unchanged, CLI habits, optional torch, Python 3.10 (issue 12).

The end-to-end test scores a real IF image (pixel size in the file) and a real H&E patch (no
pixel size) into one results folder with ``python -m histo score ... -q --json`` and reads the
result as a lab bioinformatician would: polars over ``*/fibers.parquet``, pyarrow datasets,
``cohort.csv`` with pandas, ``histo collect``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq
import pytest

import histo
from histo.batch.parallel import Progress
from histo.cli import main
from histo.commands.score import scheduler_of
from histo.measure.fiber_table import (
    COLUMN_NAMES,
    COLUMNS,
    UnregisteredColumnWarning,
    column_reference,
    from_export,
    to_export,
)
from histo.results.tables import read_fiber_table

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
NO_TORCH = "import sys; sys.modules['torch'] = None; from histo.cli import main; sys.exit(main())"


def _run(args, cwd=None, check=True, env=None):
    proc = subprocess.run([PY, *args], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode in (0, 1), f"{args}: rc {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def scored(real_data, tmp_path_factory):
    """An IF image, an H&E patch and a truncated file scored into one OUT (one JSON on stdout)."""
    tmp = tmp_path_factory.mktemp("interop")
    src = tmp / "in"
    src.mkdir()
    shutil.copy(real_data / "if" / "fs_rat.tif", tmp / "rat_if.tif")
    shutil.copy(real_data / "he" / "fs_he_patch.tif", src / "he_patch.tif")
    (src / "broken.tif").write_bytes((real_data / "he" / "fs_he_patch.tif").read_bytes()[:3000])
    out = tmp / "OUT"
    options = ["-o", str(out), "--method", "classical", "--permutations", "99"]
    first = _run(["-m", "histo", "score", str(tmp / "rat_if.tif"), "--channel", "3", *options, "-q"])
    assert first.returncode == 0 and first.stdout == ""  # -q: nothing on stdout
    proc = _run(["-m", "histo", "score", str(src), *options, "-q", "--json"])
    return proc, out


@pytest.mark.slow  # python -m histo in subprocesses: ~35 s for the module's scored folder
def test_score_quiet_json_is_one_document_and_exit_code(scored):
    proc, out = scored
    assert proc.returncode == 1  # the truncated file failed, the others were scored
    doc = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert doc["n_slides"] == 3 and doc["n_failed"] == 1 and Path(doc["results_dir"]) == out
    by_id = {s["slide_id"]: s for s in doc["slides"]}
    assert by_id["broken"]["status"] == "error" and by_id["broken"]["n_fibers"] is None
    assert by_id["he_patch"]["status"] == "scored" and by_id["he_patch"]["n_fibers"] > 0
    assert by_id["rat_if"]["status"] == "unchanged" and by_id["rat_if"]["n_fibers"] > 20  # the first run
    assert "slide_id" not in proc.stderr  # -q: no text table, no progress on stderr


@pytest.mark.slow  # python -m histo in subprocesses: ~35 s for the module's scored folder
def test_fiber_tables_concatenate_with_polars_and_pyarrow(scored):
    pl = pytest.importorskip("polars")
    _, out = scored
    files = sorted(out.glob("*/fibers.parquet"))
    assert [f.parent.name for f in files] == ["he_patch", "rat_if"]
    schemas = [pq.read_schema(f) for f in files]
    assert schemas[0].equals(schemas[1], check_metadata=False)
    assert schemas[0].names == list(COLUMN_NAMES)

    table = pl.read_parquet(str(out / "*" / "fibers.parquet"))
    sizes = [pq.read_metadata(f).num_rows for f in files]
    assert table.height == sum(sizes) and table.columns[0] == "slide_id"
    assert table["slide_id"].unique().sort().to_list() == ["he_patch", "rat_if"]
    assert str(table.schema["n_nuclei"]) == "Int64" and str(table.schema["fiber_type"]) == "String"
    rat = table.filter(pl.col("slide_id") == "rat_if")
    he = table.filter(pl.col("slide_id") == "he_patch")
    assert rat["min_feret_um"].null_count() == 0 and he["min_feret_um"].null_count() == he.height
    assert he["min_feret_px"].null_count() == 0
    ps = json.loads((out / "rat_if" / "summary.json").read_text())["slide"]["pixel_size_um"]
    np.testing.assert_allclose(rat["min_feret_px"].to_numpy() * ps, rat["min_feret_um"].to_numpy())

    dataset = pa_ds.dataset([str(f) for f in files], format="parquet")  # nothing dropped
    assert dataset.schema.names == list(COLUMN_NAMES) and dataset.count_rows() == sum(sizes)
    field = schemas[1].field("min_feret_um")
    assert field.metadata[b"unit"] == b"um" and b"Feret" in field.metadata[b"description"]
    assert json.loads(schemas[1].metadata[b"histo.pixel_size_um"]) == pytest.approx(ps)


@pytest.mark.slow  # python -m histo in subprocesses: ~35 s for the module's scored folder
def test_cohort_csv_has_the_figures_and_integer_counts(scored):
    _, out = scored
    text = (out / "cohort.csv").read_text()
    cohort = pd.read_csv(out / "cohort.csv").set_index("slide_id")
    for col in ("mean_min_feret_um", "median_min_feret_um", "median_min_feret_px", "pct_small", "pct_angular",
                "pct_dark", "pct_sad", "pct_centrally_nucleated", "qc_status", "n_counted", "small_grouping_p"):
        assert col in cohort.columns, col
    assert cohort.loc["rat_if", "median_min_feret_um"] > 10
    assert np.isnan(cohort.loc["he_patch", "median_min_feret_um"])
    assert cohort.loc["he_patch", "median_min_feret_px"] > 5
    assert 0 <= cohort.loc["rat_if", "pct_small"] <= 100
    assert cohort.loc["broken", "status"] == "error"
    # a failed row leaves counts empty, not floats: "82", never "82.0"
    rows = list(csv.DictReader(io.StringIO(text)))
    for name in ("n_fibers", "n_counted", "n_small", "n_sad", "n_small_groups", "n"):
        assert all(r[name] == "" or r[name].isdigit() for r in rows), (name, [r[name] for r in rows])
    assert [r["n_fibers"] == "" for r in rows] == [r["status"] == "error" for r in rows]


def test_cohort_per_type_figures_of_a_typed_slide(real_data, tmp_path):
    from histo.batch.run import cohort_table
    from histo.report.cohort import slide_figures

    assert main(["measure", str(real_data / "if" / "fs_rat.tif"), str(real_data / "if" / "fs_rat_labels.tif"),
                 "-o", str(tmp_path), "--channel", "3", "--type-channels", "I=1,IIa=2", "--nuclei-channel", "0",
                 "-q"]) == 0
    summary = json.loads((tmp_path / "fs_rat" / "summary.json").read_text())
    per_type = summary["fiber_types"]["per_type"]
    table = cohort_table([{"slide_id": "fs_rat", "status": "scored", **slide_figures(summary)},
                          {"slide_id": "bad", "status": "error", "error": "unreadable"}])
    assert table.loc[0, "fiber_types"] == ", ".join(per_type)
    for name, entry in per_type.items():
        assert table.loc[0, f"pct_type_{name}"] == pytest.approx(100 * entry["fraction"])
        assert table.loc[0, f"atrophy_factor_type_{name}"] == pytest.approx(entry["sizes"]["atrophy_factor"])
    assert table.loc[0, "n_centrally_nucleated"] == summary["nuclei"]["n_centrally_nucleated"]
    assert str(table["n_centrally_nucleated"].dtype) == "Int64" and table["n_counted"].isna().tolist() == [False, True]
    fibers = pq.read_table(tmp_path / "fs_rat" / "fibers.parquet").to_pandas()
    assert fibers["fiber_type"].notna().any() and str(fibers["n_nuclei"].dtype) == "Int64"


@pytest.mark.slow  # python -m histo in subprocesses: ~35 s for the module's scored folder
def test_collect_and_read_back(scored, tmp_path, capsys):
    _, out = scored
    proc = _run(["-m", "histo", "collect", str(out), "-o", str(tmp_path / "all.parquet"), "--json"])
    doc = json.loads(proc.stdout)
    table = pq.read_table(tmp_path / "all.parquet")
    assert doc["n_slides"] == 2 and table.num_rows == doc["n_fibers"] > 0
    assert table.column_names == list(COLUMN_NAMES)
    assert main(["collect", str(out), "-o", "-"]) == 0  # "-": CSV on stdout
    on_stdout = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(on_stdout.columns) == list(COLUMN_NAMES) and len(on_stdout) == table.num_rows
    # the pipeline's in-memory table comes back (units of the slide, numpy dtypes)
    rat = read_fiber_table(out / "rat_if")
    assert "min_feret_um" in rat and "min_feret_px" not in rat and "slide_id" not in rat
    assert rat["label"].dtype == np.int64 and rat["is_edge"].dtype == bool
    he = read_fiber_table(out / "he_patch")
    assert "min_feret_px" in he and "min_feret_um" not in he


def test_python_m_histo_version():
    proc = _run(["-m", "histo", "--version"])
    assert proc.stdout.strip() == f"histo {histo.__version__}"


# --------------------------------------------------------------------------- schema registry
def test_columns_doc_is_generated_from_the_registry():
    assert (ROOT / "docs" / "columns.md").read_text(encoding="utf-8") == column_reference(), (
        "docs/columns.md is out of date: python -m histo.measure.fiber_table > docs/columns.md")


def test_registry_is_well_formed():
    assert COLUMN_NAMES[0] == "slide_id" and len(set(COLUMN_NAMES)) == len(COLUMN_NAMES)
    assert {c.dtype for c in COLUMNS} <= {"Int64", "boolean", "string", "float64"}
    for c in COLUMNS:
        if c.name.endswith("_um2"):
            assert c.unit == "um2", c
        elif c.name.endswith("_um"):
            assert c.unit == "um", c
        assert c.description and c.source.startswith("histo."), c


def test_unregistered_column_fails_loudly():
    t = pd.DataFrame({"label": [1, 2], "min_feret_px": [3.0, 4.0], "my_new_measure": [1.0, 2.0]})
    with pytest.warns(UnregisteredColumnWarning, match="my_new_measure"):
        out = to_export(t, slide_id="s", pixel_size_um=None)
    assert list(out.columns) == [*COLUMN_NAMES, "my_new_measure"]  # kept, last
    # and the suite turns that warning into an error (pyproject filterwarnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnregisteredColumnWarning)
        with pytest.raises(UnregisteredColumnWarning):
            to_export(t, slide_id="s", pixel_size_um=None)
    assert "error::histo.measure.fiber_table.UnregisteredColumnWarning" in (ROOT / "pyproject.toml").read_text()


def test_export_dtypes_are_the_same_whatever_is_missing():
    full = pd.DataFrame({"label": [1, 2], "min_feret_um": [5.0, 6.0], "n_nuclei": pd.array([2, 0], dtype="Int64"),
                         "is_centrally_nucleated": [True, False], "fiber_type": ["I", "IIa"]})
    bare = pd.DataFrame({"label": [3], "min_feret_px": [7.0], "n_nuclei": [np.nan],
                         "is_centrally_nucleated": [None], "fiber_type": [None]})
    a = to_export(full, slide_id="a", pixel_size_um=0.5)
    b = to_export(bare, slide_id="b", pixel_size_um=None)
    assert a.dtypes.astype(str).tolist() == b.dtypes.astype(str).tolist()
    assert a["min_feret_px"].tolist() == [10.0, 12.0]
    back = from_export(b)
    assert back["n_nuclei"].isna().all() and "min_feret_um" not in back


# --------------------------------------------------------------------------- CLI habits
def test_verbose_and_quiet_anywhere(tmp_path):
    parse = histo.cli.build_parser
    argv = ["collect", str(tmp_path), "-q"]
    args = parse(argv).parse_args(argv)
    assert histo.cli.verbosity(args) == -1
    argv = ["-v", "collect", str(tmp_path), "-vv"]
    assert histo.cli.verbosity(parse(argv).parse_args(argv)) == 3


def test_eval_json_dash_prints_to_stdout_and_writes_no_file(real_data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels = real_data / "if" / "fs_rat_labels.tif"
    assert main(["eval", str(labels), str(labels), "--json", "-"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["all"]["per_threshold"][0]["f1"] == 1.0 and doc["all"]["n_pairs"] == 82
    assert not (tmp_path / "-").exists() and "IoU" in captured.err
    assert main(["eval", str(labels), str(labels), "--json", "figs.json", "-q"]) == 0
    assert json.loads((tmp_path / "figs.json").read_text())["gt"] == str(labels)


def test_scheduler_from_flag_file_or_environment(tmp_path, monkeypatch):
    ns = dict(scheduler=None, scheduler_file=None, workers=None)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert scheduler_of(argparse.Namespace(**ns)) is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:8786")
    assert scheduler_of(argparse.Namespace(**ns)) == "tcp://127.0.0.1:8786"
    assert scheduler_of(argparse.Namespace(**{**ns, "workers": 2})) is None  # --workers wins
    f = tmp_path / "scheduler.json"
    f.write_text(json.dumps({"address": "tcp://127.0.0.1:9999"}))
    given = scheduler_of(argparse.Namespace(**{**ns, "scheduler_file": f}))
    from histo.batch.parallel import resolve_scheduler
    assert resolve_scheduler(given) == "tcp://127.0.0.1:9999"
    with pytest.raises(histo.HistoInputError, match="no such scheduler file"):
        scheduler_of(argparse.Namespace(**{**ns, "scheduler_file": tmp_path / "missing.json"}))


def test_plain_progress_line_per_slide_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(2, enabled=True, stream=stream)
    progress.slide_done({"slide_id": "a", "status": "scored", "n_fibers": 5, "seconds": 1.0})
    progress.slide_done({"slide_id": "b", "status": "error", "error": "truncated"})
    progress.close()
    assert stream.getvalue().splitlines() == ["[1/2] a: scored, 5 fibers, 1.0 s", "[2/2] b: error: truncated"]


# --------------------------------------------------------------------------- packaging
@pytest.mark.slow  # three subprocesses, ~25 s
def test_measure_and_classical_score_run_without_torch(real_data, tmp_path):
    img = real_data / "he" / "fs_he_patch.tif"
    measured = _run(["-c", NO_TORCH, "measure", str(real_data / "if" / "fs_rat.tif"),
                     str(real_data / "if" / "fs_rat_labels.tif"), "-o", str(tmp_path / "m"), "--channel", "3",
                     "--json"])
    assert measured.returncode == 0 and json.loads(measured.stdout)["summary"]["n_fibers"] == 82
    scored = _run(["-c", NO_TORCH, "score", str(img), "-o", str(tmp_path / "s"), "--method", "classical", "-q"])
    assert scored.returncode == 0 and (tmp_path / "s" / "fs_he_patch" / "fibers.parquet").is_file()
    model = _run(["-c", NO_TORCH, "score", str(img), "-o", str(tmp_path / "t")], check=False)
    assert model.returncode == 2
    assert model.stderr.strip().splitlines() == [
        "histo score: error: the segmentation model needs PyTorch, which is not installed: pip install "
        "'histo[model]' (or torch>=2.2); --method classical and histo measure run without it"]


def test_analyze_takes_a_plain_array_with_pixel_size(real_data):
    import tifffile

    pixels = tifffile.imread(real_data / "if" / "fs_rat.tif")
    labels = tifffile.imread(real_data / "if" / "fs_rat_labels.tif")
    result = histo.analyze(pixels, labels, pixel_size_um=0.9224, stain="if", channel=3)
    assert len(result.fibers) == 82 and result.summary["slide"]["pixel_size_um"] == 0.9224
    assert "min_feret_um" in result.fibers
    with pytest.raises(histo.HistoInputError, match="channel"):
        histo.analyze(pixels, labels, pixel_size_um=0.9224, stain="if")


def test_py_typed_is_shipped():
    assert (ROOT / "histo" / "py.typed").is_file()
    assert '"histo" = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.slow
def test_api_docs_build(tmp_path):
    pytest.importorskip("mkdocstrings")
    proc = subprocess.run([str(Path(PY).parent / "mkdocs"), "build", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    documented = {n for n in histo.__all__ if n not in ("__version__", "ImageLike", "STAINS", "Stain")}
    missing = [n for n in sorted(documented) if 'id="histo.' not in api or f".{n}\"" not in api]
    assert not missing, f"public names missing from docs/api.md: {missing}"
    assert "pixel_size_um" in api and "Parameters" in api  # numpydoc sections rendered


# --------------------------------------------------------------------------- Python 3.10
_PY311_MODULES = {"tomllib", "wsgiref.types"}


def _sources():
    return [p for d in ("histo", "plugins/napari_histo") for p in sorted((ROOT / d).rglob("*.py"))]


def test_no_unguarded_python_311_stdlib_imports():
    """tomllib (3.11+) only inside try/except ModuleNotFoundError with the tomli fallback."""
    bad = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) for n in ast.walk(t)
                   if any(isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                          for h in t.handlers)}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n in _PY311_MODULES for n in names) and id(node) not in guarded:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, f"3.11-only imports without a fallback: {bad}"
    assert "tomli>=1.1; python_version < '3.11'" in (ROOT / "pyproject.toml").read_text()


def _python310() -> str | None:
    found = shutil.which("python3.10")
    if found and subprocess.run([found, "-V"], capture_output=True).returncode == 0:
        return found
    pyenv = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")).glob("versions/3.10*/bin/python3.10"))
    return str(pyenv[-1]) if pyenv else None


@pytest.mark.slow
def test_sources_are_python_310(tmp_path):
    """vermin finds nothing newer than 3.10 (stdlib modules, functions, syntax), and a real 3.10
    interpreter, when the machine has one, compiles every source file."""
    vermin = Path(PY).parent / "vermin"
    if not vermin.exists():
        pytest.skip("vermin is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([str(vermin), "-q", "-t=3.10-", "--violations", "--no-tips", "--eval-annotations",
                           "histo", "plugins/napari_histo"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    probe = tmp_path / "probe.py"  # the check can fail: an unguarded 3.11 import is caught
    probe.write_text("import tomllib\n")
    assert subprocess.run([str(vermin), "-q", "-t=3.10-", "--violations", str(probe)],
                          capture_output=True).returncode != 0
    py310 = _python310()
    if py310 is None:
        return
    script = ("import sys, pathlib\nbad = []\nfor p in sys.argv[1:]:\n"
              "    try: compile(pathlib.Path(p).read_text(encoding='utf-8'), p, 'exec')\n"
              "    except SyntaxError as e: bad.append(f'{p}:{e.lineno}: {e.msg}')\n"
              "print('\\n'.join(bad)); sys.exit(1 if bad else 0)")
    proc = subprocess.run([py310, "-c", script, *map(str, _sources())], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
