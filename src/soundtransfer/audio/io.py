"""Decoding, resampling, downmixing and crop/pad of one clip, with errors that name the file.

soundfile (libsndfile) decodes WAV, FLAC, OGG/Vorbis, AIFF, AU and MP3 (libsndfile >= 1.1);
soxr resamples (VHQ, the same
library sox and librosa's default use). Nothing here knows about datasets.

Truncated files are errors, never shorter clips. libsndfile's own behaviour differs by format
(checked on real clips cut to a fraction of their bytes): a cut FLAC fails to decode ("lost
sync"), but a cut WAV or AU decodes the frames present and a cut Ogg Vorbis decodes up to its
last complete page, both without a word. A short clip would then be zero-padded like a
genuinely short recording (ESC-10 and UrbanSound8K have many), hiding e.g. an interrupted
extraction. :func:`read_audio` therefore checks completeness: WAV, AIFF and AU against the
length in their header (unless the header leaves it unknown, as streamed files do), Ogg by its
end-of-stream flag, which every complete Ogg stream sets on its last page. A cut MP3 also
decodes its whole frames silently (libsndfile's mp3 decoder, mpg123, at most prints a warning
about the Xing size to stderr); MP3s are checked before decoding, by walking the frame headers:
the last frame must be whole and, where a Xing/Info header (LAME and libsndfile write one)
declares a frame count, that many frames must follow it.
"""

from __future__ import annotations

