"""The 3-channel log-mel front end against a plain librosa computation on real clips."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import soundtransfer.audio.frontend as frontend_module
from soundtransfer.audio import LogMel3, get_preset, load_clip, mel_filterbank
from soundtransfer.audio.frontend import (
    _doubled,
    autocorr_fft_size,
    autocorr_mel_weights,
    mel_bands,
)
from soundtransfer.config import ConfigError
from soundtransfer.errors import SoundTransferError

# Tolerances against librosa (float32 vs librosa's float64 filters/FFT), measured on these
# clips at 2.2e-5 (masked) and 1.6e-4 (everywhere) natural-log units:
# - where the mel power is above 1e-6 of the clip's maximum: |ours - librosa| < 1e-4 in log
#   units, i.e. a relative error below 1e-4 on the mel power;
# - everywhere, including near-silent bands where float32 rounding of tiny powers dominates
#   the log (log_eps = 1e-6 bounds it): < 5e-4 in log units.
LOG_TOL = 1e-4
LOG_TOL_ALL = 5e-4
REL_TOL = 1e-4
# Two float32 computations by different algorithms, each within the bounds above of the
# float64 one, lie within twice them of each other (on any CPU).
PAIR_TOL_ALL = 2 * LOG_TOL_ALL


LIBROSA_REF = Path(__file__).resolve().parents[2] / "benchmarks" / "_librosa_ref.py"


def _librosa_ref() -> ModuleType:
    """benchmarks/_librosa_ref.py, the librosa reference mel the feature benchmark uses too."""
    spec = importlib.util.spec_from_file_location("bench_librosa_ref", LIBROSA_REF)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _assert_same_frames(got: torch.Tensor, want: torch.Tensor) -> None:
    """The same float32 algorithm on the same frames, batched or chunked differently: MKL and
    ATen pick their kernels (and so the order of their sums) by batch size, CPU and thread
    count. Within LOG_TOL everywhere: the largest such difference seen, between ATen's kernel
    sets and between MKL's code paths on these clips, is 3.5e-5 (near-silent bands)."""
    torch.testing.assert_close(got, want, rtol=0, atol=LOG_TOL)


def _clips(shared_data: Path) -> list[tuple[str, Path]]:
    return [
        ("esc10", shared_data / "esc10" / "audio" / "1-17367-A.ogg"),  # rain: dense
        ("us8k", shared_data / "us8k" / "audio" / "fold1" / "101415-3-0-2.flac"),
    ]


def test_filterbank_equals_librosa() -> None:
    for sr, n_fft in ((44100, 4410), (22050, 2205)):
        ours = mel_filterbank(sr, n_fft, 128)
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=128)
        # The same formula in another order, librosa's weights rounded to float32 (6e-8
        # relative): 1e-5 relative; 1e-8 absolute for the filters' near-zero tails.
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_each_channel_matches_librosa(shared_data: Path, channel: int) -> None:
    for preset, path in _clips(shared_data):
        cfg = get_preset(preset)
        wave = load_clip(path, cfg.sample_rate, cfg.clip_samples)
        win_ms, hop_ms = cfg.windows_ms[channel]
        mel = _librosa_ref().librosa_mel(wave, cfg.sample_rate, cfg, win_ms, hop_ms)
        ref = np.log(mel + cfg.log_eps)
        ours = LogMel3(cfg).spectrogram(torch.from_numpy(wave)[None], channel)[0].numpy()
        assert ours.shape == ref.shape
        mask = mel > 1e-6 * mel.max()
        assert mask.mean() > 0.1  # enough of the clip is tested in the log domain
        assert np.abs(ours - ref)[mask].max() < LOG_TOL, preset
        assert np.abs(ours - ref).max() < LOG_TOL_ALL, preset
        power = np.exp(ours.astype(np.float64)) - cfg.log_eps
        assert (np.abs(power - mel)[mask] / mel[mask]).max() < REL_TOL, preset


def test_output_shapes_and_resize(shared_data: Path) -> None:
    cfg = get_preset("esc10")
    wave = torch.from_numpy(load_clip(_clips(shared_data)[0][1], 44100, cfg.clip_samples))
    model = LogMel3(cfg)
    img = model(wave[None])
    assert img.shape == (1, 3, 128, 250)
    # Each channel is the bilinear resize of its spectrogram.
    spec = model.spectrogram(wave[None], 2)
    want = F.interpolate(spec[:, None], size=(128, 250), mode="bilinear", align_corners=False)
    torch.testing.assert_close(img[:, 2:3], want)  # the same ops in this process: float32 default
    gtzan = LogMel3(get_preset("gtzan"))
    assert gtzan(torch.zeros(1, 22050 * 30)).shape == (1, 3, 128, 1500)


