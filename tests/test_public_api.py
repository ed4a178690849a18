import subprocess
import sys

import histo


def test_every_public_name_resolves():
    for name in histo.__all__:
        assert getattr(histo, name) is not None, name


def test_import_histo_loads_no_qt_napari_or_torch():
    light = ("histo.io.image", "histo.io.slide", "histo.io.masks", "histo.segment", "histo.measure.morphometry",
             "histo.score.scoring", "histo.score.summary", "histo.results.writer", "histo.review.session",
             "histo.review.rescore", "histo.report.html", "histo.batch.pipeline", "histo.batch.run",
             "histo.batch.wsi", "histo.commands.measure", "histo.commands.score")
    code = (
        f"import sys, histo, {', '.join(light)}; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'torch') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stage_packages_import_only_the_stages_above_them():
    """Arrows point down the stage order only (docs/architecture.md): checked on module-level imports."""
    import ast
    from pathlib import Path

    order = ["io", "segment", "measure", "score", "results", "review", "report", "batch"]
    # train sits below review in the stage list: learning from reviews (train/reviews.py) reads them
    beside = {"synth": {"io", "segment", "measure"},
              "train": {"io", "segment", "measure", "score", "results", "review", "synth"}}
    root = Path(histo.__file__).parent
    wrong = []
    for path in root.rglob("*.py"):
        stage = path.relative_to(root).parts[0]
        if stage not in order and stage not in beside:
            continue
        allowed = set(order[: order.index(stage) + 1]) if stage in order else beside[stage] | {stage}
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("histo."):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("histo.")]
            for name in names:
                target = name.split(".")[1]
                if target in order + list(beside) and target not in allowed:
                    wrong.append(f"{path.relative_to(root)} imports {name}")
    assert not wrong, wrong
