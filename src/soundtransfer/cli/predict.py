"""``soundtransfer predict``: detections over files and folders of recordings of any length.

The model is loaded once. Results go to stdout, or one per recording under ``--out DIR``
(see :mod:`soundtransfer.detection.folder` for resuming, bad files and torchrun).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import progress, warn

#: Exit code of a run that finished with some recordings listed in failed.csv (--skip-bad).
EXIT_SOME_FAILED = 3
#: Default shortest event, in model windows: on 36 ESC-10 clips joined, windows straddling two
#: clips made events of about a second (a third class, or one of the two at a low score).
MIN_EVENT_WINDOWS = 0.3


def register(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="detections (events per class) and top-k classes of recordings: files and folders, "
        "Raven selection tables, Audacity labels, CSV or JSON",
        description="Classifies windows of each recording and merges the windows of a class "
        "above its threshold into events. Folders are walked recursively; with --out DIR each "
        "recording's result is written as it finishes, mirroring the input tree.",
    )
    p.add_argument("checkpoint", type=Path, help="model bundle (a run's model.pt)")
    p.add_argument(
        "files", type=Path, nargs="+", help="audio files and folders (any rate, channels, length)"
    )
    p.add_argument("--top-k", type=int, default=5, help="classes per file mean and per window")
    p.add_argument(
        "--hop",
        type=float,
        default=None,
        help="window hop, s (default: half the model's window); rounded to a multiple of the "
        "front end's frame hop (50 ms at 44.1 kHz) unless --keep-hop",
    )
    p.add_argument(
        "--keep-hop",
        action="store_true",
        help="use --hop exactly as given (same results for that hop, slower: the front end runs "
        "per window for channels the hop does not align with)",
    )
    p.add_argument(
        "--timeline",
        action="store_true",
        help="also the top classes of every window (csv, json, text)",
    )
    p.add_argument("--format", choices=("text", "csv", "json", "raven", "audacity"), default="text")
    p.add_argument("--json", action="store_true", help="same as --format json")
    _add_output_args(p)
    _add_event_args(p.add_argument_group("events"))
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="windows per forward pass (default 8: fastest on CPU; bounds memory)",
    )
    p.add_argument(
        "--no-jit",
        action="store_true",
        help="run the network eagerly (default: traced and frozen with TorchScript, about 2x "
        "faster on CPU, checked against the eager network when loaded)",
    )
    p.add_argument(
        "--tta", type=int, default=1, metavar="N",
        help="test-time augmentation: score each window by the mean of N circular time shifts "
        "of its image (as --set tta=N evaluates; N times the work; default 1: none)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def _add_output_args(p: Any) -> None:
    """Where results go: ``--out``, ``--combine``, ``--skip-existing``, ``--skip-bad``."""
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder of results, one per recording, mirroring the input tree (default: stdout)",
    )
    p.add_argument(
        "--combine",
        action="store_true",
        help="also one table over every recording, OUT/combined.* (Raven and Audacity times "
        "run on across the recordings in order, as one sequence)",
    )
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave recordings whose result is in OUT alone (resume a run)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="list recordings that cannot be used in OUT/failed.csv and go on (exit code 3 if "
        "any); default: stop at the first, keeping the finished results",
    )


def _add_event_args(g: Any) -> None:
    """How window scores become events: thresholds, merging, minimum length, unknown."""
    g.add_argument(
        "--min-score",
        type=float,
        default=0.5,
        help="threshold of every class without its own (default 0.5; softmax probability, or "
        "sigmoid for a multi-label bundle)",
    )
    g.add_argument(
        "--thresholds",
        type=Path,
        default=None,
        metavar="FILE",
        help="per-class thresholds, CSV 'class,threshold' or JSON {\"thresholds\": {...}} (e.g. "
        "from review), instead of the bundle's own (which are used by default, with a note)",
    )
    g.add_argument(
        "--merge-gap",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="merge events of a class at most this far apart (default 0: touching slices)",
    )
    g.add_argument(
        "--min-event",
        type=float,
        default=None,
        metavar="SECONDS",
        help="drop events shorter than this (default: 0.3 of the model's window, 1.5 s for 5 s "
        "windows, so that windows straddling two sounds are not events of their own; 0 keeps "
        "every event)",
    )
    g.add_argument(
        "--unknown-below",
        type=float,
        default=None,
        metavar="SCORE",
        help="report a class scoring below this as 'unknown' (default: never)",
    )


def run(args: argparse.Namespace) -> int:
    from soundtransfer.detection.folder import FolderOptions, FolderRun, summary
    from soundtransfer.detection.thresholds import read_thresholds
    from soundtransfer.distributed import distributed_session
    from soundtransfer.inference.predict import PredictConfig, Predictor
    from soundtransfer.inference.timeline import EventRule

    fmt = "json" if args.json else args.format
    options = FolderOptions(
        fmt, args.out, args.combine, args.skip_existing, args.skip_bad, args.timeline,
        progress(args),
    )  # fmt: skip
    with distributed_session("cpu") as info:
        config = PredictConfig(
            args.hop, args.top_k, args.batch_size, not args.keep_hop, jit=not args.no_jit,
            timeline=args.timeline, tta=args.tta,
        )  # fmt: skip
        predictor = Predictor(args.checkpoint, config)
        _notes(predictor, info.is_main)
        thresholds = None
        if args.thresholds is not None:
            thresholds = read_thresholds(args.thresholds, predictor.meta.classes)
        elif predictor.meta.thresholds and info.is_main:
            warn(
                f"soundtransfer predict: note: using the bundle's own thresholds for "
                f"{len(predictor.meta.thresholds)} class(es) (chosen on validation; "
                f"--min-score {args.min_score:g} for the others; --thresholds FILE replaces them)"
            )
        min_event = args.min_event
        if min_event is None:
            min_event = MIN_EVENT_WINDOWS * predictor.meta.frontend.clip_seconds
        predictor.set_events(
            EventRule(args.min_score, thresholds, args.merge_gap, min_event, args.unknown_below)
        )
        read = [args.checkpoint, *([args.thresholds] if args.thresholds else [])]
        result = FolderRun(predictor, options, read, sys.stdout, warn).run(args.files)
    if info.is_main:
        print(f"soundtransfer predict: {summary(result)}", file=sys.stderr)
    return EXIT_SOME_FAILED if result.failed else 0


def _notes(predictor: Any, main: bool) -> None:
    """Notes on stderr: the network run eagerly, the hop rounded."""
    if not main:
        return
    if predictor.network.fallback not in ("", "disabled"):
        why = predictor.network.fallback
        warn(f"soundtransfer predict: note: running the network eagerly: {why}")
    hop = predictor.hop
    if hop.rounded:
        warn(
            f"soundtransfer predict: note: hop {hop.requested_s:g} s rounded to {hop.seconds:g} s "
            "(a multiple of the front end's frame hop, so the log-mel is computed once per file; "
            "--keep-hop keeps it)"
        )
