"""Audio fingerprints for the leakage report: copies found whatever their start, length, gain
or encoding, and a same-recording signal.

A clip is decoded once at :data:`FP_RATE_HZ` (mono) and reduced to a :class:`Fingerprint`:

- ``digest``: sha256 of the samples (exact copies: the same audio in another file or format).
- **Landmarks** (``hashes``, ``times``): the spectrogram's local peaks (64 ms frames, 16 ms
  hop), paired with later peaks of the next 0.5 s; each pair hashes its first peak's frequency
  bin, the frequency step and the time step, none of which a shift, a crop, a gain or a
  re-encoding changes (the landmark scheme of Wang 2003, "An industrial-strength audio search
  algorithm"). Two clips sharing several hashes *at one time offset* are a candidate pair
  (:func:`candidate_pairs`), found through a hash index, never by comparing every pair.
- **Band levels** (``bands``): log energies of 32 bands of 125 Hz in 64 ms frames every 8 ms
  (0.5 dB steps, uint8), which verify a candidate (:func:`verify`): the correlation of the two
  clips' level changes over their overlap at the candidate offset (each band's mean over the
  overlap removed, so gain and equalisation do not count, only how the sound evolves). A shift
  of any number of samples is at most 4 ms away from one of the 8 ms frame offsets tried.
- ``floor``: the clip's background spectrum (each of 256 frequency bins' 10th-percentile
  level over the frames with sound, mean removed, unit norm), a same-recording signal: takes
  cut from one recording share their microphone, room and background (measured in
  ``benchmarks/studies/leakage_signals.py``).

A clip with no sample above :data:`SILENCE_LEVEL` (digital silence) has no landmarks and no
floor: silence is not a copy of another silence (the report lists such clips instead), and
its digest is not compared. Near-duplicate verification needs :data:`MIN_SOUND_S` seconds of
sound in the overlap, so two distinct 60 ms clicks over a quiet floor are never "the same
audio"; shorter clips are compared by digest only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FP_RATE_HZ = 8000  # fingerprints ignore what lies above 4 kHz
FFT = 512  # 64 ms frames
HOP = 64  # band-level frames every 8 ms; landmark frames every 2 x HOP = 16 ms
LM_STEP = 2  # landmark frames = every LM_STEP-th band frame
N_BANDS = 32  # equal-width bands of 125 Hz
SILENCE_LEVEL = 2.0**-15  # below one step of 16-bit audio: digital silence

# Landmarks
PEAK_T, PEAK_F = 5, 7  # a peak is the maximum of its 5 frames x 7 bins neighbourhood
PEAK_FLOOR_DB = 60.0  # and within 60 dB of the clip's loudest bin
PEAK_LOW_BIN, PEAK_HIGH_BIN = 4, 243  # between 62.5 Hz (rumble) and 3.8 kHz (resampling edge)
PEAKS_PER_SLOT = 8  # the loudest peaks of each quarter second (spread over time, so a crop
SLOT_S = 0.25  # keeps the peaks the original had in the part it kept)
FAN_OUT = 8  # pairs per anchor peak
PAIR_DT = 32  # target peaks up to 32 landmark frames (0.5 s) later
PAIR_DF = 48  # and fewer than 48 bins (375 Hz) away
MAX_PER_CLIP = 8  # occurrences of one hash in one clip that count (repetitive sounds)
MIN_VOTES = 3  # hashes at one offset (+-1 frame) that make a candidate pair

# Verification
FLOOR_DB = 35.0  # band levels floored 35 dB below the overlap's loudest band
# Two common floors per band, the better score counts: the clips' background (the 20th
# percentile level over the overlap), and 6 dB over their median level (noise added to one copy
# fluctuates about its level; sparse sounds, e.g. crackles, stay above it).
FLOORS = ((20.0, 0.0), (50.0, 6.0))  # (percentile, dB above it)
ACTIVE_DB = 35.0  # frames within 35 dB of the overlap's loudest frame have sound
MIN_SOUND_S = 0.15  # seconds with sound in both clips needed to call them the same audio
MIN_OVERLAP = 0.5  # the overlap covers at least half the shorter clip's sound
NEAR_THRESHOLD = 0.85  # verified correlation from which two clips are the same audio

# Background spectrum
FLOOR_PERCENTILE = 10.0


@dataclass(frozen=True)
class Fingerprint:
    """One clip's fingerprint (see the module docstring).

    Attributes:
        digest: sha256 of the float32 samples at :data:`FP_RATE_HZ`.
        hashes: int64 ``(n,)`` landmark hashes.
        times: int32 ``(n,)`` their anchor times in landmark frames (16 ms).
        bands: uint8 ``(T, N_BANDS)`` band levels every 8 ms, 0.5 dB steps below the clip's
            loudest band (0: 127.5 dB below, or digital silence).
        floor: float32 ``(FFT // 2,)`` unit-norm background spectrum (zeros when silent).
        silent: no sample above :data:`SILENCE_LEVEL`.
        seconds: duration.
    """

    digest: str
    hashes: np.ndarray
    times: np.ndarray
    bands: np.ndarray
    floor: np.ndarray
    silent: bool
    seconds: float


def _power(wave: np.ndarray) -> np.ndarray:
    """Power spectrogram ``(T, FFT // 2)`` (DC dropped) of Hann frames every :data:`HOP`."""
    if len(wave) < FFT:
        wave = np.pad(wave, (0, FFT - len(wave)))
    n_frames = 1 + (len(wave) - FFT) // HOP
    idx = np.arange(FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    frames = wave[idx] * np.hanning(FFT).astype(np.float32)
    return (np.abs(np.fft.rfft(frames, axis=1)[:, 1:]) ** 2).astype(np.float32)


def _peaks(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frame, bin) of the spectrogram's landmark peaks, sorted by frame then bin."""
    from scipy.ndimage import maximum_filter

    top = float(power.max())
    if top <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    level = 10 * np.log10(np.maximum(power, top * 10 ** (-PEAK_FLOOR_DB / 10)))
    level[:, :PEAK_LOW_BIN] = level[:, PEAK_HIGH_BIN:] = level.min()
    local = maximum_filter(level, size=(PEAK_T, PEAK_F), mode="constant", cval=-1e9)
    t, f = np.nonzero((level == local) & (level > 10 * np.log10(top) - PEAK_FLOOR_DB + 1e-3))
    value = level[t, f]
    slot = t // round(SLOT_S * FP_RATE_HZ / (HOP * LM_STEP))
    order = np.lexsort((-value, slot))  # loudest first within each slot
    t, f, slot = t[order], f[order], slot[order]
    rank = np.arange(len(t)) - np.searchsorted(slot, slot)
    t, f = t[rank < PEAKS_PER_SLOT], f[rank < PEAKS_PER_SLOT]
    order = np.lexsort((f, t))
    return t[order].astype(np.int64), f[order].astype(np.int64)


def landmarks(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmark hashes and anchor frames of a landmark-rate power spectrogram ``(T, bins)``.

    Each peak is paired with up to :data:`FAN_OUT` later peaks at most :data:`PAIR_DT` frames
    later and fewer than :data:`PAIR_DF` bins away; the hash packs (anchor bin, bin step,
    frame step) into 21 bits.

    Returns:
        int64 hashes ``(n,)`` and int32 anchor frames ``(n,)``.
    """
    t, f = _peaks(power)
    n = len(t)
    taken = np.zeros(n, np.int64)
    hashes, times = [], []
    for d in range(1, min(n, 3 * PEAKS_PER_SLOT)):  # peaks of the next 0.5 s
        i = np.arange(n - d)
        j = i + d
        dt, df = t[j] - t[i], f[j] - f[i]
        ok = (dt >= 1) & (dt <= PAIR_DT) & (np.abs(df) < PAIR_DF) & (taken[i] < FAN_OUT)
        i, j = i[ok], j[ok]
        taken[i] += 1
        hashes.append((f[i] << 14) | ((f[j] - f[i] + PAIR_DF) << 6) | (t[j] - t[i]))
        times.append(t[i])
    if not hashes:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    return np.concatenate(hashes), np.concatenate(times).astype(np.int32)


def _band_levels(power: np.ndarray) -> np.ndarray:
    """uint8 band levels ``(T, N_BANDS)``, 0.5 dB steps below the loudest band."""
    bands = power.reshape(len(power), N_BANDS, -1).sum(2)
    top = float(bands.max())
    if top <= 0:
        return np.zeros(bands.shape, np.uint8)
    db = 10 * np.log10(np.maximum(bands, top * 1e-13) / top)  # (-130, 0]
    levels: np.ndarray = np.clip(np.round(255 + 2 * db), 0, 255).astype(np.uint8)
    return levels


def _background(power: np.ndarray) -> np.ndarray:
    """Unit-norm, mean-removed log spectrum of the quiet frames (10th percentile per bin over
    the frames that are not digital silence)."""
    total = power.sum(1)
    frames = power[total > float(total.max()) * 1e-10] if total.max() > 0 else power[:0]
    if len(frames) < 2:
        return np.zeros(power.shape[1], np.float32)
    level = np.log(np.percentile(frames, FLOOR_PERCENTILE, axis=0) + 1e-12)
    level -= level.mean()
    norm = float(np.linalg.norm(level))
    return (level / norm).astype(np.float32) if norm > 1e-6 else np.zeros_like(level)


def fingerprint(wave: np.ndarray) -> Fingerprint:
    """The fingerprint of a mono signal at :data:`FP_RATE_HZ` (see the module docstring)."""
    samples = np.ascontiguousarray(wave, dtype=np.float32)
    digest = hashlib.sha256(samples.tobytes()).hexdigest()
    seconds = len(samples) / FP_RATE_HZ
    silent = not len(samples) or float(np.abs(samples).max()) < SILENCE_LEVEL
    if silent:
        empty = np.zeros(0, np.int64)
        return Fingerprint(
            digest, empty, empty.astype(np.int32), np.zeros((0, N_BANDS), np.uint8),
            np.zeros(FFT // 2, np.float32), True, seconds,
        )  # fmt: skip
    power = _power(samples)
    hashes, times = landmarks(power[::LM_STEP])
    return Fingerprint(
        digest, hashes, times, _band_levels(power), _background(power), False, seconds
    )


# --- candidates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """Clips ``a < b`` sharing landmark hashes at ``offset`` landmark frames (``b``'s time =
    ``a``'s time + offset); ``votes``: how many, a hash repeated within a clip counting
    once in all."""

    a: int
    b: int
    offset: int
    votes: float


def _hash_table(
    prints: Sequence[Fingerprint],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All hashes sorted by (hash, clip, time) with their clip, time and weight: 1 / (times
    the hash occurs in its clip), so a repeated sound's hashes do not outvote the rest; each
    (hash, clip) kept at most :data:`MAX_PER_CLIP` times."""
    hashes = np.concatenate([p.hashes for p in prints] + [np.zeros(0, np.int64)])
    times = np.concatenate([p.times for p in prints] + [np.zeros(0, np.int32)]).astype(np.int64)
    clips = np.concatenate(
        [np.full(len(p.hashes), i, np.int64) for i, p in enumerate(prints)]
        + [np.zeros(0, np.int64)]
    )
    order = np.lexsort((times, clips, hashes))
    hashes, clips, times = hashes[order], clips[order], times[order]
    new = np.r_[True, (hashes[1:] != hashes[:-1]) | (clips[1:] != clips[:-1])][: len(hashes)]
    start = np.flatnonzero(new)
    size = np.diff(np.r_[start, len(hashes)])
    rank = np.arange(len(hashes)) - np.repeat(start, size)
    kept = np.minimum(np.repeat(size, size), MAX_PER_CLIP)
    keep = rank < MAX_PER_CLIP
    return hashes[keep], clips[keep], times[keep], 1.0 / kept[keep]


def _pair_events(
    hashes: np.ndarray, clips: np.ndarray, times: np.ndarray, part: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of occurrences of one hash in two clips (of two parts): keys packing
    (clip a, clip b, offset) and the occurrence indices' product weights."""
    keys, pairs = [], []
    # Pair each occurrence with the d-th next one of the same hash, for growing d, on the
    # shrinking set of occurrences that still have a d-th follower: work ~ pairs found.
    idx = np.arange(len(hashes))
    for d in range(1, len(hashes)):
        idx = idx[idx + d < len(hashes)]
        idx = idx[hashes[idx + d] == hashes[idx]]
        if not len(idx):
            break
        a, b = clips[idx], clips[idx + d]
        ok = (a != b) if part is None else (a != b) & (part[a] != part[b])
        i, j = idx[ok], idx[ok] + d
        offset = times[j] - times[i]  # clips sorted within a hash: clips[i] < clips[j]
        keys.append(((clips[i] * n + clips[j]) << 24) + (offset + (1 << 23)))
        pairs.append(np.stack([i, j]))
    if not keys:
        return np.zeros(0, np.int64), np.zeros((2, 0), np.int64)
    return np.concatenate(keys), np.concatenate(pairs, axis=1)


def candidate_pairs(
    prints: Sequence[Fingerprint],
    groups: Sequence[int] | None = None,
    min_votes: float = MIN_VOTES,
) -> list[Candidate]:
    """Pairs of clips sharing at least ``min_votes`` landmark hashes at one time offset.

    Hashes found in more than ``max(32, n / 50)`` clips say little (a hum, a click) and are
    left out; a hash found ``m`` times in one clip and ``n`` in the other gives each of its
    ``m x n`` offsets ``1 / (m n)`` of a vote. Votes at offsets ``k - 1, k, k + 1`` count
    for ``k`` (a shift of a fraction of a frame moves some peaks by one frame); each pair
    keeps its best offset.

    Args:
        prints: the fingerprints.
        groups: only pairs whose groups differ (e.g. folds) are returned; None: all pairs.
        min_votes: votes needed.

    Returns:
        The candidates, by (a, b).
    """
    n = len(prints)
    hashes, clips, times, weight = _hash_table(prints)
    if not len(hashes):
        return []
    hash_id = np.cumsum(np.r_[True, hashes[1:] != hashes[:-1]]) - 1
    first_of_clip = np.r_[True, (hashes[1:] != hashes[:-1]) | (clips[1:] != clips[:-1])]
    n_clips = np.bincount(hash_id, weights=first_of_clip)[hash_id]
    useful = (n_clips >= 2) & (n_clips <= max(32, n // 50))
    hashes, clips, times, weight = hashes[useful], clips[useful], times[useful], weight[useful]
    part = None if groups is None else np.asarray(groups, np.int64)
    keys, pairs = _pair_events(hashes, clips, times, part, n)
    if not len(keys):
        return []
    unique, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse, weights=weight[pairs[0]] * weight[pairs[1]])

    def neighbour(delta: int) -> np.ndarray:
        pos = np.minimum(np.searchsorted(unique, unique + delta), len(unique) - 1)
        return np.where(unique[pos] == unique + delta, count[pos], 0.0)

    votes = count + neighbour(1) + neighbour(-1)
    pair, offset = unique >> 24, (unique & ((1 << 24) - 1)) - (1 << 23)
    order = np.lexsort((-votes, pair))
    pair, offset, votes = pair[order], offset[order], votes[order]
    best = np.r_[True, pair[1:] != pair[:-1]] & (votes >= min_votes - 1e-9)
    return [
        Candidate(int(p // n), int(p % n), int(k), float(v))
        for p, k, v in zip(pair[best], offset[best], votes[best], strict=True)
    ]


# --- verification -----------------------------------------------------------------------------


def _extent(bands: np.ndarray) -> tuple[int, int]:
    """First and one-past-last frame that is not digital silence."""
    sound = np.flatnonzero(bands.max(1) > 0)
    return (int(sound[0]), int(sound[-1]) + 1) if len(sound) else (0, 0)


def _overlap_levels(
    la: np.ndarray, lb: np.ndarray, percentile: float, margin_db: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both clips' dB levels over an overlap ``(T, N_BANDS)``, each relative to its loudest
    band there and floored at a common per-band level: ``margin_db`` over the louder of the
    two clips' ``percentile`` level of the band, at least :data:`FLOOR_DB` below the top, so
    noise added to one copy and the other's quiet frames floor alike.

    Returns:
        The two floored levels and the frames with sound of each (within :data:`ACTIVE_DB`
        of its loudest frame).
    """
    xa = la.astype(np.float32) / 2
    xb = lb.astype(np.float32) / 2
    xa -= xa.max()
    xb -= xb.max()
    floor = np.maximum(np.percentile(xa, percentile, axis=0), np.percentile(xb, percentile, axis=0))
    floor = np.maximum(floor + margin_db, -FLOOR_DB)
    xa, xb = np.maximum(xa, floor), np.maximum(xb, floor)
    active = []
    for x in (xa, xb):
        energy = 10 * np.log10(np.sum(10 ** (x / 10), axis=1))
        active.append(energy > float(energy.max()) - ACTIVE_DB)
    return xa, xb, active[0], active[1]


def _centred(levels: np.ndarray) -> np.ndarray:
    """Levels ``(T, N_BANDS)`` less each frame's mean (the loudness envelope, which any two
    similar transients share) and then each band's mean (gain and equalisation)."""
    x = levels - levels.mean(1, keepdims=True)
    out: np.ndarray = x - x.mean(0)
    return out


def verify(a: Fingerprint, b: Fingerprint, offset: int, search: int = 3) -> float:
    """How much the two clips are the same audio around a candidate offset, in [-1, 1].

    The best, over band-frame offsets within ``search`` of ``offset`` (landmark frames), of the
    correlation of the two clips' floored band levels over their overlap, each band's mean
    removed, on the frames where either has sound. An offset counts only when the overlap
    covers :data:`MIN_OVERLAP` of the shorter clip's sound and both have sound in at least
    :data:`MIN_SOUND_S` seconds of it; -1 when none does.
    """
    if a.silent or b.silent:
        return -1.0
    (a0, a1), (b0, b1) = _extent(a.bands), _extent(b.bands)
    shorter = min(a1 - a0, b1 - b0)
    min_sound = MIN_SOUND_S * FP_RATE_HZ / HOP
    best = -1.0
    centre = offset * LM_STEP
    for k in range(centre - search, centre + search + 1):
        lo, hi = max(a0, b0 - k), min(a1, b1 - k)
        # A frame spans FFT / HOP hops: an overlap of exactly half loses up to that many.
        if hi - lo + FFT // HOP < MIN_OVERLAP * shorter or hi - lo < min_sound:
            continue
        for percentile, margin_db in FLOORS:
            xa, xb, act_a, act_b = _overlap_levels(
                a.bands[lo:hi], b.bands[lo + k : hi + k], percentile, margin_db
            )
            if int((act_a & act_b).sum()) < min_sound:
                continue
            use = act_a | act_b
            xa, xb = _centred(xa[use]), _centred(xb[use])
            den = float(np.sqrt((xa**2).sum() * (xb**2).sum()))
            if den > 0:
                best = max(best, float((xa * xb).sum()) / den)
    return best
