"""What a multi-label run adds to its result: per-class AP and lwlrap of the test rows, and
per-class thresholds chosen on the validation rows (never the test rows) and scored on the
test rows.

Every mode leaves its trained head in the classifier, so the validation scores come from the
classifier itself (one forward pass over the validation rows' store images): the same network
the bundle holds, whatever the mode or probe. The thresholds go into the bundle
(``BundleMeta.thresholds``) and ``thresholds.csv`` beside it (the agreed thresholds file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundtransfer.features.store import FeatureStore
from soundtransfer.models.classifier import Classifier
from soundtransfer.runs import Precision, atomic_write_text
from soundtransfer.tasks.multi_label import multi_hot_targets
from soundtransfer.tasks.multilabel_metrics import tagging_report
from soundtransfer.tasks.thresholds import ThresholdRule, choose_thresholds, evaluate_thresholds
from soundtransfer.train.config import TrainConfig, embed_batch_for
from soundtransfer.train.data import store_batches

__all__ = [
    "THRESHOLDS_FILE",
    "Tagging",
    "tagging",
    "threshold_rule",
    "valid_scores",
    "write_thresholds",
]

THRESHOLDS_FILE = "thresholds.csv"


@dataclass(frozen=True)
class Tagging:
    """A multi-label run's extra result.

    Attributes:
        result: what ``final.json`` adds (``tagging``: the test rows' tagging report;
            ``thresholds``; ``test_at_thresholds``: macro / micro P, R, F1 at them).
        thresholds: class -> threshold for the bundle (None without validation rows).
        lines: what the run says about them (the rule, classes not tuned, the test figures).
        csv: the thresholds file's text ("" without thresholds).
    """

    result: dict[str, Any]
    thresholds: dict[str, float] | None
    lines: tuple[str, ...]
    csv: str


def threshold_rule(cfg: TrainConfig) -> ThresholdRule:
    """``threshold_precision`` 0: best F1; else that target precision."""
    if cfg.threshold_precision > 0:
        return ThresholdRule("precision", cfg.threshold_precision)
    return ThresholdRule()


@torch.no_grad()
def valid_scores(
    model: Classifier,
    store: FeatureStore,
    rows: np.ndarray,
    cfg: TrainConfig,
    dev: torch.device,
) -> np.ndarray:
    """``(N, K)`` sigmoid scores of the classifier on the given store rows."""
    precision = Precision.resolve(dev, cfg.amp, cfg.channels_last)
    precision.model(model.eval())
    out = []
    for x, _y in store_batches(store, rows, embed_batch_for(cfg, dev.type), dev):
        with precision.autocast():
            out.append(torch.sigmoid(model(precision.inputs(x)).float()).cpu().numpy())
    model.to("cpu")
    k = len(store.table.classes)
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, k))


def tagging(
    model: Classifier,
    store: FeatureStore,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    test_scores: np.ndarray,
    cfg: TrainConfig,
    device: torch.device | None = None,
) -> Tagging:
    """Test tagging report, and thresholds chosen on ``rows[1]`` scored on ``rows[2]``.

    Args:
        model: the trained classifier (its head in place).
        store: the feature store.
        rows: train, valid, test store rows.
        test_scores: (N_test, K) sigmoid scores of the test rows (the run's predictions).
        cfg: the settings (``threshold_precision``, batch sizes, precision).
        device: where to score the validation rows.
    """
    classes = store.table.classes
    y = multi_hot_targets(store.table).numpy().astype(np.int64)  # (N, K)
    _, valid, test = rows
    result: dict[str, Any] = {}
    lines: list[str] = []
    if len(test):
        report = tagging_report(y[test], test_scores, classes)
        result["tagging"] = report.to_dict()
        lines.append(f"test: {report.summary()}")
    if not len(valid):
        lines.append(
            "thresholds: none chosen (no validation rows; --set val_fraction=0.2 carves them): "
            "the bundle reports scores of 0.5 and above"
        )
        return Tagging(result, None, tuple(lines), "")
    scores = valid_scores(model, store, valid, cfg, device or torch.device("cpu"))
    choice = choose_thresholds(y[valid], scores, classes, threshold_rule(cfg))
    lines += [f"thresholds: {r}" for r in choice.reasons()]
    result["thresholds"] = choice.mapping()
    if len(test):
        ev = evaluate_thresholds(y[test], test_scores, classes, choice)
        result["test_at_thresholds"] = {
            "macro_precision": ev.macro_precision, "macro_recall": ev.macro_recall,
            "macro_f1": ev.macro_f1, "micro_precision": ev.micro_precision,
            "micro_recall": ev.micro_recall, "micro_f1": ev.micro_f1,
        }  # fmt: skip
        lines.append(f"test {ev.summary()}")
    return Tagging(result, choice.mapping(), tuple(lines), choice.csv_text())


def write_thresholds(run_dir: Path, tag: Tagging) -> None:
    """``thresholds.csv`` in the run directory (nothing without thresholds)."""
    if tag.csv:
        atomic_write_text(run_dir / THRESHOLDS_FILE, tag.csv)
