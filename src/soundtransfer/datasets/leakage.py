"""The leakage report, made before any training: shared recordings and duplicate audio across
folds, and the class balance of each fold.

- **Groups**: a group (source recording, speaker, session) in two folds is an error: one fold's
  model would be tested on a recording it was trained on. For the official ESC-50 and
  UrbanSound8K folds, which keep each (recording, class) pair in one fold but not each
  recording (:func:`soundtransfer.datasets.metadata.check_no_leakage`), ``by_label=True``
  checks the pair instead.
- **Duplicate audio**: every clip is decoded at :data:`FP_RATE_HZ`; its fingerprint is the
  sha256 of those samples (exact duplicates: the same audio in another file or format) and a
  coarse time-frequency signature (:func:`signature`) compared by cosine similarity (near
  duplicates: the same audio re-encoded, at another gain, with a little noise). Pairs in two
  different folds are listed; a duplicate within one fold does no harm and is not.
- **Balance**: clips per class and fold, as a text table.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from soundtransfer.audio.io import load_clip
from soundtransfer.datasets import fingerprint as shift
from soundtransfer.datasets.clips import ClipTable
from soundtransfer.errors import DatasetError

FP_RATE_HZ = 8000  # fingerprints ignore what lies above 4 kHz
FP_FFT = 512  # 64 ms frames
FP_HOP = 256  # 32 ms hop
FP_BANDS = 32  # equal-width bands of 125 Hz
FP_FRAMES = 160  # the first 5.1 s; shorter clips have fewer frames (zeros contribute nothing)
NEAR_THRESHOLD = 0.9
# In the cache key of saved reports: 2 = silence and clicks (issue 23), 3 = shifted copies.
FINGERPRINT_VERSION = 3
SILENCE_RATIO = 1e-3  # frames 30 dB below the loudest count as silence (or noise floor)
SILENCE_LEVEL = 2.0**-15  # no sample above one step of 16-bit audio: digital silence
# Near duplicates need 5 frames (about 0.2 s) with sound: two distinct 60 ms clicks over a quiet
# floor have one shape (an onset and a decay) and scored 0.97-0.99 (issue 23, defect 9).
MIN_ACTIVE_FRAMES = 5
PART_NAMES = {1: "train", 2: "valid", 3: "test"}  # the folds of a fixed split


def part_name(k: int, fixed: bool, sep: str = " ") -> str:
    """``fold 3`` (``sep`` between), or for a fixed split ``train`` / ``valid`` / ``test``."""
    return PART_NAMES.get(k, f"part{sep}{k}") if fixed else f"fold{sep}{k}"


@dataclass(frozen=True)
class GroupLeak:
    """A group found in more than one fold, with one file per fold."""

    group: str
    folds: tuple[int, ...]
    files: tuple[str, ...]


@dataclass(frozen=True)
class DuplicatePair:
    """Two clips in different folds with the same (exact) or nearly the same audio."""

    file_a: str
    fold_a: int
    file_b: str
    fold_b: int
    similarity: float
    exact: bool
    measure: str = "cosine"  # of the signatures; "correlation": a shifted or cropped copy
    offset_s: float = 0.0  # file_b's audio starts this much later in file_a (correlation)

    def describe(self) -> str:
        """``exact``, ``near 0.962 (cosine)`` or ``near 0.912 (correlation, shifted 0.25 s)``."""
        if self.exact:
            return "exact"
        shifted = f", shifted {self.offset_s:+.2f} s" if self.measure == "correlation" else ""
        return f"near {self.similarity:.3f} ({self.measure}{shifted})"


@dataclass(frozen=True)
class Fingerprint:
    """One clip's fingerprint: sha256 of its samples at 8 kHz and a unit-norm signature
    (all zeros for constant audio or under :data:`MIN_ACTIVE_FRAMES` of sound, which only the
    hash can match). ``silent``: digital silence, which matches nothing (two silences are
    not copies of each other: the report counts them instead)."""

    digest: str
    signature: np.ndarray  # (FP_BANDS * FP_FRAMES,) float32
    silent: bool = False
    landmarks: shift.Fingerprint | None = None  # shifted or cropped copies (None: not computed)


@dataclass(frozen=True)
class LeakageReport:
    """What :func:`leakage_report` found.

    Attributes:
        dataset: table name.
        group_leaks: groups in two or more folds (errors).
        duplicates: cross-fold exact and near duplicates (listed for the user to judge).
        balance: the class-per-fold table (text).
        fingerprinted: clips whose audio was fingerprinted (0 when skipped).
        threshold: cosine similarity from which two signatures are near duplicates.
        fixed: the folds are a fixed split (named train / valid / test).
        silent: files that are digital silence (matched with nothing).
        alone: clips that are their own group (no group given, none in the name).
    """

    dataset: str
    group_leaks: tuple[GroupLeak, ...]
    duplicates: tuple[DuplicatePair, ...]
    balance: str
    fingerprinted: int
    threshold: float
    fixed: bool = False
    silent: tuple[str, ...] = ()
    alone: int = 0

    def part(self, k: int) -> str:
        """A fold's name (``fold3``, or ``test`` in a fixed split)."""
        return part_name(k, self.fixed)

    @property
    def ok(self) -> bool:
        """No group in two folds (duplicates are listed, not fatal)."""
        return not self.group_leaks

    def lines(self) -> list[str]:
        """The report as text lines."""
        out = [f"leakage report for {self.dataset}:"]
        where = "split" if self.fixed else "fold"
        if self.group_leaks:
            out.append(f"  ERROR: {len(self.group_leaks)} group(s) in more than one {where}:")
            for g in self.group_leaks:
                at = ", ".join(
                    f"{self.part(k)}: {f}" for k, f in zip(g.folds, g.files, strict=True)
                )
                out.append(f"    {g.group}: {at}")
        else:
            out.append(f"  groups: no group in two {where}s")
        if self.alone:
            out.append(
                f"  WARNING: {self.alone} clip(s) are their own group: clips cut from one "
                "recording would sit in two folds unseen and inflate the accuracy (see the note "
                "above on how to give groups)"
            )
        if self.fingerprinted:
            exact = sum(d.exact for d in self.duplicates)
            out.append(
                f"  audio: {self.fingerprinted} clips fingerprinted; {exact} exact and "
                f"{len(self.duplicates) - exact} near duplicate pair(s) across {where}s "
                f"(signature cosine >= {self.threshold}, or a shifted or cropped copy at "
                f"correlation >= {shift.NEAR_THRESHOLD})"
            )
            for d in self.duplicates:
                out.append(
                    f"    {d.describe()}: {d.file_a} ({self.part(d.fold_a)}) ~ {d.file_b} "
                    f"({self.part(d.fold_b)})"
                )
            if self.silent:
                shown = ", ".join(self.silent[:5]) + (", ..." if len(self.silent) > 5 else "")
                out.append(f"  {len(self.silent)} clip(s) are digital silence: {shown}")
        else:
            out.append("  audio: not fingerprinted")
        out.append(f"  class balance (clips per {where}):")
        out += ["    " + row for row in self.balance.splitlines()]
        return out

    def raise_for_leaks(self) -> None:
        """Raise when a group sits in two folds.

        Raises:
            DatasetError: naming the first leaking group, its folds and files.
        """
        if not self.group_leaks:
            return
        g = self.group_leaks[0]
        more = (
            f" (and {len(self.group_leaks) - 1} more group(s))" if len(self.group_leaks) > 1 else ""
        )
        raise DatasetError(
            f"{self.dataset}: recording/group {g.group!r} is in "
            f"{', '.join(self.part(k) for k in g.folds)} ({', '.join(g.files)}){more}: train "
            "and test would share it; move its clips into one fold (or give each its own group "
            "if they are really distinct recordings)"
        )

    def raise_for_duplicates(self) -> None:
        """Raise when the same (or nearly the same) audio sits in two folds.

        Raises:
            DatasetError: naming the first pair (and the count of the others).
        """
        if not self.duplicates:
            return
        d = self.duplicates[0]
        near = f"near-duplicate audio ({d.measure} {d.similarity:.3f})"
        kind = "the same audio" if d.exact else near
        more = f" (and {len(self.duplicates) - 1} more pair(s))" if len(self.duplicates) > 1 else ""
        raise DatasetError(
            f"{self.dataset}: {kind} in {self.part(d.fold_a)} and {self.part(d.fold_b)}: "
            f"{d.file_a} ~ "
            f"{d.file_b}{more}: it would inflate the accuracy; remove one copy or pass "
            "--allow-duplicates"
        )


