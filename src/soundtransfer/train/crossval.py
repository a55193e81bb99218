"""Cross-validation over the official folds (or GTZAN's fixed split)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundtransfer.features.store import FeatureStore
from soundtransfer.train.config import TrainConfig
from soundtransfer.train.loop import run_split


@dataclass(frozen=True)
class CVResult:
    """Per-split results and their mean and (sample) standard deviation, accuracy in %."""

    dataset: str
    weights: str
    arch: str
    mode: str
    splits: tuple[str, ...]
    accuracies: tuple[float, ...]
    run_dir: Path

    @property
    def mean(self) -> float:
        return fold_mean_std(self.accuracies)[0]

    @property
    def std(self) -> float:
        return fold_mean_std(self.accuracies)[1]


def fold_mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single split) over splits."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def weights_label(weights: str, arch: str | None) -> str:
    """Run-directory name of a weight source: ``<arch>.<weights>`` (file paths by stem)."""
    name = Path(weights).stem if Path(weights).suffix else weights
    return f"{arch or 'resnet50'}.{name}"


def run_crossval(
    store: FeatureStore,
    weights: str,
    arch: str | None,
    cfg: TrainConfig,
    out_dir: Path,
    folds: Sequence[int] | None = None,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> CVResult:
    """Hold out each official fold in turn (finished splits are skipped, others resume).

    Run directories: ``out_dir/<dataset>/<arch>.<weights>/<mode>/<split>/``.
    """
    if arch is None:
        from soundtransfer.weights import get_source

        src_arch = get_source(weights).arch if not Path(weights).suffix else None
        arch = src_arch or "resnet50"
    base = out_dir / store.table.name / weights_label(weights, arch) / cfg.mode
    names, accs = [], []
    for split in store.table.splits(folds):
        result: dict[str, Any] = run_split(
            store,
            split,
            weights,
            arch,
            cfg,
            base / split.name,
            cache_dir=cache_dir,
            progress=progress,
        )
        names.append(split.name)
        accs.append(float(result["test_acc"]))
    return CVResult(store.table.name, weights, arch, cfg.mode, tuple(names), tuple(accs), base)
