"""``predict`` over a folder of recordings, every output written: hours of audio per wall minute.

A folder of ``--recordings`` WAVs of ``--minutes`` each (real ESC-10 clips end to end, each
recording starting at another clip, 44.1 kHz) in a temp dir, classified by a random
EfficientNet-Lite0 bundle (ESC preset, full-size images) every ``--hop`` s with
``FolderRun`` as ``soundtransfer predict DIR --format raven --out OUT --combine`` runs it
(one Raven table per recording written atomically as it finishes, the combined table at the
end). Beside it, in the same run and interleaved with it (a, b, a, b, ...), the bare network
(traced, as predict runs it) over the same number of windows in the same batches: the ratio
ours / bare is what the folder machinery, decoding and the front end cost. Target: at least
2 h of audio per wall minute (120x real time) on 2 cores with a 1 s hop.

Memory: peak RSS of a run over the whole folder vs one over 2 recordings of a fifth of the
length (flat in the number and length of files: about equal).

Each measurement runs in a fresh process (``ru_maxrss`` its own), model loading excluded
from the timings.

    .venv/bin/python benchmarks/predict_folder.py [--recordings 20] [--minutes 10] [--hop 1]
        [--threads 2] [--repeats 3] [--batch-size 8] [--prefetch]
    .venv/bin/python benchmarks/predict_folder.py --profile --recordings 2 --minutes 2

``--profile``: instead, one run under cProfile, and each stage's share of it (decode and
resample, the sliced front end, the network, events, tables and writing): where the time
beyond the bare network goes. Shares only, so usable on a shared machine.

Data: ../shared/data/esc10. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _bench import Spread, in_child, interleaved, peak_rss_mb, require_esc10
from predict import RATE, _floor, _make_bundle, _threads

TARGET_H_PER_MIN = 2.0


def _make_folder(folder: Path, recordings: int, minutes: float) -> float:
    """``recordings`` WAVs of ``minutes`` each under ``folder/siteK/``; their total seconds."""
    import soundfile as sf

    from soundtransfer.audio import load_clip

    clips = sorted((require_esc10() / "audio").glob("*.ogg"))[::10]
    waves = [load_clip(c, RATE) for c in clips]
    n = round(minutes * 60 * RATE)
    for k in range(recordings):
        order = waves[k % len(waves) :] + waves[: k % len(waves)]  # each starts elsewhere
        wave = np.concatenate(order)
        path = folder / f"site{k % 4}" / f"night{k:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.tile(wave, n // len(wave) + 1)[:n], RATE, subtype="FLOAT")
    return recordings * n / RATE


def _folder_run(
    bundle: str, folder: str, out: str, hop: float, batch: int, threads: int, prefetch: bool
) -> Any:
    """In a child: predict over ``folder`` into a fresh ``out`` (Raven tables and combined);
    ``prefetch``: the next batch's images computed in a thread while the network runs."""
    _threads(threads)
    from soundtransfer.detection.folder import FolderOptions, FolderRun
    from soundtransfer.detection.tables import COMBINED
    from soundtransfer.inference.predict import PredictConfig, Predictor

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    config = PredictConfig(hop_s=hop, batch_size=batch, prefetch=prefetch)
    predictor = Predictor(Path(bundle), config)
    load = time.perf_counter() - t0
    windows = 0
    real = predictor.predict_file

    def counting(path: Any, **kw: Any) -> Any:
        nonlocal windows
        pred = real(path, **kw)
        windows += pred.windows
        return pred

    predictor.predict_file = counting  # type: ignore[method-assign]
    options = FolderOptions("raven", Path(out), combine=True)
    t0 = time.perf_counter()
    result = FolderRun(predictor, options, [Path(bundle)]).run([Path(folder)])
    seconds = time.perf_counter() - t0
    tables = len([p for p in Path(out).rglob("*.selections.txt") if p.name != COMBINED["raven"]])
    return {"seconds": seconds, "load_seconds": load, "windows": windows, "done": result.done,
            "tables": tables, "rss_mb": peak_rss_mb()}  # fmt: skip


#: Stages of a run, as (file name, function) of cProfile's entries (cumulative time).
STAGES = {
    "decode + resample (stream_audio)": ("stream.py", "stream_audio"),
    "cutting windows (window_batches, less decoding)": ("stream.py", "window_batches"),
    "front end (SlicedFrontEnd.images)": ("stream.py", "images"),
    "network (traced)": ("jit.py", "__call__"),
    "events (EventTracker.add)": ("timeline.py", "add"),
    "tables (render)": ("tables.py", "render"),
    "writing (atomic_write_text)": ("files.py", "atomic_write_text"),
}


