"""``soundtransfer reproduce``: the paper's Table 1 and Table 2, resumable.

Examples::

    soundtransfer reproduce --preset cpu --root esc10=../shared/data/esc10
    soundtransfer reproduce --preset paper --root gtzan=data/gtzan --root esc50=data/ESC-50 \\
        --root us8k=data/UrbanSound8K
    torchrun --nproc-per-node 4 -m soundtransfer.cli.main reproduce --preset paper --spread ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import add_cache_arg, add_frontend_arg, add_set_arg, parse_folds
from soundtransfer.config import ConfigError
from soundtransfer.experiments.grid import GRID_PRESETS, get_preset, reproduce


def _parse_roots(items: list[str]) -> dict[str, Path]:
    roots = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--root expects NAME=DIR, got {item!r}")
        roots[name.strip()] = Path(path)
    return roots


def register(sub: Any) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run the paper's grid (Table 1 fine-tuning, Table 2 linear evaluation)",
        description=(
            "Runs every (dataset x weights x mode) cell of a grid preset with cross-validation "
            "on the official folds, skipping finished splits, and writes OUT/results.md and "
            "OUT/results.csv beside the paper's numbers. Under torchrun, --spread deals the "
            "independent runs (cell x held-out fold) to the processes. Presets: "
            + " ".join(f"{k}: {v.label}" for k, v in GRID_PRESETS.items())
        ),
    )
    p.add_argument("--preset", choices=sorted(GRID_PRESETS), default="cpu")
    p.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="dataset root in its official layout, e.g. esc10=../shared/data/esc10 (repeatable); "
        "only the grid's datasets (own data: finetune / linear-eval DIR)",
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs directory")
    p.add_argument("--folds", help="hold out only these folds, e.g. 1,2 (default: all)")
    add_cache_arg(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--spread",
        action="store_true",
        help="under torchrun: deal the runs (cell x fold) to the processes, one GPU each",
    )
    add_set_arg(p, "override a training setting, e.g. --set epochs=10")
    add_frontend_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    roots = _parse_roots(args.root)
    unknown = sorted(set(roots) - set(preset.datasets))
    if unknown:
        raise ConfigError(
            f"--root {unknown[0]}=...: grid {preset.name!r} has the datasets "
            f"{list(preset.datasets)}; reproduce runs the paper's grid, your own data goes "
            "through finetune / linear-eval DIR"
        )
    result = reproduce(
        preset,
        roots,
        args.out,
        folds=parse_folds(args.folds),
        cache_dir=args.cache,
        device=args.device,
        spread=args.spread,
        extra_overrides=args.overrides,
        frontend_overrides=args.frontend_overrides,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    print(result["markdown"])
    print(f"written: {args.out / 'results.md'} and {args.out / 'results.csv'}")
    return 0
