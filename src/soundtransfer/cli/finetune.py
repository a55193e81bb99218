"""``soundtransfer finetune``: fine-tune on every official fold held out in turn."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import (
    add_dataset_args,
    add_set_arg,
    open_store,
    parse_folds,
    progress,
)
from soundtransfer.train import PRESETS, TrainConfig


def add_train_args(p: argparse.ArgumentParser) -> None:
    add_dataset_args(p)
    p.add_argument(
        "--weights",
        default="random",
        help="random, supervised, supervised-v2, simclr-v1, simclr-v2, lite0, or a file "
        "(.safetensors/.pt)",
    )
    p.add_argument("--arch", default=None, help="encoder (default: the weights' own, resnet50)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper",
        help="paper: Adam 1e-4, wd 1e-3, batch 32, 70 epochs; cpu: 4 epochs; demo: 2 epochs",
    )
    p.add_argument("--folds", help="hold out only these folds, e.g. 1,2 (default: all)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs directory")
    add_set_arg(
        p,
        "override a training setting (repeatable); keys: "
        + ", ".join(TrainConfig.__dataclass_fields__),
    )


def register(sub: Any) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune encoder + head with cross-validation on the official folds",
        description="Fine-tunes f(.) and g(.) (the paper's Table 1) on each official fold held "
        "out in turn; resumable (last.pt each epoch), finished folds are skipped.",
    )
    add_train_args(p)
    p.set_defaults(handler=run, mode="finetune")


def run(args: argparse.Namespace) -> int:
    from soundtransfer.train import get_train_preset, run_crossval

    cfg = get_train_preset(args.preset, [*args.overrides, f"mode={args.mode}"])
    store = open_store(args, device="cpu")
    result = run_crossval(
        store,
        args.weights,
        args.arch,
        cfg,
        args.out,
        parse_folds(args.folds),
        cache_dir=args.cache,
        progress=progress(args),
    )
    print(f"{result.dataset} {result.arch}.{result.weights} {result.mode}: {result.run_dir}")
    for name, acc in zip(result.splits, result.accuracies, strict=True):
        print(f"  {name:>8}  {acc:6.2f} %")
    print(f"  {'mean':>8}  {result.mean:6.2f} +- {result.std:.2f} %  ({len(result.splits)} splits)")
    return 0
