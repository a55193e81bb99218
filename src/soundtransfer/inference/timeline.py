"""A file's timeline: the top classes of each window, and the events its window scores form.

Events are built from each window's *slice* of the file: windows overlap (a 5 s window every
1 s), so each point of the file is given to the window whose centre is nearest. Window ``k``
starting at ``s_k`` owns ``[s_k + (size - hop) / 2, s_k + (size + hop) / 2)``, the first
window's slice starting at 0 and the last one's ending at the file's end; the slices tile the
file without overlap, one hop long each (:class:`EventTracker`). A window is a *hit* of a
class when its score passes the class's threshold (:class:`EventRule`); a class's consecutive
hit slices form one event, events of one class closer than ``merge_gap_s`` are merged (the gap
becomes part of the event), and events shorter than ``min_event_s`` are dropped, so that a
window straddling two sounds (whose scores are spread over both, or go to a third class)
does not cut the timeline into fragments. Events of different classes may overlap (a
multi-label bundle, or thresholds below 0.5); an event's span is where the model heard the
class, to within a hop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from soundtransfer.config import ConfigError

#: The label of a window reported with ``unknown_below`` (a class below that score).
UNKNOWN = "unknown"


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
    """A class heard over a stretch of the file: its hit slices, merged.

    Attributes:
        label: the class (or :data:`UNKNOWN`).
        start_s: start of the first hit slice, s.
        end_s: end of the last hit slice, s.
        score: the highest score of ``label`` over the event's hit windows (what thresholds
            and the review's precision fit are on).
        mean: the mean score of ``label`` over the hit windows.
        windows: how many hit windows.
    """

    label: str
    start_s: float
    end_s: float
    score: float
    mean: float
    windows: int

    @property
    def seconds(self) -> float:
        """The event's length, s."""
        return self.end_s - self.start_s

    @property
    def p(self) -> float:
        """The mean score (the name before events had thresholds; kept for old callers)."""
        return self.mean


def _check_score(name: str, value: float, allow_inf: bool = False) -> None:
    """Scores are softmax or sigmoid outputs in [0, 1]: a bound above 1 would silently report
    nothing (or, for ``unknown_below``, make every hit unknown); ``inf`` says "never" on
    purpose where ``allow_inf``."""
    ok = 0 <= value <= 1 or (allow_inf and value == math.inf)
    if not ok:
        more = " (or inf: never)" if allow_inf else ""
        raise ConfigError(f"{name} must be a score in [0, 1]{more}, got {value}")


@dataclass(frozen=True)
class EventRule:
    """Which window scores become events.

    Attributes:
        min_score: the threshold of every class without its own (scores: softmax
            probabilities for a single-label bundle, sigmoids for a multi-label one).
        thresholds: per-class thresholds (class -> score; ``inf``: never reported), used
            instead of ``min_score`` for the classes they name; None: the bundle's own
            (``BundleMeta.thresholds``), if any.
        merge_gap_s: events of one class at most this far apart are merged, s.
        min_event_s: events shorter than this are dropped, s (a one-window event lasts one hop).
        unknown_below: a hit whose score is below this is reported as :data:`UNKNOWN` instead
            of its class; None: never.
    """

    min_score: float = 0.5
    thresholds: Mapping[str, float] | None = None
    merge_gap_s: float = 0.0
    min_event_s: float = 0.0
    unknown_below: float | None = None

    def __post_init__(self) -> None:
        _check_score("min_score", self.min_score)
        for name, value in (self.thresholds or {}).items():
            _check_score(f"threshold of {name!r}", value, allow_inf=True)
        for name, seconds in (("merge_gap", self.merge_gap_s), ("min_event", self.min_event_s)):
            if not (math.isfinite(seconds) and seconds >= 0):
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {seconds}")
        if self.unknown_below is not None:
            _check_score("unknown_below", self.unknown_below)


