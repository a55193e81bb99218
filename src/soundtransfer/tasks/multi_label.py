"""Multi-label tagging: any number of classes per clip (none for a negative), one sigmoid per
class, binary cross-entropy, mAP.

Targets are multi-hot rows ``(N, K)`` (``Clip.labels``); batch augmentation's mixup mixes
them like any soft rows (a mixed row says "present with weight lam"), and label smoothing
applies per label: each binary target moves ``eps / 2`` towards the other side, so a 0 becomes
``eps / 2`` and a 1 ``1 - eps / 2`` (the binary form of the single-label rule ``eps / K``).

Metrics (:mod:`soundtransfer.tasks.multilabel_metrics`): ``mAP`` (macro over the classes
with a positive, the primary metric), ``lwlrap`` and the mean BCE ``loss``. Targets that are
soft (mixup) count as present at 0.5 or more.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from soundtransfer.datasets.clips import ClipTable
from soundtransfer.tasks.base import Task

__all__ = ["TASK", "MultiLabel", "multi_hot_targets", "smoothed_bce"]


def multi_hot_targets(table: ClipTable) -> Tensor:
    """``(N, K)`` float32 multi-hot rows of the table's clips (a single-label table: one-hot)."""
    out = torch.zeros(len(table), len(table.classes), dtype=torch.float32)
    for i, present in enumerate(table.label_sets()):
        out[i, list(present)] = 1.0
    return out


def smoothed_bce(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean binary cross-entropy with logits over every (clip, class), per-label smoothing.

    Args:
        logits: (B, K).
        targets: (B, K) in [0, 1] (multi-hot, or mixed by mixup).
        label_smoothing: eps in [0, 1): targets ``t * (1 - eps) + eps / 2``.
    """
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), not {label_smoothing}")
    t = targets.to(torch.float32) * (1 - label_smoothing) + label_smoothing / 2
    return F.binary_cross_entropy_with_logits(logits.float(), t)


class MultiLabel(Task):
    """Several classes per clip (``Clip.labels``): sigmoid scores, BCE, mAP (0..1)."""

    name = "multi_label"
    primary_metric = "mAP"
    metric_label = "mAP"
    metric_unit = ""

    def targets(self, table: ClipTable) -> Tensor:
        return multi_hot_targets(table)

    def activation(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits.float())

    def loss(self, logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        if targets.dim() == 1:  # class indices (a single-label batch read as tags)
            targets = F.one_hot(targets, logits.shape[-1])
        return smoothed_bce(logits, targets, label_smoothing)

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, float]:
        from soundtransfer.tasks.multilabel_metrics import lwlrap, mean_average_precision

        if len(targets) == 0:
            return {"loss": float("nan"), "mAP": math.nan, "lwlrap": math.nan}
        if targets.dim() == 1:
            targets = F.one_hot(targets, logits.shape[-1])
        loss = float(smoothed_bce(logits, targets))
        y = (targets.float() >= 0.5).numpy()  # soft (mixed) rows: present at half or more
        s = logits.float().numpy().astype(np.float64)  # AP and lwlrap only rank the scores
        if not np.isfinite(s).all():
            return {"loss": loss, "mAP": math.nan, "lwlrap": math.nan}
        return {"loss": loss, "mAP": mean_average_precision(y, s), "lwlrap": lwlrap(y, s)}

    def predictions(self, logits: Tensor) -> list[list[float]]:
        """Each clip's sigmoid scores (K, rounded to 1e-5): the thresholds are chosen on the
        validation part, so ``final.json`` keeps the scores, not decisions."""
        scores = torch.sigmoid(logits.float()).numpy()
        return [[round(float(v), 5) for v in row] for row in scores]


TASK = MultiLabel()
