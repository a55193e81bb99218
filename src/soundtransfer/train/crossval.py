"""Cross-validation over the official folds (or GTZAN's fixed split)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundtransfer.config import ConfigError
from soundtransfer.datasets.clips import split_label
from soundtransfer.features.store import FeatureStore
from soundtransfer.runs import cell_dir
from soundtransfer.tasks import get_task
from soundtransfer.train.config import TrainConfig
from soundtransfer.train.run import run_split
from soundtransfer.weights import ResolvedWeights, resolve

__all__ = ["CVResult", "check_folds", "fold_mean_std", "run_crossval"]


@dataclass(frozen=True)
class CVResult:
    """Per-split results and their mean and (sample) standard deviation: the task's primary
    metric (``accuracies`` holds it: accuracy in % single-label, mAP multi-label)."""

    dataset: str
    weights: str
    arch: str
    mode: str
    splits: tuple[str, ...]
    accuracies: tuple[float, ...]
    run_dir: Path
    mean: float  # fold_mean_std(accuracies)
    std: float
    metric: str = "accuracy"  # the task's metric_label
    unit: str = "%"
    notes: tuple[str, ...] = ()  # per split: validation, the kept model, thresholds
    final_epoch: tuple[float, ...] = ()  # per split, the final epoch's figure, when another
    # model was kept (best validation epoch, weight average); () otherwise


def fold_mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single split) over splits."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def check_folds(folds: Sequence[int] | None) -> list[int] | None:
    """``folds`` as a list, refusing repeats (a fold counted twice would bias the mean/std).

    Raises:
        ConfigError: a fold given more than once.
    """
    if folds is None:
        return None
    repeated = sorted({k for k in folds if list(folds).count(k) > 1})
    if repeated:
        raise ConfigError(f"folds {repeated} given more than once in {list(folds)}")
    return list(folds)


def run_crossval(
    store: FeatureStore,
    weights: str | ResolvedWeights,
    arch: str | None,
    cfg: TrainConfig,
    out_dir: Path,
    folds: Sequence[int] | None = None,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> CVResult:
    """Hold out each official fold in turn (finished splits are reused, others resume).

    Run directories: ``out_dir/<dataset>/<arch>.<weights>/<mode>/<split>/``
    (:func:`soundtransfer.runs.run_dir`).
    """
    resolved = weights if isinstance(weights, ResolvedWeights) else resolve(weights, arch)
    base = cell_dir(out_dir, store.table.name, resolved.label, cfg.run_mode)
    names, accs, notes, finals = [], [], [], []
    task = get_task(store.table.task)
    for split in store.table.splits(check_folds(folds)):
        result = run_split(
            store,
            split,
            resolved,
            None,
            cfg,
            base / split.name,
            cache_dir=cache_dir,
            progress=progress,
        )
        names.append(split.name)
        accs.append(float(result[f"test_{task.primary_metric}"]))
        lines = [*result.get("selection_lines", ()), *result.get("tagging_lines", ())]
        notes += [f"{split_label(split.name, whole=True)}: {line}" for line in lines]
        final = result.get("final_epoch", {}).get(f"test_{task.primary_metric}")
        finals.append(float(result[f"test_{task.primary_metric}"] if final is None else final))
    mean, std = fold_mean_std(accs)
    return CVResult(
        store.table.name, resolved.name, resolved.arch, cfg.run_mode, tuple(names), tuple(accs),
        base, mean, std, task.metric_label, task.metric_unit, tuple(notes),
        tuple(finals) if finals != accs else (),
    )  # fmt: skip
