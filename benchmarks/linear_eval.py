"""Linear evaluation end to end on ESC-10: cached frozen features vs the naive protocol.

Ours: ``soundtransfer linear-eval``'s path (``run_crossval`` with ``mode=linear``), all 5 folds,
the paper's 70 epochs, starting from a cold embedding cache: per fold, the frozen encoder embeds
the fold's clips once (once per fold, not once overall: the input normalisation uses that fold's
training statistics, so each fold has its own embeddings), then the linear head trains for 70
epochs on the cached 1280/2048-d vectors. Measured in full.
Naive: what a plain fine-tuning script with a frozen encoder does, a forward pass of the
frozen encoder over every training batch in every epoch, then the head's step; the held-out
fold embedded once at the end. It is measured for ``--naive-epochs`` epochs of fold 1 plus
its test pass and extrapolated linearly to 5 folds x 70 epochs (printed). Both read the same
float16 feature store, so the ratio is the encoder cost alone (the front end is the features
benchmark's business). Target: >= 20x. Each path runs in a fresh process (peak RSS).

    .venv/bin/python benchmarks/linear_eval.py [--weights lite0] [--arch efficientnet_lite0]

Data: ../shared/data/esc10. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import cuda_peak_mb, esc10_store, in_child, peak_rss_mb

EPOCHS = 70
FOLDS = 5


def _cfg(device: str) -> Any:
    from soundtransfer.train import get_preset

    return get_preset("paper", ["mode=linear", f"epochs={EPOCHS}", f"device={device}"])


def _ours(cache: str, weights: str, arch: str, threads: int, device: str) -> dict[str, Any]:
    import torch

    from soundtransfer.train import run_crossval

    torch.set_num_threads(threads)
    store = esc10_store(cache)
    t0 = time.perf_counter()
    cv = run_crossval(
        store,
        weights,
        arch,
        _cfg(device),
        Path(cache) / "runs",
        cache_dir=Path(cache),
        progress=False,
    )
    return {
        "seconds": time.perf_counter() - t0,
        "accuracy": (cv.mean, cv.std),
        "maxrss_mb": peak_rss_mb(),
        "cuda_mb": cuda_peak_mb(),
    }


def _naive(
    cache: str, weights: str, arch: str, epochs: int, threads: int, device: str
) -> dict[str, Any]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from soundtransfer.distributed import resolve_device
    from soundtransfer.runs import Precision
    from soundtransfer.train.config import embed_batch_for
    from soundtransfer.train.data import store_batches
    from soundtransfer.train.loop import make_optimizer
    from soundtransfer.train.modes import build_classifier
    from soundtransfer.weights import resolve

    torch.set_num_threads(threads)
    store = esc10_store(cache)
    split = next(s for s in store.table.splits() if s.name == "fold1")
    cfg = _cfg(device)
    dev = resolve_device(cfg.device)
    precision = Precision.resolve(dev, cfg.amp, "off")
    train_rows = np.asarray(split.train, dtype=np.int64)
    model, _ = build_classifier(store, train_rows, resolve(weights, arch), cfg, Path(cache))
    model.to(dev).eval()
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    head = model.head
    optimizer = make_optimizer(head.parameters(), cfg)
    train = train_rows
    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(train)
        for x, y in store_batches(store, perm, cfg.batch_size, dev):
            with torch.no_grad(), precision.autocast():
                z = model.embed(x).float()
            loss = F.cross_entropy(head(z), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    t1 = time.perf_counter()
    test = np.asarray(split.test, dtype=np.int64)
    with torch.no_grad():
        for x, _y in store_batches(store, test, embed_batch_for(cfg, dev.type), dev):
            with precision.autocast():
                head(model.embed(x).float())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    return {
        "epoch_seconds": (t1 - t0) / epochs,
        "test_seconds": t2 - t1,
        "maxrss_mb": peak_rss_mb(),
        "cuda_mb": cuda_peak_mb(),
    }


def _mem(r: dict[str, Any]) -> str:
    cuda = f", peak CUDA {r['cuda_mb']:.0f} MB" if r["cuda_mb"] is not None else ""
    return f"peak RSS {r['maxrss_mb']:.0f} MB{cuda}"


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default="lite0")
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--naive-epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        esc10_store(cache)  # the features, once, outside both measurements
        naive = in_child(
            _naive, cache, args.weights, args.arch, args.naive_epochs, args.threads, args.device
        )
        ours = in_child(_ours, cache, args.weights, args.arch, args.threads, args.device)
    naive_total = FOLDS * (EPOCHS * naive["epoch_seconds"] + naive["test_seconds"])
    ratio = naive_total / ours["seconds"]
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = torch.cuda.get_device_name() if cuda else "CPU"
    mean, std = ours["accuracy"]
    print(
        f"linear evaluation, {args.arch}.{args.weights} on ESC-10, {FOLDS} folds x {EPOCHS} "
        f"epochs, {device}, {args.threads} torch threads:\n"
        f"    ours (embed once per fold, heads on vectors):{ours['seconds']:7.1f} s measured, "
        f"accuracy {mean:.2f} +- {std:.2f} %  {_mem(ours)}\n"
        f"    naive (frozen forward every epoch):          {naive_total:7.1f} s = {FOLDS} x "
        f"({EPOCHS} x {naive['epoch_seconds']:.1f} s/epoch + {naive['test_seconds']:.1f} s test),"
        f" extrapolated from {args.naive_epochs} measured epoch(s) of fold 1  {_mem(naive)}\n"
        f"    speed-up {ratio:.0f}x (target >= 20x)"
    )
    print(
        f"SUMMARY linear_eval: {args.arch}.{args.weights} on {device}: ours {ours['seconds']:.1f} s"
        f" vs naive {naive_total:.0f} s (extrapolated) = {ratio:.0f}x"
    )


if __name__ == "__main__":
    main()
