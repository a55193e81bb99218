"""Events from window scores: slices, thresholds, merging, minimum length, tasks, unknown."""

from __future__ import annotations

import math

import numpy as np
import pytest

from soundtransfer.config import ConfigError
from soundtransfer.inference.timeline import (
    UNKNOWN,
    EventRule,
    Labels,
    detect_events,
    top_classes,
)

CLASSES = ("a", "b", "c", "noise")
SIZE, HOP = 5.0, 1.0


def _scores(label: str, p: float) -> np.ndarray:
    """Softmax-like scores: ``p`` for ``label``, the rest shared by the others."""
    out = np.full(len(CLASSES), (1 - p) / (len(CLASSES) - 1))
    out[CLASSES.index(label)] = p
    return out


def _events(
    tops: list[tuple[str, float]], rule: EventRule, total: float | None = None, **labels: object
) -> list[tuple[str, float, float]]:
    windows = [(k * HOP, _scores(lab, p)) for k, (lab, p) in enumerate(tops)]
    total = total if total is not None else (len(tops) - 1) * HOP + SIZE
    got = detect_events(windows, total, Labels.of(CLASSES, rule, **labels), rule, SIZE, HOP)  # type: ignore[arg-type]
    return [(e.label, e.start_s, e.end_s) for e in got]


def test_slices_tile_the_file_and_runs_become_events() -> None:
    rule = EventRule(min_score=0.5, min_event_s=0)
    tops = [("a", 0.9)] * 3 + [("b", 0.8)] * 4
    # Window k owns [k + 2, k + 3): the first from 0, the last to the file's end (11 s).
    assert _events(tops, rule) == [("a", 0.0, 5.0), ("b", 5.0, 11.0)]
    windows = [(k * HOP, _scores(lab, p)) for k, (lab, p) in enumerate(tops)]
    ev = detect_events(windows, 11.0, Labels.of(CLASSES, rule), rule, SIZE, HOP)
    assert [e.windows for e in ev] == [3, 4]
    assert ev[0].score == pytest.approx(0.9) and ev[1].mean == pytest.approx(0.8)
    # One window (a file shorter than a window): one slice, the whole file.
    assert _events([("c", 0.7)], rule, total=3.2) == [("c", 0.0, 3.2)]


def test_min_score_thresholds_and_background() -> None:
    tops = [("a", 0.9), ("a", 0.45), ("b", 0.6), ("noise", 0.99), ("b", 0.95)]
    rule = EventRule(min_score=0.5, min_event_s=0)
    assert [e[0] for e in _events(tops, rule, background=("noise",))] == ["a", "b", "b"]
    # The background class is never an event, whatever its score.
    assert "noise" not in [e[0] for e in _events(tops, EventRule(0.0), background=("noise",))]
    # A class's own threshold replaces min_score for it; inf: never reported.
    per_class = EventRule(0.5, {"a": 0.4, "b": math.inf}, min_event_s=0)
    got = _events(tops, per_class, background=("noise",))
    assert got == [("a", 0.0, 4.0)]
    # The bundle's thresholds apply when the rule names none; the rule's replace them.
    bundle = {"b": 0.99}
    assert [e[0] for e in _events(tops, rule, bundle_thresholds=bundle)] == ["a", "noise"]
    assert [e[0] for e in _events(tops, EventRule(0.5, {}), bundle_thresholds=bundle)] == [
        "a", "b", "noise", "b",
    ]  # fmt: skip


def test_merge_gap_and_min_event() -> None:
    tops = [("a", 0.9)] * 3 + [("c", 0.3)] + [("a", 0.9)] * 3
    assert _events(tops, EventRule(0.5, min_event_s=0)) == [("a", 0.0, 5.0), ("a", 6.0, 11.0)]
    merged = _events(tops, EventRule(0.5, merge_gap_s=1.0, min_event_s=0))
    assert merged == [("a", 0.0, 11.0)]  # the gap is part of the event
    assert len(_events(tops, EventRule(0.5, merge_gap_s=0.99, min_event_s=0))) == 2


def test_a_window_straddling_two_sounds_does_not_fragment_the_timeline() -> None:
    """Sound a, then sound b; the windows over both go to c (a low score) or a weak a."""
    tops = [("a", 0.9)] * 4 + [("c", 0.55), ("a", 0.52)] + [("b", 0.9)] * 4
    fragmented = _events(tops, EventRule(0.5, min_event_s=0))
    assert [e[0] for e in fragmented] == ["a", "c", "a", "b"]
    whole = _events(tops, EventRule(0.5, min_event_s=1.5))
    assert whole == [("a", 0.0, 6.0), ("b", 8.0, 14.0)]


def test_multi_label_reports_every_class_above_threshold() -> None:
    scores = [np.array([0.9, 0.8, 0.1, 0.95]), np.array([0.9, 0.2, 0.7, 0.1])] * 2
    windows = [(k * HOP, s) for k, s in enumerate(scores)]
    rule = EventRule(0.5, {"c": 0.6}, min_event_s=0)
    labels = Labels.of(CLASSES, rule, multi_label=True, background=("noise",))
    got = {(e.label, e.start_s, e.end_s) for e in detect_events(windows, 8, labels, rule, 5, 1)}
    # a in every window; b and c alternate; they overlap a (and noise is background).
    assert got == {("a", 0, 8), ("b", 0, 3), ("b", 4, 5), ("c", 3, 4), ("c", 5, 8)}


def test_unknown_below() -> None:
    tops = [("a", 0.9)] * 3 + [("b", 0.55)] * 3
    got = _events(tops, EventRule(0.5, unknown_below=0.6, min_event_s=0))
    assert got == [("a", 0.0, 5.0), (UNKNOWN, 5.0, 10.0)]
    with pytest.raises(ConfigError, match="unknown"):
        Labels.of((*CLASSES, UNKNOWN), EventRule(unknown_below=0.5))


@pytest.mark.parametrize(
    "kw",
    [{"min_score": -1}, {"min_score": math.nan}, {"merge_gap_s": -1}, {"min_event_s": math.inf},
     {"unknown_below": math.nan}, {"thresholds": {"a": -0.1}}, {"thresholds": {"a": math.nan}}],
)  # fmt: skip
def test_bad_rules(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        EventRule(**kw)  # type: ignore[arg-type]


def test_thresholds_naming_no_class() -> None:
    with pytest.raises(ConfigError, match="zebra"):
        Labels.of(CLASSES, EventRule(thresholds={"zebra": 0.5}))


def test_top_classes_order() -> None:
    probs = np.array([0.1, 0.6, 0.3])
    assert top_classes(probs, ["a", "b", "c"], 2) == (("b", 0.6), ("c", 0.3))
    assert len(top_classes(probs, ["a", "b", "c"], 10)) == 3
