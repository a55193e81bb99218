"""The task interface (:class:`Task`): what differs between single- and multi-label work."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from soundtransfer.datasets.clips import ClipTable

__all__ = ["Task"]


class Task:
    """What a model's outputs mean (after HEAR's ``prediction_type``: single- and multi-label
    differ in the activation, the loss, the targets and the metric).

    Attributes:
        name: the registry name, also recorded in model bundles (``BundleMeta.task``).
        primary_metric: the metric summaries print and ``select=best_val`` maximises; results
            carry it as ``test_<primary_metric>`` (``test_acc``), logs as ``val_...``.
        metric_label: its name in words (``accuracy``), for summaries.
        metric_unit: its unit (``%``).
    """

    name: str = ""
    primary_metric: str = ""
    metric_label: str = ""
    metric_unit: str = ""

    def targets(self, table: ClipTable) -> Tensor:
        """Every clip's training target, in table order: ``(N,)`` class indices or ``(N, K)``
        rows (multi-hot or soft)."""
        raise NotImplementedError

    def activation(self, logits: Tensor) -> Tensor:
        """``(B, K)`` logits -> ``(B, K)`` scores on the scale thresholds use."""
        raise NotImplementedError

    def loss(self, logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """The mean training loss of ``(B, K)`` logits against the batch's targets (the form
        :meth:`targets` gives, or ``(B, K)`` soft targets from batch augmentation)."""
        raise NotImplementedError

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, float]:
        """``{"loss": ..., primary_metric: ..., ...}`` over a whole evaluation set."""
        raise NotImplementedError

    def predictions(self, logits: Tensor) -> Sequence[object]:
        """What ``final.json`` records per clip (a class index, or the classes present)."""
        raise NotImplementedError
