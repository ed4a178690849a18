"""A non-editable install (``pip install .`` into a clean venv) works on its own.

Installs torch==2.13.0 (the CPU build on this machine's disk) and then the project into a
fresh virtual environment, and runs the installed ``histo`` from a folder outside the source
tree, so nothing can come from the checkout: weights, plugin manifest and sample data must
all be inside the installed package.
"""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, timeout=900):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _tracked(pattern_dir: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", pattern_dir], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [Path(p) for p in out if not p.endswith(".py")]


@pytest.mark.slow
def test_clean_venv_install_runs_outside_the_checkout(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    work = tmp_path / "elsewhere"
    work.mkdir()
    _run([py, "-m", "pip", "install", "-q", "torch==2.13.0"], work)
    _run([py, "-m", "pip", "install", "-q", str(ROOT)], work)

    where = _run(
        [py, "-c",
         "import histo, histo_models, histo.sample_data as s; "
         "print(histo.__file__); print(histo_models.weights_dir()); print(s.demo_image_path())"],
        work,
    ).stdout.split()
    histo_file, weights_dir, sample = (Path(p) for p in where)
    assert "site-packages" in histo_file.parts, histo_file
    assert sample.is_file()

    # Every shipped non-Python file of models/ and the plugin is in the installed package.
    for rel in _tracked("models"):
        assert (weights_dir / rel.name).is_file(), f"{rel} missing from the installed package"
    for rel in _tracked("plugins/napari_histo"):
        installed = histo_file.parents[1] / "napari_histo" / rel.relative_to("plugins/napari_histo")
        assert installed.is_file(), f"{rel} missing from the installed package"

    # The installed command measures the bundled sample with its reference mask.
    histo_cmd = env_dir / "bin" / "histo"
    labels = sample.with_name("cn_img02_labels.png")
    _run([histo_cmd, "measure", sample, labels, "-o", work / "out"], work)
    summary = json.loads((work / "out" / "cn_img02" / "summary.json").read_text())
    assert summary["n_fibers"] == 55

    if any(p.suffix == ".safetensors" for p in _tracked("models")):
        _run([histo_cmd, "segment", sample, "-o", work / "seg"], work)
        assert (work / "seg" / "cn_img02" / "labels.tif").is_file()