def group_leaks(table: ClipTable, by_label: bool = False) -> list[GroupLeak]:
    """Groups (or, with ``by_label``, (group, label) pairs) found in more than one fold.

    Clips without a group are not checked. Returns one file per fold for each leak, groups in
    sorted order.
    """
    first_file: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
    for c in table.clips:
        if not c.group:
            continue
        key = (c.group, c.label if by_label else -1)
        first_file[key].setdefault(c.fold, c.file)
    out = []
    for (group, label), per_fold in sorted(first_file.items()):
        if len(per_fold) > 1:
            folds = tuple(sorted(per_fold))
            name = group if label < 0 else f"{group} (class {table.classes[label]})"
            out.append(GroupLeak(name, folds, tuple(per_fold[k] for k in folds)))
    return out


def signature(wave: np.ndarray) -> np.ndarray:
    """Coarse time-frequency signature of a mono signal at :data:`FP_RATE_HZ`.

    Log energies of :data:`FP_BANDS` equal-width bands in 64 ms Hann frames (32 ms hop), the
    first :data:`FP_FRAMES` frames, floored 30 dB below the loudest band. Frames 30 dB below
    the loudest frame (silence, padding, a noise floor) are set to zero, so clips do not match
    by their silences; over the others each band's mean is removed (so gain and the overall
    spectral colour do not count, only how the sound evolves), then the whole is scaled to
    unit norm. Different recordings score at most
    0.73 against each other on ESC-10 (400 clips, measured); a copy re-encoded, at another
    gain or with faint noise stays above 0.95.

    Returns:
        float32 ``(FP_BANDS * FP_FRAMES,)``, zeros for silent or constant signals.
    """
    out = np.zeros((FP_BANDS, FP_FRAMES), dtype=np.float32)
    n = len(wave)
    if n < FP_FFT:
        wave = np.pad(wave, (0, FP_FFT - n))
    n_frames = min(1 + (len(wave) - FP_FFT) // FP_HOP, FP_FRAMES)
    idx = np.arange(FP_FFT)[None, :] + FP_HOP * np.arange(n_frames)[:, None]
    frames = wave[idx] * np.hanning(FP_FFT).astype(np.float32)  # (T, FP_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)[:, 1:]) ** 2  # (T, FP_FFT / 2)
    bands = power.reshape(n_frames, FP_BANDS, -1).sum(2).T  # (FP_BANDS, T)
    total = bands.sum(0)  # (T,)
    active = total > float(total.max()) * SILENCE_RATIO
    if int(active.sum()) < MIN_ACTIVE_FRAMES:
        return np.zeros(out.size, dtype=np.float32)
    log_e = np.log(np.maximum(bands, float(bands.max()) * SILENCE_RATIO))
    log_e -= log_e[:, active].mean(axis=1, keepdims=True)
    log_e[:, ~active] = 0.0
    out[:, :n_frames] = log_e
    norm = float(np.linalg.norm(out))
    if norm < 1e-6:
        return np.zeros(out.size, dtype=np.float32)
    return (out / norm).reshape(-1)


def fingerprint(wave: np.ndarray) -> Fingerprint:
    """The fingerprint of a mono float32 signal at :data:`FP_RATE_HZ`."""
    samples = np.ascontiguousarray(wave, dtype=np.float32)
    digest = hashlib.sha256(samples.tobytes()).hexdigest()
    if not len(samples) or float(np.abs(samples).max()) < SILENCE_LEVEL:
        return Fingerprint(digest, np.zeros(FP_BANDS * FP_FRAMES, np.float32), True)
    return Fingerprint(digest, signature(samples), False, shift.fingerprint(samples))


def fingerprint_table(table: ClipTable, workers: int = 2) -> list[Fingerprint]:
    """Fingerprints of every clip of the table, in row order (decoded at 8 kHz).

    Raises:
        AudioError: a clip cannot be decoded (the message names it).
    """

    def one(i: int) -> Fingerprint:
        return fingerprint(load_clip(table.path(i), FP_RATE_HZ))

    if workers <= 1:
        return [one(i) for i in range(len(table))]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(len(table))))


