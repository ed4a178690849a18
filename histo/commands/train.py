"""``histo train``: train the fiber segmentation network.

The shipped model is reproduced with the command written in its model card
(``models/<name>.md``); by default it trains on the real pairs in ``--data`` folders plus
synthetic sections of every stain (and on ``--partial`` image + annotation pairs when given),
and writes ``<output>.safetensors`` + ``<output>.json``.

``histo train --from-reviews RESULTS... -o MODEL`` fine-tunes the shipped model (or
``--init-from``) on slides a pathologist reviewed (:mod:`histo.train.reviews`): it prints the
F1 and small-fiber precision on held-out reviewed fibers before and after, and writes the weights
and a model card ``MODEL.md``. A rerun continues an interrupted run from its checkpoint.
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
    parser.add_argument("--from-reviews", nargs="+", type=Path, default=None, metavar="RESULTS",
                        help="fine-tune on reviewed slides: result folders (RESULTS/<slide-id>/ with a saved "
                             "review, or RESULTS/ holding them); needs -o; resumes an interrupted run")
    parser.add_argument("--holdout", type=float, default=0.2, metavar="FRACTION",
                        help="--from-reviews: share of the reviewed fibers held out for the before/after "
                             "figures (default 0.2)")
    parser.add_argument("--no-synth", action="store_true", help="train on the --data folders only")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="PATH",
                        help="model path without suffix (default: models/<name>)")
    parser.add_argument("--name", default=d.name, help=f"model name (default {d.name})")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimiser steps (default {d.steps}; {REVIEW_STEPS} with --from-reviews)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--crop", type=int, default=d.crop_px, help="training crop side in px")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default {d.lr:g}; {REVIEW_LR:g} with --from-reviews)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--channel", type=int, default=None,
                        help="membrane channel of multichannel images in --data")
    parser.add_argument("--synth-pool", type=int, default=None,
                        help=f"synthetic sections kept in memory (refreshed while training; default "
                             f"{d.synth_pool}, {REVIEW_SYNTH_POOL} with --from-reviews)")
    parser.add_argument("--real-fraction", type=float, default=d.real_fraction,
                        help=f"share of batch samples drawn from the --data pairs (default {d.real_fraction})")
    parser.add_argument("--init-from", default=None, metavar="MODEL",
                        help="start from this model's weights (fine-tuning; name in models/ or path)")
    parser.add_argument("--resume", action="store_true", help="continue from <output>.ckpt.* when present")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads")


#: Defaults of a fine-tuning run on reviews (short, gentle: the base model is already good).
REVIEW_STEPS = 300
REVIEW_LR = 3e-4
REVIEW_SYNTH_POOL = 24


def run(args: argparse.Namespace) -> int:
    from histo.segment.net import models_dir  # first: it sets OMP_WAIT_POLICY before torch loads

    # isort: split
    import torch

    from histo.train.loop import TrainSettings, train

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.from_reviews:
        return run_from_reviews(args)
    settings = TrainSettings(
        name=args.name, steps=args.steps or TrainSettings.steps, batch_size=args.batch_size, crop_px=args.crop,
        lr=args.lr or TrainSettings.lr, seed=args.seed, channel=args.channel,
        synth_pool=TrainSettings.synth_pool if args.synth_pool is None else args.synth_pool,
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


def _review_progress(t0: float):
    def progress(phase: str, done: int, total: int, info: dict) -> None:
        el = (time.perf_counter() - t0) / 60
        if phase == "prepare" and done < total:
            print(f"reading review {done + 1}/{total}: {info.get('slide')}", file=sys.stderr, flush=True)
        elif phase == "prepare":
            print(f"{info.get('samples')} training tiles from the reviews", file=sys.stderr, flush=True)
        elif phase == "evaluate" and done < total:
            print(f"measuring {info.get('model')} on the held-out reviewed fibers", file=sys.stderr, flush=True)
        elif phase == "synth" and done == total:
            print(f"synthetic pool {done}/{total}", file=sys.stderr, flush=True)
        elif phase == "train" and (done % 20 == 0 or done == total):
            print(f"step {done}/{total} loss {info['loss']:.4f} lr {info['lr']:.2e} {el:.1f} min",
                  file=sys.stderr, flush=True)
    return progress


def run_from_reviews(args: argparse.Namespace) -> int:
    """``histo train --from-reviews``: fine-tune, print the held-out figures, write weights and card."""
    from histo.errors import HistoInputError
    from histo.segment.net import _model_paths, models_dir
    from histo.train.reviews import train_from_reviews

    if args.output is None:
        raise HistoInputError("--from-reviews needs -o MODEL (a path for the new model; the shipped "
                              "models are never replaced)")
    out = args.output.with_suffix("") if args.output.suffix in (".safetensors", ".json", ".md") else args.output
    weights = _model_paths(out)[0].resolve()
    shipped = models_dir().resolve()
    if weights.parent == shipped and weights.exists():
        raise HistoInputError(f"{weights.name} is a shipped model; choose another -o path", path=weights)
    t0 = time.perf_counter()
    steps, lr = args.steps or REVIEW_STEPS, args.lr or REVIEW_LR
    command = (f"histo train --from-reviews {' '.join(map(str, args.from_reviews))} -o {out} --steps {steps} "
               f"--lr {lr:g} --holdout {args.holdout:g} --seed {args.seed}"
               + (f" --init-from {args.init_from}" if args.init_from else ""))
    synth_pool = REVIEW_SYNTH_POOL if args.synth_pool is None else args.synth_pool
    command += f" --batch-size {args.batch_size} --crop {args.crop} --synth-pool {synth_pool}"
    res = train_from_reviews(
        args.from_reviews, out, base_model=args.init_from, steps=steps, lr=lr, batch_size=args.batch_size,
        crop_px=args.crop, holdout_fraction=args.holdout, seed=args.seed, device=args.device,
        progress=_review_progress(t0), command=command, synth_pool=synth_pool,
    )
    revs = res.record["reviews"]
    print(f"learned from {sum(r['fibers'] for r in revs)} reviewed fibers ({sum(r['edited'] for r in revs)} "
          f"edited, {sum(r['confirmed'] for r in revs)} confirmed by a flag, {sum(r['seen'] for r in revs)} "
          f"seen in the review walk) and {sum(r['excluded'] for r in revs)} excluded objects "
          f"on {len(revs)} slide(s)")
    ho = res.record["held_out"]
    print(f"held out: {ho['fibers']} reviewed fibers, {ho['negative_regions']} negative regions "
          "(excluded objects, erased predictions)")
    if res.before is None:
        print("no held-out figures: too few reviewed fibers to hold any out")
    else:
        print(f"before ({res.record['base_model']}): {res.before.text()}")
        print(f"after  ({out.name}): {res.after.text()}")
    print(f"model written: {res.weights}; model card: {res.card} ({(time.perf_counter() - t0) / 60:.1f} min)")
    print(f"use it with: histo score SLIDES -o RESULTS --model {res.weights.with_suffix('')}")
    return 0