import math
import mmap
import struct
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from soundtransfer.errors import AudioError


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 (frames, channels) and its sample rate.

    Raises:
        AudioError: missing, empty, unreadable/corrupt or truncated file, or no samples.
    """
    path = Path(path)
    check_before_decoding(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: decoded to 0 samples (truncated or header-only file)")
    problem = truncation(path, data.shape[0], data.shape[1])
    if problem:
        raise AudioError(f"{path}: truncated file: {problem}")
    return data, int(sr)


def check_before_decoding(path: Path) -> None:
    """What is checked before a file is decoded, by :func:`read_audio` and by the streamed
    reader (:func:`soundtransfer.inference.stream.stream_audio`) alike: it exists, is not
    empty and, for an MP3, is not cut short (:func:`mp3_truncation`; before decoding, since
    libsndfile would decode a cut MP3's whole frames without a word).

    Raises:
        AudioError: naming the file.
    """
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    problem = mp3_truncation(path)  # before decoding: mpg123 would warn on stderr
    if problem:
        raise AudioError(f"{path}: truncated file: {problem}")


_AU_BYTES = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}  # AU encoding -> bytes/sample
_OGG_TAIL_BYTES = 1 << 16  # an Ogg page is at most 65,307 bytes


def truncation(path: Path, frames: int, channels: int) -> str | None:
    """Why a decoded file looks cut short, or None (see the module docstring).

    Args:
        path: the file.
        frames: frames libsndfile decoded from it.
        channels: its channel count.

    Returns:
        A reason naming the declared and decoded lengths, or None if complete or unknown.
    """
    with path.open("rb") as fh:
        head = fh.read(4096)
        if head[:4] == b"OggS":
            fh.seek(max(0, path.stat().st_size - _OGG_TAIL_BYTES))
            tail = fh.read()
            last = tail.rfind(b"OggS")
            if last < 0 or len(tail) < last + 6 or not tail[last + 5] & 0x04:
                return f"Ogg stream has no end-of-stream page ({frames} frames decodable)"
            return None
    declared = _declared_frames(head, channels)
    if declared is not None and frames < declared:
        return f"header declares {declared} frames, only {frames} decodable"
    return None


def _declared_frames(head: bytes, channels: int) -> int | None:
    """Frames a WAV, AIFF or AU header declares, or None (other format, or unknown size)."""
    if head[:4] == b".snd" and len(head) >= 24:
        _offset, size, encoding = struct.unpack(">III", head[4:16])
        width = _AU_BYTES.get(encoding)
        if size == 0xFFFFFFFF or width is None:
            return None
        return int(size) // (width * channels)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        pos = 12
        while pos + 8 <= len(head):
            chunk, size = head[pos : pos + 4], struct.unpack(">I", head[pos + 4 : pos + 8])[0]
            if chunk == b"COMM" and pos + 14 <= len(head):
                return int(struct.unpack(">I", head[pos + 10 : pos + 14])[0])
            pos += 8 + size + (size & 1)
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = struct.unpack("<H", head[pos + 20 : pos + 22])[0]
        elif chunk == b"data":
            if block_align == 0 or size in (0, 0xFFFFFFFF):
                return None  # streamed WAVs leave the size unset
            return int(size) // int(block_align)
        pos += 8 + size + (size & 1)
    return None


# MPEG audio frame headers (ISO 11172-3, 13818-3): bitrates in kbit/s by (MPEG-1?, layer)
# and header index, sample rates by version bits and index.
_MPEG_KBPS = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mpeg_frame_length(data: bytes, pos: int) -> int | None:
    """Bytes of the MPEG audio frame whose header starts at ``pos``, or None if there is no
    valid header there (free-format bitrate included: its length is not in the header)."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (data[pos + 1] >> 3) & 3, (data[pos + 1] >> 1) & 3
    rate_index, sr_index = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3
    if version == 1 or layer_bits == 0 or rate_index in (0, 15) or sr_index == 3:
        return None
    layer, mpeg1 = 4 - layer_bits, version == 3
    bitrate = _MPEG_KBPS[(mpeg1, layer)][rate_index] * 1000
    sample_rate = _MPEG_RATES[version][sr_index]
    padding = (data[pos + 2] >> 1) & 1
    if layer == 1:
        return (12 * bitrate // sample_rate + padding) * 4
    if layer == 3 and not mpeg1:
        return 72 * bitrate // sample_rate + padding
    return 144 * bitrate // sample_rate + padding


def _id3v2_end(data: bytes) -> int:
    """Offset after a leading ID3v2 tag (0 if none); its size is four 7-bit bytes."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = 0
    for b in data[6:10]:
        size = (size << 7) | (b & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)  # + footer


def _trailing_tags_start(data: bytes) -> int:
    """Where the audio ends: before a trailing ID3v1 tag and/or APEv2 tag."""
    end = len(data)
    if end >= 128 and data[end - 128 : end - 125] == b"TAG":
        end -= 128
    if end >= 32 and data[end - 32 : end - 24] == b"APETAGEX":
        size, flags = struct.unpack("<II", data[end - 20 : end - 12])
        end -= size + (32 if flags & 0x80000000 else 0)
    return max(end, 0)


def mp3_truncation(path: Path) -> str | None:
    """Why an MP3 file looks cut short, or None (complete, unknown, or not an MP3).

    Walks the frame headers from the first one (after an ID3v2 tag) to the end of the audio
    (before ID3v1/APEv2 tags). Truncated: the last frame runs past the end, or a Xing/Info
    header declares more frames than follow it. Anything the walk does not understand (not
    an MPEG stream, a free-format bitrate, junk between frames) is left to the decoder.
    """
    with path.open("rb") as fh:
        head = fh.read(10)
        if not (head[:3] == b"ID3" or mpeg_frame_length(head, 0)):
            return None
        # Mapped, not read: an hour of MP3 is walked without holding it in memory.
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _mp3_problem(data)


def _mp3_problem(data: Any) -> str | None:
    """:func:`mp3_truncation` on the file's bytes (``bytes`` or a memory map)."""
    pos, end = _id3v2_end(data), _trailing_tags_start(data)
    first = mpeg_frame_length(data, pos)
    if first is None:
        return None
    # A Xing/Info header sits in the first frame, after the side information.
    stop = pos + min(first, 64)
    tag = max(data.find(b"Xing", pos + 4, stop), data.find(b"Info", pos + 4, stop))
    declared = None
    if tag >= 0 and tag + 12 <= end and data[tag + 7] & 1:
        declared = int(struct.unpack(">I", data[tag + 8 : tag + 12])[0])
    frames = 0
    while end - pos >= 4:
        length = mpeg_frame_length(data, pos)
        if length is None:
            return None  # not a frame header: leave it to the decoder
        if pos + length > end:
            return (
                f"MP3 stream ends inside frame {frames + 1} (it needs {length} bytes from "
                f"byte {pos}, {end - pos} are left)"
            )
        pos, frames = pos + length, frames + 1
    if declared is not None and frames - 1 < declared:  # the Info frame itself is silent
        return f"Xing/Info header declares {declared} MP3 frames, only {frames - 1} present"
    return None


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) by averaging channels."""
    if data.ndim == 1:
        return data
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (very high quality)."""
    if orig_sr == target_sr:
        return wave
    out: np.ndarray = soxr.resample(wave, orig_sr, target_sr, quality="VHQ")
    return out.astype(np.float32, copy=False)


def fit_length_np(wave: np.ndarray, num_samples: int, crop: str = "start") -> np.ndarray:
    """Crop (at the start or the centre) or zero-pad a 1-D signal to ``num_samples``."""
    n = wave.shape[0]
    if n > num_samples:
        start = 0 if crop == "start" else (n - num_samples) // 2
        return wave[start : start + num_samples]
    if n < num_samples:
        return np.pad(wave, (0, num_samples - n))
    return wave


def load_clip(
    path: str | Path,
    sample_rate: int,
    num_samples: int | None = None,
    crop: str = "start",
    allow_silent: bool = True,
    offset_s: float = 0.0,
) -> np.ndarray:
    """Decode, downmix, resample to ``sample_rate`` and crop/pad one clip.

    Args:
        path: audio file.
        sample_rate: target rate, Hz.
        num_samples: crop or zero-pad to this many samples; None keeps the full length.
        crop: "start" or "centre" when cropping.
        allow_silent: all-zero clips are returned as they are (ESC-50 has a few near-silent
            clips and UrbanSound8K silent stretches); False raises instead.
        offset_s: start of the clip in the file, seconds (a window of a long recording):
            the file's samples from there on are resampled and cropped (the whole file is
            still decoded and checked).

    Returns:
        float32 array (num_samples,) at ``sample_rate``.

    Raises:
        AudioError: the file cannot be decoded, or holds NaN/inf (or only zeros when
            ``allow_silent`` is False).
    """
    data, sr = read_audio(path)
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    if offset_s > 0:
        start = round(offset_s * sr)
        if start >= data.shape[0]:
            raise AudioError(f"{path}: offset {offset_s:g} s is past the end of the audio")
        # only the frames the clip needs (plus a little for the resampler's edge)
        stop = None if num_samples is None else start + math.ceil(num_samples * sr / sample_rate)
        data = data[start : None if stop is None else stop + 1]
    wave = resample(to_mono(data), sr, sample_rate)
    if not allow_silent and not np.any(wave):
        raise AudioError(f"{path}: audio is silent (all samples are zero)")
    if num_samples is not None:
        wave = fit_length_np(wave, num_samples, crop)
    return np.ascontiguousarray(wave, dtype=np.float32)
