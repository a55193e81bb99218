"""Per-class decision thresholds, chosen on a validation split and scored on another.

A multi-label model says "class c is present" when its score for c is **at least** the
class's threshold. :func:`choose_thresholds` picks one threshold per class from the
*validation* items' scores (never the test fold's):

- ``rule="f1"``: the threshold with the best validation F1 (ties: the highest such
  threshold, i.e. the fewest false alarms);
- ``rule="precision"``: the lowest threshold whose validation precision reaches
  ``target_precision`` (so the most recall at that precision). When no threshold reaches
  it, the class falls back to its highest-precision threshold (ties: the lowest of them,
  the most recall) and its ``how`` says which precision it reached.

Candidate thresholds are the class's distinct validation scores (scikit-learn
``precision_recall_curve``), so each chosen threshold reproduces its validation precision,
recall and F1 exactly. A class with no positive validation item cannot be tuned: it gets
``fallback`` (default 0.5, the sigmoid's midpoint) and says so.

:func:`evaluate_thresholds` then counts, on another split, each class's true and false
positives at those thresholds: precision, recall and F1 per class, their macro means over
the classes with at least one positive in that split (the mAP rule:
:mod:`soundtransfer.tasks.multilabel_metrics`), and the micro ones (counts summed over
classes). A class with no predicted positive has precision 0 (scikit-learn's
``zero_division=0``).

The chosen thresholds go into a model bundle (``BundleMeta.thresholds``, class name ->
threshold, :meth:`ThresholdChoice.mapping`) and the agreed thresholds file
(:meth:`ThresholdChoice.csv_text`: header ``class,threshold``, then ``precision``,
``recall``, ``f1``, ``n`` (validation positives) and ``how``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from soundtransfer.errors import ConfigError
from soundtransfer.tasks.multilabel_metrics import check_tagging_inputs

__all__ = [
    "RULES",
    "ClassScores",
    "ClassThreshold",
    "ThresholdChoice",
    "ThresholdEvaluation",
    "ThresholdRule",
    "choose_thresholds",
    "evaluate_thresholds",
]

RULES = ("f1", "precision")


@dataclass(frozen=True)
class ThresholdRule:
    """How thresholds are chosen (see the module docstring).

    Attributes:
        rule: ``f1`` or ``precision``.
        target_precision: in (0, 1]; required by ``precision``, refused by ``f1``.
        fallback: threshold of a class without validation positives (on the score scale).
    """

    rule: str = "f1"
    target_precision: float | None = None
    fallback: float = 0.5

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"threshold rule {self.rule!r}: choose one of {list(RULES)}")
        p = self.target_precision
        if self.rule == "precision":
            if p is None or not (0.0 < p <= 1.0):
                raise ConfigError(
                    f"target_precision {p!r}: the 'precision' rule needs a value in (0, 1]"
                )
        elif p is not None:
            raise ConfigError("target_precision is only used by the 'precision' rule")
        if not math.isfinite(self.fallback):
            raise ConfigError(f"threshold fallback {self.fallback!r} is not a finite number")

    def describe(self) -> str:
        """One line for the user."""
        if self.rule == "f1":
            return "per-class thresholds: the best F1 on the validation split"
        return (
            f"per-class thresholds: the lowest reaching precision {self.target_precision:g} on "
            "the validation split (else the highest-precision one)"
        )


@dataclass(frozen=True)
class ClassThreshold:
    """One class's threshold and its validation figures at it.

    Attributes:
        name: class name.
        threshold: score at or above which the class is reported.
        precision, recall, f1: on the validation split at ``threshold`` (NaN without
            positives).
        n_positive: positive validation items.
        how: ``best F1``, ``target precision reached``, ``target precision not reached
            (best precision 0.62)`` or ``no validation positive: fallback``.
    """

    name: str
    threshold: float
    precision: float
    recall: float
    f1: float
    n_positive: int
    how: str


@dataclass(frozen=True)
class ThresholdChoice:
    """Thresholds of every class, chosen on one split with one rule."""

    rule: ThresholdRule
    classes: tuple[ClassThreshold, ...]

    def mapping(self) -> dict[str, float]:
        """Class name -> threshold (``BundleMeta.thresholds``)."""
        return {c.name: c.threshold for c in self.classes}

    def reasons(self) -> list[str]:
        """The rule, then one line per class not tuned the normal way."""
        normal = ("best F1", "target precision reached")
        lines = [self.rule.describe()]
        lines += [
            f"{c.name}: {c.how}, threshold {c.threshold:g}"
            for c in self.classes
            if c.how not in normal
        ]
        return lines

    def csv_text(self) -> str:
        """The thresholds file: ``class,threshold,precision,recall,f1,n,how``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["class", "threshold", "precision", "recall", "f1", "n", "how"])
        for c in self.classes:
            figures = ["" if math.isnan(v) else f"{v:.6g}" for v in (c.precision, c.recall, c.f1)]
            w.writerow([c.name, repr(c.threshold), *figures, c.n_positive, c.how])
        return buf.getvalue()


def _f1(precision: NDArray[np.float64], recall: NDArray[np.float64]) -> NDArray[np.float64]:
    denom = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * precision * recall / denom, 0.0)


