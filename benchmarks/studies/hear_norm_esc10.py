"""Which input normalisation of the HEAR API transfers better: ``fixed`` vs ``clip``.

Frozen EfficientNet-Lite0 ImageNet features (``load_model("lite0")``, scene embeddings of each
ESC-10 clip at its own length) + a logistic regression (standardised features, C = 1) over
the 5 official ESC-10 folds; prints the mean and std accuracy per normalisation. Each clip's
log-mel image is computed once and normalised both ways.

``--reference`` instead prints the per-channel log-mel mean / std of the UrbanSound8K clips of
../shared/data (each over its own length), the ``REFERENCE_MEAN`` / ``REFERENCE_STD`` shipped
in :mod:`soundtransfer.inference.hear`.

Usage: ``PYTHONPATH=src python benchmarks/studies/hear_norm_esc10.py [--reference]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from soundtransfer.audio.io import load_clip
from soundtransfer.datasets import load_dataset
from soundtransfer.inference.hear import HearModel, load_model

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


def images(model: HearModel, paths: list[Path]) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for p in paths:
            wave = torch.from_numpy(load_clip(p, model.sample_rate))[None]  # (1, T)
            out.append(model.logmel_for(wave.shape[1], wave.device)(wave))  # (1, C, H, W)
    return out


def reference() -> None:
    model = load_model("lite0")
    paths = sorted((DATA / "us8k" / "audio").rglob("*.flac"))
    imgs = images(model, paths)
    flat = torch.cat([i.flatten(2) for i in imgs], dim=2)[0].double()  # (C, all frames)
    mean = [round(float(v), 2) for v in flat.mean(1)]
    std = [round(float(v), 2) for v in flat.std(1)]
    print(f"{len(paths)} clips: REFERENCE_MEAN = {tuple(mean)}  REFERENCE_STD = {tuple(std)}")


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    torch.manual_seed(0)
    table = load_dataset("esc10", DATA / "esc10")
    model = load_model("lite0")
    imgs = images(model, [table.path(i) for i in range(len(table))])
    y = np.asarray(table.labels)
    folds = np.asarray([c.fold for c in table.clips])
    for norm in ("fixed", "clip"):
        model.normalisation = norm
        with torch.no_grad():
            feats = np.concatenate(
                [
                    model.encoder.forward_features(model.normalise(i)).mean((2, 3)).numpy()
                    for i in imgs
                ]
            )
        accs = []
        for k in table.folds:
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
            clf.fit(feats[folds != k], y[folds != k])
            accs.append(100.0 * float((clf.predict(feats[folds == k]) == y[folds == k]).mean()))
        print(
            f"normalisation={norm}: ESC-10 5-fold accuracy {np.mean(accs):.1f} +- "
            f"{np.std(accs, ddof=1):.1f} % (folds {[round(a, 1) for a in accs]})"
        )


if __name__ == "__main__":
    reference() if "--reference" in sys.argv else main()
