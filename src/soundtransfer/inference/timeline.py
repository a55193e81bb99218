"""A file's timeline: the top classes of each window, and events (runs of one top class)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowTop:
    """One window: its span in the file (s; the last ends at the file's end) and top classes."""

    start_s: float
    end_s: float
    top: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        return self.top[0][0]


@dataclass(frozen=True)
class Event:
    """Consecutive windows with the same top class, merged.

    Attributes:
        label: the class.
        start_s: start of the first window, s.
        end_s: end of the last window, s. Windows overlap when the hop is shorter than the
            window, so an event may overlap its neighbours by up to (window - hop).
        p: mean probability of ``label`` over the event's windows.
        windows: how many windows.
    """

    label: str
    start_s: float
    end_s: float
    p: float
    windows: int


def top_classes(probs: np.ndarray, classes: Sequence[str], k: int) -> tuple[tuple[str, float], ...]:
    """The ``k`` most probable classes of ``probs`` (classes,), most probable first."""
    order = np.argsort(-probs, kind="stable")[: max(1, k)]
    return tuple((classes[i], float(probs[i])) for i in order)


def merge_events(windows: Sequence[WindowTop]) -> list[Event]:
    """Merge runs of consecutive windows whose top class is the same into events."""
    events: list[Event] = []
    run: list[WindowTop] = []
    for w in [*windows, None]:
        if run and (w is None or w.label != run[0].label):
            events.append(
                Event(
                    run[0].label,
                    run[0].start_s,
                    run[-1].end_s,
                    float(np.mean([r.top[0][1] for r in run])),
                    len(run),
                )
            )
            run = []
        if w is not None:
            run.append(w)
    return events