def find_duplicates(
    table: ClipTable,
    prints: Sequence[Fingerprint],
    threshold: float = NEAR_THRESHOLD,
    block: int = 1024,
) -> list[DuplicatePair]:
    """Pairs of clips in different folds with equal digests, signatures at cosine >=
    ``threshold``, or shifted / cropped copies at correlation >= ``shift.NEAR_THRESHOLD``
    (:func:`_shifted_pairs`); exact pairs first, then by decreasing similarity."""
    if len(prints) != len(table):
        raise DatasetError(f"{len(prints)} fingerprints for {len(table)} clips")
    folds = np.asarray([c.fold for c in table.clips])
    pairs: dict[tuple[int, int], DuplicatePair] = {}

    def add(i: int, j: int, sim: float, exact: bool, offset_s: float | None = None) -> None:
        """Clips i and j (j's audio ``offset_s`` later than i's for a shifted pair)."""
        a, b = min(i, j), max(i, j)
        if (a, b) in pairs or folds[a] == folds[b]:
            return
        ca, cb = table.clips[a], table.clips[b]
        if offset_s is None:
            pairs[(a, b)] = DuplicatePair(ca.file, ca.fold, cb.file, cb.fold, sim, exact)
        else:
            late = offset_s if a == i else -offset_s
            pairs[(a, b)] = DuplicatePair(
                ca.file, ca.fold, cb.file, cb.fold, sim, False, "correlation", round(late, 3)
            )

    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prints):
        if not p.silent:
            by_digest[p.digest].append(i)
    for members in by_digest.values():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                add(i, j, 1.0, True)
    sig = np.stack([p.signature for p in prints])  # (N, D)
    for s in range(0, len(sig), block):
        sims = sig[s : s + block] @ sig.T  # (b, N)
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = s + r
            if i < c:
                add(i, c, float(sims[r, c]), False)
    _shifted_pairs(prints, folds, set(pairs), add)
    return sorted(pairs.values(), key=lambda d: (not d.exact, -d.similarity, d.file_a, d.file_b))


