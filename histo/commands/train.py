"""``histo train``: train the fiber segmentation network.

The shipped model is reproduced with the command written in its model card
(``models/<name>.md``); by default it trains on the real pairs in ``--data`` folders plus
synthetic sections of every stain (and on ``--partial`` image + annotation pairs when given),
and writes ``<output>.safetensors`` + ``<output>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from histo.train.loop import TrainSettings

    d = TrainSettings()
    parser.add_argument("--data", type=Path, action="append", default=[], metavar="DIR",
                        help="folder of X.tif + X_labels.png pairs, or one such image (repeatable)")
    parser.add_argument("--partial", nargs=2, action="append", default=[], metavar=("IMAGE", "ANNOTATION"),
                        help="a brightfield image and its partial annotation (GeoJSON of hand-drawn 'fiber' "
                             "and 'no_fiber' polygons, e.g. data/real/annotations/<stem>.geojson; "
                             "unannotated pixels are ignored by the loss; repeatable)")
    parser.add_argument("--partial-fraction", type=float, default=d.partial_fraction,
                        help=f"share of batch samples drawn from --partial images (default {d.partial_fraction})")
    parser.add_argument("--no-synth", action="store_true", help="train on the --data folders only")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="PATH",
                        help="model path without suffix (default: models/<name>)")
    parser.add_argument("--name", default=d.name, help=f"model name (default {d.name})")
    parser.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--crop", type=int, default=d.crop_px, help="training crop side in px")
    parser.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--channel", type=int, default=None,
                        help="membrane channel of multichannel images in --data")
    parser.add_argument("--synth-pool", type=int, default=d.synth_pool,
                        help="synthetic sections kept in memory (refreshed while training)")
    parser.add_argument("--real-fraction", type=float, default=d.real_fraction,
                        help=f"share of batch samples drawn from the --data pairs (default {d.real_fraction})")
    parser.add_argument("--init-from", default=None, metavar="MODEL",
                        help="start from this model's weights (fine-tuning; name in models/ or path)")
    parser.add_argument("--resume", action="store_true", help="continue from <output>.ckpt.* when present")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads")


def run(args: argparse.Namespace) -> int:
    from histo.segment.net import models_dir  # first: it sets OMP_WAIT_POLICY before torch loads

    # isort: split
    import torch

    from histo.train.loop import TrainSettings, train

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TrainSettings(
        name=args.name, steps=args.steps, batch_size=args.batch_size, crop_px=args.crop,
        lr=args.lr, seed=args.seed, channel=args.channel, synth_pool=args.synth_pool,
        real_fraction=args.real_fraction, init_from=args.init_from,
        partial=tuple((str(img), str(ann)) for img, ann in args.partial),
        partial_fraction=args.partial_fraction,
    )
    out = args.output or models_dir() / args.name
    t0 = time.perf_counter()

    def progress(phase: str, done: int, total: int, info: dict) -> None:
        if phase == "synth":
            print(f"synthetic pool {done}/{total}", file=sys.stderr, flush=True)
        elif done % 50 == 0 or done == total:
            el = time.perf_counter() - t0
            print(f"step {done}/{total} loss {info['loss']:.4f} lr {info['lr']:.2e} "
                  f"{el / 60:.1f} min", file=sys.stderr, flush=True)

    path = train(settings, out, data_dirs=args.data, use_synth=not args.no_synth,
                 resume=args.resume, device=args.device, progress=progress)
    print(f"model written: {path} ({(time.perf_counter() - t0) / 60:.1f} min)")
    return 0
