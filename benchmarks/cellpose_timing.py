"""Time a Cellpose-3 network (CPnet, random weights) on an image, from a throwaway venv.

The speed goal of issue 4 compares histo with "a Cellpose-3 network run on the same image with
its diameter set to the fiber size, as Cellpose users do". Cellpose is never a histo
dependency: this script builds (once) a separate venv with ``pip install torch==2.13.0`` then
``pip install 'cellpose<4'`` under ``~/.cache/histo/cellpose3-venv`` (override with
``HISTO_CELLPOSE_VENV``), and runs the timing inside it through a subprocess. Nothing is
downloaded at run time: the network is ``CellposeModel(pretrained_model=False)``, i.e.
``CPnet(nbase=[2, 32, 64, 128, 256], nout=3, sz=3)`` with random weights, which costs the
same as the trained cyto3 weights.

What is timed: ``CellposeModel.eval(image, diameter=D, channels=[0, 0], compute_masks=...)``,
i.e. Cellpose's own pipeline: normalisation, rescaling by ``30 / D`` (its ``diam_mean``),
tiled inference on 224-px tiles with overlap, resampling of the flows to the input size,
on the CPU with torch's default threads. ``seconds`` is the network part
(``compute_masks=False``), a lower bound of a real Cellpose run; with ``with_masks=True`` the
mask-dynamics step is timed as well (``seconds_with_masks``), but with random weights its
cost is not representative of trained weights. One warm-up call precedes the timed runs.

Use from another benchmark (same process, ratios printed from one run)::

    from benchmarks.cellpose_timing import cellpose_seconds   # or importlib from the path
    cp = cellpose_seconds("data/real/he/cn_img01.tif", diameter_px=100)
    print(cp["seconds"], cp["seconds_per_mp"])

Command line (prints the JSON)::

    .venv/bin/python benchmarks/cellpose_timing.py data/real/he/cn_img01.tif --diameter 100
    .venv/bin/python benchmarks/cellpose_timing.py data/real/he/regen_section.jpg --diameter 28 --crop 2048
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_VENV = Path(os.environ.get("HISTO_CELLPOSE_VENV", "~/.cache/histo/cellpose3-venv")).expanduser()
TORCH_PIN = "torch==2.13.0"
CELLPOSE_SPEC = "cellpose<4"
_STAMP = ".histo-cellpose-ok"


def ensure_venv(venv: Path = DEFAULT_VENV, *, quiet: bool = True) -> Path:
    """Build the throwaway Cellpose venv once; return its python. Safe to call concurrently."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    stamp = venv / _STAMP
    if stamp.is_file() and python.is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if stamp.is_file() and python.is_file():
            return python
        q = ["-q"] if quiet else []
        if not python.is_file():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # torch first, pinned: the CPU build; an unpinned torch would pull the CUDA wheels
        subprocess.run([str(python), "-m", "pip", "install", *q, TORCH_PIN], check=True)
        subprocess.run([str(python), "-m", "pip", "install", *q, CELLPOSE_SPEC], check=True)
        versions = subprocess.run(
            [str(python), "-c", "import cellpose, torch; from importlib.metadata import version; "
             "print(version('cellpose'), torch.__version__)"],
            check=True, capture_output=True, text=True).stdout.strip()
        stamp.write_text(versions + "\n")
    return python


