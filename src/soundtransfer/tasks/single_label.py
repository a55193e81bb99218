"""Single-label classification: one class per clip, softmax, cross-entropy, accuracy (the
paper's task)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from soundtransfer.datasets.clips import ClipTable
from soundtransfer.tasks.base import Task

__all__ = ["TASK", "SingleLabel", "soft_target_cross_entropy"]


def soft_target_cross_entropy(
    logits: Tensor, targets: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    """Mean cross entropy against soft targets, with label smoothing.

    ``targets' = (1 - eps) * targets + eps / K``; loss ``-sum_k targets'_k log_softmax_k``.
    With one-hot targets it equals ``F.cross_entropy(logits, y, label_smoothing=eps)``.

    Args:
        logits: (B, K).
        targets: (B, K) rows summing to 1.
        label_smoothing: eps in [0, 1).
    """
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), not {label_smoothing}")
    k = logits.shape[-1]
    t = targets.to(torch.float32) * (1 - label_smoothing) + label_smoothing / k  # (B, K)
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, K)
    return -(t * logp).sum(dim=-1).mean()


class SingleLabel(Task):
    """One class per clip (``Clip.label``): softmax scores, cross-entropy (hard targets, or
    soft ones from mixup: :func:`soft_target_cross_entropy`), accuracy in %."""

    name = "single_label"
    primary_metric = "acc"
    metric_label = "accuracy"
    metric_unit = "%"

    def targets(self, table: ClipTable) -> Tensor:
        return torch.tensor(table.labels, dtype=torch.long)  # (N,)

    def activation(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def loss(self, logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        if targets.dim() == 1:
            return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
        return soft_target_cross_entropy(logits, targets, label_smoothing)

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, float]:
        if len(targets) == 0:
            return {"loss": float("nan"), "acc": 0.0}
        hard = targets if targets.dim() == 1 else targets.argmax(1)  # soft: the larger part
        loss = F.cross_entropy(logits.float(), hard)
        acc = 100.0 * float((logits.argmax(1) == hard).float().mean())
        return {"loss": float(loss), "acc": acc}

    def predictions(self, logits: Tensor) -> list[int]:
        out: list[int] = logits.argmax(1).tolist()
        return out


TASK = SingleLabel()
