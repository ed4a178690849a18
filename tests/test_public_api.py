import subprocess
import sys

import histo


def test_every_public_name_resolves():
    for name in histo.__all__:
        assert getattr(histo, name) is not None, name


def test_import_histo_loads_no_qt_napari_or_torch():
    code = (
        "import sys, histo, histo.batch.pipeline, histo.measure.morphometry, histo.score.scoring, histo.io.image; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'torch') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
