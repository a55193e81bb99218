"""How a weight average's BatchNorm statistics are recomputed: validation clips only.

Loads the ``model.pt`` of an ESC-10 fold-1 run trained with ``--set average_last=K`` (its
BatchNorm statistics recomputed by the run on shuffled batches of the training batch size,
``train.loop.batchnorm_rows``), recomputes the same weights' statistics three more ways with
``ema.recompute_batchnorm`` (stored order at the old evaluation batch of 8; stored order at 32;
all training clips in one batch) and prints the validation accuracy and loss of each. The
validation clips are the run's own carve (``carve_validation`` with the run's seed); the test
fold is never evaluated.

Usage (the run as in docs/recipe-tuning.md, "Second round")::

    PYTHONPATH=src python benchmarks/studies/bn_recompute_esc10.py \
        RUN_DIR/esc10/ARCH/finetune/fold1 --cache CACHE [--root ../shared/data/esc10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from soundtransfer.datasets.own import ReadOptions
from soundtransfer.features import dataset_store
from soundtransfer.inference.bundle import load_bundle
from soundtransfer.train.data import carve_validation, chunks
from soundtransfer.train.ema import recompute_batchnorm

DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "esc10").resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the fold-1 run folder (config.json, model.pt)")
    parser.add_argument("--cache", type=Path, required=True, help="the run's --cache")
    parser.add_argument("--root", type=Path, default=DATA)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = json.loads((args.run / "config.json").read_text())
    train_cfg, frames = config["train"], config["frontend"]["out_frames"]
    store = dataset_store(
        "esc10", args.root, read=ReadOptions(), cache_dir=args.cache,
        frontend_overrides=[f"out_frames={frames}"],
    )  # fmt: skip
    if store.key != config["store_key"]:
        raise SystemExit(f"store {store.key} is not the run's {config['store_key']}")
    split = store.table.splits([1])[0]
    train, valid = (
        np.asarray(rows)
        for rows in carve_validation(store.table, split.train, train_cfg["val_fraction"],
                                     train_cfg["seed"])
    )  # fmt: skip
    if (len(train), len(valid)) != (config["n_train"], config["n_valid"]):
        raise SystemExit("the carve is not the run's")
    net = load_bundle(args.run / "model.pt")[0].classifier
    y = torch.as_tensor([store.table.clips[i].label for i in valid])

    def score(tag: str) -> None:
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(store.batch(b)) for b in chunks(valid, 8)])
        acc = float((logits.argmax(1) == y).float().mean()) * 100
        print(f"{tag}: val_acc {acc:.1f} val_loss {float(F.cross_entropy(logits, y)):.3f}")

    score("as the run recomputed it (shuffled, training batch)")
    ways = {
        "stored order, batch 8 (before the fix)": chunks(np.sort(train), 8),
        "stored order, batch 32": chunks(np.sort(train), 32),
        "all training clips in one batch": [np.sort(train)],
    }
    for tag, batches in ways.items():
        with torch.no_grad():
            recompute_batchnorm(net, (store.batch(b) for b in batches))
        score(tag)


if __name__ == "__main__":
    main()
