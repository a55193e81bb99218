"""Confusion counts and what a reader wants from them: right per class, the main confusions.

Pure functions of labels and predictions (NumPy only): the figures
(:func:`soundtransfer.analysis.figures.confusion_figure`), the tables written beside them
(``confusions_*.md`` / ``.csv``) and the demo's held-out table all read the same numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def confusion_counts(labels: Sequence[int], preds: Sequence[int], n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts: row = true class, column = predicted.

    Raises:
        ValueError: lengths differ, or a label or prediction is outside ``0..n_classes - 1``.
    """
    y, p = np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    for name, v in (("label", y), ("prediction", p)):
        bad = v[(v < 0) | (v >= n_classes)]
        if bad.size:
            raise ValueError(f"{name} {int(bad[0])} outside 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y, p), 1)
    return cm


@dataclass(frozen=True)
class ClassResult:
    """One true class: clips right of its total, and what its other clips were taken for.

    Attributes:
        heard_as: (predicted class, clips), most clips first (ties by class order).
    """

    name: str
    right: int
    total: int
    heard_as: tuple[tuple[str, int], ...]


def class_results(cm: np.ndarray, classes: Sequence[str]) -> list[ClassResult]:
    """Per true class, in class order (classes with no clip included, total 0)."""
    out = []
    for i, name in enumerate(classes):
        row = cm[i]
        wrong = [(classes[j], int(row[j])) for j in np.argsort(-row, kind="stable")]
        heard = tuple((c, k) for c, k in wrong if k and c != name)
        out.append(ClassResult(name, int(row[i]), int(row.sum()), heard))
    return out


@dataclass(frozen=True)
class Confusion:
    """One off-diagonal cell: ``clips`` of ``true`` predicted as ``predicted``."""

    true: str
    predicted: str
    clips: int
    share: float  # of the true class's clips, 0..1


def top_confusions(cm: np.ndarray, classes: Sequence[str], k: int | None = None) -> list[Confusion]:
    """The off-diagonal cells with clips, most clips first (then by class order); ``k`` at
    most."""
    totals = cm.sum(axis=1)
    cells = [
        Confusion(classes[i], classes[j], int(cm[i, j]), float(cm[i, j] / totals[i]))
        for i in range(len(classes))
        for j in range(len(classes))
        if i != j and cm[i, j]
    ]
    cells.sort(key=lambda c: -c.clips)  # stable: class order among equal counts
    return cells[:k] if k is not None else cells


def accuracy_line(cm: np.ndarray) -> str:
    """``"17 of 20 clips right (85.0 %)"``."""
    right, total = int(np.trace(cm)), int(cm.sum())
    pct = f" ({100.0 * right / total:.1f} %)" if total else ""
    return f"{right} of {total} clips right{pct}"


def class_table_lines(cm: np.ndarray, classes: Sequence[str], max_heard: int = 3) -> list[str]:
    """A plain-text table, one line per class: ``right / total`` and what else it was heard
    as (at most ``max_heard`` classes, then how many more clips)."""
    results = class_results(cm, classes)
    width = max(len("class"), *(len(r.name) for r in results))
    lines = [f"{'class':<{width}}  right  heard as (clips)"]
    for r in results:
        heard = ", ".join(f"{c} ({k})" for c, k in r.heard_as[:max_heard])
        rest = sum(k for _c, k in r.heard_as[max_heard:])
        if rest:
            heard += f", {rest} more"
        lines.append(f"{r.name:<{width}}  {r.right:>2} / {r.total:<2} {heard}".rstrip())
    return lines


def confusion_markdown(cm: np.ndarray, classes: Sequence[str], title: str, top: int = 20) -> str:
    """Markdown: the title, the accuracy, the ``top`` largest confusions, then every class
    (right of total, recall, what it was heard as)."""
    md = [f"# {title}", "", accuracy_line(cm) + ".", ""]
    pairs = top_confusions(cm, classes, top)
    if pairs:
        md += [
            f"Largest confusions ({len(pairs)} of {len(top_confusions(cm, classes))} cells):",
            "",
            "| true class | predicted as | clips | % of the true class |",
            "|---|---|---|---|",
        ]
        md += [f"| {c.true} | {c.predicted} | {c.clips} | {100 * c.share:.1f} |" for c in pairs]
        md.append("")
    md += [
        "Per class:",
        "",
        "| class | right | clips | % right | heard as (clips) |",
        "|---|---|---|---|---|",
    ]
    for r in class_results(cm, classes):
        pct = f"{100.0 * r.right / r.total:.1f}" if r.total else "-"
        heard = ", ".join(f"{c} ({k})" for c, k in r.heard_as) or "-"
        md.append(f"| {r.name} | {r.right} | {r.total} | {pct} | {heard} |")
    return "\n".join(md) + "\n"


def confusion_csv(cm: np.ndarray, classes: Sequence[str]) -> str:
    """Every cell with clips, long form: ``true,predicted,clips,share_of_true`` (the diagonal
    too: ``true == predicted`` rows are the clips right)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["true", "predicted", "clips", "share_of_true"])
    totals = cm.sum(axis=1)
    for i, t in enumerate(classes):
        for j, p in enumerate(classes):
            if cm[i, j]:
                writer.writerow([t, p, int(cm[i, j]), f"{cm[i, j] / totals[i]:.4f}"])
    return buf.getvalue()
