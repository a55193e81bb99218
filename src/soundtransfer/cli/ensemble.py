"""``soundtransfer ensemble``: the average of several runs' test probabilities, as a table row
beside each single run, with the paired comparison split by split."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ensemble",
        help="score the average of several runs' test probabilities (seeds or architectures)",
        description="Averages the test probabilities that finished runs saved in final.json "
        "(fine-tuning and the paper's linear evaluation), split by split, and prints the "
        "ensemble's accuracy beside each member's with the paired comparison (t-test, "
        "sign-flip). Each CELL is a run cell, e.g. runs/esc10/efficientnet_lite0.imagenet/"
        "finetune, all on the same splits and test clips.",
    )
    p.add_argument("cells", type=Path, nargs="+", metavar="CELL", help="run cell (2 or more)")
    p.add_argument(
        "--out", type=Path, default=None, help="also write ensemble.md and ensemble.csv here"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.analysis.ensemble import ensemble_of, ensemble_table
    from soundtransfer.runs.files import refuse_input_as_output

    if args.out is not None:
        refuse_input_as_output(args.out, args.cells)
    result = ensemble_of(args.cells)
    md, table = ensemble_table(result)
    print(f"{result.dataset}: ensemble of {len(result.members)} runs, {len(result.splits)} splits")
    print(md, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "ensemble.md").write_text(md)
        (args.out / "ensemble.csv").write_text(table)
        print(f"written: {args.out / 'ensemble.md'}, {args.out / 'ensemble.csv'}")
    return 0
