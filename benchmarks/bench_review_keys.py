"""A reviewer's round on the sample slide with the keyboard alone: key presses per fiber.

Runs ``tests/napari/test_review_queue.py::test_keyboard_round`` (a real napari viewer under
Xvfb, 1366×768, the bundled H&E sample segmented with the shipped model): Space opens the
review queue, then one flag key per queued fiber (S / N / Delete / R, no modifier, by the
reason it is queued) flags it and moves on. Every key is a real Qt key event sent to napari's
canvas and counted, as key events and as physical keys (a Shift chord would count 2). It prints the queue (items per reason), the key events, key events per fiber, the
fixed zoom of the walk and how long each key event took on the GUI thread (the first step
also adds the "review focus" layer; a step selects, centres and outlines the fiber and its
neighbours; a flag updates the table and colours, then the walk steps on).

Target (issue 14): every SAD candidate and small fiber flagged in <= 2 key presses per fiber.

Run: ``.venv/bin/python benchmarks/bench_review_keys.py``  (pytest-xvfb starts Xvfb)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "keys.json"
        env = {**os.environ, "HISTO_BENCH_OUT": str(out)}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/napari/test_review_queue.py::test_keyboard_round"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )
        if proc.returncode != 0 or not out.is_file():
            print(proc.stdout[-3000:], proc.stderr[-2000:])
            print("FAILED: the keyboard round did not pass")
            return 1
        figures = json.loads(out.read_text())
    print(json.dumps(figures, indent=2))
    ok = figures["presses_per_fiber"] <= 2.0
    print(f"{figures['key_presses']} key presses ({figures['key_events']} key events) for "
          f"{figures['queue_items']} queued objects "
          f"({figures['sad_or_small_fibers']} SAD candidates or small fibers among them): "
          f"{figures['presses_per_fiber']:.3f} per fiber (target <= 2): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