def cellpose_seconds(image_path, diameter_px: float, channel: int | None = None, *,
                     crop=None, repeats: int = 1, with_masks: bool = False,
                     venv: Path = DEFAULT_VENV) -> dict:
    """Seconds Cellpose-3 (CPnet, random weights, CPU) takes on one image.

    Parameters
    ----------
    image_path : path
        TIFF (``(Y, X)``, ``(Y, X, 3)`` or ``(C, Y, X)``) or PNG / JPEG.
    diameter_px : float
        Fiber diameter in pixels given to Cellpose (it rescales the image by ``30 / diameter``).
    channel : int, optional
        Plane of a multichannel image to segment (0-based); RGB is run as grayscale otherwise.
    crop : int or (y, x, h, w), optional
        Time a crop: an int is a centred square of that side.
    repeats : int
        Timed runs after one warm-up; the median is reported.
    with_masks : bool
        Also time ``compute_masks=True`` (flow dynamics; not representative with random weights).

    Returns
    -------
    dict
        ``seconds``, ``seconds_per_mp``, ``megapixels``, ``shape`` (timed input), ``rescale``,
        ``n_params``, ``threads``, ``cellpose``, ``torch``, ``runs`` (every timed run),
        ``cpu_seconds`` (process CPU time, all threads: steadier than wall time on a busy
        machine), ``load_average_1min`` and, with masks, ``seconds_with_masks``.
    """
    python = ensure_venv(venv)
    request = {"image": str(Path(image_path).resolve()), "diameter": float(diameter_px),
               "channel": channel, "crop": crop, "repeats": int(repeats),
               "with_masks": bool(with_masks)}
    done = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", json.dumps(request)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cellpose timing failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------
# inside the Cellpose venv (numpy, tifffile, cv2, torch, cellpose; no histo)


def _read(path: str, channel, crop):
    import numpy as np

    if path.lower().endswith((".tif", ".tiff")):
        import tifffile

        img = tifffile.imread(path)
    else:
        import cv2

        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise SystemExit(f"cannot read {path}")
        if img.ndim == 3:
            img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    img = np.squeeze(img)
    if img.ndim == 3 and img.shape[-1] not in (3, 4):  # (C, Y, X)
        img = img[channel if channel is not None else 0]
    elif img.ndim == 3 and channel is not None:
        img = img[..., channel]
    if crop is not None:
        if isinstance(crop, int):
            h = w = min(crop, img.shape[0], img.shape[1])
            y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        else:
            y, x, h, w = crop
        img = img[y:y + h, x:x + w]
    return np.ascontiguousarray(img)


def _worker(request: dict) -> dict:
    import logging
    from importlib.metadata import version
    from statistics import median

    import torch
    from cellpose import models

    logging.disable(logging.WARNING)
    img = _read(request["image"], request["channel"], request["crop"])
    model = models.CellposeModel(gpu=False, pretrained_model=False, model_type=None)
    n_params = sum(p.numel() for p in model.net.parameters())
    kwargs = dict(diameter=request["diameter"], channels=[0, 0], channel_axis=-1 if img.ndim == 3 else None)
    model.eval(img[:256, :256], compute_masks=False, **kwargs)  # warm-up (threads, MKL-DNN)
    runs, cpu = [], []
    for _ in range(max(1, request["repeats"])):
        t0, c0 = time.perf_counter(), time.process_time()
        model.eval(img, compute_masks=False, **kwargs)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    mp = img.shape[0] * img.shape[1] / 1e6
    out = {
        "seconds": median(runs),
        "seconds_per_mp": median(runs) / mp,
        "megapixels": mp,
        "shape": list(img.shape),
        "diameter_px": request["diameter"],
        "rescale": 30.0 / request["diameter"],
        "n_params": n_params,
        "threads": torch.get_num_threads(),
        "cellpose": version("cellpose"),
        "torch": torch.__version__,
        "runs": runs,
        "cpu_seconds": median(cpu),
        "load_average_1min": os.getloadavg()[0],
    }
    if request["with_masks"]:
        t0 = time.perf_counter()
        model.eval(img, compute_masks=True, **kwargs)
        out["seconds_with_masks"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?")
    parser.add_argument("--diameter", type=float, help="fiber diameter in px given to Cellpose")
    parser.add_argument("--channel", type=int, default=None)
    parser.add_argument("--crop", type=int, default=None, help="time a centred square crop of this side")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--with-masks", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    if not args.image or not args.diameter:
        parser.error("IMAGE and --diameter are required")
    result = cellpose_seconds(args.image, args.diameter, args.channel, crop=args.crop,
                              repeats=args.repeats, with_masks=args.with_masks)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
