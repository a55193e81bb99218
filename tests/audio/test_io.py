"""Decoding, resampling, downmixing, and every kind of bad file, on real clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.audio.io import load_clip, read_audio
from soundtransfer.errors import AudioError


@pytest.fixture
def clip(shared_data: Path) -> Path:
    return shared_data / "esc10" / "audio" / "1-100032-A.ogg"


def test_resample_and_downmix(tmp_path: Path, clip: Path) -> None:
    mono, sr = read_audio(clip)
    stereo = np.concatenate([mono, 0.5 * mono], axis=1)
    path = tmp_path / "stereo48k.wav"
    import soxr

    sf.write(path, soxr.resample(stereo, sr, 48000), 48000, subtype="FLOAT")
    wave = load_clip(path, 44100, 44100 * 5)
    ref = load_clip(clip, 44100, 44100 * 5) * 0.75
    assert wave.shape == (220500,) and wave.dtype == np.float32
    # soxr round trip 44.1 -> 48 -> 44.1 kHz is near-transparent.
    n = min(len(mono), 220500) - 1000
    assert np.abs(wave[1000:n] - ref[1000:n]).max() < 1e-2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("empty", "empty file"),
        ("garbage", "cannot decode"),
        ("truncated_header", "cannot decode"),
        ("missing", "not found"),
        ("unknown_format", "cannot decode"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, clip: Path, damage: str, message: str) -> None:
    path = tmp_path / f"{damage}.ogg"
    data = clip.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "truncated_header":
        path.write_bytes(data[:40])
    elif damage == "unknown_format":
        path = tmp_path / "clip.xyz"
        path.write_bytes(b"RIFX" + data[4:200])
    with pytest.raises(AudioError, match=message) as err:
        load_clip(path, 44100, 220500)
    assert str(path) in str(err.value)


def _real_clips(shared_data: Path) -> dict[str, Path]:
    return {
        "ogg": shared_data / "esc10" / "audio" / "1-17367-A.ogg",
        "flac": sorted((shared_data / "esc50-fold4" / "audio").glob("*.flac"))[0],
        "us8k-flac": shared_data / "us8k" / "audio" / "fold1" / "101415-3-0-2.flac",
    }


@pytest.mark.parametrize("kind", ["ogg", "flac", "us8k-flac", "wav", "wav-float", "au", "aiff"])
def test_file_cut_to_half_its_bytes_is_an_error(
    tmp_path: Path, shared_data: Path, kind: str
) -> None:
    """A cut file never becomes a shorter clip, whatever libsndfile does with it.

    libsndfile fails on a cut FLAC but decodes a cut WAV/AU/AIFF or Ogg partially without a
    word; read_audio compares with the header's length (Ogg: the end-of-stream flag).
    """
    clips = _real_clips(shared_data)
    if kind in clips:
        src = clips[kind]
    else:
        data, sr = read_audio(clips["ogg"])
        src = tmp_path / f"whole.{kind.split('-')[0]}"
        sf.write(src, data, sr, subtype="FLOAT" if kind == "wav-float" else "PCM_16")
    assert read_audio(src)[0].shape[0] > 44100  # the whole file is fine
    cut = tmp_path / f"cut{src.suffix}"
    blob = src.read_bytes()
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AudioError, match=r"truncated file|cannot decode") as err:
        load_clip(cut, 44100, 220500)
    assert str(cut) in str(err.value)


def test_file_cut_at_a_page_boundary_is_still_truncated(tmp_path: Path, shared_data: Path) -> None:
    """An Ogg cut exactly after a complete page decodes cleanly in libsndfile: still an error."""
    blob = _real_clips(shared_data)["ogg"].read_bytes()
    page = blob.find(b"OggS", len(blob) // 2)  # the start of a page past the middle
    cut = tmp_path / "page.ogg"
    cut.write_bytes(blob[:page])
    assert sf.info(str(cut)).frames > 0  # libsndfile alone would accept it
    with pytest.raises(AudioError, match="end-of-stream"):
        read_audio(cut)


def test_extension_is_ignored_content_decides(tmp_path: Path, clip: Path) -> None:
    """libsndfile detects the format from the bytes: a real clip under a wrong name decodes."""
    renamed = tmp_path / "clip.xyz"
    renamed.write_bytes(clip.read_bytes())
    # Bitwise: the same bytes through the same decoder in this process.
    np.testing.assert_array_equal(read_audio(renamed)[0], read_audio(clip)[0])
    text = tmp_path / "notes.mp4"
    text.write_text("not audio at all\n" * 100)
    with pytest.raises(AudioError, match="cannot decode") as err:
        read_audio(text)
    assert "notes.mp4" in str(err.value)


def test_nan_audio_is_an_error(tmp_path: Path, clip: Path) -> None:
    data, sr = read_audio(clip)
    data[1000, 0] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, data, sr, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as err:
        load_clip(path, 44100, 4410)
    assert str(path) in str(err.value)


def test_silent_audio_is_kept_unless_refused(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(4410, dtype=np.float32), 44100)
    assert not load_clip(path, 44100, 4410).any()
    with pytest.raises(AudioError, match="silent"):
        load_clip(path, 44100, 4410, allow_silent=False)


def test_copy_in_other_format_decodes_same(tmp_path: Path, shared_data: Path) -> None:
    flac = sorted((shared_data / "esc50-fold4" / "audio").glob("*.flac"))[0]
    data, sr = read_audio(flac)
    wav = tmp_path / "x.wav"
    sf.write(wav, data, sr, subtype="PCM_16")
    shutil.copy(flac, tmp_path / "y.flac")
    # Bitwise: both formats hold the same 16-bit integers (lossless), scaled by 2**-15.
    np.testing.assert_array_equal(
        load_clip(wav, sr, None), load_clip(tmp_path / "y.flac", sr, None)
    )


# MPEG-1 Layer III bitrates (kbit/s) by header index, ISO 11172-3: the test's own reference
# for walking the frames of the MP3 libsndfile writes (44.1 kHz, MPEG-1 Layer III).
_MP3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def _mp3_frame_starts(blob: bytes) -> list[int]:
    starts, pos = [], 0
    while pos + 4 <= len(blob) and blob[pos] == 0xFF and blob[pos + 1] == 0xFB:
        starts.append(pos)
        kbps, padding = _MP3_KBPS[blob[pos + 2] >> 4], (blob[pos + 2] >> 1) & 1
        pos += 144 * kbps * 1000 // 44100 + padding
    assert pos == len(blob), "not a plain MPEG-1 Layer III 44.1 kHz stream"
    return starts


@pytest.fixture
def mp3(tmp_path: Path, shared_data: Path) -> Path:
    """A real ESC-10 clip encoded to MP3 by libsndfile (>= 1.1 writes MP3)."""
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    data, sr = read_audio(_real_clips(shared_data)["ogg"])
    path = tmp_path / "whole.mp3"
    sf.write(path, data, sr)
    return path


def test_complete_mp3_with_tags_decodes(tmp_path: Path, mp3: Path) -> None:
    n = read_audio(mp3)[0].shape[0]
    assert n == sf.info(str(mp3)).frames > 44100
    id3v2 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10  # empty tag, 10 bytes of padding
    id3v1 = b"TAG" + b"\x20" * 125
    tagged = tmp_path / "tagged.mp3"
    tagged.write_bytes(id3v2 + mp3.read_bytes() + id3v1)
    assert read_audio(tagged)[0].shape[0] == n


@pytest.mark.parametrize("cut", ["mid-frame", "frame-boundary", "frame-boundary+id3v1"])
def test_truncated_mp3_is_an_error(tmp_path: Path, mp3: Path, cut: str) -> None:
    """libsndfile decodes the frames present of a cut MP3 without a word; read_audio checks
    that the last frame is whole and that the Xing/Info header's frame count is reached."""
    blob = mp3.read_bytes()
    starts = _mp3_frame_starts(blob)
    boundary = next(p for p in starts if p > len(blob) // 2)
    short = blob[: len(blob) // 2] if cut == "mid-frame" else blob[:boundary]
    if cut.endswith("id3v1"):
        short += b"TAG" + b"\x20" * 125
    path = tmp_path / "cut.mp3"
    path.write_bytes(short)
    if cut != "mid-frame":
        assert 0 < sf.read(str(path))[0].shape[0] < sf.read(str(mp3))[0].shape[0]
    with pytest.raises(AudioError, match="truncated file") as err:
        load_clip(path, 44100, 220500)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
