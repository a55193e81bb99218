"""Front-end settings: one frozen dataclass and the paper's presets.

Paper, section 3.1: three log-mel spectrograms with (window, hop) = (25, 10), (50, 10) and
(100, 50) ms, 128 mel bands, n_fft 4410 at 44.1 kHz (ESC-50) and 2205 at 22.05 kHz
(UrbanSound8K, GTZAN), each resized to 128 x 250 (128 x 1500 for 30 s GTZAN clips) and stacked
as the three channels of one image.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from soundtransfer.audio.mel import hz_to_mel, mel_to_hz
from soundtransfer.config import ConfigError, override, parse_pairs

WINDOWS_MS: tuple[tuple[float, float], ...] = ((25.0, 10.0), (50.0, 10.0), (100.0, 50.0))


@dataclass(frozen=True)
class FrontEnd:
    """Settings of the 3-channel log-mel front end.

    Attributes:
        sample_rate: rate every clip is resampled to, Hz.
        clip_seconds: clips are cropped or zero-padded to this length, s.
        n_fft: FFT size in samples (shorter windows are zero-padded to it, centred).
        n_mels: mel bands (image height).
        windows_ms: (window, hop) per channel, ms.
        out_frames: each spectrogram is resized (bilinear) to this many frames (image width);
            ``--frontend out_frames=native`` sets it to :attr:`native_frames` (no resize of
            the finest channel).
        f_min: lowest mel frequency, Hz.
        f_max: highest mel frequency, Hz; None means sample_rate / 2.
        log_eps: added before the natural log, log(mel + log_eps).
        crop: "start" keeps the first ``clip_seconds``; "centre" keeps the middle.
    """

    sample_rate: int = 44100
    clip_seconds: float = 5.0
    n_fft: int = 4410
    n_mels: int = 128
    windows_ms: tuple[tuple[float, float], ...] = WINDOWS_MS
    out_frames: int = 250
    f_min: float = 0.0
    f_max: float | None = None
    log_eps: float = 1e-6
    crop: str = "start"

    def __post_init__(self) -> None:
        """Refuse settings that would crash the front end or store meaningless images.

        Raises:
            ConfigError: naming the setting (and the value) at fault.
        """
        for name in ("sample_rate", "n_fft", "n_mels", "out_frames"):
            if getattr(self, name) < 1:
                _bad(f"{name}={getattr(self, name)} must be a positive integer")
        for name in ("clip_seconds", "f_min", "log_eps"):
            if not math.isfinite(getattr(self, name)):
                _bad(f"{name}={getattr(self, name)} must be a finite number")
        if self.clip_seconds <= 0:
            _bad(f"clip_seconds={self.clip_seconds} must be positive")
        if self.log_eps <= 0:
            _bad(f"log_eps={self.log_eps} must be positive")
        if self.crop not in ("start", "centre"):
            _bad(f"crop must be 'start' or 'centre', got {self.crop!r}")
        nyquist = self.sample_rate / 2.0
        if not 0 <= self.f_min < nyquist:
            _bad(f"f_min={self.f_min} Hz must be >= 0 and below sample_rate / 2 = {nyquist} Hz")
        if self.f_max is not None and not (
            math.isfinite(self.f_max) and self.f_min < self.f_max <= nyquist
        ):
            _bad(
                f"f_max={self.f_max} Hz must be above f_min={self.f_min} Hz and at most "
                f"sample_rate / 2 = {nyquist} Hz"
            )
        if not self.windows_ms:
            _bad("windows_ms must list at least one (window, hop) pair in ms")
        for win_ms, hop_ms in self.windows_ms:
            win, hop = self.win_samples(win_ms), self.hop_samples(hop_ms)
            if not (math.isfinite(win_ms) and win >= 1):
                _bad(f"windows_ms: window {win_ms} ms is {win} samples at {self.sample_rate} Hz")
            if win > self.n_fft:
                _bad(
                    f"windows_ms: window {win_ms} ms is {win} samples, longer than "
                    f"n_fft={self.n_fft}"
                )
            if not (math.isfinite(hop_ms) and hop >= 1):
                _bad(
                    f"windows_ms: hop {hop_ms} ms is {hop} samples at {self.sample_rate} Hz "
                    "(must be at least 1)"
                )
            if self.clip_samples < win:
                _bad(
                    f"clip_seconds={self.clip_seconds} gives {self.clip_samples} samples, "
                    f"shorter than the {win_ms} ms window ({win} samples): no full frame"
                )
        empty = empty_mel_bands(self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max)
        if empty:
            most = _most_mel_bands(self)
            _bad(
                f"n_mels={self.n_mels} between f_min={self.f_min} and f_max={self.f_max or nyquist}"
                f" Hz leaves {len(empty)} mel band(s) empty (no FFT bin of n_fft={self.n_fft} at "
                f"{self.sample_rate} Hz falls in them, first band {empty[0]}): use at most "
                f"{most} bands, a wider f_min..f_max or a larger n_fft"
            )

    @property
    def clip_samples(self) -> int:
        """Samples per clip after crop/pad."""
        return round(self.sample_rate * self.clip_seconds)

    @property
    def channels(self) -> int:
        return len(self.windows_ms)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, n_mels, out_frames) of one clip's image."""
        return (self.channels, self.n_mels, self.out_frames)

    @property
    def native_frames(self) -> int:
        """Frames of the channel with the shortest hop (``T // hop + 1``, centre-padded): the
        image width at which that channel is not resized (``--frontend out_frames=native``;
        channels with a longer hop are still interpolated up to it). 501 for the 5 s presets."""
        hop = min(self.hop_samples(hop_ms) for _, hop_ms in self.windows_ms)
        return self.clip_samples // hop + 1

    def win_samples(self, win_ms: float) -> int:
        return round(self.sample_rate * win_ms / 1000.0)

    def hop_samples(self, hop_ms: float) -> int:
        return round(self.sample_rate * hop_ms / 1000.0)


