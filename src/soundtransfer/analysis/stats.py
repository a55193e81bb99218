"""Statistics over evaluation folds: mean, sample std, Student-t interval, paired tests.

With the handful of folds of the paper's protocol (ESC: 5, UrbanSound8K: 10) a mean alone
hides how much the numbers move from fold to fold. Every results table therefore carries the
sample standard deviation (ddof 1), a 95 % Student-t confidence interval of the mean, and,
for two rows measured on the same folds, a paired comparison: the paired t-test and the exact
sign-flip permutation test (all ``2**n`` sign patterns of the per-fold differences). With 5
folds the smallest two-sided permutation p-value is ``2 / 32 = 0.0625``: five folds cannot
show a difference at the 5 % level without the t-test's normality assumption.

The protocol summary shows how much choosing the epoch on the test fold inflates accuracy,
next to the final epoch and the epoch chosen on a validation split.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps  # scikit-learn depends on scipy

from soundtransfer.datasets.clips import split_label as split_label  # where the split is named

EXACT_MAX_N = 16  # exact sign-flip enumeration up to 2**16 patterns; sampled beyond
SAMPLED_PATTERNS = 100_000


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and a Student-t confidence interval over folds.

    Attributes:
        n: number of folds.
        mean: arithmetic mean.
        std: sample standard deviation (ddof 1; 0 for a single fold).
        ci_low, ci_high: the ``confidence`` interval of the mean, ``mean +- t * std / sqrt(n)``
            with ``n - 1`` degrees of freedom (NaN for a single fold).
        confidence: level of the interval (0.95: 95 %).
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        """Half the interval's width (NaN for a single fold)."""
        return (self.ci_high - self.ci_low) / 2


def _values(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what}: need a non-empty 1-d sequence, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: non-finite value in {arr.tolist()}")
    return arr


