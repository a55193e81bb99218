"""int8 check: does an int8 network agree with the float one on a real test fold?

The bundle's network (images -> logits; the log-mel front end stays float32) exported to ONNX
and quantized statically by onnxruntime (QDQ, int8 weights per channel, uint8 activations
calibrated on ``--calibration`` clips of the training folds), then both run by onnxruntime
on every clip of the test fold: top-1 agreement int8 vs float, and each one's accuracy. The
issue's bar for keeping an int8 path: agreement and accuracy within 0.5 points of float.

    .venv/bin/python benchmarks/studies/int8_agreement.py BUNDLE [--root ../shared/data/esc10]
        [--test-fold 1] [--calibration 64]

BUNDLE: a model.pt trained on the other folds (e.g. ``soundtransfer train esc10 --arch
efficientnet_lite0 ...`` with fold 1 held out). Ends with one summary line. No timing: the
speed of int8 against float is for an idle machine (``--time`` runs both, interleaved).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _images(model: Any, table: Any, rows: list[int]) -> np.ndarray:
    """(N, C, n_mels, frames) float32: the bundle's front end on each clip."""
    from soundtransfer.audio import load_clip

    fe = model.frontend.cfg
    out = []
    with torch.no_grad():
        for i in rows:
            wave = torch.from_numpy(load_clip(table.path(i), fe.sample_rate))[None]
            out.append(model.frontend(wave)[0].numpy())
    return np.stack(out)


def _export(net: torch.nn.Module, shape: tuple[int, ...], path: Path) -> None:
    """The network (images -> logits) as ONNX, batch dimension free."""
    example = torch.randn(1, *shape)
    torch.onnx.export(
        net, (example,), str(path), input_names=["images"], output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
        dynamo=False,
    )  # fmt: skip


def _quantize(src: Path, dst: Path, calibration: np.ndarray, method: str) -> None:
    """``dst``: ``src`` quantized: ``static`` (QDQ, activations calibrated: MinMax or
    Percentile ranges), or ``dynamic`` (int8 weights, activation ranges per batch)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter([{"images": x[None]} for x in calibration])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre))
    if method == "dynamic":
        quantize_dynamic(str(pre), str(dst), per_channel=True, weight_type=QuantType.QInt8)
        return
    calibrate = CalibrationMethod.Percentile if method == "percentile" else CalibrationMethod.MinMax
    quantize_static(
        str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=calibrate,
    )  # fmt: skip


def _logits(path: Path, images: np.ndarray, batch: int = 8) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = [
        sess.run(None, {"images": images[s : s + batch]})[0] for s in range(0, len(images), batch)
    ]
    return np.concatenate(out)


def _seconds(path: Path, images: np.ndarray, batch: int = 8) -> float:
    t0 = time.perf_counter()
    _logits(path, images, batch)
    return time.perf_counter() - t0


def main() -> None:
    from soundtransfer.datasets import load_dataset
    from soundtransfer.inference.bundle import load_bundle

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--root", type=Path, default=Path("../shared/data/esc10"))
    parser.add_argument("--dataset", default="esc10")
    parser.add_argument("--test-fold", type=int, default=1)
    parser.add_argument("--calibration", type=int, default=64, help="training-fold clips")
    parser.add_argument(
        "--method", choices=["static", "percentile", "dynamic"], default="static",
        help="static QDQ with MinMax or Percentile calibration, or dynamic (weights only)",
    )  # fmt: skip
    parser.add_argument("--time", action="store_true", help="also time both (idle machine)")
    args = parser.parse_args()
    model, meta = load_bundle(args.bundle)
    table = load_dataset(args.dataset, args.root)
    index = {name: k for k, name in enumerate(meta.classes)}
    test = [i for i, c in enumerate(table.clips) if c.fold == args.test_fold]
    train = [i for i, c in enumerate(table.clips) if c.fold != args.test_fold]
    calib = train[:: max(1, len(train) // args.calibration)][: args.calibration]
    labels = np.array([index[table.classes[table.clips[i].label]] for i in test])
    x_test, x_cal = _images(model, table, test), _images(model, table, calib)
    with tempfile.TemporaryDirectory() as tmp:
        f32, i8 = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        _export(model.classifier.eval(), tuple(x_test.shape[1:]), f32)
        _quantize(f32, i8, x_cal, args.method)
        a, b = _logits(f32, x_test).argmax(1), _logits(i8, x_test).argmax(1)
        timing = ""
        if args.time:
            pairs = [(_seconds(f32, x_test), _seconds(i8, x_test)) for _ in range(3)]
            timing = f", int8 / float time {np.median([q / p for p, q in pairs]):.2f}x"
    agree, acc_f, acc_q = (
        (a == b).mean() * 100,
        (a == labels).mean() * 100,
        (b == labels).mean() * 100,
    )
    print(
        f"{args.dataset} fold {args.test_fold} ({len(test)} clips), {meta.arch}, {args.method}, "
        f"calibration "
        f"{len(calib)} training clips: top-1 agreement int8/float {agree:.1f} %, accuracy "
        f"float {acc_f:.1f} %, int8 {acc_q:.1f} % ({acc_q - acc_f:+.1f} points)"
    )
    keep = agree >= 99.5 and abs(acc_q - acc_f) <= 0.5
    verdict = "within" if keep else "NOT within"
    print(
        f"SUMMARY int8_agreement ({args.method}): {agree:.1f} % agreement, "
        f"{acc_q - acc_f:+.1f} points ({verdict} the 0.5-point bar){timing}"
    )


if __name__ == "__main__":
    main()
