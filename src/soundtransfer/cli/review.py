"""``soundtransfer review``: detections cut into clips to mark, and thresholds from the marks.

``review DETECTIONS --audio DIR --out REVIEW`` writes the clips, ``review.csv`` and
``review.html`` (:mod:`soundtransfer.detection.review`); ``review --marked CSV --precision P
--out thresholds.csv`` writes the thresholds ``predict --thresholds`` reads and a figure
(:mod:`soundtransfer.detection.calibrate`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import warn
from soundtransfer.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "review",
        help="cut detections into clips to mark yes/no (CSV and a page), or fit per-class "
        "thresholds reaching a target precision from the marked CSV",
        description="Two steps. 1: review DETECTIONS --audio DIR --out REVIEW. 2: review "
        "--marked REVIEW/review-marked.csv --precision 0.9 --out thresholds.csv.",
    )
    p.add_argument(
        "detections",
        type=Path,
        nargs="?",
        help="a detections table of predict (Raven, CSV, JSON) or its --out folder",
    )
    p.add_argument("--audio", type=Path, help="where the recordings are (if not at their path)")
    p.add_argument("--out", type=Path, required=True, help="review folder, or thresholds file")
    p.add_argument("--per-class", type=int, default=20, help="detections per class (default 20)")
    p.add_argument("--top", type=int, default=5, help="of which the best-scoring (default 5)")
    p.add_argument("--bins", type=int, default=5, help="score bins the rest come from (5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random picks")
    p.add_argument("--pad", type=float, default=1.0, help="context either side of a clip, s")
    p.add_argument(
        "--embed-audio",
        action="store_true",
        help="put the clips in the page (one file to send; large) instead of linking clips/",
    )
    p.add_argument("--marked", type=Path, help="a marked review CSV: fit thresholds from it")
    p.add_argument(
        "--precision", type=float, default=0.9, help="target precision per class (default 0.9)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if (args.detections is None) == (args.marked is None):
        raise ConfigError("review takes DETECTIONS (to cut clips) or --marked CSV (to fit)")
    if args.marked is not None:
        return _fit(args)
    from soundtransfer.detection.review import REVIEW_HTML, ReviewConfig, make_review

    config = ReviewConfig(args.per_class, args.top, args.bins, args.seed, args.pad,
                          embed_audio=args.embed_audio)  # fmt: skip
    audio = args.audio if args.audio is not None else Path(".")
    rows = make_review(args.detections, audio, args.out, config)
    classes = len({r["class"] for r in rows})
    print(f"{len(rows)} clip(s) of {classes} class(es): open {args.out / REVIEW_HTML}, mark, "
          "save; then review --marked the saved CSV")  # fmt: skip
    return 0


def _fit(args: argparse.Namespace) -> int:
    from soundtransfer.detection.calibrate import write_thresholds

    fit, figure = write_thresholds(args.marked, args.precision, args.out)
    for c in fit.curves:
        if math.isinf(c.threshold):
            print(f"{c.label}: not reached (best precision {c.at:.3f}): written as inf")
        else:
            print(f"{c.label}: threshold {c.threshold:.4f} (precision {c.at:.3f}, {c.n} marked)")
    if fit.unreachable:
        names = ", ".join(fit.unreachable)
        warn(
            f"soundtransfer review: note: precision {args.precision:g} not reached for {names} "
            "(best shown; written as inf: never reported)"
        )
    if fit.unmarked:
        names = ", ".join(fit.unmarked)
        warn(
            f"soundtransfer review: note: no marks for {names} (left out: predict uses "
            "--min-score for them)"
        )
    print(f"wrote {args.out} and {figure}", file=sys.stdout)
    return 0
