"""Fold statistics: t-interval against scipy, paired tests against hand enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from soundtransfer.analysis.stats import (
    format_summary,
    paired_comparison,
    protocol_summary,
    sign_flip_pvalue,
    split_label,
    summarize,
    summary_legend,
)


def test_summary_matches_scipy_t_interval() -> None:
    acc = [84.0, 88.5, 91.25, 79.0, 86.0]
    s = summarize(acc)
    assert s.n == 5
    # Here and below: float64 statistics of given numbers against NumPy / SciPy (or a count),
    # the same formulas in another order: approx's 1e-6 relative.
    assert s.mean == pytest.approx(np.mean(acc))
    assert s.std == pytest.approx(np.std(acc, ddof=1))
    low, high = sps.t.interval(0.95, df=4, loc=np.mean(acc), scale=sps.sem(acc))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))
    # 99 % is wider than 95 %.
    assert summarize(acc, confidence=0.99).half_width > s.half_width
    assert format_summary(s).startswith(f"{np.mean(acc):.2f} +- ")


def test_single_fold_has_no_interval() -> None:
    s = summarize([90.0])
    # Issue 24 point 6: one split printed "+- 0.00" as if it had a spread.
    assert s.std == 0.0 and math.isnan(s.ci_low) and format_summary(s) == "90.00"
    assert "no std or interval" in summary_legend(1)


def test_two_splits_say_their_interval_is_not_informative() -> None:
    """Issue 24 point 6: two splits printed [-23.41, 27.41] % without a word (t = 12.7 at 1
    degree of freedom)."""
    s = summarize([60.0, 80.0])
    assert format_summary(s).endswith("(2 splits: interval not informative)")
    assert "[" in format_summary(s, caveat=False) and "not informative" in summary_legend(2)
    assert "not informative" not in format_summary(summarize([60.0, 70.0, 80.0]))
    assert "not informative" not in summary_legend(3)


def test_bad_values_raise() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        summarize([])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, float("nan")])
    with pytest.raises(ValueError, match="3 folds against 2"):
        paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0])


def test_sign_flip_by_hand() -> None:
    # d = (1, 2, 3): |sum| over the 8 sign patterns is 6, 4, 2, 0, 0, 2, 4, 6;
    # two of them (all +, all -) reach the observed 6.
    assert sign_flip_pvalue([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    # d = (1, -2, 3): observed |sum| = 2; patterns with |sum| >= 2: all but the two zeros.
    assert sign_flip_pvalue([1.0, -2.0, 3.0]) == pytest.approx(6 / 8)
    # Five folds all in favour: the smallest possible p-value, 2 / 32.
    assert sign_flip_pvalue([0.5, 1.0, 2.0, 0.1, 3.0]) == pytest.approx(2 / 32)


def test_sign_flip_exact_against_brute_force_and_sampled() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0.8, 1.0, 7)
    count = sum(
        abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= abs(d.sum()) - 1e-12
        for signs in itertools.product((1, -1), repeat=7)
    )
    exact = sign_flip_pvalue(d)
    assert exact == pytest.approx(count / 128)
    assert sign_flip_pvalue(d, exact_max_n=3) == pytest.approx(exact, abs=0.01)


def test_paired_comparison_against_scipy() -> None:
    a = [90.0, 92.5, 88.75, 91.0, 87.5]
    b = [85.0, 90.0, 87.5, 86.25, 88.75]
    p = paired_comparison(a, b)
    ref = sps.ttest_rel(a, b)
    assert p.t_pvalue == pytest.approx(ref.pvalue)
    assert p.diff.mean == pytest.approx(np.mean(np.subtract(a, b)))
    assert p.wins == (4, 0, 1)
    # One negative difference (-1.25) of the five: patterns reaching |mean| >= observed.
    d = np.subtract(a, b)
    count = sum(
        abs(np.dot(s, d)) >= abs(d.sum()) - 1e-9 for s in itertools.product((1, -1), repeat=5)
    )
    assert p.perm_pvalue == pytest.approx(count / 32)
    # Symmetric in the order of the rows, apart from the sign of the difference.
    q = paired_comparison(b, a)
    assert q.t_pvalue == pytest.approx(p.t_pvalue) and q.diff.mean == -p.diff.mean


def test_paired_constant_differences() -> None:
    assert paired_comparison([1.0, 2.0], [1.0, 2.0]).t_pvalue == 1.0
    assert paired_comparison([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]).t_pvalue == 0.0


def test_protocol_summary_shows_inflation() -> None:
    test = [[50.0, 80.0, 70.0], [60.0, 90.0, 75.0], [55.0, 65.0, 85.0]]
    val = [[40.0, 70.0, 70.0], [50.0, 60.0, 80.0], [45.0, 66.0, 55.0]]
    p = protocol_summary(test, val)
    assert p.oracle_epochs == (2, 2, 3)
    assert p.best_val_epochs == (2, 3, 2)  # ties go to the first epoch
    assert p.oracle.mean == pytest.approx((80 + 90 + 85) / 3)
    assert p.final.mean == pytest.approx((70 + 75 + 85) / 3)
    assert p.best_val is not None and p.best_val.mean == pytest.approx((80 + 75 + 65) / 3)
    assert p.inflation == pytest.approx(p.oracle.mean - p.final.mean) and p.inflation > 0
    assert protocol_summary(test).best_val is None
    with pytest.raises(ValueError, match="fold 1 has 2 validation and 3 test"):
        protocol_summary(test, [[1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])


def test_the_fixed_split_is_printed_as_test() -> None:
    """Issue 24 point 6: a train/valid/test CSV's accuracy was printed as split ``fixed``."""
    assert split_label("fixed") == "test" and split_label("fold3") == "fold3"
