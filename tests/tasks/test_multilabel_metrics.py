"""Multi-label metrics against direct definitions: AP, mAP's class rule and lwlrap (DCASE 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score

from soundtransfer.tasks import multilabel_metrics as mm
from soundtransfer.tasks.multilabel_metrics import (
    average_precision_per_class,
    lwlrap,
    lwlrap_per_class,
    mean_average_precision,
    tagging_report,
)

# Float64 sums of the same terms in another order (a loop vs a vectorised sum) differ by a few
# ulps of values <= 1; 1e-12 is far above that and far below any real difference.
TOL = 1e-12


def _random_task(seed: int, n: int = 60, c: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(int)
    # Scores that know something: positives shifted up, so the metrics are far from 0 and 1.
    s = rng.normal(size=(n, c)) + 1.5 * y
    return y, s


def _dcase_reference_lwlrap(y: np.ndarray, s: np.ndarray) -> float:
    """The DCASE 2019 task 2 reference (Ellis' Colab), one item at a time, as published:
    rank each item's classes by descending score, precision at each positive class."""
    total, count = 0.0, 0
    for truth, scores in zip(y, s, strict=True):
        positives = np.flatnonzero(truth)
        if positives.size == 0:
            continue
        order = np.argsort(scores)[::-1]
        rank_of = np.empty(len(scores), dtype=int)
        rank_of[order] = np.arange(1, len(scores) + 1)
        hit = np.zeros(len(scores), dtype=bool)
        hit[rank_of[positives] - 1] = True
        cumulative = np.cumsum(hit)
        for cls in positives:
            r = rank_of[cls]
            total += cumulative[r - 1] / r
            count += 1
    return total / count


def _direct_ap(y: np.ndarray, s: np.ndarray) -> float:
    """Mean precision at each positive, items sorted by descending score (no ties)."""
    order = np.argsort(-s)
    hits = y[order].astype(bool)
    precision_at = np.cumsum(hits) / np.arange(1, len(y) + 1)
    return float(precision_at[hits].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lwlrap_equals_the_dcase_reference_loop(seed: int) -> None:
    y, s = _random_task(seed)
    assert abs(lwlrap(y, s) - _dcase_reference_lwlrap(y, s)) < TOL


def test_lwlrap_with_ties_equals_weighted_lrap() -> None:
    # Scores rounded to one decimal tie often; both count a tie against the model.
    y, s = _random_task(3, n=80)
    keep = y.any(axis=1)  # scikit-learn scores items without positives as 1; lwlrap skips them
    y, s = y[keep], np.round(s[keep], 1)
    assert len(np.unique(s)) < s.size // 4  # many ties, or the test would not test them
    expected = label_ranking_average_precision_score(y, s, sample_weight=y.sum(axis=1))
    assert abs(lwlrap(y, s) - expected) < TOL


def test_lwlrap_ignores_items_without_positives() -> None:
    y, s = _random_task(4)
    empty = np.zeros((5, y.shape[1]), dtype=int)
    noise = np.random.default_rng(9).normal(size=(5, y.shape[1]))
    assert abs(lwlrap(np.vstack([y, empty]), np.vstack([s, noise])) - lwlrap(y, s)) < TOL


def test_lwlrap_per_class_weights_make_the_total() -> None:
    y, s = _random_task(5)
    per_class, weight = lwlrap_per_class(y, s)
    assert abs(weight.sum() - 1.0) < TOL
    assert np.allclose(weight, y.sum(axis=0) / y.sum(), rtol=0, atol=TOL)
    assert abs(float((per_class * weight).sum()) - lwlrap(y, s)) < TOL


def test_lwlrap_chunks_give_the_same_value(monkeypatch: pytest.MonkeyPatch) -> None:
    y, s = _random_task(6, n=50, c=5)
    whole = lwlrap_per_class(y, s)[0]
    monkeypatch.setattr(mm, "_PAIRS_PER_CHUNK", 3 * 5 * 5)  # 3 items per chunk
    assert np.allclose(lwlrap_per_class(y, s)[0], whole, rtol=0, atol=TOL)


def test_ap_per_class_equals_the_direct_definition() -> None:
    y, s = _random_task(7)
    ap = average_precision_per_class(y, s)
    for c in range(y.shape[1]):
        assert abs(ap[c] - _direct_ap(y[:, c], s[:, c])) < TOL


def test_ap_of_a_small_hand_example() -> None:
    # Ranked: positive, negative, positive -> precisions 1/1 and 2/3 at the positives.
    y = np.array([[1], [0], [1]])
    s = np.array([[0.9], [0.8], [0.7]])
    assert abs(average_precision_per_class(y, s)[0] - (1 + 2 / 3) / 2) < TOL


def test_map_leaves_out_classes_without_positives() -> None:
    y, s = _random_task(8, c=4)
    y[:, 2] = 0
    ap = average_precision_per_class(y, s)
    assert math.isnan(ap[2]) and np.isfinite(np.delete(ap, 2)).all()
    expected = float(np.mean(np.delete(ap, 2)))
    assert abs(mean_average_precision(y, s) - expected) < TOL
    report = tagging_report(y, s, ["a", "b", "c", "d"])
    assert report.left_out == ("c",) and report.n_positive[2] == 0
    assert "over 3 of 4 classes" in report.summary() and "left out: c" in report.summary()
    assert report.to_dict()["per_class_ap"]["c"] is None


def test_perfect_and_reversed_scores() -> None:
    y, _ = _random_task(10)
    perfect = y + 0.01 * np.random.default_rng(0).random(y.shape)  # positives above negatives
    assert abs(mean_average_precision(y, perfect) - 1.0) < TOL
    assert abs(lwlrap(y, perfect) - 1.0) < TOL
    assert mean_average_precision(y, -perfect) < 0.6 and lwlrap(y, -perfect) < 0.6


def test_metrics_depend_only_on_the_order_of_scores() -> None:
    y, s = _random_task(11)
    squashed = 1 / (1 + np.exp(-s))  # a sigmoid keeps each column's and row's order
    assert np.allclose(
        average_precision_per_class(y, s), average_precision_per_class(y, squashed), atol=TOL
    )
    assert abs(lwlrap(y, s) - lwlrap(y, squashed)) < TOL


def test_no_positive_at_all_is_undefined_not_zero() -> None:
    y = np.zeros((4, 3), dtype=int)
    s = np.random.default_rng(0).random((4, 3))
    assert math.isnan(mean_average_precision(y, s)) and math.isnan(lwlrap(y, s))
    assert tagging_report(y, s, ["a", "b", "c"]).summary().startswith("mAP undefined")


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "differ in shape"),
        (np.zeros(3), np.zeros(3), "items, classes"),
        (np.full((2, 2), 2), np.zeros((2, 2)), "0 or 1"),
        (np.zeros((2, 2)), np.array([[0.0, np.nan], [1.0, 0.0]]), "finite"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "no items"),
    ],
)
def test_bad_inputs_are_refused(y: np.ndarray, s: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mean_average_precision(y, s)


def test_report_needs_one_name_per_column() -> None:
    y, s = _random_task(12, c=3)
    with pytest.raises(ValueError, match="2 class names for 3"):
        tagging_report(y, s, ["a", "b"])
