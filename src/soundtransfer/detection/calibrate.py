"""Per-class thresholds that reach a target precision, from a marked review.

Per class, the marked detections (``yes`` = the clip is its class) give ``p(score)``, the
chance that a detection with that score is right: an isotonic (non-decreasing) fit of the
marks on the scores (scikit-learn), which the review's sampling does not bias, since it picks
by score. The precision of a threshold ``t`` is then the mean of ``p`` over *every*
detection of the class scoring at least ``t`` (the review's ``scores.csv``, beside the
marked CSV; without it, over the marked ones). The threshold written is the lowest marked
score whose precision reaches the target (the most detections kept at that precision).
A class whose target no threshold reaches is written with threshold ``inf`` (``predict``
then never reports it) and listed in :attr:`Fit.unreachable`; a class without marks is left
out of the file (``predict`` uses ``--min-score`` for it) and listed in
:attr:`Fit.unmarked`. The file: ``class,threshold,precision,n`` (``precision`` the fitted
precision at the threshold, or the best reachable for ``inf``; ``n`` the marked detections
at or above it), as :mod:`~soundtransfer.detection.thresholds` reads it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from soundtransfer.detection.review import SCORES_CSV
from soundtransfer.errors import ConfigError, DatasetError, OutputError
from soundtransfer.runs.files import atomic_write, atomic_write_text, refuse_input_as_output

YES = ("yes", "y", "1", "true")
NO = ("no", "n", "0", "false")


@dataclass(frozen=True)
class Curve:
    """One class's fit.

    Attributes:
        label: the class.
        scores: ``(m,)`` the marked scores, ascending.
        right: ``(m,)`` their marks (1 yes, 0 no).
        p: ``(m,)`` the isotonic fit at ``scores``.
        precision: ``(m,)`` the precision of thresholding at each of ``scores``.
        threshold: the chosen threshold (``inf``: the target is not reached).
        at: the precision at ``threshold`` (the best reachable when ``inf``).
        n: marked detections at or above ``threshold``.
    """

    label: str
    scores: np.ndarray
    right: np.ndarray
    p: np.ndarray
    precision: np.ndarray
    threshold: float
    at: float
    n: int


@dataclass
class Fit:
    """Every class's curve, and the classes that could not be given a threshold."""

    curves: list[Curve] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    unmarked: list[str] = field(default_factory=list)


