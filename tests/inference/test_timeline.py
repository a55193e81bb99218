"""Timeline events: runs of consecutive windows with the same top class, merged."""

from __future__ import annotations

import numpy as np
import pytest

from soundtransfer.inference.timeline import Event, WindowTop, merge_events, top_classes


def _w(start: float, label: str, p: float, hop: float = 1.0, size: float = 5.0) -> WindowTop:
    return WindowTop(start, start + size, ((label, p), ("other", 1 - p)))


def test_runs_merge_into_events() -> None:
    labels = ["dog", "dog", "rain", "rain", "rain", "dog"]
    ps = [0.9, 0.7, 0.6, 0.8, 0.7, 0.5]
    windows = [_w(float(i), lab, p) for i, (lab, p) in enumerate(zip(labels, ps, strict=True))]
    events = merge_events(windows)
    assert [e.label for e in events] == ["dog", "rain", "dog"]
    assert [e.windows for e in events] == [2, 3, 1]
    assert sum(e.windows for e in events) == len(windows)  # every window in exactly one event
    assert (events[1].start_s, events[1].end_s) == (windows[2].start_s, windows[4].end_s)
    # float64 means of the same numbers in another order: approx's 1e-6 relative.
    assert events[0].p == pytest.approx(np.mean(ps[:2]))
    assert events[1].p == pytest.approx(np.mean(ps[2:5]))


def test_single_empty_and_alternating() -> None:
    assert merge_events([]) == []
    assert merge_events([_w(0, "x", 0.6)]) == [Event("x", 0.0, 5.0, 0.6, 1)]
    alternating = [_w(float(i), "ab"[i % 2], 0.6) for i in range(5)]
    assert [e.windows for e in merge_events(alternating)] == [1] * 5


def test_top_classes_order() -> None:
    probs = np.array([0.1, 0.6, 0.3])
    assert top_classes(probs, ["a", "b", "c"], 2) == (("b", 0.6), ("c", 0.3))
    assert len(top_classes(probs, ["a", "b", "c"], 10)) == 3
