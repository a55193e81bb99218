"""``soundtransfer predict``: top-k classes (and a timeline) of audio files of any length.

The model is loaded once. A file that cannot be used is reported on stderr (one line naming it)
and the others are still classified; the exit code is then 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from soundtransfer.errors import AudioError

if TYPE_CHECKING:
    from soundtransfer.inference.predict import Prediction


def register(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="top-k classes of audio files (windowed, probabilities averaged), with --timeline "
        "the classes of each window and the events they form",
    )
    p.add_argument("checkpoint", type=Path, help="model bundle (a run's model.pt)")
    p.add_argument("files", type=Path, nargs="+", help="audio files (any rate, channels, length)")
    p.add_argument("--top-k", type=int, default=5, help="classes per file and per window")
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
        help="also the top classes of every window (start, end in s) and events (consecutive "
        "windows with the same top class, merged)",
    )
    p.add_argument("--format", choices=("text", "csv", "json"), default="text")
    p.add_argument(
        "--json", action="store_true", help="same as --format json (one object per file)"
    )
    p.add_argument("--out", type=Path, default=None, help="write the results here, not to stdout")
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
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.inference.predict import PredictConfig, Predictor
    from soundtransfer.runs.files import atomic_open

    config = PredictConfig(
        args.hop, args.top_k, args.batch_size, not args.keep_hop, jit=not args.no_jit
    )
    predictor = Predictor(args.checkpoint, config)
    if predictor.network.fallback not in ("", "disabled"):
        print(
            f"soundtransfer predict: note: running the network eagerly: "
            f"{predictor.network.fallback}",
            file=sys.stderr,
        )
    hop = predictor.hop
    if hop.rounded:
        print(
            f"soundtransfer predict: note: hop {hop.requested_s:g} s rounded to {hop.seconds:g} s "
            "(a multiple of the front end's frame hop, so the log-mel is computed once per file; "
            "--keep-hop keeps it)",
            file=sys.stderr,
        )
    fmt = "json" if args.json else args.format
    failed = 0
    with ExitStack() as stack:
        out: IO[str] = sys.stdout
        if args.out is not None:  # a temp file renamed at the end; a full disk is one line
            out = stack.enter_context(atomic_open(args.out, "w", newline="", encoding="utf-8"))
        writer = csv.writer(out) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(["file", "kind", "start_s", "end_s", "rank", "class", "p", "windows"])
        for f in args.files:
            try:
                pred = predictor.predict_file(f)
            except AudioError as exc:
                print(f"soundtransfer predict: error: {exc}", file=sys.stderr)
                failed += 1
                continue
            if writer is not None:
                writer.writerows(_csv_rows(pred, args.timeline))
            elif fmt == "json":
                print(json.dumps(_json(pred, args.timeline)), file=out)
            else:
                print(_text(pred, args.timeline), file=out)
            out.flush()
    if failed:
        print(
            f"soundtransfer predict: {failed} of {len(args.files)} file(s) could not be used",
            file=sys.stderr,
        )
    return 2 if failed else 0


def _json(pred: Prediction, timeline: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "file": pred.file,
        "seconds": round(pred.seconds, 3),
        "windows": pred.windows,
        "hop_s": pred.hop_s,
        "top": [{"class": c, "p": p} for c, p in pred.top],
    }
    if timeline:
        obj["timeline"] = [
            {
                "start_s": round(w.start_s, 3),
                "end_s": round(w.end_s, 3),
                "top": [{"class": c, "p": p} for c, p in w.top],
            }
            for w in pred.timeline
        ]
        obj["events"] = [
            {
                "start_s": round(e.start_s, 3),
                "end_s": round(e.end_s, 3),
                "class": e.label,
                "p": e.p,
                "windows": e.windows,
            }
            for e in pred.events
        ]
    return obj


def _csv_rows(pred: Prediction, timeline: bool) -> list[list[Any]]:
    """Long format: ``file`` rows (top-k of the mean), then ``window`` and ``event`` rows."""
    end = f"{pred.seconds:.3f}"
    rows: list[list[Any]] = [
        [pred.file, "file", "0.000", end, r, c, f"{p:.6f}", pred.windows]
        for r, (c, p) in enumerate(pred.top, 1)
    ]
    if timeline:
        for w in pred.timeline:
            span = [f"{w.start_s:.3f}", f"{w.end_s:.3f}"]
            rows += [
                [pred.file, "window", *span, r, c, f"{p:.6f}", 1]
                for r, (c, p) in enumerate(w.top, 1)
            ]
        for e in pred.events:
            span = [f"{e.start_s:.3f}", f"{e.end_s:.3f}"]
            rows.append([pred.file, "event", *span, 1, e.label, f"{e.p:.6f}", e.windows])
    return rows


def _text(pred: Prediction, timeline: bool) -> str:
    lines = [
        f"{pred.file}  ({pred.seconds:.1f} s, {pred.windows} window(s), hop {pred.hop_s:g} s)",
        *(f"  {p:6.1%}  {c}" for c, p in pred.top),
    ]
    if timeline:
        lines.append("  timeline:")
        for w in pred.timeline:
            tops = "  ".join(f"{c} {p:.1%}" for c, p in w.top)
            lines.append(f"    {w.start_s:8.2f} - {w.end_s:8.2f} s  {tops}")
        lines.append("  events:")
        for e in pred.events:
            lines.append(
                f"    {e.start_s:8.2f} - {e.end_s:8.2f} s  {e.label}  "
                f"(mean {e.p:.1%}, {e.windows} window(s))"
            )
    return "\n".join(lines)
