"""Per-class thresholds chosen on validation (best F1, target precision) and scored elsewhere."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from soundtransfer.errors import ConfigError
from soundtransfer.tasks.thresholds import (
    ThresholdChoice,
    ThresholdRule,
    choose_thresholds,
    evaluate_thresholds,
)

CLASSES = ["dog", "rain", "siren", "bird"]
# Precision, recall and F1 from integer counts: the library and the brute force divide the
# same integers, so they agree to the last bits; 1e-12 allows for a different operation order.
TOL = 1e-12


def _task(seed: int, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(CLASSES))) < 0.3).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(size=y.shape) + 1.2 * (2 * y - 1))))
    return y, s


def _counts(y: np.ndarray, s: np.ndarray, t: float) -> tuple[float, float, float]:
    pred = s >= t
    tp, fp, fn = (pred & (y == 1)).sum(), (pred & (y == 0)).sum(), (~pred & (y == 1)).sum()
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn)
    f = 2 * p * r / (p + r) if p + r else 0.0
    return float(p), float(r), float(f)


@pytest.mark.parametrize("seed", [0, 1])
def test_f1_rule_finds_the_best_validation_f1(seed: int) -> None:
    y, s = _task(seed)
    choice = choose_thresholds(y, s, CLASSES)
    for c, ct in enumerate(choice.classes):
        brute = {float(t): _counts(y[:, c], s[:, c], t) for t in np.unique(s[:, c])}
        best = max(f for _, _, f in brute.values())
        assert abs(ct.f1 - best) < TOL and ct.how == "best F1"
        p, r, f = _counts(y[:, c], s[:, c], ct.threshold)
        assert max(abs(p - ct.precision), abs(r - ct.recall), abs(f - ct.f1)) < TOL
        # Ties go to the highest threshold (the fewest false alarms).
        assert ct.threshold == max(t for t, (_, _, f) in brute.items() if abs(f - best) < TOL)


def test_precision_rule_takes_the_lowest_threshold_reaching_the_target() -> None:
    y, s = _task(2)
    target = 0.8
    choice = choose_thresholds(y, s, CLASSES, ThresholdRule("precision", target))
    for c, ct in enumerate(choice.classes):
        reaching = [t for t in np.unique(s[:, c]) if _counts(y[:, c], s[:, c], t)[0] >= target]
        assert reaching, "the test data should let every class reach the target"
        assert ct.threshold == min(reaching) and ct.how == "target precision reached"
        assert ct.precision >= target


def test_precision_rule_falls_back_to_the_best_precision() -> None:
    # The top-scoring item is a negative, so no threshold reaches precision 1.
    y = np.array([[0], [1], [1], [0], [1]])
    s = np.array([[0.9], [0.8], [0.7], [0.6], [0.2]])
    ct = choose_thresholds(y, s, ["dog"], ThresholdRule("precision", 1.0)).classes[0]
    # Precision at thresholds 0.9, 0.8, 0.7, 0.6, 0.2: 0, 1/2, 2/3, 2/4, 3/5: best 2/3 at 0.7.
    assert ct.threshold == 0.7 and abs(ct.precision - 2 / 3) < TOL
    assert ct.how.startswith("target precision not reached (best precision 0.667")


def test_class_without_validation_positive_gets_the_fallback() -> None:
    y, s = _task(3)
    y[:, 1] = 0
    choice = choose_thresholds(y, s, CLASSES, ThresholdRule(fallback=0.7))
    ct = choice.classes[1]
    assert ct.threshold == 0.7 and ct.n_positive == 0 and math.isnan(ct.f1)
    assert any(line.startswith("rain: no validation positive") for line in choice.reasons())


def test_evaluation_agrees_with_scikit_learn() -> None:
    y_valid, s_valid = _task(4)
    y_test, s_test = _task(5)
    y_test[:, 3] = 0  # a class absent from the test split: left out of the macro means
    choice = choose_thresholds(y_valid, s_valid, CLASSES)
    ev = evaluate_thresholds(y_test, s_test, CLASSES, choice)
    t = np.array([choice.mapping()[n] for n in CLASSES])
    pred = (s_test >= t).astype(int)
    p, r, f, support = precision_recall_fscore_support(y_test, pred, zero_division=0)
    for c, cs in enumerate(ev.classes):
        assert abs(cs.precision - p[c]) < TOL and cs.tp + cs.fn == support[c]
        if support[c]:
            assert abs(cs.recall - r[c]) < TOL and abs(cs.f1 - f[c]) < TOL
        else:
            assert math.isnan(cs.recall)
    assert ev.left_out == ("bird",)
    assert abs(ev.macro_f1 - float(np.mean(f[:3]))) < TOL
    mp, mr, mf, _ = precision_recall_fscore_support(y_test, pred, average="micro")
    assert max(abs(ev.micro_precision - mp), abs(ev.micro_recall - mr)) < TOL
    assert abs(ev.micro_f1 - mf) < TOL and "macro P" in ev.summary()


def test_thresholds_file_round_trips() -> None:
    y, s = _task(6)
    choice = choose_thresholds(y, s, CLASSES)
    rows = list(csv.DictReader(io.StringIO(choice.csv_text())))
    assert list(rows[0])[:2] == ["class", "threshold"]
    read = {r["class"]: float(r["threshold"]) for r in rows}
    assert read == choice.mapping()  # exact: written with repr
    ev = evaluate_thresholds(y, s, CLASSES, read)
    assert [c.f1 for c in ev.classes] == pytest.approx([c.f1 for c in choice.classes], abs=TOL)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": "youden"}, "threshold rule"),
        ({"rule": "precision"}, "needs a value in"),
        ({"rule": "precision", "target_precision": 1.5}, "needs a value in"),
        ({"rule": "f1", "target_precision": 0.9}, "only used by"),
        ({"fallback": math.nan}, "not a finite"),
    ],
)
def test_bad_rules_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ThresholdRule(**kwargs)  # type: ignore[arg-type]


def test_evaluation_needs_every_threshold() -> None:
    y, s = _task(7)
    with pytest.raises(ValueError, match="no threshold for class"):
        evaluate_thresholds(y, s, CLASSES, {"dog": 0.5})
    assert isinstance(choose_thresholds(y, s, CLASSES), ThresholdChoice)