def _shifted_pairs(
    prints: Sequence[Fingerprint],
    folds: np.ndarray,
    known: set[tuple[int, int]],
    add: Callable[[int, int, float, bool, float], None],
) -> None:
    """Copies shifted in time or cropped (overlapping at least half the shorter clip), found
    by landmark hashes across folds and verified (:mod:`soundtransfer.datasets.fingerprint`);
    ``add(i, j, score, False, seconds j's audio is later)`` for each pair verified at
    ``shift.NEAR_THRESHOLD``. Pairs in ``known`` (found already) are not verified again."""
    have = [i for i, p in enumerate(prints) if p.landmarks is not None]
    lms = [prints[i].landmarks for i in have]
    marks = [m for m in lms if m is not None]
    if len(marks) < 2:
        return
    frame_s = shift.HOP * shift.LM_STEP / shift.FP_RATE_HZ  # a landmark frame: 16 ms
    for c in shift.candidate_pairs(marks, [int(folds[i]) for i in have]):
        i, j = have[c.a], have[c.b]
        if (min(i, j), max(i, j)) in known:
            continue
        score = shift.verify(marks[c.a], marks[c.b], c.offset)
        if score >= shift.NEAR_THRESHOLD:
            add(i, j, score, False, c.offset * frame_s)


def class_balance(table: ClipTable) -> str:
    """Clips per class (rows) and fold (columns), with totals, as an aligned text table.

    Multi-label tables count a clip under each class it holds, and their negatives (no class)
    on a ``(none)`` row; ``total`` is then the clips per fold."""
    folds = table.folds
    counts = np.zeros((len(table.classes) + 1, len(folds)), dtype=np.int64)  # + negatives
    col = {k: j for j, k in enumerate(folds)}
    per_fold = np.zeros(len(folds), dtype=np.int64)
    for c, present in zip(table.clips, table.label_sets(), strict=True):
        for k in present or (len(table.classes),):
            counts[k, col[c.fold]] += 1
        per_fold[col[c.fold]] += 1
    head = ["class", *(part_name(k, table.protocol == "fixed", "") for k in folds), "total"]
    rows = [head]
    names = [*table.classes, "(none)"]
    for name, row in zip(names, counts, strict=True):
        if name != "(none)" or row.any():
            rows.append([name, *(str(int(v)) for v in row), str(int(row.sum()))])
    rows.append(["total", *(str(int(v)) for v in per_fold), str(int(per_fold.sum()))])
    widths = [max(len(r[j]) for r in rows) for j in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if j == 0 else cell.rjust(w)
            for j, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


def leakage_report(
    table: ClipTable,
    *,
    audio: bool = True,
    threshold: float = NEAR_THRESHOLD,
    by_label: bool = False,
    workers: int = 2,
    prints: Sequence[Fingerprint] | None = None,
) -> LeakageReport:
    """Check a table's folds before training (see the module docstring).

    Args:
        table: the clips with their folds and groups.
        audio: fingerprint the audio for duplicates (decodes every clip at 8 kHz).
        threshold: cosine similarity of signatures from which clips are near duplicates.
        by_label: check (group, label) pairs rather than groups (the official ESC-50 and
            UrbanSound8K folds).
        workers: decoding threads.
        prints: fingerprints already computed (row order), instead of decoding.

    Returns:
        The report; call :meth:`LeakageReport.raise_for_leaks` to stop on a shared group.

    Raises:
        AudioError: a clip cannot be decoded.
    """
    leaks = tuple(group_leaks(table, by_label))
    dups: tuple[DuplicatePair, ...] = ()
    n = 0
    fps: list[Fingerprint] = []
    if audio:
        fps = list(prints) if prints is not None else fingerprint_table(table, workers)
        dups = tuple(find_duplicates(table, fps, threshold))
        n = len(fps)
    silent = tuple(table.clips[i].file for i, p in enumerate(fps) if p.silent) if audio else ()
    alone = sum(1 for c in table.clips if c.group.startswith("file:"))
    fixed = table.protocol == "fixed"
    return LeakageReport(
        table.name, leaks, dups, class_balance(table), n, threshold, fixed, silent, alone
    )