def _profile(bundle: str, folder: str, out: str, hop: float, batch: int, threads: int) -> Any:
    """In a child: one folder run under cProfile; each stage's share of the run's time."""
    import cProfile
    import pstats

    _threads(threads)
    from soundtransfer.detection.folder import FolderOptions, FolderRun
    from soundtransfer.inference.predict import PredictConfig, Predictor

    predictor = Predictor(Path(bundle), PredictConfig(hop_s=hop, batch_size=batch))
    run = FolderRun(predictor, FolderOptions("raven", Path(out), combine=True), [Path(bundle)])
    prof = cProfile.Profile()
    prof.runcall(run.run, [Path(folder)])
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    cum = {(Path(f).name, name): ct for (f, _line, name), (_c, _n, _t, ct, _) in stats.items()}
    total = max(cum.values())
    shares = {stage: cum.get(key, 0.0) / total for stage, key in STAGES.items()}
    decode, cut = list(STAGES)[:2]
    shares[cut] -= shares[decode]  # window_batches pulls the decoded blocks: not twice
    return shares


def _print_profile(args: argparse.Namespace) -> None:
    """``--profile``: each stage's share of one run over a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _make_folder(d / "recordings", args.recordings, args.minutes)
        in_child(_make_bundle, str(d / "model.pt"), args.arch, "")
        run = (str(d / "model.pt"), str(d / "recordings"), str(d / "out"), args.hop)
        shares = in_child(_profile, *run, args.batch_size, args.threads)
    print(
        f"predict over a folder under cProfile: {args.recordings} x {args.minutes:g} min, "
        f"{args.arch}, hop {args.hop:g} s, {args.threads} thread(s), batch {args.batch_size}"
    )
    for stage, share in shares.items():
        print(f"  {stage:48s} {100 * share:5.1f} % of the run")
    rest = 100 * (1 - sum(shares.values()))
    print(f"SUMMARY predict_folder --profile: {rest:.1f} % of the run outside these stages")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10.0, help="each recording's length")
    parser.add_argument("--hop", type=float, default=1.0, help="window hop, s")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--prefetch", action="store_true", help="images of the next batch in a thread"
    )
    parser.add_argument("--profile", action="store_true", help="stage shares (cProfile) only")
    args = parser.parse_args()
    if args.profile:
        _print_profile(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        audio_s = _make_folder(d / "recordings", args.recordings, args.minutes)
        _make_folder(d / "small", 2, args.minutes / 5)
        bundle = str(d / "model.pt")
        in_child(_make_bundle, bundle, args.arch, "")
        b, th = args.batch_size, args.threads
        run = (bundle, str(d / "recordings"), str(d / "out"), args.hop, b, th, args.prefetch)
        first = in_child(_folder_run, *run)  # also: how many windows the floor runs
        ours, bare = interleaved(
            [lambda: in_child(_folder_run, *run),
             lambda: in_child(_floor, bundle, first["windows"], b, th, True)],
            args.repeats,
        )  # fmt: skip
        small = in_child(_folder_run, bundle, str(d / "small"), str(d / "out2"), *run[3:])
    hours = audio_s / 3600
    per_min = [hours / (r["seconds"] / 60) for r in ours]
    ratios = [o["seconds"] / f["seconds"] for o, f in zip(ours, bare, strict=True)]
    bare_per_min = Spread.of([hours / (r["seconds"] / 60) for r in bare])
    lines = [
        f"predict over a folder: {args.recordings} recordings x {args.minutes:g} min "
        f"({hours:.2f} h), {args.arch}, hop {args.hop:g} s, {th} thread(s), batch {b}, "
        f"{'prefetch, ' if args.prefetch else ''}"
        f"{first['windows']} windows, {first['tables']} Raven tables + combined written",
        f"  ours (FolderRun, all outputs): h of audio per wall minute {Spread.of(per_min).show()}"
        f" (target >= {TARGET_H_PER_MIN:g}: "
        f"{'met' if Spread.of(per_min).median >= TARGET_H_PER_MIN else 'NOT met'})",
        f"  bare network, same windows:    h per minute {bare_per_min.show()}",
        f"  ours / bare network time:      {Spread.of(ratios).show()} (paired per round)",
        f"  model load and trace {first['load_seconds']:.2f} s (not in the timings)",
        f"  memory: peak RSS {first['rss_mb']:.0f} MB ({args.recordings} x {args.minutes:g} min)"
        f" vs {small['rss_mb']:.0f} MB (2 x {args.minutes / 5:g} min): flat if about equal",
    ]
    print("\n".join(lines))
    print(
        f"SUMMARY predict_folder: {Spread.of(per_min).median:.2f} h/min "
        f"(target >= {TARGET_H_PER_MIN:g}), {Spread.of(ratios).median:.2f}x the bare network, "
        f"peak RSS {first['rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
