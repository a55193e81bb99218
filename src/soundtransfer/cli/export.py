"""``soundtransfer export``: an ONNX model (raw audio of any length in, class scores out)
checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a model bundle to ONNX and check its outputs",
        description="ONNX model: input 'audio' (batch, samples) of any length at the bundle's "
        "sample rate; outputs 'scores' (batch, classes), the mean window probabilities as "
        "predict reports them, and 'window_logits' (batch, windows, classes).",
    )
    p.add_argument("checkpoint", type=Path, help="model bundle (a run's model.pt)")
    p.add_argument("--out", type=Path, default=Path("model.onnx"))
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, 11..20 (default 18)")
    p.add_argument(
        "--hop",
        type=float,
        default=None,
        metavar="SECONDS",
        help="window hop inside the graph (default: predict's, half a window)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.inference.onnx import export_onnx

    path, diff = export_onnx(args.checkpoint, args.out, args.opset, hop_s=args.hop)
    print(f"written: {path}")
    if diff is not None:
        print(f"onnxruntime vs PyTorch: max |window logit difference| = {diff:.2e}")
    return 0