def t_interval(mean: float, std: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of a mean from ``n`` values: ``mean +- t_{n-1} * std / sqrt(n)``."""
    if n < 2:
        return math.nan, math.nan
    t = float(sps.t.ppf(0.5 + confidence / 2, df=n - 1))
    half = t * std / math.sqrt(n)
    return mean - half, mean + half


def summarize(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Summary:
    """:class:`Summary` of per-fold values (e.g. accuracy % per fold)."""
    arr = _values(values, "summarize")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    low, high = t_interval(mean, std, arr.size, confidence)
    return Summary(int(arr.size), mean, std, low, high, confidence)


def sign_flip_pvalue(
    diffs: Sequence[float] | np.ndarray, seed: int = 0, exact_max_n: int = EXACT_MAX_N
) -> float:
    """Two-sided sign-flip permutation p-value of paired differences (H0: symmetric about 0).

    The statistic is ``|mean(s * d)|`` over sign patterns ``s``; the p-value is the share of
    patterns whose statistic is at least the observed one (the observed pattern included, so
    it is never 0). Exact enumeration of all ``2**n`` patterns up to ``exact_max_n`` values,
    otherwise :data:`SAMPLED_PATTERNS` random patterns (seeded) plus the observed one.
    """
    d = _values(diffs, "sign_flip_pvalue")
    n = d.size
    if n <= exact_max_n:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))  # (2**n, n)
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(SAMPLED_PATTERNS, n))
        signs = np.concatenate([np.ones((1, n)), signs])
    stat = np.abs(signs @ d) / n  # (patterns,)
    observed = abs(float(d.mean()))
    # Tolerance: sums of the same numbers in another order differ in the last bits.
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    return float(np.mean(stat >= observed - tol))


@dataclass(frozen=True)
class Paired:
    """Paired comparison of two rows on the same folds (``a - b`` per fold).

    Attributes:
        diff: :class:`Summary` of the per-fold differences ``a - b``.
        t_pvalue: two-sided paired t-test p-value (1 when every difference is 0, 0 when all
            are equal and non-zero; NaN for a single fold).
        perm_pvalue: two-sided exact sign-flip permutation p-value.
        wins: folds where ``a > b``, ``a == b``, ``a < b``.
    """

    diff: Summary
    t_pvalue: float
    perm_pvalue: float
    wins: tuple[int, int, int]


def paired_comparison(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> Paired:
    """Paired t-test and sign-flip permutation test of ``a`` against ``b`` fold by fold."""
    x = _values(a, "paired_comparison a")
    y = _values(b, "paired_comparison b")
    if x.shape != y.shape:
        raise ValueError(f"paired_comparison: {x.size} folds against {y.size}")
    d = x - y
    diff = summarize(d, confidence)
    if d.size < 2:
        t_p = math.nan
    elif diff.std == 0.0:
        t_p = 1.0 if diff.mean == 0.0 else 0.0
    else:
        t_stat = diff.mean / (diff.std / math.sqrt(d.size))
        t_p = float(2 * sps.t.sf(abs(t_stat), df=d.size - 1))
    wins = (int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum()))
    return Paired(diff, t_p, sign_flip_pvalue(d), wins)


@dataclass(frozen=True)
class ProtocolSummary:
    """Test accuracy under three ways of picking the epoch, over folds.

    Attributes:
        oracle: best epoch chosen on the test fold itself (optimistic, not a valid protocol).
        final: the last epoch.
        best_val: epoch with the best validation accuracy (first one on ties); ``None`` when
            no fold has validation accuracies.
        oracle_epochs, best_val_epochs: chosen 1-based epochs per fold.
    """

    oracle: Summary
    final: Summary
    best_val: Summary | None
    oracle_epochs: tuple[int, ...]
    best_val_epochs: tuple[int, ...] | None

    @property
    def inflation(self) -> float:
        """Mean accuracy gained by choosing the epoch on the test fold instead of the last."""
        return self.oracle.mean - self.final.mean


def protocol_summary(
    test_acc: Sequence[Sequence[float]],
    val_acc: Sequence[Sequence[float]] | None = None,
    confidence: float = 0.95,
) -> ProtocolSummary:
    """Oracle vs final vs best-validation epoch from per-fold, per-epoch accuracies.

    Args:
        test_acc: per fold, the test accuracy after each epoch.
        val_acc: per fold, the validation accuracy after each epoch (same lengths), or
            ``None`` when the runs had no validation split.
    """
    if not test_acc:
        raise ValueError("protocol_summary: no folds")
    curves = [_values(c, f"test accuracies of fold {k + 1}") for k, c in enumerate(test_acc)]
    oracle_ep = tuple(int(np.argmax(c)) for c in curves)  # first maximum
    oracle = summarize([c[e] for c, e in zip(curves, oracle_ep, strict=True)], confidence)
    final = summarize([c[-1] for c in curves], confidence)
    best_val: Summary | None = None
    val_ep: tuple[int, ...] | None = None
    if val_acc is not None:
        if len(val_acc) != len(curves):
            raise ValueError(
                f"protocol_summary: {len(val_acc)} validation curves for {len(curves)} folds"
            )
        vals = [_values(v, f"validation accuracies of fold {k + 1}") for k, v in enumerate(val_acc)]
        for k, (v, c) in enumerate(zip(vals, curves, strict=True)):
            if v.size != c.size:
                raise ValueError(
                    f"protocol_summary: fold {k + 1} has {v.size} validation and {c.size} "
                    "test epochs"
                )
        val_ep = tuple(int(np.argmax(v)) for v in vals)
        best_val = summarize([c[e] for c, e in zip(curves, val_ep, strict=True)], confidence)
    return ProtocolSummary(
        oracle,
        final,
        best_val,
        tuple(e + 1 for e in oracle_ep),
        None if val_ep is None else tuple(e + 1 for e in val_ep),
    )


def format_summary(s: Summary, digits: int = 2, caveat: bool = True) -> str:
    """``mean +- std [low, high]`` over the splits (issue 24 point 6).

    One split has no spread: the mean alone (never ``+- 0.00``). Two splits give a Student-t
    interval with 1 degree of freedom (t = 12.7), far too wide to mean anything: with
    ``caveat`` it says so (the CLI says it in its legend instead, :func:`summary_legend`).
    """
    if s.n < 2 or math.isnan(s.ci_low):
        return f"{s.mean:.{digits}f}"
    text = (
        f"{s.mean:.{digits}f} +- {s.std:.{digits}f} [{s.ci_low:.{digits}f}, {s.ci_high:.{digits}f}]"
    )
    return f"{text} (2 splits: interval not informative)" if caveat and s.n == 2 else text


def summary_legend(n: int) -> str:
    """What :func:`format_summary` printed for ``n`` splits, for a line's parenthesis."""
    if n < 2:
        return "1 split: no std or interval"
    if n == 2:
        return "mean +- sample std [95 % CI]; 2 splits: the interval is not informative"
    return f"mean +- sample std [95 % CI], {n} splits"


def format_pvalue(p: float) -> str:
    """Three significant digits, ``-`` for NaN."""
    return "-" if math.isnan(p) else f"{p:.3g}"
