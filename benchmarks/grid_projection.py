"""Projected time of the paper's full grid (Tables 1 and 2) on this machine, from measured rates.

Measures ResNet-50's training-step and inference throughput (samples/s) on this device at the
two input sizes of the grid, 3x128x250 (ESC-50, UrbanSound8K) and 3x128x1500 (GTZAN), with
the fine-tuning loop's settings (Adam, autocast bf16 and channels_last on CUDA). The train
step benchmark shows that ``soundtransfer finetune`` runs at the bare model's rate (ratio
~1), so the bare rates stand for the loop. Then it multiplies out the ``paper`` grid preset:

- fine-tuning (Table 1): 3 inits x every fold x 70 epochs x (training clips at the train rate
  + the clips evaluated each epoch, test fold and GTZAN's validation set, at the inference rate);
- linear evaluation (Table 2 and the two context rows): 3 inits x every fold x one frozen pass
  over that fold's clips (the heads on cached vectors take seconds);
- split sizes: ESC-50 2,000 clips in 5 folds of 400; UrbanSound8K's official fold sizes;
  GTZAN's fault-filtered split as shipped in the package (443 / 197 / 290).

The projection is linear in the measured rates; feature extraction (see features.py) and
start-up are not included. On CPU the default batch is 8 to keep the run short (per-sample
cost barely depends on the batch there); on CUDA it is the paper's 32.

    .venv/bin/python benchmarks/grid_projection.py [--steps N] [--batch B]

Ends with one summary line.
"""

from __future__ import annotations

import argparse
from importlib import resources
from typing import Any

from _bench import bare_rates, cuda_peak_mb, in_child, peak_rss_mb

EPOCHS = 70
INITS = 3
US8K_FOLDS = (873, 888, 925, 990, 936, 823, 838, 806, 816, 837)  # official fold sizes (8,732)


def _gtzan_sizes() -> tuple[int, int, int]:
    split_dir = resources.files("soundtransfer.datasets") / "splits"
    n = [
        len((split_dir / f"{k}_filtered.txt").read_text().split())
        for k in ("train", "valid", "test")
    ]
    return n[0], n[1], n[2]


def folds() -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """dataset -> (input size, [(training clips, clips evaluated per epoch) per split])."""
    train, valid, test = _gtzan_sizes()
    return {
        "esc50": ("short", [(1600, 400)] * 5),
        "us8k": ("short", [(sum(US8K_FOLDS) - k, k) for k in US8K_FOLDS]),
        "gtzan": ("long", [(train, valid + test)]),
    }


def _rates(frames: int, batch: int, steps: int, threads: int) -> dict[str, Any]:
    import torch

    from soundtransfer.distributed import resolve_device
    from soundtransfer.models import InputNorm
    from soundtransfer.models.classifier import Classifier
    from soundtransfer.train import get_preset
    from soundtransfer.weights import load_encoder

    torch.set_num_threads(threads)
    dev = resolve_device("auto")
    cfg = get_preset("paper")
    encoder, _ = load_encoder("random", "resnet50", seed=0)
    norm = InputNorm([0.0] * 3, [1.0] * 3)
    model = Classifier(encoder, 50, norm)
    x = torch.randn(batch, 3, 128, frames, device=dev)
    y = torch.randint(0, 50, (batch,), device=dev)
    train, infer = bare_rates(model, x, y, cfg, steps, eval_batches=steps)
    return {"train": train, "eval": infer, "maxrss_mb": peak_rss_mb(), "cuda_mb": cuda_peak_mb()}


def main() -> None:
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32 if cuda else 8)
    parser.add_argument("--steps", type=int, default=20 if cuda else 2, help="timed steps")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    args = parser.parse_args()
    rates = {
        size: in_child(_rates, frames, args.batch, args.steps, args.threads)
        for size, frames in (("short", 250), ("long", 1500))
    }
    device = torch.cuda.get_device_name() if cuda else f"CPU, {args.threads} threads"
    for size, r in rates.items():
        mem = f", peak CUDA {r['cuda_mb']:.0f} MB" if r["cuda_mb"] is not None else ""
        print(
            f"resnet50 3x128x{250 if size == 'short' else 1500}, batch {args.batch}, {device}: "
            f"train {r['train']:.1f} samples/s, inference {r['eval']:.1f} samples/s "
            f"(peak RSS {r['maxrss_mb']:.0f} MB{mem})"
        )
    total_ft = total_lin = 0.0
    for name, (size, splits) in folds().items():
        r = rates[size]
        ft = INITS * sum(EPOCHS * (n / r["train"] + e / r["eval"]) for n, e in splits)
        lin = INITS * sum((n + e) / r["eval"] for n, e in splits)
        total_ft, total_lin = total_ft + ft, total_lin + lin
        print(
            f"    {name:6s} {len(splits):2d} split(s): fine-tuning {ft / 3600:8.2f} h, "
            f"linear evaluation {lin / 3600:6.3f} h"
        )
    total = total_ft + total_lin
    print(
        f"projected paper grid on {device}: Table 1 {total_ft / 3600:.2f} h + Table 2 "
        f"{total_lin / 3600:.3f} h = {total / 3600:.2f} h on one device (target on one modern "
        f"GPU: well under 2 h); under torchrun / --spread over N devices about 1/N of it"
    )
    print(
        f"SUMMARY grid_projection: {device}: {total / 3600:.2f} h for the paper grid = "
        f"{total / 7200:.2f} x the 2 h target"
    )


if __name__ == "__main__":
    main()
