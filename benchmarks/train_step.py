"""Fine-tuning throughput: ``soundtransfer finetune``'s loop vs the bare model on in-memory tensors.

Ours: ``run_split`` fine-tuning on ESC-10 (train on folds 2-5, 320 clips), batches read from the
float16 feature store (memmap), inline on CPU and by a reader thread one batch ahead, pinned
and copied non-blocking, on CUDA; mixed precision and channels_last on CUDA; per-epoch JSON log
and checkpoint. Its samples/s is the median of the ``samples_per_s`` that the loop itself logs for
each epoch after the first (which pays for warm-up; evaluation is outside the timed part,
checkpointing not).
Reference: the same model (same InputNorm, same optimiser, same autocast/channels_last) doing
forward + backward + Adam step on one batch already on the device: the median rate of as
many timings of one epoch's steps as ours has timed epochs.
Method: ``--repeats`` rounds of ours then the reference, interleaved (ours, bare, ours, bare,
...), each run in a fresh process (which reports its peak RSS, and peak CUDA memory on a GPU).
Each round gives one ratio ours / bare of two adjacent runs, so a drift of the machine's speed
over minutes cancels within the pair; the result is the median ratio with the min-max range
of the rounds, and a WARNING line when that range is wider than the median's margin to the
target (then this run cannot say whether the target is met). Target: ours / reference >= 0.9.

Cost of the fine-tuning recipe's augmentation (issue 14): the same loop with the ``recipe``
training preset (gain, time shift, SpecAugment, mixup drawn batched on the training device)
against that preset with every ``aug_*`` switched off (same AdamW, schedule, label
smoothing), interleaved off, on, off, on, ... (``--repeats`` pairs), the same median and
range of the rounds' ratios. Target: with / without >= 0.9. ``--no-recipe`` skips it.

    .venv/bin/python benchmarks/train_step.py [--arch efficientnet_lite0] [--epochs 4]
        [--repeats 3] [--max-train N]

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

from _bench import (
    Spread,
    bare_rates,
    cuda_peak_mb,
    esc10_store,
    in_child,
    interleaved,
    peak_rss_mb,
    ratio_report,
)

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


def _mem(runs: list[dict[str, Any]]) -> str:
    cuda = [r["cuda_mb"] for r in runs if r["cuda_mb"] is not None]
    peak = f", peak CUDA {max(cuda):.0f} MB" if cuda else ""
    return f"peak RSS {max(r['maxrss_mb'] for r in runs):.0f} MB{peak}"


def _rates(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['samples_per_s']:.1f}" for r in runs)


def _args() -> argparse.Namespace:
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
        "--repeats", type=int, default=3, help="interleaved rounds of each pair (default 3)"
    )
    parser.add_argument(
        "--no-recipe", action="store_true", help="skip the augmentation-cost measurement"
    )
    parser.add_argument(
        "--max-train", type=int, default=0, help="use only N training clips (a quick check)"
    )
    args = parser.parse_args()
    if args.repeats < 1 or args.epochs < 1:
        parser.error("--repeats and --epochs must be >= 1")
    return args


def _loop_lines(
    args: argparse.Namespace, n_train: int, device: str, ours: list[Any], bare: list[Any]
) -> tuple[list[str], list[float]]:
    """The report of ours vs the bare model, and the rounds' ratios."""
    ratios = [o["samples_per_s"] / b["samples_per_s"] for o, b in zip(ours, bare, strict=True)]
    epochs = "; ".join(", ".join(f"{s:.1f}" for s in r["epoch_seconds"]) for r in ours)
    walls = ", ".join(f"{r['wall']:.1f}" for r in ours)
    lines = [
        f"fine-tuning {args.arch} on ESC-10 fold 1 ({n_train} training clips, batch "
        f"{args.batch}, {device}, {args.threads} torch threads), {args.repeats} interleaved "
        f"rounds (ours, bare):",
        f"    bare forward+backward+step on one in-memory batch: "
        f"{_spread(bare)} samples/s (runs {_rates(bare)})  {_mem(bare)}",
        f"    soundtransfer finetune loop (median epoch):       "
        f"{_spread(ours)} samples/s (runs {_rates(ours)})  {_mem(ours)}",
        f"    epochs of ours took {epochs} s; whole runs (with evaluation, checkpoints) {walls} s",
        *ratio_report("ratio ours/bare per round", ratios, 0.9),
    ]
    return lines, ratios


def _aug_lines(device: str, ons: list[Any], offs: list[Any]) -> tuple[list[str], list[float]]:
    """The report of the recipe loop with its augmentation on vs off, and the rounds' ratios."""
    aug = [on["samples_per_s"] / off["samples_per_s"] for on, off in zip(ons, offs, strict=True)]
    where = "GPU" if device != "CPU" else "CPU"
    lines = [
        f"    recipe loop, augmentation on ({where}):  {_spread(ons)} samples/s (gain, shift, "
        f"SpecAugment, mixup; runs {_rates(ons)})",
        f"    recipe loop, augmentation off:        {_spread(offs)} samples/s (runs "
        f"{_rates(offs)}; each just before its 'on' run)",
        *ratio_report("augmentation ratio on/off per round", aug, 0.9),
    ]
    return lines, aug


def _spread(runs: list[dict[str, Any]]) -> str:
    return Spread.of([r["samples_per_s"] for r in runs]).show(".1f")


def main() -> None:
    import torch

    args = _args()
    if args.max_train:
        os.environ["TRAIN_STEP_MAX_TRAIN"] = str(args.max_train)  # read by the children
    with tempfile.TemporaryDirectory() as cache:
        store = esc10_store(cache)  # build the features once, outside every measurement
        n_train = len(_fold1(store).train)
        common = (args.batch, args.threads, args.device)
        steps = -(-n_train // args.batch)  # the steps of one epoch
        loop_args = (cache, args.arch, args.epochs, *common)
        bare_args = (cache, args.arch, steps, max(1, args.epochs - 1), *common)
        ours, bare = interleaved(
            [lambda: in_child(_ours, *loop_args), lambda: in_child(_bare, *bare_args)],
            args.repeats,
        )
        offs: list[dict[str, Any]] = []
        ons: list[dict[str, Any]] = []
        if not args.no_recipe:
            offs, ons = interleaved(
                [
                    lambda: in_child(_ours, *loop_args, "recipe", *NO_AUG),
                    lambda: in_child(_ours, *loop_args, "recipe"),
                ],
                args.repeats,
            )
    on_gpu = torch.cuda.is_available() and args.device != "cpu"
    device = torch.cuda.get_device_name() if on_gpu else "CPU"
    lines, ratios = _loop_lines(args, n_train, device, ours, bare)
    print("\n".join(lines))
    aug_summary = ""
    if ons:
        lines, aug = _aug_lines(device, ons, offs)
        print("\n".join(lines))
        aug_summary = f"; recipe augmentation on/off {Spread.of(aug).show()}"
    rates = [Spread.of([r["samples_per_s"] for r in runs]).median for runs in (ours, bare)]
    print(
        f"SUMMARY train_step: {args.arch} on {device}: ours {rates[0]:.1f} vs bare "
        f"{rates[1]:.1f} samples/s, ratio {Spread.of(ratios).show()}{aug_summary}"
    )


if __name__ == "__main__":
    main()
