"""Fine-tuning throughput: ``soundtransfer finetune``'s loop vs the bare model on in-memory tensors.

Ours: ``run_split`` fine-tuning on ESC-10 (train on folds 2-5, 320 clips), batches read from the
float16 feature store (memmap), inline on CPU and by a reader thread one batch ahead, pinned
and copied non-blocking, on CUDA; mixed precision and channels_last on CUDA; per-epoch JSON log
and checkpoint. Its samples/s is the median of the ``samples_per_s`` that the loop itself logs for
each epoch after the first (which pays for warm-up; evaluation is outside the timed part,
checkpointing not).
Reference: the same model (same InputNorm, same optimiser, same autocast/channels_last) doing
forward + backward + Adam step on one batch already on the device: the median rate of as
many timings of one epoch's steps as ours has timed epochs, measured once before and once after
ours and averaged. Medians and bracketing, because on a small shared CPU single epochs vary by
+-20 % and the machine's speed drifts from minute to minute. Target: ours / reference >= 0.9.
Each path runs in a fresh process, which reports its peak RSS (and peak CUDA memory on a GPU).

    .venv/bin/python benchmarks/train_step.py [--arch efficientnet_lite0] [--epochs 4]

Default architecture: resnet50 on CUDA, efficientnet_lite0 on CPU (a ResNet-50 epoch on
2 CPU cores takes minutes). Data: ../shared/data/esc10. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import bare_rates, cuda_peak_mb, esc10_store, in_child, peak_rss_mb


def _cfg(epochs: int, batch: int, device: str) -> Any:
    from soundtransfer.train import get_preset

    return get_preset(
        "paper", [f"epochs={epochs}", f"batch_size={batch}", f"device={device}", "eval_every=0"]
    )


def _ours(
    cache: str, arch: str, epochs: int, batch: int, threads: int, device: str
) -> dict[str, Any]:
    import torch

    from soundtransfer.train import run_split

    torch.set_num_threads(threads)
    store = esc10_store(cache)
    split = next(s for s in store.table.splits() if s.name == "fold1")
    run_dir = Path(cache) / "runs" / arch
    t0 = time.perf_counter()
    run_split(store, split, "random", arch, _cfg(epochs, batch, device), run_dir, progress=False)
    wall = time.perf_counter() - t0
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "samples_per_s": statistics.median(r["samples_per_s"] for r in log[1:] or log),
        "epoch_seconds": [r["seconds"] for r in log],
        "wall": wall,
        "maxrss_mb": peak_rss_mb(),
        "cuda_mb": cuda_peak_mb(),
    }


def _bare(
    cache: str, arch: str, steps: int, repeats: int, batch: int, threads: int, device: str
) -> dict[str, Any]:
    import numpy as np
    import torch

    from soundtransfer.distributed import resolve_device
    from soundtransfer.train.modes import build_classifier
    from soundtransfer.weights import resolve

    torch.set_num_threads(threads)
    store = esc10_store(cache)
    split = next(s for s in store.table.splits() if s.name == "fold1")
    cfg = _cfg(1, batch, device)
    dev = resolve_device(cfg.device)
    train_rows = np.asarray(split.train, dtype=np.int64)
    model, _ = build_classifier(store, train_rows, resolve("random", arch), cfg)
    rows = list(split.train[:batch])
    x = store.batch(rows).to(dev)
    y = torch.tensor([store.table.labels[i] for i in rows], device=dev)
    rate, _ = bare_rates(model, x, y, cfg, steps, repeats=repeats)
    return {"samples_per_s": rate, "maxrss_mb": peak_rss_mb(), "cuda_mb": cuda_peak_mb()}


def _mem(r: dict[str, Any]) -> str:
    cuda = f", peak CUDA {r['cuda_mb']:.0f} MB" if r["cuda_mb"] is not None else ""
    return f"peak RSS {r['maxrss_mb']:.0f} MB{cuda}"


def main() -> None:
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="resnet50" if cuda else "efficientnet_lite0")
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs of ours (all but the first timed)"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        store = esc10_store(cache)  # build the features once, outside both measurements
        train = next(s for s in store.table.splits() if s.name == "fold1").train
        bare_args = (
            cache,
            args.arch,
            -(-len(train) // args.batch),  # the steps of one epoch
            max(1, args.epochs - 1),
            args.batch,
            args.threads,
            args.device,
        )
        # The reference is measured before and after ours (the mean of the two): a shared
        # machine's speed drifts over minutes, and bracketing cancels a linear drift.
        before = in_child(_bare, *bare_args)
        ours = in_child(_ours, cache, args.arch, args.epochs, args.batch, args.threads, args.device)
        after = in_child(_bare, *bare_args)
    bare = dict(after)
    bare["samples_per_s"] = (before["samples_per_s"] + after["samples_per_s"]) / 2
    bare["maxrss_mb"] = max(before["maxrss_mb"], after["maxrss_mb"])
    ratio = ours["samples_per_s"] / bare["samples_per_s"]
    device = torch.cuda.get_device_name() if cuda and args.device != "cpu" else "CPU"
    epochs = ", ".join(f"{s:.1f}" for s in ours["epoch_seconds"])
    print(
        f"fine-tuning {args.arch} on ESC-10 fold 1 (320 training clips, batch {args.batch}, "
        f"{device}, {args.threads} torch threads):\n"
        f"    bare forward+backward+step on one in-memory batch: "
        f"{bare['samples_per_s']:7.1f} samples/s (before {before['samples_per_s']:.1f}, after "
        f"{after['samples_per_s']:.1f})  {_mem(bare)}\n"
        f"    soundtransfer finetune loop (median epoch):       "
        f"{ours['samples_per_s']:7.1f} samples/s  {_mem(ours)}\n"
        f"    epochs took {epochs} s; whole run (with evaluation, checkpoints) "
        f"{ours['wall']:.1f} s\n"
        f"    ratio {ratio:.2f} (target >= 0.9)"
    )
    print(
        f"SUMMARY train_step: {args.arch} on {device}: ours {ours['samples_per_s']:.1f} vs bare "
        f"{bare['samples_per_s']:.1f} samples/s = {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