def _bad(message: str) -> NoReturn:
    raise ConfigError(f"front-end setting {message}")


def empty_mel_bands(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> list[int]:
    """Indices of the mel filters that no FFT bin reaches (all-zero rows of the filterbank).

    Filter ``i`` of :func:`~soundtransfer.audio.frontend.mel_filterbank` is positive exactly
    at the bin frequencies strictly between its edges, the mel points ``i`` and ``i + 2``;
    counting bins there needs no (n_mels, F) matrix, so absurd band counts are cheap to refuse.
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)  # (F,)
    mel_pts = mel_to_hz(
        np.linspace(hz_to_mel(np.array(f_min)), hz_to_mel(np.array(f_max)), n_mels + 2)
    )  # (n_mels + 2,) Hz
    above_lower = np.searchsorted(fft_freqs, mel_pts[:-2], side="right")  # first bin > edge
    below_upper = np.searchsorted(fft_freqs, mel_pts[2:], side="left")  # first bin >= edge
    return [int(i) for i in np.flatnonzero(below_upper <= above_lower)]


def _most_mel_bands(fe: FrontEnd) -> int:
    """The largest band count below ``fe.n_mels`` leaving no band empty (bisection)."""
    lo, hi = 0, fe.n_mels
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if empty_mel_bands(fe.sample_rate, fe.n_fft, mid, fe.f_min, fe.f_max):
            hi = mid
        else:
            lo = mid
    return lo


PRESETS: dict[str, FrontEnd] = {
    "esc50": FrontEnd(sample_rate=44100, clip_seconds=5.0, n_fft=4410, out_frames=250),
    "esc10": FrontEnd(sample_rate=44100, clip_seconds=5.0, n_fft=4410, out_frames=250),
    "us8k": FrontEnd(sample_rate=22050, clip_seconds=4.0, n_fft=2205, out_frames=250),
    "gtzan": FrontEnd(sample_rate=22050, clip_seconds=30.0, n_fft=2205, out_frames=1500),
}


#: ``--frontend out_frames=native``: the image as wide as the finest channel's frame count.
NATIVE = "native"


def with_overrides(base: FrontEnd, overrides: Mapping[str, Any] | Iterable[str]) -> FrontEnd:
    """``base`` with ``key=value`` overrides (:func:`soundtransfer.config.override`), where
    ``out_frames=native`` means :attr:`FrontEnd.native_frames` of the otherwise overridden front
    end (ESResNet's native resolution: the 10 ms-hop channels are not resized at all).

    Raises:
        ConfigError: as :func:`~soundtransfer.config.override`.
    """
    pairs = parse_pairs(overrides)
    native = str(pairs.get("out_frames", "")).strip().lower() == NATIVE
    if native:
        pairs.pop("out_frames")
    fe = override(base, pairs) if pairs else dataclasses.replace(base)
    return dataclasses.replace(fe, out_frames=fe.native_frames) if native else fe


def get_preset(name: str, **overrides: Any) -> FrontEnd:
    """The named preset (``esc50``, ``esc10``, ``us8k``, ``gtzan``) with fields overridden."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown front-end preset {name!r}; choose from {sorted(PRESETS)}"
        ) from None
    return with_overrides(base, overrides)
