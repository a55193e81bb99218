"""Prediction on long audio: seconds of audio classified per second (x real time), peak memory.

A ``--minutes``-long file (real ESC-10 clips end to end, 44.1 kHz WAV) classified by a random
EfficientNet-Lite0 bundle (ESC preset, full-size 3 x 128 x 250 images) every ``--hop`` s:

(a) PyTorch: ``Predictor.predict_file`` (streamed decoding, bounded batches, the log-mel
    computed once over the file and sliced per window, the network traced and frozen: its
    defaults; also with the images computed one batch ahead in a thread, and with the eager
    network, ``--no-jit``) vs the naive loop: the whole file decoded, then one window at a time
    through the model's own front end and eager network (``reference_window_probs``). Floor:
    the bare network as ours runs it (traced; and eager for the eager row) over the same
    number of windows in the same batches, on ready-made images. Beside it, what explains the
    rest: our front end alone (no network), and the FFTs alone that it runs over the file
    (one thread), which bound the ratio from below. Targets: ours <= 1.25x the floor;
    >= 100x real time on 2 cores with a 1 s hop.
(b) onnxruntime: the exported model (raw audio in, front end inside) on the same streamed
    window batches vs one window at a time. The ONNX model takes each window's raw audio, so
    its front end runs per window (not once per file).
(c) memory: peak RSS of (a) on the ``--minutes`` file vs a ``--short-minutes`` one (flat: about
    equal), and the most samples / frames the streamed path held.

Each path runs in a fresh process (its own peak RSS, ``ru_maxrss``), model loading excluded
from the timings (printed apart). ``--naive-windows N`` times only the naive loops' first N
windows and extrapolates linearly (printed as such).

    .venv/bin/python benchmarks/predict.py [--minutes 10] [--hop 1] [--threads 2]

Data: ../shared/data/esc10. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _bench import in_child, peak_rss_mb, require_esc10

RATE = 44100


def _make_wav(path: Path, minutes: float) -> float:
    """Real ESC-10 clips end to end, ``minutes`` long, float WAV at 44.1 kHz; its seconds."""
    import soundfile as sf

    from soundtransfer.audio import load_clip

    clips = sorted((require_esc10() / "audio").glob("*.ogg"))[::10]
    wave = np.concatenate([load_clip(c, RATE) for c in clips])
    n = round(minutes * 60 * RATE)
    sf.write(path, np.tile(wave, n // len(wave) + 1)[:n], RATE, subtype="FLOAT")
    return n / RATE


def _make_bundle(bundle: str, arch: str, onnx: str) -> dict[str, Any]:
    """In a child: a random-weight bundle of ``arch`` and, unless ``onnx`` is "", its export."""
    import torch

    from soundtransfer.audio import get_preset
    from soundtransfer.inference.bundle import save_bundle
    from soundtransfer.inference.onnx import export_onnx
    from soundtransfer.models import Classifier, InputNorm, build_encoder

    torch.manual_seed(0)
    model = Classifier(build_encoder(arch), 10, InputNorm([-8.0] * 3, [4.0] * 3)).eval()
    classes = [f"class{i}" for i in range(10)]
    save_bundle(Path(bundle), model, get_preset("esc10"), classes, arch, "random")
    if onnx:
        export_onnx(Path(bundle), Path(onnx), check=False)
    return {}


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    torch.set_num_interop_threads(1)


def _ours(
    bundle: str,
    wav: str,
    hop: float,
    batch: int,
    threads: int,
    jit: bool = True,
    prefetch: bool = False,
) -> dict[str, Any]:
    _threads(threads)
    from soundtransfer.inference.predict import PredictConfig, Predictor

    t0 = time.perf_counter()
    config = PredictConfig(hop_s=hop, batch_size=batch, jit=jit, prefetch=prefetch)
    predictor = Predictor(Path(bundle), config)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = predictor.predict_file(wav)
    return {
        "seconds": time.perf_counter() - t0,
        "load_seconds": load,
        "windows": pred.windows,
        "hop_samples": predictor.hop.samples,
        "peak_samples": predictor.stats.peak_samples,
        "peak_frames": predictor.stats.peak_frames,
        "rss_mb": peak_rss_mb(),
    }


def _floor(bundle: str, windows: int, batch: int, threads: int, jit: bool) -> dict[str, Any]:
    """The bare network (traced as predict runs it, or eager) over ``windows`` ready-made
    images in batches of ``batch``."""
    _threads(threads)
    import torch

    from soundtransfer.inference.bundle import load_bundle
    from soundtransfer.inference.jit import inference_net

    model, meta = load_bundle(Path(bundle))
    net = inference_net(model.classifier, meta.frontend.image_shape, batch, enabled=jit)
    images = torch.randn(batch, *meta.frontend.image_shape) * 3 - 8
    with torch.no_grad():
        net(images[:2])  # warm-up
        t0 = time.perf_counter()
        for s in range(0, windows, batch):
            net(images[: min(batch, windows - s)])
    return {"seconds": time.perf_counter() - t0, "rss_mb": peak_rss_mb()}


def _front_end(bundle: str, wav: str, hop: float, batch: int, threads: int) -> dict[str, Any]:
    """Ours without the network: streamed decoding, the sliced log-mel and the images of
    every window batch; and the FFTs alone that it runs over the file (each channel's file
    frames in the front end's chunks, its FFT sizes, one thread, in the same process)."""
    _threads(threads)
    import torch

    from soundtransfer.audio.frontend import FRAMES_PER_CHUNK
    from soundtransfer.inference.predict import PredictConfig, Predictor
    from soundtransfer.inference.stream import SlicedFrontEnd

    predictor = Predictor(Path(bundle), PredictConfig(hop_s=hop, batch_size=batch, jit=False))
    front = SlicedFrontEnd(predictor.model.frontend, predictor.hop.samples)
    t0 = time.perf_counter()
    for _batch, _images in predictor._images(wav, front):
        pass
    seconds = time.perf_counter() - t0
    fe, total = predictor.meta.frontend, 0
    samples = round(_seconds_of(wav) * fe.sample_rate)
    torch.set_num_threads(1)
    fft = 0.0
    for c in range(fe.channels):
        frames = samples // front.plans[c].hop + 1
        size = predictor.model.frontend._plan(c).fft_size
        x = torch.randn(FRAMES_PER_CHUNK, size)
        torch.fft.rfft(x)  # the plan, outside the timing
        t0 = time.perf_counter()
        for _ in range(0, frames, FRAMES_PER_CHUNK):
            torch.fft.rfft(x)
        fft += time.perf_counter() - t0
        total += frames
    return {"seconds": seconds, "fft_seconds": fft, "frames": total}


def _seconds_of(wav: str) -> float:
    import soundfile as sf

    return float(sf.info(wav).duration)


def _naive(bundle: str, wav: str, hop_samples: int, limit: int, threads: int) -> dict[str, Any]:
    """The whole file decoded, then one window at a time through the model (front end too)."""
    _threads(threads)
    import torch

    from soundtransfer.audio import load_clip
    from soundtransfer.inference.bundle import load_bundle
    from soundtransfer.inference.stream import window_starts

    model, meta = load_bundle(Path(bundle))
    size = meta.frontend.clip_samples
    t0 = time.perf_counter()
    wave = load_clip(wav, meta.frontend.sample_rate)
    starts = window_starts(len(wave), size, hop_samples)
    done = starts[:limit] if limit > 0 else starts
    with torch.no_grad():
        for s in done:
            torch.softmax(model(torch.from_numpy(wave[s : s + size])[None]), dim=1)
    return {
        "seconds": time.perf_counter() - t0,
        "measured": len(done),
        "windows": len(starts),
        "rss_mb": peak_rss_mb(),
    }


def _onnx(
    onnx: str, bundle: str, wav: str, hop_samples: int, batch: int, limit: int, threads: int
) -> dict[str, Any]:
    """onnxruntime on streamed window batches (``batch`` > 1) or one window at a time (1)."""
    import onnxruntime as ort

    from soundtransfer.audio import load_clip
    from soundtransfer.inference.bundle import load_bundle
    from soundtransfer.inference.stream import stream_audio, window_batches, window_starts

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
    _model, meta = load_bundle(Path(bundle))
    size = meta.frontend.clip_samples
    windows = 0
    t0 = time.perf_counter()
    if batch > 1:
        blocks = stream_audio(wav, meta.frontend.sample_rate)
        for b in window_batches(blocks, size, hop_samples, batch):
            sess.run(["logits"], {"audio": b.windows(size)})
            windows += len(b.starts)
        measured = total = windows
    else:
        wave = load_clip(wav, meta.frontend.sample_rate)
        starts = window_starts(len(wave), size, hop_samples)
        done = starts[:limit] if limit > 0 else starts
        for s in done:
            window = np.zeros((1, size), np.float32)
            chunk = wave[s : s + size]
            window[0, : len(chunk)] = chunk
            sess.run(["logits"], {"audio": window})
        measured, total = len(done), len(starts)
    return {
        "seconds": time.perf_counter() - t0,
        "measured": measured,
        "windows": total,
        "rss_mb": peak_rss_mb(),
    }


def _full(r: dict[str, Any]) -> float:
    """Seconds for every window, extrapolated linearly when only some were measured."""
    return float(r["seconds"] * r["windows"] / max(1, r["measured"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="file length, min")
    parser.add_argument("--short-minutes", type=float, default=1.0, help="for the memory check")
    parser.add_argument("--hop", type=float, default=1.0, help="window hop, s")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=2, help="torch / onnxruntime threads")
    parser.add_argument(
        "--naive-windows", type=int, default=0, help="time only this many naive windows (0: all)"
    )
    parser.add_argument("--no-onnx", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        seconds = _make_wav(d / "long.wav", args.minutes)
        short_seconds = _make_wav(d / "short.wav", args.short_minutes)
        bundle, onnx = str(d / "model.pt"), str(d / "model.onnx")
        in_child(_make_bundle, bundle, args.arch, onnx if not args.no_onnx else "")
        th, b, lim = args.threads, args.batch_size, args.naive_windows
        long = str(d / "long.wav")
        ours = in_child(_ours, bundle, long, args.hop, b, th)
        short = in_child(_ours, bundle, str(d / "short.wav"), args.hop, b, th)
        floor = in_child(_floor, bundle, ours["windows"], b, th, True)
        ahead = in_child(_ours, bundle, long, args.hop, b, th, True, True)
        front = in_child(_front_end, bundle, long, args.hop, b, th)
        eager = in_child(_ours, bundle, long, args.hop, b, th, False)
        eager_floor = in_child(_floor, bundle, ours["windows"], b, th, False)
        hop_samples = ours["hop_samples"]
        naive = in_child(_naive, bundle, str(d / "long.wav"), hop_samples, lim, th)
        ort_ours = ort_naive = None
        if not args.no_onnx:
            ort_ours = in_child(_onnx, onnx, bundle, str(d / "long.wav"), hop_samples, b, 0, th)
            ort_naive = in_child(_onnx, onnx, bundle, str(d / "long.wav"), hop_samples, 1, lim, th)

    def rt(sec: float) -> str:
        return f"{seconds / sec:7.1f}x real time ({sec:7.2f} s)"

    def extra(r: dict[str, Any]) -> str:
        part = "" if r["measured"] == r["windows"] else f", extrapolated from {r['measured']}"
        return f"{part}  peak RSS {r['rss_mb']:.0f} MB"

    hop_s = hop_samples / RATE
    print(
        f"predict, {args.arch} (random weights, 3 x 128 x 250 images), {seconds / 60:.1f}-min "
        f"file, hop {hop_s:g} s ({ours['windows']} windows), batch {b}, {th} threads:\n"
        f"  (a) PyTorch  ours (streamed, log-mel once, traced network): {rt(ours['seconds'])}  "
        f"peak RSS {ours['rss_mb']:.0f} MB  (model load and trace {ours['load_seconds']:.2f} s "
        f"apart)\n"
        f"      the same, images one batch ahead in a thread: {rt(ahead['seconds'])}\n"
        f"      naive (one window at a time, eager):     {rt(_full(naive))}{extra(naive)}\n"
        f"      floor (bare traced network, same windows): {rt(floor['seconds'])}\n"
        f"      front end alone (decoding, log-mel once, window images; no network): "
        f"{front['seconds']:.2f} s; its FFTs alone ({front['frames']} file frames, one "
        f"thread): {front['fft_seconds']:.2f} s, so ours / floor >= "
        f"{1 + front['fft_seconds'] / th / floor['seconds']:.2f} even were the rest free and "
        f"the FFTs perfectly parallel\n"
        f"      ours / floor = {ours['seconds'] / floor['seconds']:.2f} (target <= 1.25); "
        f"ours vs naive: {_full(naive) / ours['seconds']:.1f}x; >= 100x real time: "
        f"{'met' if seconds / ours['seconds'] >= 100 else 'NOT met'}\n"
        f"      eager network (--no-jit): ours {rt(eager['seconds'])}, floor "
        f"{rt(eager_floor['seconds'])}, ratio {eager['seconds'] / eager_floor['seconds']:.2f}"
    )
    if ort_ours is not None and ort_naive is not None:
        print(
            f"  (b) onnxruntime  window batches (front end per window): {rt(ort_ours['seconds'])}"
            f"  peak RSS {ort_ours['rss_mb']:.0f} MB\n"
            f"      one window at a time:                               {rt(_full(ort_naive))}"
            f"{extra(ort_naive)}\n"
            f"      batches vs one at a time: {_full(ort_naive) / ort_ours['seconds']:.1f}x"
        )
    print(
        f"  (c) memory: peak RSS {ours['rss_mb']:.0f} MB ({seconds / 60:.1f} min) vs "
        f"{short['rss_mb']:.0f} MB ({short_seconds / 60:.1f} min); most held: "
        f"{ours['peak_samples']} vs {short['peak_samples']} samples, "
        f"{ours['peak_frames']} vs {short['peak_frames']} frames per channel"
    )
    print(
        f"SUMMARY predict: {args.arch}, hop {hop_s:g} s, {th} threads: "
        f"{seconds / ours['seconds']:.0f}x real time, {ours['seconds'] / floor['seconds']:.2f}x "
        f"the bare network, {_full(naive) / ours['seconds']:.1f}x the naive loop, "
        f"RSS {ours['rss_mb']:.0f}/{short['rss_mb']:.0f} MB ({seconds / 60:g}/"
        f"{short_seconds / 60:g} min)"
    )


if __name__ == "__main__":
    main()
