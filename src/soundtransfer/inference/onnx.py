"""ONNX export of a model bundle: raw audio of any length in, the file's class scores out.

The graph does what ``soundtransfer predict`` does with its default settings, for one input
of any length (at least one sample, at the bundle's sample rate, mono float32):

* input ``audio`` ``(batch, samples)``: every row of the same length;
* windows of the bundle's clip length every ``hop_samples`` (default: ``predict``'s, half a
  clip rounded to the front end's frame hop), the last one zero-padded past the end; a row no
  longer than one clip is one window (zero-padded), exactly as
  :func:`~soundtransfer.inference.stream.window_starts` places them;
* outputs ``scores`` ``(batch, classes)``: the mean over the windows of each window's
  probabilities (softmax; sigmoid for a multi-label bundle), what ``predict`` ranks, and
  ``window_logits`` ``(batch, windows, classes)``.

All windows of an input go through the network as one batch, so memory grows with the
input's length (about one network pass per window: cut recordings of many minutes into
pieces, or use ``soundtransfer predict``, which streams). Rows of exactly one clip are one
window each: pre-cut windows can be fed as a batch.

The model file's metadata (``onnxruntime``: ``session.get_modelmeta().custom_metadata_map``)
records ``sample_rate``, ``clip_samples``, ``hop_samples``, ``classes`` (JSON) and ``task``.

The file is written beside the target under a temp name, checked with onnxruntime on two
input lengths against the PyTorch model on the same windows, and only then renamed into
place: a failed export or check, or a full disk, leaves no ``.onnx`` behind. The bundle itself
can never be the output.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from soundtransfer.errors import ConfigError, WeightsError, brief
from soundtransfer.inference.bundle import AudioClassifier, BundleMeta, load_bundle
from soundtransfer.runs.files import atomic_write, refuse_input_as_output

__all__ = ["MAX_OPSET", "MIN_OPSET", "WindowedClassifier", "export_onnx", "onnx_windows"]

MIN_OPSET = 11  # Range and dynamic Slice, which the windowing needs
MAX_OPSET = 20  # the highest torch's TorchScript-based exporter writes


class WindowedClassifier(nn.Module):
    """Audio ``(B, T)`` of any length ``T >= 1`` -> ``scores (B, K)``, ``window_logits
    (B, W, K)`` with ``W = ceil(max(T - size, 0) / hop) + 1`` windows (see the module
    docstring).

    The windows are gathered from chunks of ``gcd(size, hop)`` samples, so the index tensor
    is ``(W, size / chunk)`` (2 columns for the default hop), not one entry per sample.
    """

    def __init__(self, model: AudioClassifier, size: int, hop: int, multi_label: bool) -> None:
        super().__init__()
        if not 1 <= hop <= size:
            raise ConfigError(f"hop {hop} samples must be in 1..{size} (the window)")
        self.model = model
        self.size, self.hop, self.multi_label = size, hop, multi_label
        self.chunk = math.gcd(size, hop)

    def forward(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        # Sizes are 0-dim tensors, not Python ints, so the tracer records them as graph ops
        # and the exported length stays dynamic (ints would be frozen to the example's).
        size, hop, g = self.size, self.hop, self.chunk
        shape = torch._shape_as_tensor(audio)  # (2,) int64: stays symbolic when exported
        batch, total = shape[0], shape[1]
        excess = torch.clamp(total - size, min=0)
        n = torch.div(excess + hop - 1, hop, rounding_mode="floor") + 1  # windows
        padded = F.pad(audio, (0, size))[:, : (n - 1) * hop + size]  # (B, (n-1)*hop + size)
        chunks = padded.reshape(batch, -1, g)  # type: ignore[call-overload]  # (B, chunks, g)
        first = torch.arange(n) * (hop // g)  # type: ignore[call-overload]  # (n,) window starts
        idx = first[:, None] + torch.arange(size // g)[None, :]  # (n, size / g)
        windows = chunks[:, idx].reshape(-1, size)  # (B * n, size)
        logits = self.model(windows)  # (B * n, K)
        logits = logits.reshape(batch, n, logits.shape[-1])  # type: ignore[call-overload]
        probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return probs.mean(dim=1), logits


def onnx_windows(wave: np.ndarray, size: int, hop: int) -> np.ndarray:
    """The windows the exported graph cuts from one signal, ``(W, size)`` (the reference the
    export is checked against; the same as ``predict``'s, zero-padded tails)."""
    from soundtransfer.inference.predict import windows

    return windows(np.asarray(wave, dtype=np.float32), size, hop)


def _check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(
            f"--opset {opset}: the exported graph needs an ONNX opset in {MIN_OPSET}..{MAX_OPSET}"
        )


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Hide what torch's exporter prints: TracerWarnings about the front end's fixed window
    length (constant by design), constant-folding notes, and the whole Torch IR graph it
    writes to the process's stderr (file descriptor 2) when it fails. The export is checked
    numerically instead (:func:`_check`)."""
    with warnings.catch_warnings(), tempfile.TemporaryFile() as sink:
        warnings.simplefilter("ignore")
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _write(model: WindowedClassifier, meta: BundleMeta, tmp: Path, opset: int) -> None:
    """Export ``model`` to ``tmp`` with the metadata.

    Exported into memory and written by Python: torch's C++ writer would report a full disk
    without its cause.
    """
    import onnx

    example = torch.randn(1, model.size + model.hop // 2) * 0.1  # two windows
    graph = io.BytesIO()
    try:
        with _quiet_export():
            torch.onnx.export(
                model,
                (example,),
                graph,  # type: ignore[arg-type]  # a file object works; the stub lists paths
                input_names=["audio"],
                output_names=["scores", "window_logits"],
                dynamic_axes={
                    "audio": {0: "batch", 1: "samples"},
                    "scores": {0: "batch"},
                    "window_logits": {0: "batch", 1: "windows"},
                },
                opset_version=opset,
                dynamo=False,
            )
    except (RuntimeError, ValueError, TypeError, torch.onnx.errors.OnnxExporterError) as exc:
        raise WeightsError(
            f"ONNX export failed ({brief(str(exc)) or type(exc).__name__})"
        ) from None
    proto = onnx.load_from_string(graph.getvalue())
    info = {
        "sample_rate": str(meta.frontend.sample_rate),
        "clip_samples": str(model.size),
        "hop_samples": str(model.hop),
        "classes": json.dumps(list(meta.classes)),
        "task": meta.task,
    }
    for key, value in info.items():
        proto.metadata_props.add(key=key, value=value)
    with tmp.open("wb") as fh:
        fh.write(proto.SerializeToString())


@torch.no_grad()
def _check(model: WindowedClassifier, path: Path) -> float | None:
    """Max |window logit difference| between onnxruntime and the bundle's PyTorch model on
    the same windows, over inputs of 0.4 and 1.7 clips (one window; two, the second cut
    short), or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for frac in (0.4, 1.7):
        audio = torch.randn(2, max(1, round(frac * model.size)), generator=gen) * 0.1
        _, got = sess.run(["scores", "window_logits"], {"audio": audio.numpy()})
        for row, wave in enumerate(audio.numpy()):
            windows = torch.from_numpy(onnx_windows(wave, model.size, model.hop))
            want = model.model(windows).numpy()  # (W, K)
            if got.shape[1:] != want.shape:
                raise WeightsError(
                    f"ONNX check failed: {got.shape[1]} windows for {audio.shape[1]} samples, "
                    f"expected {len(want)}"
                )
            worst = max(worst, float(np.abs(got[row] - want).max()))
    return worst


def export_onnx(
    bundle: Path,
    out_path: Path,
    opset: int = 18,
    check: bool = True,
    hop_s: float | None = None,
) -> tuple[Path, float | None]:
    """Export the bundle's classifier, windowing included (see the module docstring).

    Args:
        bundle: the model bundle.
        out_path: the ``.onnx`` file (never the bundle itself).
        opset: ONNX opset, :data:`MIN_OPSET`..:data:`MAX_OPSET`.
        check: compare with onnxruntime before the file is put in place.
        hop_s: window hop, s (None: ``predict``'s default; rounded as ``predict`` rounds it).

    Returns:
        The ONNX path and, with ``check``, the max abs window-logit difference between
        PyTorch and onnxruntime (None without onnxruntime).

    Raises:
        OutputError: ``out_path`` is the bundle, or the disk is full.
        ConfigError: a bad opset or hop; the ``onnx`` package is missing.
        WeightsError: a bad bundle, or the export or its check failed.
    """
    from soundtransfer.inference.predict import plan_hop

    bundle, out_path = Path(bundle), Path(out_path)
    refuse_input_as_output(out_path, [bundle])
    _check_opset(opset)
    try:
        import onnx  # noqa: F401  (the metadata is written with it)
    except ImportError:
        raise ConfigError(
            "export needs the onnx package: pip install 'soundtransfer[onnx]'"
        ) from None
    model, meta = load_bundle(bundle)
    hop = plan_hop(meta.frontend, hop_s)
    windowed = WindowedClassifier(
        model, meta.frontend.clip_samples, hop.samples, meta.task == "multi_label"
    ).eval()
    diff: list[float | None] = [None]

    def write(tmp: Path) -> None:
        _write(windowed, meta, tmp, opset)
        if check:
            diff[0] = _check(windowed, tmp)

    try:
        atomic_write(out_path, write)
    except WeightsError as exc:
        raise WeightsError(f"{bundle}: {exc}") from None
    return out_path, diff[0]
