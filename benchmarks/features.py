"""Feature extraction speed on real ESC-10 clips: our store vs a per-clip librosa reference.

(a) clips/s, end to end from the files: ``build_features`` (worker threads decoding and
    computing clips with ``LogMel3``, float16 memmap) vs the reference, one clip at a time: decode
    (soundfile), three ``librosa.feature.melspectrogram`` calls, log, bilinear resize
    (``torch.nn.functional.interpolate``). Each path runs in a fresh process, which reports its
    peak RSS (``ru_maxrss``) and the peak of Python-level allocations (``tracemalloc``, which
    sees NumPy buffers but not torch's; measured on a separate, untimed run of 32 clips).
    Beside them, in the same run, two floors: the FFT-only floor, the same clips' real FFTs of
    the three channels (n_fft-point ``torch.fft.rfft`` of the windowed frames, in the front
    end's chunks of frames, on the same worker threads) and nothing else: no decoding, framing,
    mel, log, resize or store; and the decode + FFT floor, the same plus decoding each clip
    (``load_clip``, timed on the same threads), which both paths pay: ours as a share of it is
    what can still be won, on any CPU (the FFT's share of the time varies with the CPU's
    vector units). Target: ratio >= 4, or, when the FFT floor itself is below 4x the
    reference, ours within 15 % of the FFT floor (>= 0.85 x its clips/s).
    ``--repeats`` rounds of (reference, ours, floors), interleaved, each in a fresh process:
    the rates are medians with their min-max range, the ratio the median of the rounds' ratios,
    and a WARNING line says when the range is wider than the median's margin to the target.
(b) preparing a 5-fold cross-validation on ESC-10: our store built once (cold cache) and read
    5 times (every row, as training and test batches) vs recomputing every clip for every fold
    with the reference; the reference time is extrapolated linearly from its rate in (a)
    (5 x clips / rate), as printed. Target: ratio >= 15.
(c) with CUDA: the front end's clips/s on the GPU (compute only, and end to end).

    .venv/bin/python benchmarks/features.py [--clips 256] [--threads 2] [--workers 2]
        [--repeats 3] [--profile]

``--profile`` also prints where one worker's time goes (``torch.profiler``, one thread: decode,
FFT, mel GEMMs, window products, ...), as shares of the total.

Data: ../shared/data/esc10 (see its README). Ends with one summary line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from _bench import (
    Spread,
    esc10_table,
    in_child,
    interleaved,
    peak_rss_mb,
    ratio_report,
    require_esc10,
)
from _librosa_ref import librosa_mel


def reference_image(path: Path, fe: Any) -> np.ndarray:
    """The reference pipeline for one clip: decode, 3 x librosa mel, log, bilinear resize."""
    import librosa
    import soundfile as sf
    import torch
    import torch.nn.functional as F

    y, sr = sf.read(str(path), dtype="float32")
    y = librosa.util.fix_length(y, size=fe.clip_samples)
    channels = []
    for win_ms, hop_ms in fe.windows_ms:
        mel = librosa_mel(y, sr, fe, win_ms, hop_ms)
        log_mel = torch.from_numpy(np.log(mel + fe.log_eps))[None, None]
        img = F.interpolate(log_mel, size=(fe.n_mels, fe.out_frames), mode="bilinear")
        channels.append(img[0, 0].numpy())
    return np.stack(channels)  # (3, n_mels, out_frames)


def _run(kind: str, table: Any, fe: Any, workers: int, device: str) -> dict[str, Any]:
    from soundtransfer.features import build_features

    out: dict[str, Any] = {"clips": len(table)}
    t0 = time.perf_counter()
    if kind == "reference":
        for i in range(len(table)):
            reference_image(table.path(i), fe)
        out["seconds"] = time.perf_counter() - t0
        return out
    with tempfile.TemporaryDirectory() as cache:
        store = build_features(
            table, cache_dir=Path(cache), device=device, workers=workers, progress=False
        )
        out["seconds"] = time.perf_counter() - t0
        if kind == "cv":  # read the store 5 times as the 5 folds' training/test batches
            t1 = time.perf_counter()
            checksum = 0.0
            for split in store.table.splits():
                for rows in (split.train, split.test):
                    for s in range(0, len(rows), 32):
                        checksum += float(store.batch(rows[s : s + 32]).sum())
            out["read_seconds"] = time.perf_counter() - t1
            out["checksum"] = checksum
    return out


def _measure(kind: str, n: int | None, threads: int, workers: int, device: str) -> dict[str, Any]:
    """Run one path in this (fresh) process: seconds and peak memory.

    The timed run is not traced (tracemalloc slows every allocation); a second run on at most
    32 clips measures the peak of Python-level allocations.
    """
    import torch

    from soundtransfer.audio import get_preset

    torch.set_num_threads(threads)
    table = esc10_table(n)
    fe = get_preset("esc10")
    # Imports, FFT plans and (ours) the mel weights outside the timing, for both paths alike.
    reference_image(table.path(0), fe)
    if kind != "reference":
        from soundtransfer.audio import LogMel3, load_clip

        with torch.inference_mode():
            LogMel3(fe)(torch.from_numpy(load_clip(table.path(0), fe.sample_rate)))
    base_mb = peak_rss_mb()
    out = _run(kind, table, fe, workers, device)
    out["maxrss_mb"] = peak_rss_mb()
    out["base_mb"] = base_mb
    tracemalloc.start()
    _run(
        "ours" if kind == "cv" else kind,
        table.subset(range(min(32, len(table)))),
        fe,
        workers,
        device,
    )
    out["tracemalloc_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out


def _fft_floor(n: int, workers: int) -> dict[str, Any]:
    """The floors: seconds of the three channels' rffts of ``n`` clips, nothing else
    (``seconds``), and of decoding them (``decode_seconds``).

    As in ``build_features`` on CPU, ``workers`` threads each take whole clips (torch
    intra-op threads 1, flush-to-zero on); per clip, the decoding (``load_clip``) is timed,
    and per channel the windowed frames are made outside the timing, then the rffts run in
    chunks of ``FRAMES_PER_CHUNK`` frames, timed. Each floor is its summed seconds over
    ``workers`` (perfect parallelism).
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from soundtransfer.audio import get_preset, load_clip
    from soundtransfer.audio.frontend import FRAMES_PER_CHUNK

    fe = get_preset("esc10")
    table = esc10_table(n)
    if workers > 1:
        torch.set_num_threads(1)
    seconds: list[float] = []
    decoding: list[float] = []
    lock = threading.Lock()

    def clip(i: int) -> None:
        t0 = time.perf_counter()
        wave = torch.from_numpy(load_clip(table.path(i), fe.sample_rate, fe.clip_samples))
        decoded = time.perf_counter() - t0
        padded = torch.nn.functional.pad(wave, (fe.n_fft // 2, fe.n_fft // 2))
        spent = 0.0
        for win_ms, hop_ms in fe.windows_ms:
            window = torch.hann_window(fe.win_samples(win_ms))
            left = (fe.n_fft - window.shape[0]) // 2
            window = torch.nn.functional.pad(window, (left, fe.n_fft - window.shape[0] - left))
            frames = padded.unfold(-1, fe.n_fft, fe.hop_samples(hop_ms)) * window  # (T, n_fft)
            chunks = frames.split(FRAMES_PER_CHUNK)
            t0 = time.perf_counter()
            for x in chunks:
                torch.fft.rfft(x)
            spent += time.perf_counter() - t0
        with lock:
            seconds.append(spent)
            decoding.append(decoded)

    def warm() -> None:  # flush-to-zero, this thread's FFT plans, the decoder, untimed
        torch.set_flush_denormal(True)
        load_clip(table.path(0), fe.sample_rate, fe.clip_samples)
        for hop_ms in {hop for _win, hop in fe.windows_ms}:
            frames = fe.clip_samples // fe.hop_samples(hop_ms) + 1
            for x in torch.zeros(frames, fe.n_fft).split(FRAMES_PER_CHUNK):
                torch.fft.rfft(x)

    with ThreadPoolExecutor(max(1, workers), initializer=warm) as pool:
        list(pool.map(clip, range(len(table))))
    share = max(1, workers)
    return {
        "clips": len(table),
        "seconds": sum(seconds) / share,
        "decode_seconds": sum(decoding) / share,
    }


def _profile(n: int) -> str:
    """Shares of one thread's time per operation while computing ``n`` clips' images as a
    ``build_features`` worker does (decode, front end, float16 conversion and check)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from soundtransfer.audio import LogMel3, get_preset, load_clip
    from soundtransfer.features.store import float16_images

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    fe = get_preset("esc10")
    table = esc10_table(n)
    model = LogMel3(fe)

    def clip(i: int) -> None:
        with record_function("decode (load_clip)"):
            wave = load_clip(table.path(i), fe.sample_rate, fe.clip_samples)
        with torch.inference_mode():
            img = model(torch.from_numpy(wave)[None])
            with record_function("float16 + check"):
                float16_images(img)

    clip(0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(len(table)):
            clip(i)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows)
    lines = [f"profile, {len(table)} clips, 1 thread (self time, share of the total):"]
    lines += [
        f"    {e.key:32s} {100 * e.self_cpu_time_total / total:5.1f} %  ({e.count} calls)"
        for e in rows[:10]
    ]
    return "\n".join(lines)


def _profile_child(n: int) -> dict[str, Any]:
    return {"text": _profile(n)}


def _gpu(n: int, threads: int, workers: int) -> str:
    import torch

    from soundtransfer.audio import LogMel3, get_preset, load_clip

    fe = get_preset("esc10")
    table = esc10_table(n)
    waves = torch.from_numpy(
        np.stack([load_clip(table.path(i), fe.sample_rate, fe.clip_samples) for i in range(n)])
    ).cuda()
    model = LogMel3(fe).cuda()
    with torch.inference_mode():
        model(waves[:32])
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for s in range(0, n, 32):
            model(waves[s : s + 32])
        torch.cuda.synchronize()
    compute = n / (time.perf_counter() - t0)
    e2e = in_child(_measure, "ours", n, threads, workers, "cuda")
    return (
        f"(c) GPU {torch.cuda.get_device_name()}: front end {compute:.0f} clips/s (compute "
        f"only), end to end {e2e['clips'] / e2e['seconds']:.0f} clips/s (decoding on the CPU)"
    )


def _memory(runs: list[dict[str, Any]]) -> str:
    """The memory of the run of the highest peak RSS (the worst round)."""
    r = max(runs, key=lambda run: float(run["maxrss_mb"]))
    return (
        f"peak RSS {r['maxrss_mb']:.0f} MB ({r['base_mb']:.0f} MB after imports), "
        f"tracemalloc peak {r['tracemalloc_mb']:.0f} MB (32 clips)"
    )


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=256, help="clips for (a) (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="build_features workers (default 2)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved rounds of (a) (default 3)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print the shares of one worker's time"
    )
    args = parser.parse_args()
    if args.clips < 1 or args.repeats < 1:
        parser.error("--clips and --repeats must be >= 1")
    return args


def _part_a(args: argparse.Namespace) -> tuple[list[str], dict[str, Spread]]:
    """(a): interleaved rounds of the reference, ours and the floors; the report's lines and
    the median rates (clips/s) with their ranges."""
    ref, ours, floor = interleaved(
        [
            lambda: in_child(_measure, "reference", args.clips, args.threads, args.workers, "cpu"),
            lambda: in_child(_measure, "ours", args.clips, args.threads, args.workers, "cpu"),
            lambda: in_child(_fft_floor, args.clips, args.workers),
        ],
        args.repeats,
    )
    rate = {
        "ref": [r["clips"] / r["seconds"] for r in ref],
        "ours": [r["clips"] / r["seconds"] for r in ours],
        "fft": [r["clips"] / r["seconds"] for r in floor],
        "decode+fft": [r["clips"] / (r["seconds"] + r["decode_seconds"]) for r in floor],
    }
    med = {k: Spread.of(v) for k, v in rate.items()}
    floor_x = med["fft"].median / med["ref"].median
    # The target: 4x the reference, or within 15 % of the FFT floor if the floor is below 4x.
    against, target, name = (
        ("ref", 4.0, "ratio ours/reference per round")
        if floor_x >= 4.0
        else ("fft", 0.85, "ours / FFT floor per round (the floor is below 4x the reference)")
    )
    ratios = [o / r for o, r in zip(rate["ours"], rate[against], strict=True)]
    share = med["ours"].median / med["decode+fft"].median
    lines = [
        f"(a) {args.clips} ESC-10 clips, {args.threads} torch threads, {args.workers} worker "
        f"threads, end to end from the files, {args.repeats} interleaved rounds "
        f"(medians, min-max):",
        f"    reference (per clip, librosa): {med['ref'].show('.1f')} clips/s  {_memory(ref)}",
        f"    ours (build_features):         {med['ours'].show('.1f')} clips/s  {_memory(ours)}",
        f"    FFT-only floor (the rffts):    {med['fft'].show('.1f')} clips/s ({floor_x:.1f}x "
        f"the reference; ours is {med['ours'].median / med['fft'].median:.2f} of it)",
        f"    decode + FFT floor:            {med['decode+fft'].show('.1f')} clips/s (decoding "
        f"is paid by both paths; ours is {share:.2f} of it, the rest is what can still be won)",
        "    target: ours >= 4x the reference, or >= 0.85 of the FFT floor when that floor is "
        "below 4x the reference",
        *ratio_report(name, ratios, target),
    ]
    med["ratio"] = Spread.of([o / r for o, r in zip(rate["ours"], rate["ref"], strict=True)])
    return lines, med


def main() -> None:
    args = _args()
    require_esc10()
    import torch

    if args.profile:
        print(in_child(_profile_child, min(args.clips, 32))["text"])
    lines, med = _part_a(args)
    print("\n".join(lines))
    ref_rate = med["ref"].median
    cv = in_child(_measure, "cv", None, args.threads, args.workers, "cpu")
    ours_cv = cv["seconds"] + cv["read_seconds"]
    ref_cv = 5 * cv["clips"] / ref_rate  # extrapolated from (a)
    ratio_b = ref_cv / ours_cv
    print(
        f"(b) 5-fold CV on ESC-10 ({cv['clips']} clips): ours = build once "
        f"{cv['seconds']:.1f} s + read 5 folds {cv['read_seconds']:.1f} s = {ours_cv:.1f} s "
        f"(peak RSS {cv['maxrss_mb']:.0f} MB); reference = 5 x {cv['clips']} clips at "
        f"{ref_rate:.1f} clips/s = {ref_cv:.0f} s (extrapolated linearly from (a)); "
        f"ratio {ratio_b:.0f}x (target >= 15x)"
    )
    gpu = ""
    if torch.cuda.is_available():
        line = _gpu(max(args.clips, 64), args.threads, args.workers)
        print(line)
        gpu = "; " + line.split(": ", 1)[1].split(" (")[0]
    fft, both = med["fft"].median, med["decode+fft"].median
    print(
        f"SUMMARY features: ours {med['ours'].median:.1f} vs reference {ref_rate:.1f} clips/s, "
        f"ratio {med['ratio'].show()} (FFT floor {fft:.1f} clips/s = "
        f"{fft / ref_rate:.1f}x; decode + FFT floor {both:.1f} clips/s, ours "
        f"{med['ours'].median / both:.2f} of it); 5-fold CV prep {ratio_b:.0f}x{gpu}"
    )


if __name__ == "__main__":
    main()