def read_marks(path: Path) -> tuple[dict[str, list[tuple[float, int]]], list[str]]:
    """The marked rows of a review CSV per class (``(score, 1 or 0)``) and every class named
    (marked or not).

    Raises:
        DatasetError: missing, no ``class``/``score``/``mark`` column, a column given twice,
            a bad mark, a score that is not a number in [0, 1], a marked row without a class
            (named by line), or no row marked at all.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: marked review CSV not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the marked review CSV ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("class", "score", "mark") if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing} (a review.csv of review)")
    header = list(reader.fieldnames or [])
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:  # csv.DictReader keeps the last copy without a word; which one is meant is a guess
        raise DatasetError(f"{path}: column(s) {twice} appear twice in the header")
    marks: dict[str, list[tuple[float, int]]] = {}
    names: list[str] = []
    for line, row in enumerate(reader, start=2):
        label, mark = (row["class"] or "").strip(), (row["mark"] or "").strip().lower()
        if label and label not in names:
            names.append(label)
        if not mark:
            continue
        if mark not in YES + NO:
            raise DatasetError(f"{path}: line {line}: mark {row['mark']!r} is not yes, no or blank")
        try:
            score = float(row["score"])
        except (TypeError, ValueError):
            raise DatasetError(
                f"{path}: line {line}: score {row['score']!r} is not a number"
            ) from None
        if not 0.0 <= score <= 1.0:  # predict's scores are probabilities (softmax or sigmoid)
            raise DatasetError(f"{path}: line {line}: score {row['score']!r} is not in [0, 1]")
        if not label:
            raise DatasetError(f"{path}: line {line}: a marked row without a class")
        marks.setdefault(label, []).append((score, int(mark in YES)))
    if not marks:
        raise DatasetError(f"{path}: no row is marked yes or no (mark the 'mark' column)")
    return marks, names


def _population(marked: Path) -> dict[str, np.ndarray] | None:
    """Every detection's score per class, from the review's ``scores.csv`` beside ``marked``
    (None when it is not there)."""
    path = Path(marked).parent / SCORES_CSV
    if not path.is_file():
        return None
    out: dict[str, list[float]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                out.setdefault(row["class"], []).append(float(row["score"]))
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"{path}: line {line}: not a row 'class,score'") from None
    return {k: np.asarray(v) for k, v in out.items()}


def fit_class(
    label: str, marks: Sequence[tuple[float, int]], population: np.ndarray | None, target: float
) -> Curve:
    """The curve and threshold of one class (see the module docstring)."""
    from sklearn.isotonic import IsotonicRegression

    pairs = sorted(marks)
    scores = np.array([s for s, _ in pairs], np.float64)
    right = np.array([r for _, r in pairs], np.float64)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    p = iso.fit(scores, right).predict(scores)
    pop = scores if population is None or not len(population) else np.sort(population)
    p_pop = iso.predict(pop)
    # precision(t) = mean of p over the population at or above t, from suffix sums.
    suffix = np.cumsum(p_pop[::-1])[::-1]
    first = np.searchsorted(pop, scores, side="left")
    count = len(pop) - first
    precision = np.where(
        count > 0, suffix[np.minimum(first, len(pop) - 1)] / np.maximum(count, 1), 0.0
    )
    ok = np.flatnonzero(precision >= target - 1e-12)
    if len(ok):
        k = int(ok[0])
        threshold, at = float(scores[k]), float(precision[k])
    else:
        k = int(np.argmax(precision))
        threshold, at = math.inf, float(precision[k])
    n = int(np.sum(scores >= threshold))
    return Curve(label, scores, right, p, precision, threshold, at, n)


def fit_thresholds(marked: Path, target: float) -> Fit:
    """Every class's threshold at precision ``target`` from a marked review CSV.

    Raises:
        ConfigError: ``target`` not in (0, 1].
        DatasetError: a bad marked CSV (see :func:`read_marks`).
    """
    if not 0 < target <= 1:
        raise ConfigError(f"--precision must be in (0, 1], got {target}")
    marks, names = read_marks(marked)
    population = _population(marked)
    fit = Fit()
    for label in names:
        if label not in marks:
            fit.unmarked.append(label)
            continue
        pop = population.get(label) if population is not None else None
        curve = fit_class(label, marks[label], pop, target)
        fit.curves.append(curve)
        if math.isinf(curve.threshold):
            fit.unreachable.append(label)
    return fit


def thresholds_csv(fit: Fit) -> str:
    """The thresholds file of ``fit`` (``class,threshold,precision,n``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["class", "threshold", "precision", "n"])
    for c in fit.curves:
        value = "inf" if math.isinf(c.threshold) else f"{c.threshold:.4f}"
        writer.writerow([c.label, value, f"{c.at:.4f}", c.n])
    return buf.getvalue()


def plot_curves(fit: Fit, target: float, path: Path) -> Path:
    """A PNG with one panel per class: the marks, the fitted ``p(score)``, the precision of
    each threshold, the target and the chosen threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(fit.curves))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, c in zip(axes.flat, fit.curves, strict=False):
        ax.scatter(c.scores, c.right, s=12, c="grey", alpha=0.6, label="marks (yes=1)")
        ax.plot(c.scores, c.p, "C0-", label="p(right | score)")
        ax.plot(c.scores, c.precision, "C1-", label="precision at or above")
        ax.axhline(target, color="C3", ls=":", label=f"target {target:g}")
        if math.isfinite(c.threshold):
            ax.axvline(c.threshold, color="C2", ls="--", label=f"threshold {c.threshold:.3f}")
        title = c.label if math.isfinite(c.threshold) else f"{c.label} (target not reached)"
        ax.set(title=title, xlabel="score", ylim=(-0.05, 1.05))
    for ax in list(axes.flat)[len(fit.curves) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    finally:
        plt.close(fig)


def write_thresholds(marked: Path, target: float, out: Path) -> tuple[Fit, Path]:
    """Fit, then write ``out`` (the thresholds file) and its figure ``out`` with ``.png``.

    Raises:
        OutputError: ``out`` or the figure is the marked CSV, or ``out`` ends in ``.png``
            (it would be its own figure).
    """
    figure = Path(out).with_suffix(".png")
    if figure == Path(out):
        raise OutputError(f"--out {out}: the thresholds file needs another name than its figure "
                          "(the figure is --out with .png); use e.g. thresholds.csv")  # fmt: skip
    inputs = [marked, Path(marked).parent / SCORES_CSV]
    refuse_input_as_output(out, inputs)
    refuse_input_as_output(figure, inputs, option="the figure")
    fit = fit_thresholds(marked, target)
    plot_curves(fit, target, figure)
    atomic_write_text(Path(out), thresholds_csv(fit))
    return fit, figure
