"""The paper's 3-channel log-mel front end as a batched ``nn.Module`` (CPU or GPU).

As in PANNs, the spectrogram is the network's first module, so prediction and ONNX export take
raw audio. Unlike PANNs, the mel matrix and windows are non-persistent buffers rebuilt from the
:class:`~soundtransfer.audio.presets.FrontEnd` settings, so checkpoints stay loadable whatever
the front end's sizes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import erfc
from torch import Tensor, nn

from soundtransfer.audio.mel import hz_to_mel, mel_to_hz
from soundtransfer.audio.presets import FrontEnd


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation.

    The same definition as ``librosa.filters.mel(htk=False, norm="slaney")``.

    Returns:
        float32 array (n_mels, n_fft // 2 + 1).
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)  # (F,)
    mel_pts = mel_to_hz(
        np.linspace(hz_to_mel(np.array(f_min)), hz_to_mel(np.array(f_max)), n_mels + 2)
    )
    fdiff = np.diff(mel_pts)  # (n_mels + 1,)
    ramps = mel_pts[:, None] - fft_freqs[None, :]  # (n_mels + 2, F)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))  # (n_mels, F)
    enorm = 2.0 / (mel_pts[2 : n_mels + 2] - mel_pts[:n_mels])
    fb: np.ndarray = (weights * enorm[:, None]).astype(np.float32)
    return fb


MELS_PER_BAND = 16  # filters per GEMM in the CPU projection (16: fastest of 4..64, measured)
# Frames per real FFT call on CPU: the windowed frames and their spectra (~35 KB a frame at
# n_fft 4410) stay in the core's L2 cache from the window product through the FFT to the mel
# GEMMs. 64 was fastest of 8..256 (measured back to back, ~0.7-0.9x the time of a whole clip
# per call; below 32 the per-call overhead of the band GEMMs dominates).
FRAMES_PER_CHUNK = 64
SMALL_FFT = True  # short windows: the smaller FFT of :func:`autocorr_fft_size` on CPU


@dataclass(frozen=True)
class MelBand:
    """Filters ``mel_lo:mel_hi`` restricted to the bins ``bin_lo:bin_hi`` where any is non-zero.

    Attributes:
        weights: float32 (bin_hi - bin_lo, mel_hi - mel_lo), contiguous (right operand of a GEMM).
    """

    mel_lo: int
    mel_hi: int
    bin_lo: int
    bin_hi: int
    weights: Tensor


def mel_bands(fb: np.ndarray, mels_per_band: int = MELS_PER_BAND) -> tuple[MelBand, ...]:
    """Split a (n_mels, F) filterbank into groups of filters, each with its non-zero bin span.

    ``sum_b power[:, b.bin_lo:b.bin_hi] @ b.weights`` placed at columns ``b.mel_lo:b.mel_hi``
    equals ``power @ fb.T`` exactly (only zeros are left out). An all-zero group (possible
    with ``f_min``/``f_max`` settings that leave filters empty) gets an empty span.
    """
    bands = []
    for lo in range(0, fb.shape[0], mels_per_band):
        hi = min(lo + mels_per_band, fb.shape[0])
        nz = np.flatnonzero(fb[lo:hi].any(axis=0))
        b_lo, b_hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
        w = torch.from_numpy(np.ascontiguousarray(fb[lo:hi, b_lo:b_hi].T, dtype=np.float32))
        bands.append(MelBand(lo, hi, b_lo, b_hi, w))
    return tuple(bands)


AUTOCORR_TAIL = 1e-14  # weights below this fraction of their row's largest are left out


def autocorr_fft_size(win_len: int, n_fft: int) -> int:
    """The FFT size of the CPU path for a window of ``win_len`` samples (``n_fft``: direct).

    A power of two with room for the frame's autocorrelation (``2 * win_len - 1`` lags) and a
    margin of half that for a smooth lag taper (:func:`autocorr_mel_weights`), when smaller
    than ``n_fft``: 4096 for the 25 ms window at 44.1 kHz (n_fft 4410), an FFT ~0.45x the time
    of the 4410-point one (measured, MKL and pocketfft alike).
    """
    size = 1 << math.ceil(math.log2(1.5 * (2 * win_len - 1)))
    return size if size < n_fft else n_fft


def autocorr_mel_weights(fb: np.ndarray, n_fft: int, win_len: int, fft_size: int) -> np.ndarray:
    """Mel weights on a ``fft_size``-point power spectrum equal to ``fb`` on the n_fft-point one.

    A frame of ``win_len`` non-zero samples has a power spectrum that is the DTFT of its
    autocorrelation ``r``, zero beyond ``win_len - 1`` lags; any DFT size ``M >= 2 win_len - 1``
    samples it without aliasing, and the n_fft-point power is that DTFT at ``k / n_fft``. So,
    with ``Q`` the M-point power and ``c_m[tau] = sum_k fb[m, k] cos(2 pi k tau / n_fft)``::

        mel_m = sum_k fb[m, k] P[k] = sum_tau g[tau] r[tau] c_m[tau]
              = sum_j Q[j] (1/M) sum_tau g[tau] c_m[tau] cos(2 pi j tau / M)

    for any lag taper ``g`` that is 1 where ``r`` lives (``|tau| < win_len``) and 0 where its
    M-periodic aliases start (``|tau| > M - win_len``). A smooth (erfc) taper makes the
    weights decay fast away from each filter (Gaussian in bins); those below ``AUTOCORR_TAIL``
    of their row's largest are set to zero, so the projection stays banded. Exact up to that
    and to float64 rounding (checked against the direct spectrum in the tests).

    Args:
        fb: (n_mels, n_fft // 2 + 1) filterbank (:func:`mel_filterbank`).
        n_fft: the FFT size ``fb`` is defined on.
        win_len: non-zero samples per frame (the window length).
        fft_size: the smaller DFT size M, at least ``2 * win_len - 1``.

    Returns:
        float32 array (n_mels, fft_size // 2 + 1), zeros outside each filter's band.
    """
    if fft_size < 2 * win_len - 1:
        raise ValueError(f"fft_size {fft_size} < 2 * win_len - 1 = {2 * win_len - 1}")
    fb = np.asarray(fb, dtype=np.float64)
    n_mels = fb.shape[0]
    a, b = win_len - 1, fft_size - win_len + 1  # g = 1 for |tau| <= a, 0 for |tau| >= b
    tau = np.arange(-(b - 1), b)  # (lags,) where g may be non-zero
    sigma = (b - a) / 2 / 7.5  # 7.5 sigma from the midpoint to each end: g is 1 or 0 to 1e-13
    g = 0.5 * erfc((np.abs(tau) - (a + b) / 2) / (sigma * math.sqrt(2)))  # (lags,)
    wext = np.zeros((n_mels, n_fft))
    wext[:, : fb.shape[1]] = fb
    c = np.fft.ifft(wext, axis=1).real * n_fft  # (n_mels, n_fft): c_m[tau], n_fft-periodic
    s = np.zeros((fft_size, n_mels))
    np.add.at(s, tau % fft_size, (g * c[:, tau % n_fft]).T)  # folded onto the M-periodic lags
    h = np.fft.fft(s, axis=0).real.T / fft_size  # (n_mels, M): weight of Q[j], symmetric in j
    weights = h[:, : fft_size // 2 + 1].copy()  # Q[M - j] = Q[j]: fold onto j <= M / 2
    weights[:, 1 : (fft_size + 1) // 2] *= 2
    tail = np.abs(weights) < AUTOCORR_TAIL * np.abs(weights).max(axis=1, keepdims=True)
    weights[tail] = 0.0
    out: np.ndarray = weights.astype(np.float32)
    return out


@lru_cache(maxsize=16)
def _autocorr_weights_cached(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float,
    f_max: float | None,
    win_len: int,
    fft_size: int,
) -> np.ndarray:
    fb = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
    return autocorr_mel_weights(fb, n_fft, win_len, fft_size)


@dataclass(frozen=True)
class FramePlan:
    """How the CPU path computes one channel's mel energies from its frames.

    The window's ``length`` samples at ``src_lo`` of each n_fft-sample frame, times
    ``window``, go to ``dst_lo`` of a ``fft_size``-sample buffer (zeros elsewhere), whose real
    FFT's power is projected by ``bands`` (each with its weight rows doubled, see
    :meth:`LogMel3._mel_banded`). Direct: ``fft_size = n_fft``, ``dst_lo = src_lo``;
    autocorrelation (:func:`autocorr_mel_weights`): a smaller ``fft_size``, ``dst_lo = 0``.
    """

    fft_size: int
    src_lo: int
    dst_lo: int
    length: int
    window: Tensor
    bands: tuple[tuple[MelBand, Tensor], ...]


def _doubled(bands: tuple[MelBand, ...]) -> tuple[tuple[MelBand, Tensor], ...]:
    """Each band with its weight rows doubled, for the interleaved (re^2, im^2) columns."""
    return tuple((b, b.weights.repeat_interleave(2, dim=0).contiguous()) for b in bands)


def fit_length(wave: Tensor, num_samples: int, crop: str = "start") -> Tensor:
    """Crop or zero-pad the last axis to ``num_samples`` (crop at the start or the centre)."""
    n = wave.shape[-1]
    if n > num_samples:
        start = 0 if crop == "start" else (n - num_samples) // 2
        return wave[..., start : start + num_samples]
    if n < num_samples:
        return F.pad(wave, (0, num_samples - n))
    return wave


class LogMel3(nn.Module):
    """Waveforms -> 3-channel log-mel images, batched.

    For each (window, hop) of ``cfg.windows_ms``: power STFT (periodic Hann window of the given
    length, zero-padded and centred in ``n_fft``, ``center=True`` with zero padding), mel
    projection (Slaney filters), ``log(mel + log_eps)``, bilinear resize to
    ``(n_mels, out_frames)``. Channels are stacked in the order of ``windows_ms``.

    Input:  (B, T) float waveforms at ``cfg.sample_rate`` (any T; cropped/padded first).
    Output: (B, C, n_mels, out_frames) float32, C = len(windows_ms) = 3.

    Three paths compute the same numbers: on CPU (float32) ``FRAMES_PER_CHUNK`` frames at a
    time, frames x window -> real FFT -> banded mel GEMMs (:meth:`_log_mel_frames`); elsewhere
    (GPU, float64) ``torch.stft`` and one dense mel matmul; while exporting/tracing (ONNX has no
    complex tensors) a real-valued ``conv1d`` DFT (:meth:`_power_export`).
    """

    mel_fb: Tensor

    def __init__(self, cfg: FrontEnd) -> None:
        super().__init__()
        self.cfg = cfg
        fb = torch.from_numpy(
            mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
        )
        self.register_buffer("mel_fb", fb, persistent=False)  # (n_mels, F)
        # Non-zero column span of the filterbank: bins outside it never reach a mel band.
        nz = torch.nonzero(fb.sum(0) > 0).flatten()
        self.bin_lo = int(nz.min()) if nz.numel() else 0
        self.bin_hi = int(nz.max()) + 1 if nz.numel() else fb.shape[1]
        for i, (win_ms, _hop_ms) in enumerate(cfg.windows_ms):
            win = torch.hann_window(cfg.win_samples(win_ms), periodic=True)
            self.register_buffer(f"window{i}", win, persistent=False)
            left = (cfg.n_fft - win.shape[0]) // 2  # centred in n_fft, as torch.stft pads it
            full = F.pad(win, (left, cfg.n_fft - win.shape[0] - left))
            self.register_buffer(f"frame_window{i}", full, persistent=False)  # (n_fft,)
        self._plans: dict[int, FramePlan] = {}  # per channel, made on first use on CPU

    def _plan(self, channel: int) -> FramePlan:
        """The CPU path's :class:`FramePlan` of ``channel`` (made once)."""
        plan = self._plans.get(channel)
        if plan is not None:
            return plan
        cfg = self.cfg
        length = cfg.win_samples(cfg.windows_ms[channel][0])
        lo = (cfg.n_fft - length) // 2  # where the window sits in n_fft
        window = getattr(self, f"frame_window{channel}")[lo : lo + length].cpu().contiguous()
        size = autocorr_fft_size(length, cfg.n_fft) if SMALL_FFT else cfg.n_fft
        if size < cfg.n_fft:
            fb = _autocorr_weights_cached(
                cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max, length, size
            )
            plan = FramePlan(size, lo, 0, length, window, _doubled(mel_bands(fb)))
        else:
            fb = self.mel_fb.cpu().numpy()
            plan = FramePlan(cfg.n_fft, lo, lo, length, window, _doubled(mel_bands(fb)))
        self._plans[channel] = plan
        return plan

    def _mel(self, power: Tensor) -> Tensor:
        """(B, F, T) power -> (B, n_mels, T) mel energies: the dense path (GPU, export)."""
        power = power[:, self.bin_lo : self.bin_hi]  # (B, F', T)
        fb = self.mel_fb[:, self.bin_lo : self.bin_hi]  # (n_mels, F')
        return torch.matmul(fb.to(power.dtype), power)  # (B, n_mels, T)

    @staticmethod
    def _mel_banded(spec: Tensor, bands: tuple[tuple[MelBand, Tensor], ...], out: Tensor) -> None:
        """CPU projection: (n, F) contiguous complex64 spectra -> ``out`` (n, n_mels) mel energies.

        Consumes ``spec``: its (n, F, 2) real view is squared in place and projected band by
        band: each group of ``MELS_PER_BAND`` filters only touches its own span of bins (every
        bin lies in at most two filters), one GEMM on that slice of the interleaved
        (re^2, im^2) columns with doubled weight rows, which also sums re^2 + im^2. About 4x
        fewer multiply-adds than a dense projection of the power, and no power tensor.
        """
        z = torch.view_as_real(spec)  # (n, F, 2)
        z.square_()
        flat = z.view(spec.shape[0], -1)  # (n, 2F): re^2, im^2 of bin 0, then of bin 1, ...
        for band, weights in bands:
            torch.matmul(
                flat[:, 2 * band.bin_lo : 2 * band.bin_hi],
                weights,
                out=out[:, band.mel_lo : band.mel_hi],
            )

    def _log_mel_frames(self, padded: Tensor, channel: int) -> Tensor:
        """CPU float32 path: (B, T') audio -> (B, n_mels, frames) natural-log mel (as
        :meth:`log_mel_frames`).

        The same numbers as ``torch.stft(center=False)`` + projection, but ``FRAMES_PER_CHUNK``
        frames at a time (the frames of several clips share a chunk when each has only a few,
        as the streamed front end's window edges do): the frames (a strided view of the clip)
        times the window go into a reused per-thread buffer that is zero outside the window's
        span (only that span is ever written), a real FFT, then the banded mel GEMMs
        (:meth:`_mel_banded`) into the output rows. Nothing per clip is materialised but the
        mel rows; a chunk (~2 MB) stays in cache from the window product to the GEMMs. Short
        windows use a smaller, faster FFT and equivalent weights (:class:`FramePlan`,
        :func:`autocorr_mel_weights`).
        """
        cfg = self.cfg
        hop = cfg.hop_samples(cfg.windows_ms[channel][1])
        frames = padded.unfold(-1, cfg.n_fft, hop)  # (B, frames, n_fft), a view
        b, t, _ = frames.shape
        plan = self._plan(channel)
        src = slice(plan.src_lo, plan.src_lo + plan.length)
        dst = slice(plan.dst_lo, plan.dst_lo + plan.length)
        chunk = max(1, min(FRAMES_PER_CHUNK, b * t))
        # Zero outside dst for good: keyed by that span, so no other caller writes there.
        key = ("frames", plan.fft_size, dst.start, dst.stop)
        windowed = _scratch(key, (chunk, plan.fft_size), torch.float32)  # (chunk, fft_size)
        mel = torch.empty(b, t, cfg.n_mels, dtype=torch.float32)  # (B, frames, n_mels)
        rows = mel.view(b * t, cfg.n_mels)  # every clip's frames in a row, chunked as one
        for s in range(0, b * t, chunk):
            n = min(chunk, b * t - s)
            x = windowed[:n]  # (n, fft_size)
            r = s  # frames of several short clips (a few frames each) share a chunk
            while r < s + n:
                k, j = divmod(r, t)
                m = min(t - j, s + n - r)
                torch.mul(frames[k, j : j + m, src], plan.window, out=x[r - s : r - s + m, dst])
                r += m
            # A fresh spectrum, not out=: MKL's r2c then copies into out= (~7% slower).
            self._mel_banded(torch.fft.rfft(x), plan.bands, rows[s : s + n])
        mel.add_(cfg.log_eps).log_()
        return mel.transpose(1, 2)  # (B, n_mels, frames), a view

    def _power_export(self, wave: Tensor, window: Tensor, hop: int) -> Tensor:
        """The same power STFT with real ops only (ONNX has no complex tensors).

        The windowed DFT as a strided ``conv1d`` whose kernels are ``window * cos`` and
        ``window * sin`` (only the window's non-zero span, only the bins the mel filters use).
        Used only while exporting or tracing.
        """
        n_fft, win_len = self.cfg.n_fft, window.shape[0]
        left = (n_fft - win_len) // 2  # the window sits centred in n_fft
        n_frames = wave.shape[-1] // hop + 1
        k = torch.arange(self.bin_lo, self.bin_hi, dtype=torch.float64).unsqueeze(1)
        n = torch.arange(left, left + win_len, dtype=torch.float64).unsqueeze(0)
        angle = 2 * math.pi * k * n / n_fft  # (F', win_len)
        w = window.to(torch.float64).unsqueeze(0)
        kernels = torch.cat([torch.cos(angle) * w, torch.sin(angle) * w])  # (2F', win_len)
        x = F.pad(wave, (n_fft // 2, n_fft // 2))[:, left:].unsqueeze(1)  # (B, 1, T')
        out = F.conv1d(x, kernels.to(wave.dtype).unsqueeze(1), stride=hop)  # (B, 2F', >=frames)
        out = out[..., :n_frames]
        f = self.bin_hi - self.bin_lo
        power = out[:, :f].square() + out[:, f:].square()  # (B, F', frames)
        # Zero rows outside [bin_lo, bin_hi) so _mel's slicing sees the full bin range.
        return F.pad(power, (0, 0, self.bin_lo, self.mel_fb.shape[1] - self.bin_hi))

    def spectrogram(self, wave: Tensor, channel: int) -> Tensor:
        """One channel before resizing: (B, T) -> (B, n_mels, frames) natural-log mel."""
        return self._spectrogram(wave, channel)

    def _spectrogram(self, wave: Tensor, channel: int, padded: Tensor | None = None) -> Tensor:
        """(B, T) -> (B, n_mels, frames); ``padded``: ``wave`` already centre-padded."""
        if _exporting() or _tracing():
            _win_ms, hop_ms = self.cfg.windows_ms[channel]
            window: Tensor = getattr(self, f"window{channel}")
            power = self._power_export(wave, window, self.cfg.hop_samples(hop_ms))
            return torch.log(self._mel(power) + self.cfg.log_eps)  # (B, n_mels, frames)
        if padded is None:
            padded = self._centre_pad(wave)
        return self.log_mel_frames(padded, channel)

    def log_mel_frames(self, padded: Tensor, channel: int) -> Tensor:
        """(B, T) audio -> (B, n_mels, frames) natural-log mel of every whole frame in it.

        No padding is added: frame ``t`` is samples ``[t * hop, t * hop + n_fft)``, so
        ``frames = (T - n_fft) // hop + 1``. :meth:`spectrogram` is this on the centre-padded
        clip; the streamed front end (:mod:`soundtransfer.inference.stream`) passes stretches
        of a long file padded as it needs.
        """
        _win_ms, hop_ms = self.cfg.windows_ms[channel]
        if padded.device.type == "cpu" and padded.dtype == torch.float32:
            # The STFT as frames (a strided view) x window, then a real FFT: the same numbers
            # as torch.stft(center=False), ~2.5x faster on CPU (measured:
            # torch.stft spends more time arranging than in the FFT), and the spectrum comes
            # out (frames, F) contiguous, the layout the banded projection wants.
            return self._log_mel_frames(padded, channel)  # (B, n_mels, frames)
        # center=False: the caller padded (on a centre-padded clip this is torch's center=True,
        # pad_mode="constant", with the padding done once for all channels).
        window: Tensor = getattr(self, f"window{channel}")
        spec = torch.stft(
            padded,
            n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_samples(hop_ms),
            win_length=window.shape[0],
            window=window.to(padded.dtype),
            center=False,
            return_complex=True,
        )  # (B, F, frames)
        power = spec.real.square() + spec.imag.square()  # (B, F, frames)
        return torch.log(self._mel(power) + self.cfg.log_eps)  # (B, n_mels, frames)

    def _centre_pad(self, wave: Tensor) -> Tensor:
        """(B, T) -> (B, T + 2 * (n_fft // 2)), zeros on both sides (librosa's center=True)."""
        return F.pad(wave, (self.cfg.n_fft // 2, self.cfg.n_fft // 2))

    def forward(self, wave: Tensor) -> Tensor:
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        wave = fit_length(wave.float(), self.cfg.clip_samples, self.cfg.crop)  # (B, T)
        return self._images(wave)

    def _images(self, wave: Tensor) -> Tensor:
        """(B, T) -> (B, C, n_mels, out_frames): every channel, resized and stacked."""
        padded = None if _exporting() or _tracing() else self._centre_pad(wave)
        channels = []
        for c in range(self.cfg.channels):
            log_mel = self._spectrogram(wave, c, padded)  # (B, n_mels, frames_c)
            img = F.interpolate(
                log_mel.unsqueeze(1),
                size=(self.cfg.n_mels, self.cfg.out_frames),
                mode="bilinear",
                align_corners=False,
            )  # (B, 1, n_mels, out_frames)
            channels.append(img)
        return torch.cat(channels, dim=1)  # (B, C, n_mels, out_frames)

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"sr={c.sample_rate}, n_fft={c.n_fft}, n_mels={c.n_mels}, "
            f"windows_ms={c.windows_ms}, out={c.out_frames}"
        )


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (process-wide), restored after.

    On CPU the front end's ops are small (a chunk of 64 frames): one clip per core, each op
    on one thread, beats splitting every op over the cores (measured ~10 % for
    ``build_features``, whose worker threads run under ``torch_threads(1)``). Process-wide,
    so no other torch work should run meanwhile. Not worth it between a network's batches:
    after a multi-threaded op, OpenMP's idle thread spins for a while, taking a core from
    the front end's threads (measured: the streamed front end in 2 threads, switching each
    batch, was 1.3x slower than on 2 intra-op threads).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_SCRATCH = threading.local()


def _scratch(key: tuple[object, ...], shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """A CPU buffer of ``shape`` reused by this thread under ``key`` (zeros when created).

    Reusing buffers avoids the page faults of fresh allocations on every touch (they made the
    STFT ~3x slower with 2 threads, measured) and keeps them in cache. Thread-local, so
    concurrent callers never share one. A buffer is replaced (zeros again) when a larger one
    is asked for under its key; callers that rely on zeros must use a key naming what they
    write.
    """
    bufs: dict[tuple[object, ...], Tensor] | None = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    buf = bufs.get(key)
    if buf is None or buf.dtype != dtype or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
        with torch.inference_mode(False):  # usable both inside and outside inference mode
            buf = bufs[key] = torch.zeros(shape, dtype=dtype)
    return buf[: shape[0]]


def _tracing() -> bool:
    return bool(torch.jit.is_tracing())  # type: ignore[attr-defined]


def _exporting() -> bool:
    is_exporting = getattr(torch.onnx, "is_in_onnx_export", None)
    return bool(is_exporting()) if is_exporting is not None else False
