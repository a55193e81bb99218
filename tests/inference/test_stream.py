"""Streamed decoding, windows cut on the fly, the sliced front end vs the per-window one."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from soundtransfer.audio import FrontEnd, get_preset, load_clip
from soundtransfer.audio.frontend import LogMel3
from soundtransfer.errors import AudioError
from soundtransfer.inference.predict import plan_hop, windows
from soundtransfer.inference.stream import (
    BLOCK_FRAMES,
    SlicedFrontEnd,
    StreamStats,
    channel_plan,
    frame_quantum,
    stream_audio,
    window_batches,
    window_starts,
)


@pytest.mark.parametrize("total", [1, 7, 20, 21, 22, 57])
@pytest.mark.parametrize("hop", [1, 3, 7])
def test_window_batches_place_windows_as_window_starts(total: int, hop: int) -> None:
    size, margin = 7, 4
    wave = np.arange(1, total + 1, dtype=np.float32)
    padded = np.concatenate([np.zeros(margin), wave, np.zeros(size + margin + 64)])
    for batch_size in (1, 2, 5):
        for block in (1, 3, 50):
            blocks = [wave[i : i + block] for i in range(0, total, block)]
            batches = list(window_batches(blocks, size, hop, batch_size, margin))
            starts = [s for b in batches for s in b.starts]
            assert starts == window_starts(total, size, hop)
            assert all(len(b.starts) <= batch_size for b in batches)
            # Bitwise: the batches' audio and windows are copies of the samples, no arithmetic.
            for b in batches:  # the audio around the windows, zeros outside the file
                lo = b.seg_start + margin
                assert np.array_equal(b.audio, padded[lo : lo + len(b.audio)])
                assert len(b.audio) == b.starts[-1] - b.starts[0] + size + 2 * margin
            assert np.array_equal(
                np.concatenate([b.windows(size) for b in batches]), windows(wave, size, hop)
            )


def test_frame_quantum_and_plans() -> None:
    esc, us8k = get_preset("esc10"), get_preset("us8k")
    assert frame_quantum(esc) == 2205  # 50 ms: the hops are 441, 441, 2205 samples
    assert frame_quantum(us8k) == 220  # 220, 220, 1102: lcm 121220 (5.5 s) is too coarse
    for fe in (esc, us8k):
        hop = plan_hop(fe, 1.0).samples
        for c in range(fe.channels):
            plan = channel_plan(fe, c, hop)
            # Brute force: the frames whose n_fft span crosses the window's ends.
            spans = np.arange(plan.frames) * plan.hop - fe.n_fft // 2
            edge = (spans < 0) | (spans + fe.n_fft > fe.clip_samples)
            assert edge.sum() == plan.left + plan.frames - plan.right
            assert edge[: plan.left].all() and edge[plan.right :].all()
    assert [channel_plan(us8k, c, 22000).sliced for c in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("preset", "hop_s", "align"),
    [("esc10", 1.0, True), ("esc10", 0.37, False), ("us8k", 1.0, True), ("us8k", 1.0, False)],
)
def test_sliced_images_equal_per_window_images(
    preset: str, hop_s: float, align: bool, esc10_clips: list[Path]
) -> None:
    """Real audio, the full-size front end: the same images as LogMel3 on each window."""
    fe = get_preset(preset)
    frontend = LogMel3(fe)
    wave = np.concatenate([load_clip(c, fe.sample_rate) for c in esc10_clips[:3]])
    wave = wave[: round(8.3 * fe.sample_rate)]  # 4 windows at 1 s, 10 at 0.37 s
    hop = plan_hop(fe, hop_s, align).samples
    sliced = SlicedFrontEnd(frontend, hop)
    blocks = [wave[i : i + 30000] for i in range(0, len(wave), 30000)]
    got = torch.cat(
        [sliced.images(b) for b in window_batches(blocks, fe.clip_samples, hop, 3, sliced.margin)]
    )
    with torch.no_grad():
        want = frontend(torch.from_numpy(windows(wave, fe.clip_samples, hop)))
    assert got.shape == want.shape
    # log-mel units; the images span about -14..10. The same frames in other FFT chunks and
    # resized from a slice: float32 in another order (1.5e-6 apart here, < 4e-5 between
    # kernel sets: tests/audio/test_frontend.py::_assert_same_frames).
    assert (got - want).abs().max() < 1e-4
    # The edge frames matter: slicing the file's frames without recomputing them is far off.
    naive = SlicedFrontEnd(frontend, hop)
    naive.plans = tuple(dataclasses.replace(p, left=0, right=p.frames) for p in naive.plans)
    if any(p.sliced for p in naive.plans):
        off = torch.cat(
            [naive.images(b) for b in window_batches([wave], fe.clip_samples, hop, 3, naive.margin)]
        )
        assert (off - want).abs().max() > 1.0


def test_stream_audio_equals_load_clip(esc10_clips: list[Path], tmp_path: Path) -> None:
    wave = np.concatenate([load_clip(c, 44100) for c in esc10_clips[:2]])
    stereo = soxr.resample(np.stack([wave, 0.5 * wave], 1), 44100, 48000)
    path = tmp_path / "stereo48k.flac"
    sf.write(path, stereo, 48000)
    got = np.concatenate(list(stream_audio(path, 44100, block_frames=10000)))
    want = load_clip(path, 44100)
    # soxr resampling block by block vs in one call (float32; its state carries across
    # blocks, so the same arithmetic, up to rounding): samples in [-1, 1].
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-6


def test_stream_audio_errors_name_the_file(tmp_path: Path, esc10_clips: list[Path]) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 100)
    whole = tmp_path / "whole.wav"
    sf.write(whole, load_clip(esc10_clips[0], 44100), 44100)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.0], np.float32), 44100, subtype="FLOAT")
    for name, why in [
        ("missing.wav", "file not found"),
        ("empty.wav", "empty file"),
        ("junk.wav", "cannot decode"),
        ("cut.wav", "truncated"),
        ("nan.wav", "NaN"),
    ]:
        with pytest.raises(AudioError, match=rf"{name}.*{why}"):
            list(stream_audio(tmp_path / name, 44100))


def test_stream_audio_refuses_a_cut_mp3(tmp_path: Path, esc10_clips: list[Path]) -> None:
    """Issue 23, defect 5: the streamed reader (predict's) decoded the first half of a cut MP3
    and predict classified it, exit 0; a cut WAV was already an error (the case above)."""
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    whole = tmp_path / "whole.mp3"
    sf.write(whole, load_clip(esc10_clips[0], 44100), 44100)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(AudioError, match=r"cut\.mp3: truncated file"):
        list(stream_audio(cut, 44100))


BATCH = 8


def _held(path: Path, fe: FrontEnd) -> tuple[StreamStats, int, int]:
    """Stream a file through windows and the sliced front end (no network): the most samples
    and frames held, the peak of NumPy allocations, and the bound on samples held."""
    stats = StreamStats()
    hop = plan_hop(fe).samples
    sliced = SlicedFrontEnd(LogMel3(fe), hop, stats)
    tracemalloc.start()
    for batch in window_batches(
        stream_audio(path, fe.sample_rate), fe.clip_samples, hop, BATCH, sliced.margin, stats
    ):
        sliced.images(batch)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bound = (BATCH - 1) * hop + fe.clip_samples + 2 * sliced.margin + BLOCK_FRAMES
    return stats, peak, bound


@pytest.mark.slow
def test_memory_is_flat_in_the_file_length(long_wav: Callable[..., Path]) -> None:
    """A 10-minute file holds no more samples, frames or NumPy memory than a 1-minute one."""
    rate = 8000  # a small front end keeps the test short; the bookkeeping is the same
    fe = get_preset("esc10", sample_rate=rate, n_fft=rate // 10, n_mels=16, out_frames=32)
    held_short, peak_short, bound = _held(long_wav(60, rate, "short.wav"), fe)
    held_long, peak_long, _ = _held(long_wav(600, rate, "long.wav"), fe)
    # Samples held depend on where the blocks fall, never on the length: at most one batch of
    # windows, the margins and a block.
    assert 0 < held_short.peak_samples <= bound and 0 < held_long.peak_samples <= bound
    assert held_long.peak_frames == held_short.peak_frames > 0
    assert peak_long < 1.5 * peak_short  # NumPy buffers; the whole file would be 19 MB
    assert peak_long < 600 * rate * 4 / 4