@dataclass(frozen=True)
class Labels:
    """What a bundle's outputs mean for events: classes, task, background, thresholds.

    Attributes:
        classes: class names, index = output.
        thresholds: ``(classes,)`` the threshold of each class.
        background: ``(classes,)`` True for the classes never reported.
        multi_label: every class passing its threshold is a hit (sigmoid scores); False: only
            the window's top class (softmax scores).
    """

    classes: tuple[str, ...]
    thresholds: np.ndarray
    background: np.ndarray
    multi_label: bool

    @classmethod
    def of(
        cls,
        classes: Sequence[str],
        rule: EventRule,
        multi_label: bool = False,
        background: Sequence[str] = (),
        bundle_thresholds: Mapping[str, float] | None = None,
    ) -> Labels:
        """The labels of a bundle's ``classes`` under ``rule``.

        Raises:
            ConfigError: a threshold or background names no class, or ``unknown_below`` with
                a class named "unknown".
        """
        given = rule.thresholds if rule.thresholds is not None else bundle_thresholds or {}
        unknown = sorted(set(given) - set(classes)) + sorted(set(background) - set(classes))
        if unknown:
            raise ConfigError(f"thresholds or background name no class of the bundle: {unknown}")
        if rule.unknown_below is not None and UNKNOWN in classes:
            raise ConfigError(f"unknown_below: the bundle has a class named {UNKNOWN!r}")
        thresholds = np.array([given.get(c, rule.min_score) for c in classes], np.float64)
        back = np.array([c in set(background) for c in classes], bool)
        return cls(tuple(classes), thresholds, back, multi_label)

    def hits(self, scores: np.ndarray) -> list[tuple[int, float]]:
        """The classes (index, score) a window with ``scores`` (classes,) is a hit of."""
        if self.multi_label:
            idx = np.flatnonzero((scores >= self.thresholds) & ~self.background)
            return [(int(i), float(scores[i])) for i in idx]
        top = int(np.argmax(scores))
        if self.background[top] or not scores[top] >= self.thresholds[top]:
            return []
        return [(top, float(scores[top]))]


@dataclass
class _Open:
    """An event being built: its span, score sum, best score and hit count."""

    start: float
    end: float
    best: float
    total: float
    windows: int


@dataclass
class EventTracker:
    """Events of a file built window by window, in memory flat in the file's length.

    Args:
        labels: classes, thresholds, task.
        rule: merge gap, minimum length, unknown.
        size_s: window length, s.
        hop_s: window hop, s.
    """

    labels: Labels
    rule: EventRule
    size_s: float
    hop_s: float
    events: list[Event] = field(default_factory=list)
    _open: dict[str, _Open] = field(default_factory=dict)
    _pending: tuple[float, np.ndarray] | None = None
    _boundary: float = 0.0

    def add(self, start_s: float, scores: np.ndarray) -> None:
        """The next window (start, s; scores (classes,)); windows come in file order."""
        if self._pending is not None:
            boundary = start_s + (self.size_s - self.hop_s) / 2
            self._slice(self._boundary, boundary, self._pending[1])
            self._boundary = boundary
        self._pending = (start_s, scores)

    def finish(self, total_s: float) -> list[Event]:
        """The file ended at ``total_s``: every event, by start (then label)."""
        if self._pending is not None:
            self._slice(self._boundary, max(total_s, self._boundary), self._pending[1])
            self._pending = None
        for label in list(self._open):
            self._close(label)
        return sorted(self.events, key=lambda e: (e.start_s, e.label))

    def _slice(self, lo: float, hi: float, scores: np.ndarray) -> None:
        names: dict[str, float] = {}
        for i, score in self.labels.hits(scores):
            below = self.rule.unknown_below is not None and score < self.rule.unknown_below
            name = UNKNOWN if below else self.labels.classes[i]
            names[name] = max(score, names.get(name, -math.inf))
        for name, score in names.items():
            event = self._open.get(name)
            if event is not None and lo - event.end > self.rule.merge_gap_s + 1e-9:
                self._close(name)
                event = None
            if event is None:
                self._open[name] = _Open(lo, hi, score, score, 1)
            else:
                event.end, event.best = hi, max(event.best, score)
                event.total, event.windows = event.total + score, event.windows + 1

    def _close(self, name: str) -> None:
        e = self._open.pop(name)
        if e.end - e.start >= self.rule.min_event_s - 1e-9:
            self.events.append(Event(name, e.start, e.end, e.best, e.total / e.windows, e.windows))


def top_classes(probs: np.ndarray, classes: Sequence[str], k: int) -> tuple[tuple[str, float], ...]:
    """The ``k`` most probable classes of ``probs`` (classes,), most probable first."""
    order = np.argsort(-probs, kind="stable")[: max(1, k)]
    return tuple((classes[i], float(probs[i])) for i in order)


def detect_events(
    windows: Iterable[tuple[float, np.ndarray]],
    total_s: float,
    labels: Labels,
    rule: EventRule,
    size_s: float,
    hop_s: float,
) -> list[Event]:
    """The events of windows ``(start_s, scores (classes,))`` in file order over ``total_s``
    seconds (:class:`EventTracker` in one call)."""
    tracker = EventTracker(labels, rule, size_s, hop_s)
    for start, scores in windows:
        tracker.add(start, scores)
    return tracker.finish(total_s)
