"""``soundtransfer pretrain``: SimCLR pre-training of an encoder on a folder of images.

One process::

    soundtransfer pretrain --images DIR --out DIR --preset cpu

Several (DDP, negatives gathered across ranks; one GPU per process, or Gloo on CPU)::

    torchrun --nproc-per-node 8 -m soundtransfer.cli.main pretrain --images DIR --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import add_set_arg
from soundtransfer.pretrain.config import PRESETS, PretrainConfig, get_preset


def register(sub: Any) -> None:
    p = sub.add_parser(
        "pretrain",
        help="SimCLR pre-training of an encoder on a folder of images",
        description=(
            "SimCLR pre-training (NT-Xent, LARS, warm-up + cosine) on every jpg/png/webp under "
            "--images; writes OUT/encoder.safetensors (torchvision keys, [0, 1] RGB input) "
            "with encoder.json, log.jsonl and checkpoints/last.pt. Run under torchrun for DDP."
        ),
    )
    p.add_argument("--images", type=Path, required=True, help="folder of images (any nesting)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper",
        help="paper: ResNet-50, batch 4096, 100 epochs, t=0.1, LARS lr 0.3*bs/256; "
        "cpu: ResNet-18, 64 px, batch 16, 4 steps (default: %(default)s)",
    )
    add_set_arg(
        p,
        "override a setting, e.g. --set batch_size=512 --set epochs=10 (repeatable); "
        f"keys: {', '.join(f.name for f in dataclasses.fields(PretrainConfig))}",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoints/last.pt if present"
    )
    p.add_argument("--device", default=None, help="auto, cpu, cuda ... (same as --set device=...)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer import distributed
    from soundtransfer.pretrain.loop import pretrain

    device = [f"device={args.device}"] if args.device else []
    cfg = get_preset(args.preset, [*args.overrides, *device])
    path = pretrain(
        args.images,
        cfg,
        args.out,
        resume=args.resume,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if distributed.is_main():
        print(path)
    return 0
