"""Scores of a multi-label tagger: per-class AP, mAP (macro) and lwlrap.

All functions take ``y_true`` (N, C), 0/1 (or bool) targets of N items over C classes, and
``scores`` (N, C), any real scores where higher means "more likely present" (sigmoid
probabilities, logits, a single-label model's softmax used as tags); only the order of the
scores within a column (AP) or a row (lwlrap) matters.

- **AP** of a class: scikit-learn's ``average_precision_score`` on its column, the
  non-interpolated step-wise area under the precision-recall curve (the AudioSet and FSD50K
  convention). A class with no positive item has no AP (NaN): recall is undefined.
- **mAP**: the macro mean of the per-class APs over the classes with at least one positive;
  classes without positives are **left out** (not counted as 0 or 1) and named by
  :func:`tagging_report`, so a test fold that happens to miss a rare class neither rewards
  nor punishes the model for it. NaN when no class has a positive.
- **lwlrap** (label-weighted label-ranking average precision, DCASE 2019 task 2): for each
  item and each of its positive classes, the precision of the item's class ranking at that
  class (positives scoring at least as high / classes scoring at least as high), averaged
  over every (item, positive class) pair, so each positive label weighs the same and each
  class weighs by its share of the positive labels. Ties count against the model (a class
  tied with a negative ranks below it), as scikit-learn's
  ``label_ranking_average_precision_score``, which lwlrap equals with each item weighted by
  its number of positive labels. Items without positives do not count. NaN when no item
  has a positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "TaggingReport",
    "average_precision_per_class",
    "check_tagging_inputs",
    "lwlrap",
    "lwlrap_per_class",
    "mean_average_precision",
    "tagging_report",
]

# Pairwise comparisons per chunk in lwlrap_per_class: (items x classes x classes) booleans,
# 16 M (16 MB) at most, so 527 AudioSet classes take 57 items per chunk.
_PAIRS_PER_CHUNK = 1 << 24


def check_tagging_inputs(
    y_true: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """``y_true`` as booleans and ``scores`` as float64, both (N, C), checked.

    Raises:
        ValueError: not 2-D, shapes differ, no item, targets other than 0/1, or non-finite
            scores.
    """
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 2 or s.ndim != 2:
        raise ValueError(f"targets and scores must be (items, classes): {y.shape}, {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"targets {y.shape} and scores {s.shape} differ in shape")
    if y.shape[0] == 0:
        raise ValueError("no items to score")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("targets must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (found NaN or inf)")
    return y.astype(bool), s


def average_precision_per_class(y_true: ArrayLike, scores: ArrayLike) -> NDArray[np.float64]:
    """AP of each class (scikit-learn ``average_precision_score`` per column).

    Args:
        y_true: (N, C) 0/1 targets.
        scores: (N, C) scores.

    Returns:
        (C,) float64; NaN for a class without a positive item.
    """
    from sklearn.metrics import average_precision_score

    y, s = check_tagging_inputs(y_true, scores)
    out = np.full(y.shape[1], np.nan)
    for c in np.flatnonzero(y.any(axis=0)):
        out[c] = float(average_precision_score(y[:, c], s[:, c]))
    return out


def mean_average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Macro mAP over the classes with at least one positive (NaN if none has one)."""
    ap = average_precision_per_class(y_true, scores)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else math.nan


def lwlrap_per_class(
    y_true: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-class lwlrap and each class's weight (its share of all positive labels).

    ``(per_class * weight).sum()`` is :func:`lwlrap`.

    Args:
        y_true: (N, C) 0/1 targets.
        scores: (N, C) scores.

    Returns:
        ``per_class`` (C,), the mean ranking precision over the class's positive labels (NaN
        for a class without positives), and ``weight`` (C,), its positives over all
        positives (all zero when there are none).
    """
    y, s = check_tagging_inputs(y_true, scores)
    n, c = y.shape
    precision_sum = np.zeros(c)
    chunk = max(1, _PAIRS_PER_CHUNK // (c * c))
    for lo in range(0, n, chunk):
        yc, sc = y[lo : lo + chunk], s[lo : lo + chunk]
        # at_least[i, j, k]: class k scores at least as high as class j on item i.
        at_least = sc[:, None, :] >= sc[:, :, None]
        rank = at_least.sum(axis=2)  # (n, c): classes ranked at or above j, j included
        hits = (at_least & yc[:, None, :]).sum(axis=2)  # positives among them
        precision_sum += np.where(yc, hits / rank, 0.0).sum(axis=0)
    positives = y.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(positives > 0, precision_sum / positives, np.nan)
    total = positives.sum()
    weight = positives / total if total > 0 else np.zeros(c)
    return per_class, weight


def lwlrap(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Label-weighted label-ranking average precision (NaN when no item has a positive)."""
    per_class, weight = lwlrap_per_class(y_true, scores)
    if not weight.any():
        return math.nan
    return float(np.nansum(per_class * weight))


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class TaggingReport:
    """Multi-label scores of one split.

    Attributes:
        classes: class names, in the column order of the scores.
        mean_ap: macro mAP over the classes with positives (NaN when none has one).
        per_class_ap: AP per class (NaN without positives).
        n_positive: positive items per class.
        lwlrap: see the module docstring.
        left_out: classes without a positive item, left out of ``mean_ap``.
    """

    classes: tuple[str, ...]
    mean_ap: float
    per_class_ap: tuple[float, ...]
    n_positive: tuple[int, ...]
    lwlrap: float
    left_out: tuple[str, ...]

    def summary(self) -> str:
        """One line: ``mAP 0.712 over 9 of 10 classes (no positive: x), lwlrap 0.801``."""
        scored = len(self.classes) - len(self.left_out)
        if scored == 0:
            return "mAP undefined: no class has a positive item"
        line = f"mAP {self.mean_ap:.3f} over {scored} of {len(self.classes)} classes"
        if self.left_out:
            line += f" (no positive, left out: {', '.join(self.left_out)})"
        return line + f", lwlrap {self.lwlrap:.3f}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN becomes None."""
        return {
            "mAP": _none_if_nan(self.mean_ap),
            "lwlrap": _none_if_nan(self.lwlrap),
            "per_class_ap": {
                n: _none_if_nan(a) for n, a in zip(self.classes, self.per_class_ap, strict=True)
            },
            "n_positive": dict(zip(self.classes, self.n_positive, strict=True)),
            "left_out": list(self.left_out),
        }


def tagging_report(y_true: ArrayLike, scores: ArrayLike, classes: Sequence[str]) -> TaggingReport:
    """mAP, per-class AP and lwlrap of one split.

    Args:
        y_true: (N, C) 0/1 targets.
        scores: (N, C) scores.
        classes: C class names (column order).

    Raises:
        ValueError: bad inputs (see :func:`check_tagging_inputs`) or ``len(classes) != C``.
    """
    y, s = check_tagging_inputs(y_true, scores)
    if len(classes) != y.shape[1]:
        raise ValueError(f"{len(classes)} class names for {y.shape[1]} score columns")
    ap = average_precision_per_class(y, s)
    return TaggingReport(
        classes=tuple(classes),
        mean_ap=float(np.nanmean(ap)) if np.isfinite(ap).any() else math.nan,
        per_class_ap=tuple(float(a) for a in ap),
        n_positive=tuple(int(k) for k in y.sum(axis=0)),
        lwlrap=lwlrap(y, s),
        left_out=tuple(n for n, a in zip(classes, ap, strict=True) if math.isnan(a)),
    )
