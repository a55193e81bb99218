"""``soundtransfer finetune``: fine-tune on every official fold held out in turn."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import (
    add_dataset_args,
    add_set_arg,
    open_store,
    parse_folds,
    progress,
)
from soundtransfer.config import setting_names
from soundtransfer.train import PRESETS, TrainConfig


def add_train_args(p: argparse.ArgumentParser) -> None:
    add_dataset_args(p)
    p.add_argument(
        "--weights",
        default="random",
        help="random, supervised, supervised-v2, simclr-v1, simclr-v2, lite0, imagenet (the "
        "--arch model's own ImageNet weights: torchvision's or timm's; fetch them first with "
        "'soundtransfer weights fetch imagenet --arch NAME'), or a file (.safetensors/.pt)",
    )
    p.add_argument(
        "--arch",
        default=None,
        help="encoder architecture, for 'random' and 'imagenet' (default resnet50) or a weight "
        "file that does not record its own: resnet18/34/50/101/152, efficientnet_lite0/1/2, "
        "any torchvision classification model (convnext_tiny, efficientnet_b0, "
        "mobilenet_v3_small, regnet_y_800mf, vit_b_16, ...) or timm:<model> (pip install timm)",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper",
        help="paper: Adam 1e-4, wd 1e-3, batch 32, 70 epochs; cpu: 4 epochs; demo: 2 epochs; "
        "recipe: AdamW with warm-up + cosine, label smoothing, gain, time shift and "
        "SpecAugment (fine-tuning; mixup and EMA available, off), each switchable with --set "
        "(aug_*, label_smoothing, schedule, warmup_epochs, min_lr_ratio, ema_decay)",
    )
    p.add_argument("--folds", help="hold out only these folds, e.g. 1,2 (default: all)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs directory")
    p.add_argument(
        "--device", default=None, help="auto, cpu, cuda, cuda:1 ... (same as --set device=...)"
    )
    add_set_arg(
        p,
        "override a training setting (repeatable); keys: " + ", ".join(setting_names(TrainConfig)),
    )


def register(sub: Any) -> None:
    register_mode(
        sub,
        "finetune",
        "fine-tune encoder + head with cross-validation (official folds or your own data)",
        "Fine-tunes f(.) and g(.) (the paper's Table 1) on each fold held out in turn; "
        "resumable (last.pt each epoch), finished folds are reused. A run directory holding a "
        "run of other settings or data is an error naming the difference. Own data (a folder "
        "of class folders or a CSV): the folds, the front end and why, and a leakage report "
        "(a recording in two folds or duplicate audio across folds stops the run) are printed "
        "before training.",
    )


def register_mode(sub: Any, mode: str, help: str, description: str) -> None:
    """The ``finetune`` / ``linear-eval`` subcommand (same arguments, another ``mode``)."""
    p = sub.add_parser(mode.replace("_", "-"), help=help, description=description)
    add_train_args(p)
    p.set_defaults(handler=run, mode="linear" if mode == "linear_eval" else mode)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.analysis.stats import format_summary, split_label, summarize, summary_legend
    from soundtransfer.models.registry import check_embedding
    from soundtransfer.train import get_preset, run_crossval
    from soundtransfer.weights import resolve

    device = [f"device={args.device}"] if args.device else []
    cfg = get_preset(args.preset, [*args.overrides, *device, f"mode={args.mode}"])
    weights = resolve(args.weights, args.arch)  # checked before anything is read or written
    check_embedding(weights.arch, cfg.embedding)
    store = open_store(args)
    result = run_crossval(
        store,
        weights,
        None,
        cfg,
        args.out,
        parse_folds(args.folds),
        cache_dir=args.cache,
        progress=progress(args),
    )
    print(f"{result.dataset} {result.arch}.{result.weights} {result.mode}: {result.run_dir}")
    unit = f" {result.unit}" if result.unit else ""
    for name, acc in zip(result.splits, result.accuracies, strict=True):
        name = split_label(name)
        print(f"  {name:>8}  {acc:6.2f}{unit}" if unit else f"  {name:>8}  mAP {acc:.3f}")
    for line in result.notes:
        print(f"  {line}")
    stats = format_summary(summarize(result.accuracies), digits=2 if unit else 3, caveat=False)
    legend = summary_legend(len(result.splits))
    print(f"  {'mean':>8}  {'' if unit else 'mAP '}{stats}{unit}  ({legend})")
    if result.final_epoch:  # another model was kept: the final epoch's figure beside it
        final = format_summary(summarize(result.final_epoch), digits=2 if unit else 3)
        label = "" if unit else "mAP "
        print(f"  {'final ep':>8}  {label}{final}{unit}  (the final epoch, reported only)")
    first = result.splits[0]
    bundle = result.run_dir / first / "model.pt"
    print(f"model bundles: {result.run_dir}/<split>/model.pt (each trained without its split)")
    print(f"  predict: soundtransfer predict {bundle} CLIP.wav")
    print(f"  export:  soundtransfer export {bundle} --out model.onnx")
    print(
        f"  figures: soundtransfer figures {args.out} --dataset {result.dataset} "
        f"--out {args.out / 'figures'}"
    )
    return 0