def test_bilinear_resize_matches_numpy() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)

    def ref(a: np.ndarray, h: int, w: int) -> np.ndarray:  # align_corners=False semantics
        def coords(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            s = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
            s = np.clip(s, 0, n_in - 1)
            lo = np.floor(s).astype(int)
            hi = np.minimum(lo + 1, n_in - 1)
            return lo, hi, s - lo

        r0, r1, fr = coords(a.shape[0], h)
        c0, c1, fc = coords(a.shape[1], w)
        top = a[r0][:, c0] * (1 - fc) + a[r0][:, c1] * fc
        bot = a[r1][:, c0] * (1 - fc) + a[r1][:, c1] * fc
        return top * (1 - fr[:, None]) + bot * fr[:, None]

    got = F.interpolate(torch.from_numpy(x)[None, None], size=(5, 7), mode="bilinear")
    # float32 (torch) against NumPy's float64 weights, values up to 11: a few float32 steps.
    np.testing.assert_allclose(got[0, 0].numpy(), ref(x, 5, 7), rtol=1e-6)


def test_mel_bands_rebuild_the_filterbank() -> None:
    for fb in (
        mel_filterbank(44100, 4410, 128),
        mel_filterbank(22050, 2205, 64, f_min=50.0, f_max=8000.0),
        mel_filterbank(8000, 256, 128),  # narrow FFT: some filters are all zero
    ):
        dense = np.zeros_like(fb)
        for band in mel_bands(fb):
            dense[band.mel_lo : band.mel_hi, band.bin_lo : band.bin_hi] = band.weights.numpy().T
            outside = np.delete(fb[band.mel_lo : band.mel_hi], np.s_[band.bin_lo : band.bin_hi], 1)
            assert not outside.any()  # nothing non-zero is left out
        np.testing.assert_array_equal(dense, fb)  # bitwise: the bands are copies, no arithmetic


def test_autocorr_fft_sizes() -> None:
    assert autocorr_fft_size(1102, 4410) == 4096  # 25 ms at 44.1 kHz
    assert autocorr_fft_size(551, 2205) == 2048  # 25 ms at 22.05 kHz
    assert autocorr_fft_size(2205, 4410) == 4410  # no smaller power of two fits: direct
    assert autocorr_fft_size(4410, 4410) == 4410
    with pytest.raises(ValueError, match="fft_size"):
        autocorr_mel_weights(mel_filterbank(44100, 4410, 128), 4410, 1102, 2048)


@pytest.mark.parametrize(
    ("sr", "n_fft", "win_len", "f_min", "f_max"),
    [(44100, 4410, 1102, 0.0, None), (22050, 2205, 551, 50.0, 8000.0)],
)
def test_autocorr_weights_equal_the_direct_projection(
    sr: int, n_fft: int, win_len: int, f_min: float, f_max: float | None
) -> None:
    """Mel energies from the smaller FFT's power equal those of the n_fft-point power."""
    fb = mel_filterbank(sr, n_fft, 128, f_min, f_max).astype(np.float64)
    size = autocorr_fft_size(win_len, n_fft)
    weights = autocorr_mel_weights(fb, n_fft, win_len, size).astype(np.float64)
    assert weights.shape == (128, size // 2 + 1)
    assert (weights != 0).mean() < 0.1  # banded: each filter's span and a short tail
    rng = np.random.default_rng(0)
    hann = np.hanning(win_len)
    frames = rng.standard_normal((3, win_len)) * hann
    # A pure tone over noise 80 dB down: mel energies over a ~1e10 range.
    tone = np.sin(2 * np.pi * 0.0123 * np.arange(win_len)) + 1e-4 * rng.standard_normal(win_len)
    frames = np.vstack([frames, tone * hann])
    want = (np.abs(np.fft.rfft(frames, n=n_fft)) ** 2) @ fb.T  # (4, n_mels)
    got = (np.abs(np.fft.rfft(frames, n=size)) ** 2) @ weights.T
    live = want > 1e-12 * want.max(axis=1, keepdims=True)  # empty filters aside
    assert live.mean() > 0.9
    assert (np.abs(got - want)[live] / want[live]).max() < 1e-5


def test_small_fft_path_equals_direct_path(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for preset, path in _clips(shared_data):
        cfg = get_preset(preset)
        wave = torch.from_numpy(load_clip(path, cfg.sample_rate, cfg.clip_samples))[None]
        fast = LogMel3(cfg).spectrogram(wave, 0)
        monkeypatch.setattr(frontend_module, "SMALL_FFT", False)
        direct = LogMel3(cfg).spectrogram(wave, 0)
        monkeypatch.setattr(frontend_module, "SMALL_FFT", True)
        assert LogMel3(cfg)._plan(0).fft_size < cfg.n_fft == LogMel3(cfg)._plan(1).fft_size
        loud = direct > direct.max() + math.log(1e-6)  # mel above 1e-6 of the clip's max
        assert loud.float().mean() > 0.1
        # Two float32 algorithms (measured 3e-5 loud, 2.5e-4 everywhere): the bounds each meets
        # against float64, with room for another CPU's kernels (< 4e-5, _assert_same_frames).
        assert (fast - direct).abs()[loud].max() < LOG_TOL, preset
        assert (fast - direct).abs().max() < LOG_TOL_ALL, preset  # float32 near silence


def test_banded_cpu_path_equals_dense_projection(shared_data: Path) -> None:
    """The CPU path (banded GEMMs) and the GPU/export path (one dense matmul) agree."""
    cfg = get_preset("us8k", f_min=20.0, n_mels=96)
    wave = torch.from_numpy(load_clip(_clips(shared_data)[1][1], 22050, cfg.clip_samples))
    model = LogMel3(cfg)
    spec = torch.stft(
        torch.stack([wave, wave.flip(0)]),
        cfg.n_fft,
        cfg.hop_samples(10.0),
        cfg.win_samples(25.0),
        model.window0,
        return_complex=True,
    )
    dense = torch.log(model._mel(spec.abs().square()) + cfg.log_eps)  # (B, n_mels, T)
    rows = spec.transpose(1, 2).reshape(-1, spec.shape[1]).contiguous()  # (B * T, F)
    mel = torch.empty(rows.shape[0], 96)
    model._mel_banded(rows, _doubled(mel_bands(model.mel_fb.numpy())), mel)
    banded = torch.log(mel + cfg.log_eps).view(2, -1, 96).transpose(1, 2)
    assert banded.shape == dense.shape == (2, 96, spec.shape[-1])
    # The same spectra projected in another order: float32 sums of a few hundred positive
    # terms, relative error < 1e-5 whatever the order, so < 1e-4 in log units anywhere.
    assert (banded - dense).abs().max() < 1e-4


def test_float64_stft_path_equals_float32_rfft_path(shared_data: Path) -> None:
    """The torch.stft + dense projection path (GPU, float64) equals the CPU float32 path."""
    cfg = get_preset("esc10")
    wave = torch.from_numpy(load_clip(_clips(shared_data)[0][1], 44100, cfg.clip_samples))
    model = LogMel3(cfg)
    for c in range(3):
        ours = model.spectrogram(wave[None], c)
        dense = model.spectrogram(wave[None].double(), c).float()
        assert ours.shape == dense.shape
        assert (ours - dense).abs().max() < LOG_TOL_ALL  # float32 against float64, as above


def test_cpu_chunking_does_not_change_results(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = get_preset("esc10")
    paths = sorted((shared_data / "esc10" / "audio").glob("*.ogg"))[:3]
    x = torch.stack([torch.from_numpy(load_clip(p, 44100, cfg.clip_samples)) for p in paths])
    model = LogMel3(cfg)
    chunked = model(x)
    monkeypatch.setattr(frontend_module, "FRAMES_PER_CHUNK", 10_000)  # a whole clip at once
    _assert_same_frames(model(x), chunked)
    monkeypatch.setattr(frontend_module, "FRAMES_PER_CHUNK", 7)  # a short last chunk
    _assert_same_frames(model(x), chunked)
    per_clip = torch.cat([model.spectrogram(x[k : k + 1], 1) for k in range(3)])
    _assert_same_frames(model.spectrogram(x, 1), per_clip)


def test_log_mel_frames_of_many_short_stretches(shared_data: Path) -> None:
    """Stretches of a few frames each (the streamed front end's window edges) share chunks:
    the same frames as one stretch at a time and as the float64 torch.stft path."""
    cfg = get_preset("esc10")
    wave = torch.from_numpy(load_clip(_clips(shared_data)[0][1], 44100, cfg.clip_samples))
    model = LogMel3(cfg)
    for c, frames in ((0, 5), (1, 6), (2, 1)):
        hop = cfg.hop_samples(cfg.windows_ms[c][1])
        length = cfg.n_fft + (frames - 1) * hop
        starts = [k * 9_973 for k in range(20)]  # 20 stretches: 20 x 5 frames > one chunk
        x = torch.stack([wave[s : s + length] for s in starts])  # (20, length)
        batched = model.log_mel_frames(x, c)
        assert batched.shape == (20, cfg.n_mels, frames)
        one_by_one = torch.cat([model.log_mel_frames(x[k : k + 1], c) for k in range(20)])
        _assert_same_frames(batched, one_by_one)
        dense = model.log_mel_frames(x.double(), c).float()  # torch.stft, float64
        assert (batched - dense).abs().max() < LOG_TOL_ALL  # float32 against float64


def test_reused_buffers_do_not_leak_between_windows(shared_data: Path) -> None:
    """The per-thread frame buffers stay zero outside each window, whatever ran before."""
    cfg = get_preset("esc10")
    wave = torch.from_numpy(load_clip(_clips(shared_data)[0][1], 44100, cfg.clip_samples))
    model = LogMel3(cfg)
    fresh = [model.spectrogram(wave[None], c) for c in range(3)]
    wide = LogMel3(get_preset("esc10", windows_ms=((100.0, 10.0), (100.0, 50.0), (50.0, 10.0))))
    wide(torch.randn(2, cfg.clip_samples))  # wider windows, same n_fft, same thread
    for c in (2, 0, 1, 0):
        # Bitwise: the same computation on this thread, only other work in between (a leak
        # between the buffers would show as any difference).
        torch.testing.assert_close(model.spectrogram(wave[None], c), fresh[c], rtol=0, atol=0)
    stft = torch.stft(
        wave[None],
        cfg.n_fft,
        cfg.hop_samples(10.0),
        cfg.win_samples(25.0),
        model.window0,
        pad_mode="constant",
        return_complex=True,
    )  # float32, centre-padded with zeros as the CPU path
    want = torch.log(model._mel(stft.abs().square()) + cfg.log_eps)
    assert (fresh[0] - want).abs().max() < PAIR_TOL_ALL  # two float32 algorithms (3e-5 here)


def test_batch_equals_single_and_crop_pad(shared_data: Path) -> None:
    cfg = get_preset("esc10")
    paths = sorted((shared_data / "esc10" / "audio").glob("*.ogg"))[:3]
    waves = [torch.from_numpy(load_clip(p, 44100, cfg.clip_samples)) for p in paths]
    model = LogMel3(cfg)
    batch = model(torch.stack(waves))
    for k, w in enumerate(waves):
        _assert_same_frames(batch[k : k + 1], model(w[None]))
    short = model(waves[0][None, : cfg.clip_samples // 2])
    padded = torch.cat([waves[0][: cfg.clip_samples // 2], torch.zeros(cfg.clip_samples // 2)])
    # The same samples (fit_length pads with the same zeros), the same computation in this
    # process: the float32 default tolerance.
    torch.testing.assert_close(short, model(padded[None]))


def test_export_path_equals_stft(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = get_preset("us8k")
    wave = torch.from_numpy(load_clip(_clips(shared_data)[1][1], 22050, cfg.clip_samples))
    model = LogMel3(cfg)
    want = model(wave[None])
    monkeypatch.setattr(frontend_module, "_exporting", lambda: True)
    got = model(wave[None])
    assert (got - want).abs().max() < PAIR_TOL_ALL  # float32 conv1d DFT vs float32 rfft


def test_preset_overrides_are_checked() -> None:
    assert get_preset("esc50", n_mels=64).n_mels == 64
    with pytest.raises(ConfigError, match="unknown setting"):
        get_preset("esc50", nmels=64)
    with pytest.raises(SoundTransferError, match="longer than n_fft"):
        get_preset("us8k", n_fft=512)
