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

Cost of the fine-tuning recipe's augmentation (issue 14): the same loop with the ``recipe``
training preset (gain, time shift, SpecAugment, mixup drawn batched on the training device)
against that preset with every ``aug_*`` switched off (same AdamW, schedule, label
smoothing), measured off, on, off, on, off (means of each). Target: with / without >= 0.9.
``--no-recipe`` skips it.

    .venv/bin/python benchmarks/train_step.py [--arch efficientnet_lite0] [--epochs 4]

Default architecture: resnet50 on CUDA, efficientnet_lite0 on CPU (a ResNet-50 epoch on
2 CPU cores takes minutes). Data: ../shared/data/esc10. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import bare_rates, cuda_peak_mb, esc10_store, in_child, peak_rss_mb

#: The recipe with its augmentation switched off: the loop it is measured against.
NO_AUG = (
    "aug_gain_db=0", "aug_time_shift=0", "aug_time_masks=0", "aug_freq_masks=0",
    "aug_mixup_alpha=0",
)  # fmt: skip


def _fold1(store: Any) -> Any:
    """ESC-10's fold-1 split; ``$TRAIN_STEP_MAX_TRAIN`` (``--max-train``) cuts its training
    clips for a quick check of the script."""
    import dataclasses

    split = next(s for s in store.table.splits() if s.name == "fold1")
    n = int(os.environ.get("TRAIN_STEP_MAX_TRAIN", "0"))
    return dataclasses.replace(split, train=split.train[:n]) if n else split


def _cfg(epochs: int, batch: int, device: str, preset: str = "paper", *extra: str) -> Any:
    from soundtransfer.train import get_preset

    common = [f"epochs={epochs}", f"batch_size={batch}", f"device={device}", "eval_every=0"]
    return get_preset(preset, [*common, *extra])


def _ours(
    cache: str,
    arch: str,
    epochs: int,
    batch: int,
    threads: int,
    device: str,
    preset: str = "paper",
    *extra: str,
) -> dict[str, Any]:
    import torch

    from soundtransfer.train import run_split

    torch.set_num_threads(threads)
    store = esc10_store(cache)
    split = _fold1(store)
    cfg = _cfg(epochs, batch, device, preset, *extra)
    run_dir = Path(cache) / "runs" / f"{arch}-{preset}-{len(extra)}-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    run_split(store, split, "random", arch, cfg, run_dir, progress=False)
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
    split = _fold1(store)
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
    parser.add_argument(
        "--no-recipe", action="store_true", help="skip the augmentation-cost measurement"
    )
    parser.add_argument(
        "--max-train", type=int, default=0, help="use only N training clips (a quick check)"
    )
    args = parser.parse_args()
    if args.max_train:
        os.environ["TRAIN_STEP_MAX_TRAIN"] = str(args.max_train)  # read by the children
    with tempfile.TemporaryDirectory() as cache:
        store = esc10_store(cache)  # build the features once, outside both measurements
        train = _fold1(store).train
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
        aug: dict[str, Any] | None = None
        if not args.no_recipe:
            loop_args = (cache, args.arch, args.epochs, args.batch, args.threads, args.device)
            # Interleaved off, on, off, on, off: whole runs on this machine are sometimes
            # 20-30 % slower than their neighbours (seen both ways), so two of each.
            runs = [
                in_child(_ours, *loop_args, "recipe", *(NO_AUG if k % 2 == 0 else ()))
                for k in range(5)
            ]
            offs, ons = runs[0::2], runs[1::2]
            aug = {
                "on": statistics.mean(r["samples_per_s"] for r in ons),
                "off": statistics.mean(r["samples_per_s"] for r in offs),
                "ons": [r["samples_per_s"] for r in ons],
                "offs": [r["samples_per_s"] for r in offs],
            }
    bare = dict(after)
    bare["samples_per_s"] = (before["samples_per_s"] + after["samples_per_s"]) / 2
    bare["maxrss_mb"] = max(before["maxrss_mb"], after["maxrss_mb"])
    ratio = ours["samples_per_s"] / bare["samples_per_s"]
    device = torch.cuda.get_device_name() if cuda and args.device != "cpu" else "CPU"
    epochs = ", ".join(f"{s:.1f}" for s in ours["epoch_seconds"])
    print(
        f"fine-tuning {args.arch} on ESC-10 fold 1 ({len(train)} training clips, "
        f"batch {args.batch}, {device}, {args.threads} torch threads):\n"
        f"    bare forward+backward+step on one in-memory batch: "
        f"{bare['samples_per_s']:7.1f} samples/s (before {before['samples_per_s']:.1f}, after "
        f"{after['samples_per_s']:.1f})  {_mem(bare)}\n"
        f"    soundtransfer finetune loop (median epoch):       "
        f"{ours['samples_per_s']:7.1f} samples/s  {_mem(ours)}\n"
        f"    epochs took {epochs} s; whole run (with evaluation, checkpoints) "
        f"{ours['wall']:.1f} s\n"
        f"    ratio {ratio:.2f} (target >= 0.9)"
    )
    aug_summary = ""
    if aug is not None:
        aug_ratio = aug["on"] / aug["off"]
        print(
            f"    recipe loop, augmentation on ({'GPU' if device != 'CPU' else 'CPU'}):           "
            f"{aug['on']:7.1f} samples/s (gain, shift, SpecAugment, mixup; runs "
            f"{', '.join(f'{v:.1f}' for v in aug['ons'])})\n"
            f"    recipe loop, augmentation off:                    {aug['off']:7.1f} samples/s "
            f"(runs before, between and after: {', '.join(f'{v:.1f}' for v in aug['offs'])})\n"
            f"    augmentation ratio {aug_ratio:.2f} (target >= 0.9)"
        )
        aug_summary = f"; recipe augmentation on/off {aug_ratio:.2f}"
    print(
        f"SUMMARY train_step: {args.arch} on {device}: ours {ours['samples_per_s']:.1f} vs bare "
        f"{bare['samples_per_s']:.1f} samples/s = {ratio:.2f}{aug_summary}"
    )


if __name__ == "__main__":
    main()
