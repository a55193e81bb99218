"""Prediction on audio files of any length: a timeline of windows, top-k of their mean.

A file is read block by block (:func:`~soundtransfer.inference.stream.stream_audio`), cut into
windows of the model's clip length every ``hop`` seconds, in batches of ``batch_size``; the
log-mel is computed once over the file and sliced per window
(:class:`~soundtransfer.inference.stream.SlicedFrontEnd`), which gives the same images as the
model's own front end on each window. Memory is flat in the file's length (one batch of
windows and the audio and frames around it) apart from the timeline itself (k classes per
window, kept only with ``PredictConfig(timeline=True)``) and the events.

Scores: softmax probabilities for a single-label bundle, one sigmoid per class for a
multi-label one (``BundleMeta.task``). Events: :mod:`soundtransfer.inference.timeline` (per-class
thresholds, merging, minimum length, background classes never reported). The file's top-k
classes are those of the mean score over its windows: for a long file of mixed sounds, a mean
over very different windows (it says what the file holds most of, not what any moment holds).

By default the hop is rounded to a multiple of the front end's frame hops
(:func:`~soundtransfer.inference.stream.frame_quantum`: 50 ms for the 44.1 kHz presets) so that
every channel can be sliced; ``align_hop=False`` keeps it as given (channels whose hop does not
divide it are computed per window: the same numbers, slower).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from soundtransfer.audio.presets import FrontEnd
from soundtransfer.config import ConfigError
from soundtransfer.inference.bundle import AudioClassifier, BundleMeta, load_bundle
from soundtransfer.inference.jit import inference_net
from soundtransfer.inference.stream import (
    SlicedFrontEnd,
    StreamStats,
    WindowBatch,
    frame_quantum,
    stream_audio,
    window_batches,
    window_starts,
)
from soundtransfer.inference.timeline import (
    Event,
    EventRule,
    EventTracker,
    Labels,
    WindowTop,
    top_classes,
)


@dataclass(frozen=True)
class PredictConfig:
    """Settings of :class:`Predictor`.

    Attributes:
        hop_s: window hop, s; None means half the model's clip length.
        top_k: classes reported per file and per window.
        batch_size: windows per forward pass (bounds memory whatever the file's length).
        align_hop: round the hop to a multiple of the front end's frame hops (faster, see the
            module docstring); False keeps it as given.
        prefetch: compute the next batch's images in a background thread while the network
            classifies this one (one extra batch held).
        jit: run the network traced and frozen (TorchScript, NHWC; about 2x faster on CPU,
            checked against the eager network at load, see :mod:`soundtransfer.inference.jit`);
            False runs it eagerly.
        events: which window scores become events (thresholds, merge gap, minimum length).
        timeline: keep every window's top-k in :attr:`Prediction.timeline` (k per window);
            False keeps memory flat in the file's length (events only).
        tta: test-time augmentation: each window scored by the mean logits of this many
            circular time shifts of its image (:func:`soundtransfer.train.loop.tta_views`,
            as ``--set tta=N`` evaluates); 1 = the image alone.
    """

    hop_s: float | None = None
    top_k: int = 5
    batch_size: int = 8
    align_hop: bool = True
    jit: bool = True
    prefetch: bool = False
    events: EventRule = field(default_factory=EventRule)
    timeline: bool = True
    tta: int = 1

    def __post_init__(self) -> None:
        if self.tta < 1:
            raise ConfigError(f"--tta must be at least 1 (1: no test-time shifts), got {self.tta}")
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {self.top_k}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.hop_s is not None and not (math.isfinite(self.hop_s) and self.hop_s > 0):
            raise ConfigError(f"hop must be a positive number of seconds, got {self.hop_s}")


@dataclass(frozen=True)
class Hop:
    """The window hop used: ``samples`` (= ``seconds``) and the ``requested_s`` it came from."""

    samples: int
    seconds: float
    requested_s: float

    @property
    def rounded(self) -> bool:
        return not math.isclose(self.seconds, self.requested_s, rel_tol=0, abs_tol=1e-9)


def with_tta(network: Callable[[Tensor], Tensor], n: int) -> Callable[[Tensor], Tensor]:
    """``network`` scoring ``(B, C, F, T)`` images by its mean logits over ``n`` circular
    time shifts (:func:`soundtransfer.train.loop.tta_views`, the views training evaluates)."""
    from soundtransfer.train.loop import tta_views

    def averaged(x: Tensor) -> Tensor:
        return torch.stack([network(v) for v in tta_views(x, n)]).mean(0)

    return averaged


def plan_hop(fe: FrontEnd, hop_s: float | None = None, align: bool = True) -> Hop:
    """The hop in samples for ``hop_s`` seconds (None: half the clip), validated.

    With ``align``, rounded to the nearest multiple of :func:`frame_quantum` (at least one).

    Raises:
        ConfigError: not a positive number of seconds, shorter than one sample, or longer than
            the model's clip (windows would leave parts of the file unclassified).
    """
    requested = fe.clip_seconds / 2 if hop_s is None else float(hop_s)
    if not (math.isfinite(requested) and requested > 0):
        raise ConfigError(f"hop must be a positive number of seconds, got {hop_s}")
    if requested > fe.clip_seconds:
        raise ConfigError(
            f"hop {requested:g} s is longer than the model's {fe.clip_seconds:g} s window "
            "(parts of the file would not be classified)"
        )
    samples = round(requested * fe.sample_rate)
    if samples < 1:
        raise ConfigError(f"hop {requested:g} s is shorter than one sample at {fe.sample_rate} Hz")
    if align:
        q = frame_quantum(fe)
        samples = max(q, round(samples / q) * q)
        if samples > fe.clip_samples:
            samples = fe.clip_samples // q * q or fe.clip_samples
    return Hop(samples, samples / fe.sample_rate, requested)


_Images = tuple[WindowBatch, torch.Tensor]
T = TypeVar("T")
_END = object()


def one_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, each computed in a background thread while the caller uses the previous one.

    An exception raised by ``items`` is raised here, at the item it replaces.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
        pending = pool.submit(next, items, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, items, _END)
            yield item  # type: ignore[misc]


@dataclass(frozen=True)
class Prediction:
    """A file's top-k classes (of the mean score over its windows), timeline and events.

    Attributes:
        file: the file as given.
        top: the top-k classes of the windows' mean score (for a long file of mixed sounds, a
            mean over very different windows).
        windows: how many windows.
        seconds: the file's length, s.
        hop_s: the window hop used, s.
        timeline: each window's span and top-k (empty unless ``PredictConfig.timeline``).
        events: the events of :class:`~soundtransfer.inference.timeline.EventRule`.
    """

    file: str
    top: tuple[tuple[str, float], ...]
    windows: int
    seconds: float
    hop_s: float = 0.0
    timeline: tuple[WindowTop, ...] = ()
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class WindowProbs:
    """One window's span (samples; the last ends at the file's end) and class scores
    (softmax probabilities, or sigmoids for a multi-label bundle)."""

    start: int
    end: int
    probs: np.ndarray  # (classes,)


class Predictor:
    """A model bundle loaded once, then applied to any number of files.

    Args:
        bundle: the model bundle (a run's ``model.pt``).
        config: hop, top-k, batch size.

    Raises:
        WeightsError: the bundle is missing or unreadable.
        ConfigError: a bad hop for this model, or thresholds naming no class of it.
    """

    def __init__(self, bundle: Path, config: PredictConfig | None = None) -> None:
        self.config = config or PredictConfig()
        self.model, self.meta = load_bundle(bundle)
        self.hop = plan_hop(self.meta.frontend, self.config.hop_s, self.config.align_hop)
        self.multi_label = self.meta.task == "multi_label"
        self.set_events(self.config.events)
        self.stats = StreamStats()
        self.network = inference_net(
            self.model.classifier,
            self.meta.frontend.image_shape,
            self.config.batch_size,
            self.config.jit,
        )
        # What scores a batch of window images: the network, or its mean over time shifts.
        tta = self.config.tta
        self.score = with_tta(self.network, tta) if tta > 1 else self.network

    def set_events(self, rule: EventRule) -> None:
        """Use ``rule`` for the events from now on (e.g. thresholds read once the bundle's
        classes are known).

        Raises:
            ConfigError: thresholds naming no class of the bundle.
        """
        self.labels = Labels.of(
            self.meta.classes, rule, self.multi_label, self.meta.background, self.meta.thresholds
        )
        self.config = dataclasses.replace(self.config, events=rule)

    def _images(self, path: str | Path, front: SlicedFrontEnd) -> Iterator[_Images]:
        fe = self.meta.frontend
        blocks = stream_audio(path, fe.sample_rate)
        for batch in window_batches(
            blocks, fe.clip_samples, self.hop.samples, self.config.batch_size, front.margin,
            self.stats,
        ):  # fmt: skip
            yield batch, front.images(batch)

    @torch.no_grad()
    def iter_windows(self, path: str | Path) -> Iterator[WindowProbs]:
        """Each window's scores, in order, in bounded memory (a generator).

        Raises:
            AudioError: the file cannot be used (the message names it); a truncated file is
                found at its end, after its earlier windows were yielded.
        """
        fe = self.meta.frontend
        front = SlicedFrontEnd(self.model.frontend, self.hop.samples, self.stats)
        images = self._images(path, front)
        if self.config.prefetch:
            images = one_ahead(images)
        for batch, x in images:
            logits = self.score(x)  # (B, classes)
            scores = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)
            probs = scores.numpy()
            for start, p in zip(batch.starts, probs, strict=True):
                yield WindowProbs(start, min(start + fe.clip_samples, batch.total), p)

    def predict_file(
        self, path: str | Path, on_window: Callable[[float], None] | None = None
    ) -> Prediction:
        """The file's top-k classes, timeline (top-k per window, if kept) and events.

        Args:
            path: the audio file.
            on_window: called after each window with how far into the file the windows so far
                reach (s: the next window's start, the file's end at the last call), for a
                progress bar.

        Raises:
            AudioError: the file cannot be used (the message names it).
        """
        fe, k = self.meta.frontend, self.config.top_k
        sr = fe.sample_rate
        tracker = EventTracker(self.labels, self.config.events, fe.clip_seconds, self.hop.seconds)
        total: np.ndarray | None = None
        timeline = []
        count = end = 0
        for w in self.iter_windows(path):
            total = w.probs.astype(np.float64) if total is None else total + w.probs
            tracker.add(w.start / sr, w.probs)
            if self.config.timeline:
                top = top_classes(w.probs, self.meta.classes, k)
                timeline.append(WindowTop(w.start / sr, w.end / sr, top))
            if on_window is not None:
                on_window(min(w.end, w.start + self.hop.samples) / sr)
            count, end = count + 1, max(end, w.end)
        assert total is not None  # every file has at least one window
        if on_window is not None:
            on_window(end / sr)
        return Prediction(
            str(path),
            top_classes(total / count, self.meta.classes, k),
            count,
            end / sr,
            self.hop.seconds,
            tuple(timeline),
            tuple(tracker.finish(end / sr)),
        )


def predict(
    bundle: Path,
    files: Sequence[Path],
    top_k: int = 5,
    hop_s: float | None = None,
) -> list[Prediction]:
    """Classify each file with the bundle loaded once (stops at the first bad file).

    Raises:
        AudioError: a file cannot be decoded (the message names it).
    """
    predictor = Predictor(bundle, PredictConfig(hop_s=hop_s, top_k=top_k))
    return [predictor.predict_file(f) for f in files]


def windows(wave: np.ndarray, size: int, hop: int) -> np.ndarray:
    """Split a signal into windows ``(W, size)`` at :func:`window_starts`; zero-padded tails."""
    starts = window_starts(len(wave), size, hop)
    out = np.zeros((len(starts), size), dtype=np.float32)
    for k, s in enumerate(starts):
        chunk = wave[s : s + size]
        out[k, : len(chunk)] = chunk
    return out


@torch.no_grad()
def reference_window_probs(
    model: AudioClassifier, meta: BundleMeta, wave: np.ndarray, hop: int
) -> np.ndarray:
    """The plain path, one window at a time through the model's own front end: ``(W, classes)``.

    The reference that the streamed, sliced path is tested and benchmarked against. Scores as
    :attr:`BundleMeta.task` says: softmax, or one sigmoid per class for multi-label.
    """
    size = meta.frontend.clip_samples
    multi = meta.task == "multi_label"
    out = []
    for s in window_starts(len(wave), size, hop):
        window = torch.from_numpy(np.ascontiguousarray(wave[s : s + size]))[None]  # (1, <=size)
        logits = model(window)
        out.append((torch.sigmoid(logits) if multi else torch.softmax(logits, dim=1))[0].numpy())
    return np.stack(out)