def _choose_one(
    name: str, y: NDArray[np.bool_], s: NDArray[np.float64], rule: ThresholdRule
) -> ClassThreshold:
    from sklearn.metrics import precision_recall_curve

    n_pos = int(y.sum())
    if n_pos == 0:
        how = "no validation positive: fallback"
        return ClassThreshold(name, rule.fallback, math.nan, math.nan, math.nan, 0, how)
    precision, recall, thresholds = precision_recall_curve(y, s)
    # The last point (precision 1, recall 0) has no threshold: predict nothing.
    p, r = precision[:-1].astype(np.float64), recall[:-1].astype(np.float64)
    f1 = _f1(p, r)
    if rule.rule == "f1":
        i = int(np.flatnonzero(f1 == f1.max())[-1])  # thresholds ascend: the highest of ties
        how = "best F1"
    else:
        target = float(rule.target_precision or 0.0)
        reach = np.flatnonzero(p >= target)
        if reach.size:
            i, how = int(reach[0]), "target precision reached"
        else:
            i = int(np.flatnonzero(p == p.max())[0])
            how = f"target precision not reached (best precision {p[i]:.3g})"
    return ClassThreshold(
        name, float(thresholds[i]), float(p[i]), float(r[i]), float(f1[i]), n_pos, how
    )


def choose_thresholds(
    y_valid: ArrayLike,
    scores_valid: ArrayLike,
    classes: Sequence[str],
    rule: ThresholdRule | None = None,
) -> ThresholdChoice:
    """One threshold per class from the validation split's targets and scores.

    Args:
        y_valid: (N, C) 0/1 targets of the validation items.
        scores_valid: (N, C) their scores (the model's output scale: sigmoid for multi-label).
        classes: C class names.
        rule: :class:`ThresholdRule` (default: best F1).

    Returns:
        The thresholds with their validation figures.

    Raises:
        ValueError: bad inputs (see ``check_tagging_inputs``) or a class count mismatch.
    """
    y, s = check_tagging_inputs(y_valid, scores_valid)
    if len(classes) != y.shape[1]:
        raise ValueError(f"{len(classes)} class names for {y.shape[1]} score columns")
    rule = rule or ThresholdRule()
    return ThresholdChoice(
        rule, tuple(_choose_one(n, y[:, c], s[:, c], rule) for c, n in enumerate(classes))
    )


@dataclass(frozen=True)
class ClassScores:
    """Counts and figures of one class at its threshold on one split."""

    name: str
    threshold: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float  # NaN without positives
    f1: float  # NaN without positives


@dataclass(frozen=True)
class ThresholdEvaluation:
    """Precision / recall / F1 at fixed thresholds on one split.

    Attributes:
        classes: per-class counts and figures.
        macro_precision, macro_recall, macro_f1: means over the classes with positives.
        micro_precision, micro_recall, micro_f1: from the counts summed over all classes.
        left_out: classes without positives, left out of the macro means.
    """

    classes: tuple[ClassScores, ...]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    micro_precision: float
    micro_recall: float
    micro_f1: float
    left_out: tuple[str, ...]

    def summary(self) -> str:
        """One line with the macro and micro figures."""
        return (
            f"at the validation thresholds: macro P {self.macro_precision:.3f} "
            f"R {self.macro_recall:.3f} F1 {self.macro_f1:.3f}; micro P "
            f"{self.micro_precision:.3f} R {self.micro_recall:.3f} F1 {self.micro_f1:.3f}"
        )


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    if tp + fn == 0:
        return precision, math.nan, math.nan
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate_thresholds(
    y_true: ArrayLike,
    scores: ArrayLike,
    classes: Sequence[str],
    thresholds: Mapping[str, float] | ThresholdChoice,
) -> ThresholdEvaluation:
    """Precision, recall and F1 of each class at its threshold (score >= threshold).

    Args:
        y_true: (N, C) 0/1 targets of the evaluated split (not the one the thresholds came
            from).
        scores: (N, C) scores on the thresholds' scale.
        classes: C class names.
        thresholds: class name -> threshold, or a :class:`ThresholdChoice`.

    Raises:
        ValueError: bad inputs, a class count mismatch, or a class without a threshold.
    """
    y, s = check_tagging_inputs(y_true, scores)
    if len(classes) != y.shape[1]:
        raise ValueError(f"{len(classes)} class names for {y.shape[1]} score columns")
    table = thresholds.mapping() if isinstance(thresholds, ThresholdChoice) else thresholds
    absent = [n for n in classes if n not in table]
    if absent:
        raise ValueError(f"no threshold for class(es) {absent}")
    rows = []
    for c, name in enumerate(classes):
        t = float(table[name])
        pred = s[:, c] >= t
        tp = int((pred & y[:, c]).sum())
        fp, fn = int((pred & ~y[:, c]).sum()), int((~pred & y[:, c]).sum())
        rows.append(ClassScores(name, t, tp, fp, fn, *_prf(tp, fp, fn)))
    scored = [r for r in rows if r.tp + r.fn > 0]

    def macro(values: list[float]) -> float:
        return float(np.mean(values)) if values else math.nan

    micro = _prf(sum(r.tp for r in rows), sum(r.fp for r in rows), sum(r.fn for r in rows))
    return ThresholdEvaluation(
        classes=tuple(rows),
        macro_precision=macro([r.precision for r in scored]),
        macro_recall=macro([r.recall for r in scored]),
        macro_f1=macro([r.f1 for r in scored]),
        micro_precision=micro[0],
        micro_recall=micro[1],
        micro_f1=micro[2],
        left_out=tuple(r.name for r in rows if r.tp + r.fn == 0),
    )
