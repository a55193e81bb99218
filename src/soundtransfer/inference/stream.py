"""Long audio in bounded memory: streamed decoding, windows cut on the fly, a sliced front end.

Three pieces, each holding at most a fixed number of samples or frames whatever the file's
length:

* :func:`stream_audio`: blocks decoded with soundfile, downmixed, resampled with soxr's
  ``ResampleStream`` (the same numbers as the one-shot ``soxr.resample``; checked in the tests),
  with the same checks as :func:`~soundtransfer.audio.io.read_audio` (missing, empty,
  undecodable, non-finite, truncated, no samples; a cut MP3 before decoding:
  :func:`~soundtransfer.audio.io.check_before_decoding`).
* :func:`window_batches`: windows of ``size`` samples every ``hop`` samples, as
  :func:`window_starts` places them, in batches of at most ``batch_size``, each with the
  stretch of audio around it.
* :class:`SlicedFrontEnd`: the 3-channel log-mel of every window of a batch, computed once
  over the file and sliced per window instead of once per overlapping window.

When slicing is exact. :class:`~soundtransfer.audio.frontend.LogMel3` frames one window with
``center=True`` zero padding: frame ``t`` covers the window's samples
``[t * h - n_fft // 2, t * h - n_fft // 2 + n_fft)`` (``h`` the channel's STFT hop), zeros
outside the window. A frame over the whole file centred on the same sample holds the same
samples exactly when (1) the window's start is a multiple of ``h`` (else no file frame is
centred there) and (2) the frame's span lies inside the window. So for a channel whose hop
divides the window hop, the interior frames are a slice of the file's frames, and the few
frames whose span crosses the window's start or end (``ceil((n_fft // 2) / h)`` at the start,
about as many at the end: 5 + 5 of 501 at 10 ms, 1 + 1 of 101 at 50 ms, for the ESC presets)
are computed from the window's own zero-padded samples, as the per-window path does. Every
frame then comes from the same samples through the same operations; what is left is float
rounding (FFT and matrix products over a different number of rows), tested against the
per-window path on real clips. A channel whose hop does not divide the window hop (e.g. the
22.05 kHz presets' 50 ms hop of 1102 samples) is computed per window, which is also exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F
from torch import Tensor

from soundtransfer.audio.frontend import LogMel3
from soundtransfer.audio.io import check_before_decoding, to_mono, truncation
from soundtransfer.audio.presets import FrontEnd
from soundtransfer.errors import AudioError

BLOCK_FRAMES = 1 << 16  # frames decoded per read (~1.5 s at 44.1 kHz)
MAX_QUANTUM_S = 0.1  # the hop is rounded to a multiple of at most this (see frame_quantum)


@dataclass
class StreamStats:
    """The most audio samples and log-mel frames held at once (a memory measure, not timing)."""

    peak_samples: int = 0
    peak_frames: int = 0

    def held(self, samples: int = 0, frames: int = 0) -> None:
        self.peak_samples = max(self.peak_samples, samples)
        self.peak_frames = max(self.peak_frames, frames)


def stream_audio(
    path: str | Path, sample_rate: int, block_frames: int = BLOCK_FRAMES
) -> Iterator[np.ndarray]:
    """Decode a file block by block: mono float32 blocks at ``sample_rate``.

    Raises:
        AudioError: missing, empty, undecodable, non-finite or truncated file, or no samples
            (a truncation is found at the end of the file, after its blocks were yielded).
    """
    path = Path(path)
    check_before_decoding(path)  # the same checks as the one-shot reader: a cut MP3 included
    try:
        fh = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from None
    with fh:
        rate, channels = int(fh.samplerate), int(fh.channels)
        stream = None
        if rate != sample_rate:
            stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="VHQ")
        decoded = 0
        while True:
            try:
                block = fh.read(block_frames, dtype="float32", always_2d=True)  # (n, channels)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                raise AudioError(f"{path}: cannot decode audio ({exc})") from None
            last = len(block) < block_frames
            if not np.isfinite(block).all():
                raise AudioError(f"{path}: audio contains NaN or infinite samples")
            decoded += len(block)
            mono = np.ascontiguousarray(to_mono(block), dtype=np.float32)  # (n,)
            out = stream.resample_chunk(mono, last=last) if stream is not None else mono
            if len(out):
                yield np.asarray(out, dtype=np.float32)
            if last:
                break
    if decoded == 0:
        raise AudioError(f"{path}: decoded to 0 samples (truncated or header-only file)")
    problem = truncation(path, decoded, channels)
    if problem:
        raise AudioError(f"{path}: truncated file: {problem}")


def window_starts(total: int, size: int, hop: int) -> list[int]:
    """Starts of the windows over ``total`` samples: every ``hop`` while a whole window fits,
    then one more (zero-padded) if the tail is not covered; a short signal gets one window."""
    if total <= size:
        return [0]
    starts = list(range(0, total - size + 1, hop))
    if starts[-1] + size < total:
        starts.append(starts[-1] + hop)
    return starts


@dataclass(frozen=True)
class WindowBatch:
    """Windows ``starts`` (samples) and the audio ``[seg_start, seg_start + len(audio))``
    around them (zeros before the file's start and after its end).

    Attributes:
        starts: window starts, samples, ascending.
        seg_start: position of ``audio[0]`` in the file, samples (may be negative).
        audio: float32 (L,), covering every window plus ``margin`` on both sides.
        total: samples in the file so far (its length in the batches cut at its end).
    """

    starts: tuple[int, ...]
    seg_start: int
    audio: np.ndarray
    total: int

    def window(self, start: int, lo: int, hi: int) -> np.ndarray:
        """Samples ``[start + lo, start + hi)`` of the file, a view."""
        a = start + lo - self.seg_start
        return self.audio[a : a + hi - lo]

    def windows(self, size: int) -> np.ndarray:
        """Every window's samples ``(B, size)``."""
        return np.stack([self.window(s, 0, size) for s in self.starts])


def window_batches(
    blocks: Iterable[np.ndarray],
    size: int,
    hop: int,
    batch_size: int,
    margin: int = 0,
    stats: StreamStats | None = None,
) -> Iterator[WindowBatch]:
    """Cut a stream of blocks into batches of windows (placed as :func:`window_starts` does).

    Holds at most ``(batch_size - 1) * hop + size + 2 * margin`` samples plus one block.

    Args:
        blocks: mono float32 blocks, in order.
        size: window length, samples.
        hop: window hop, samples (1 <= hop <= size).
        batch_size: windows per batch (the last batch may have fewer).
        margin: audio kept on both sides of the windows, samples.
        stats: records the most samples held.
    """
    if not 1 <= hop <= size or batch_size < 1 or margin < 0:
        raise ValueError(f"bad windowing: size={size}, hop={hop}, batch_size={batch_size}")
    pending: list[np.ndarray] = [np.zeros(margin, np.float32)]
    buf_start = -margin  # file position of the first pending sample
    held = margin
    total = 0
    next_start = 0
    emitted = 0
    last_start = -1

    def cut(starts: list[int]) -> WindowBatch:
        nonlocal pending, buf_start, held
        seg_start = starts[0] - margin
        seg_end = starts[-1] + size + margin
        buf = np.concatenate(pending) if len(pending) > 1 else pending[0]
        if buf_start + len(buf) < seg_end:  # past the end of the file: zeros
            buf = np.concatenate([buf, np.zeros(seg_end - buf_start - len(buf), np.float32)])
        audio = buf[seg_start - buf_start : seg_end - buf_start]
        keep_from = starts[-1] + hop - margin  # the next batch's segment starts here or later
        pending = [buf[keep_from - buf_start :]]
        buf_start = keep_from
        held = len(pending[0])
        return WindowBatch(tuple(starts), seg_start, audio, total)

    for block in blocks:
        pending.append(block)
        held += len(block)
        total += len(block)
        if stats is not None:
            stats.held(samples=held)
        while True:  # every batch that only needs audio already read
            starts = [next_start + k * hop for k in range(batch_size)]
            if starts[-1] + size + margin > total:
                break
            yield cut(starts)
            emitted += len(starts)
            last_start, next_start = starts[-1], starts[-1] + hop
    starts = []
    while next_start + size <= total:
        starts.append(next_start)
        next_start += hop
    if (emitted == 0 and not starts) or (starts or [last_start])[-1] + size < total:
        starts.append(next_start)
    for k in range(0, len(starts), batch_size):
        yield cut(starts[k : k + batch_size])


def frame_quantum(fe: FrontEnd, max_seconds: float = MAX_QUANTUM_S) -> int:
    """The smallest hop, in samples, that the front end's channels can be sliced at.

    The least common multiple of the channels' STFT hops, smallest hop first, leaving out a
    channel whose hop would push it past ``max_seconds`` (that channel is then computed per
    window). The paper's presets: 2205 samples = 50 ms at 44.1 kHz (hops 441, 441, 2205);
    220 samples at 22.05 kHz (hops 220, 220, 1102: the 50 ms channel is computed per window).
    """
    quantum = 1
    for hop in sorted({fe.hop_samples(h) for _w, h in fe.windows_ms}):
        candidate = math.lcm(quantum, hop)
        if candidate <= max_seconds * fe.sample_rate:
            quantum = candidate
    return quantum


@dataclass(frozen=True)
class ChannelPlan:
    """How one channel's frames of a window are obtained.

    Attributes:
        hop: STFT hop, samples.
        frames: frames per window.
        sliced: interior frames sliced from the file's frames (else the whole window per window).
        left: frames ``[0, left)`` cross the window's start (computed from the window).
        right: frames ``[right, frames)`` cross its end (computed from the window).
    """

    hop: int
    frames: int
    sliced: bool
    left: int
    right: int


def channel_plan(fe: FrontEnd, channel: int, window_hop: int) -> ChannelPlan:
    """Which frames of ``channel`` can be sliced for windows ``window_hop`` samples apart."""
    size, n_fft, half = fe.clip_samples, fe.n_fft, fe.n_fft // 2
    hop = fe.hop_samples(fe.windows_ms[channel][1])
    frames = (size + 2 * half - n_fft) // hop + 1  # as LogMel3 frames one window
    left = min(frames, -(-half // hop))  # t * hop - half < 0
    right = max(0, min(frames, (size + half - n_fft) // hop + 1))  # t * hop - half + n_fft > size
    sliced = window_hop % hop == 0 and left <= right
    return ChannelPlan(hop, frames, sliced, left, right)


@dataclass
class _Frames:
    """A channel's log-mel frames over the file: ``mel[:, k]`` is frame ``first + k``."""

    mel: Tensor  # (n_mels, K)
    first: int = 0

    @property
    def end(self) -> int:
        return self.first + self.mel.shape[1]


@dataclass
class SlicedFrontEnd:
    """The images of a file's windows (:class:`LogMel3` output), the log-mel computed once.

    One per file: it keeps the frames that the next batch's windows share with this one.

    Args:
        frontend: the bundle's front end.
        hop: window hop, samples.
        stats: records the most frames held.
    """

    frontend: LogMel3
    hop: int
    stats: StreamStats | None = None
    plans: tuple[ChannelPlan, ...] = field(init=False)
    margin: int = field(init=False)
    _frames: dict[int, _Frames] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        fe = self.frontend.cfg
        self.plans = tuple(channel_plan(fe, c, self.hop) for c in range(fe.channels))
        quantum = math.lcm(1, *(p.hop for p in self.plans if p.sliced))
        # A file frame centred on sample s reads [s - n_fft // 2, s - n_fft // 2 + n_fft): the
        # batch's audio reaches that far beyond its windows on each side (rounded up to a
        # multiple of every sliced hop), plus one hop for the frame centred on a window's last
        # sample.
        pad = -(-(fe.n_fft - fe.n_fft // 2) // quantum) * quantum
        self.margin = pad + quantum if any(p.sliced for p in self.plans) else 0
        empty = torch.empty(fe.n_mels, 0)
        self._frames = {c: _Frames(empty) for c, p in enumerate(self.plans) if p.sliced}

    @torch.no_grad()
    def images(self, batch: WindowBatch) -> Tensor:
        """(B, C, n_mels, out_frames): the same images as ``LogMel3`` of each window."""
        channels = [self._channel(batch, c) for c in range(len(self.plans))]
        return torch.cat(channels, dim=1)  # (B, C, n_mels, out_frames)

    def _channel(self, batch: WindowBatch, c: int) -> Tensor:
        """(B, 1, n_mels, out_frames): channel ``c`` of every window's image."""
        fe, plan = self.frontend.cfg, self.plans[c]
        if plan.sliced:
            log_mel = self._sliced(batch, c, plan)  # (B, n_mels, frames)
        else:
            whole = torch.from_numpy(batch.windows(fe.clip_samples))  # (B, size)
            log_mel = self.frontend.spectrogram(whole, c)  # (B, n_mels, frames)
        return F.interpolate(
            log_mel.unsqueeze(1),
            size=(fe.n_mels, fe.out_frames),
            mode="bilinear",
            align_corners=False,
        )  # (B, 1, n_mels, out_frames)

    def _file_frames(self, batch: WindowBatch, c: int, first: int, stop: int) -> Tensor:
        """(n_mels, stop - first): the file's frames ``[first, stop)`` of channel ``c`` (frame
        ``t`` centred on sample ``t * hop``), from the batch's audio (zeros outside the file),
        a clip's length of frames per call (one clip's spectra stay in cache)."""
        fe, h = self.frontend.cfg, self.plans[c].hop
        half = fe.n_fft // 2
        step = max(1, fe.clip_samples // h)
        pieces = []
        for t in range(first, stop, step):
            n = min(step, stop - t)
            audio = batch.window(0, t * h - half, (t + n - 1) * h - half + fe.n_fft)
            pieces.append(self.frontend.log_mel_frames(torch.from_numpy(audio)[None], c)[0])
        return torch.cat(pieces, 1) if len(pieces) > 1 else pieces[0]

    def _window_frames(self, batch: WindowBatch, c: int, first: int, stop: int) -> Tensor:
        """(B, n_mels, stop - first): frames ``[first, stop)`` of each window as LogMel3 frames
        it alone (its own samples, zeros beyond its ends): the frames that cross its ends."""
        fe, h = self.frontend.cfg, self.plans[c].hop
        size, half = fe.clip_samples, fe.n_fft // 2
        lo, hi = first * h - half, (stop - 1) * h - half + fe.n_fft  # samples the frames read
        a, b = max(lo, 0), min(hi, size)
        audio = torch.from_numpy(np.stack([batch.window(s, a, b) for s in batch.starts]))
        padded = F.pad(audio, (a - lo, hi - b))  # (B, hi - lo): zeros beyond the window
        return self.frontend.log_mel_frames(padded, c)

    def _sliced(self, batch: WindowBatch, c: int, plan: ChannelPlan) -> Tensor:
        """(B, n_mels, frames) of channel ``c``: file frames, window-edge frames recomputed."""
        h = plan.hop
        store = self._frames[c]
        first_needed = batch.starts[0] // h
        if store.end < first_needed:  # nothing shared with the previous batch
            store.mel, store.first = store.mel[:, :0], first_needed
        stop = batch.starts[-1] // h + plan.frames
        if stop > store.end:
            new = self._file_frames(batch, c, store.end, stop)
            store.mel = torch.cat([store.mel[:, first_needed - store.first :], new], 1)
            store.first = first_needed
        if self.stats is not None:
            self.stats.held(frames=store.mel.shape[1])
        out = torch.stack(
            [
                store.mel[:, s // h - store.first : s // h - store.first + plan.frames]
                for s in batch.starts
            ]
        )  # (B, n_mels, frames), a copy
        if plan.left:
            out[:, :, : plan.left] = self._window_frames(batch, c, 0, plan.left)
        if plan.right < plan.frames:
            out[:, :, plan.right :] = self._window_frames(batch, c, plan.right, plan.frames)
        # Frames before the next batch's first window are never needed again.
        drop = (batch.starts[-1] + self.hop) // h - store.first
        if drop > 0:
            store.mel, store.first = store.mel[:, drop:].clone(), store.first + drop
        return out
