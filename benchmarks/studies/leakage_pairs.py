"""The leakage report's false pairs on every real clip, and a same-recording signal's ROC.

``pairs`` (default): all 1,200 real clips of ../shared/data (ESC-10, ESC-50 fold 4,
UrbanSound8K folds 1 and 10) in one table, each clip its own group and fold, fingerprinted and
compared as the leakage report does (:func:`soundtransfer.datasets.leakage.find_duplicates`).
Every pair found is printed. An ESC-10 clip reappears in ESC-50 under the same name
(``4-100038-A.ogg`` is ``4-100038-A-<target>.flac``): those are true copies, counted apart.
Prints the wall time of fingerprinting and of the comparison (the machine's load included).

``same-source``: the ESC-50 clips (fold 4) and ESC-10 clips, named
``{fold}-{src}-{take}[-{target}]``: how well a similarity separates two takes of one
recording (same ``src``, ``take`` A/B/C) from two clips of different recordings, as a ROC
AUC over all pairs within each dataset (a pair of different recordings of the same class
included). Signals: the cosine of the fingerprints' background spectra
(:attr:`soundtransfer.datasets.fingerprint.Fingerprint.floor`), and the cosine of the clips'
mean log-mel spectra with each clip's mean removed.

Usage: ``PYTHONPATH=src python benchmarks/studies/leakage_pairs.py [pairs|same-source]``
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from soundtransfer.datasets import Clip, ClipTable, load_dataset
from soundtransfer.datasets.leakage import (
    DuplicatePair,
    Fingerprint,
    find_duplicates,
    fingerprint_table,
)

DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()
SETS = (("esc10", "esc10"), ("esc50", "esc50-fold4"), ("us8k", "us8k"))


def all_clips() -> ClipTable:
    """Every real clip under one root, each its own fold and group; label = source dataset."""
    clips = []
    for label, (name, folder) in enumerate(SETS):
        table = load_dataset(name, DATA / folder)
        for c in table.clips:
            k = len(clips) + 1
            clips.append(Clip(f"{folder}/{c.file}", label, k, f"clip{k}"))
    return ClipTable("shared", DATA, tuple(n for n, _ in SETS), tuple(clips))


def stem_id(file: str) -> str:
    """``4-100038-A`` for ``esc10/audio/4-100038-A.ogg`` and ``.../4-100038-A-0.flac``."""
    parts = Path(file).stem.split("-")
    return "-".join(parts[:3])


def source_id(file: str) -> str:
    """The Freesound id of a clip: ESC's ``src`` (``4-100038-A``: 100038), UrbanSound8K's
    ``fsID`` (``100032-3-0-0``: 100032)."""
    parts = Path(file).stem.split("-")
    return parts[0] if file.startswith("us8k/") else parts[1]


def kind(d: DuplicatePair) -> str:
    """Which of three kinds a pair is: an ESC-10 clip and its ESC-50 copy (same name), two
    clips of one Freesound recording (UrbanSound8K's slices of one recording; one recording
    in two datasets), or two different recordings (a false pair unless listened to)."""
    names = {d.file_a.split("/")[0], d.file_b.split("/")[0]}
    if names == {"esc10", "esc50-fold4"} and stem_id(d.file_a) == stem_id(d.file_b):
        return "esc10-in-esc50"
    if source_id(d.file_a) == source_id(d.file_b):
        return "same-recording"
    return "different-recordings"


def show(d: DuplicatePair) -> str:
    return f"    {'exact' if d.exact else f'near {d.similarity:.3f}'}: {d.file_a} ~ {d.file_b}"


def pairs() -> None:
    table = all_clips()
    t0 = time.perf_counter()
    prints = fingerprint_table(table, workers=2)
    t1 = time.perf_counter()
    found = find_duplicates(table, prints)
    t2 = time.perf_counter()
    by_kind: dict[str, list[DuplicatePair]] = {}
    for d in found:
        by_kind.setdefault(kind(d), []).append(d)
    esc10 = {stem_id(c.file) for c in table.clips if c.file.startswith("esc10/")}
    expected = sum(
        stem_id(c.file) in esc10 for c in table.clips if c.file.startswith("esc50-fold4/")
    )
    print(f"clips: {len(table)}; silent: {sum(p.silent for p in prints)}; pairs: {len(found)}")
    print(f"fingerprinting: {t1 - t0:.1f} s; comparing: {t2 - t1:.1f} s (2 threads, shared)")
    print(f"ESC-10 clips also in ESC-50 fold 4 under their name: {expected}")
    mine = by_kind.get("esc10-in-esc50", [])
    print(f"  found as pairs: {len(mine)} (exact {sum(d.exact for d in mine)})")
    same = by_kind.get("same-recording", [])
    cross = [d for d in same if d.file_a.split("/")[0] != d.file_b.split("/")[0]]
    print(f"pairs of one Freesound recording: {len(same)}, {len(cross)} across datasets:")
    for d in cross:
        print(show(d))
    inside = [d for d in same if d not in cross]
    spans = us8k_spans()
    slices = [d for d in inside if d.file_a.startswith("us8k/") and overlapping(d, spans)]
    print(f"  within UrbanSound8K: {len(inside)}, {len(slices)} slices overlapping by half")
    for d in inside:
        if d not in slices:
            print(show(d))
    other = by_kind.get("different-recordings", [])
    print(f"pairs of different Freesound recordings: {len(other)}")
    for d in other:
        print(show(d))


def us8k_spans() -> dict[str, tuple[str, float, float]]:
    """UrbanSound8K file stem -> (fsID, start, end) in seconds of its recording (metadata)."""
    import csv

    with (DATA / "us8k" / "metadata" / "UrbanSound8K.csv").open(newline="") as fh:
        return {
            Path(r["slice_file_name"]).stem: (r["fsID"], float(r["start"]), float(r["end"]))
            for r in csv.DictReader(fh)
        }


def overlapping(d: DuplicatePair, spans: dict[str, tuple[str, float, float]]) -> bool:
    """Two UrbanSound8K slices cut from one recording with overlapping times (the slices of
    one long event start every 0.5 s and last 4 s), overlap at least half the shorter."""
    (ra, a0, a1), (rb, b0, b1) = (spans[Path(f).stem] for f in (d.file_a, d.file_b))
    return ra == rb and min(a1, b1) - max(a0, b0) >= 0.5 * min(a1 - a0, b1 - b0)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores[np.r_[scores[order][1:] == scores[order][:-1], False]]):
        tie = scores == value
        ranks[tie] = ranks[tie].mean()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_logmel(table: ClipTable) -> np.ndarray:
    """Each clip's mean log-mel spectrum (64 bands, 8 kHz), its mean removed, unit norm."""
    import librosa

    from soundtransfer.audio.io import load_clip

    out = []
    for i in range(len(table)):
        x = load_clip(table.path(i), 8000)
        mel = librosa.feature.melspectrogram(y=x, sr=8000, n_fft=512, hop_length=128, n_mels=64)
        v = np.log(mel + 1e-10).mean(1)
        v -= v.mean()
        out.append(v / max(float(np.linalg.norm(v)), 1e-9))
    return np.stack(out)


def same_source() -> None:
    for name, folder in SETS[:2]:
        table = load_dataset(name, DATA / folder)
        table = replace(table, clips=tuple(replace(c, fold=1) for c in table.clips))
        prints: list[Fingerprint] = fingerprint_table(table, workers=2)
        floor = np.stack(
            [p.landmarks.floor if p.landmarks else np.zeros(256, np.float32) for p in prints]
        )
        mel = mean_logmel(table)
        src = np.array([c.file.split("-")[1] for c in table.clips])
        label = np.array([c.label for c in table.clips])
        iu = np.triu_indices(len(table), 1)
        same = (src[:, None] == src[None, :])[iu]
        same_class = (label[:, None] == label[None, :])[iu]
        print(f"{name}: {len(table)} clips, {int(same.sum())} same-recording pairs")
        for signal, x in (("background spectrum", floor), ("mean log-mel", mel)):
            s = (x @ x.T)[iu]
            auc_all = roc_auc(s, same)
            within = same_class  # same recording is always same class here
            auc_class = roc_auc(s[within], same[within])
            q = np.quantile(s[~same], 0.99)
            recall = float((s[same] > q).mean())
            print(
                f"  {signal}: AUC {auc_all:.3f} (all pairs), {auc_class:.3f} (same class); "
                f"takes above the 99th percentile of other pairs: {recall:.1%}"
            )


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "pairs"
    {"pairs": pairs, "same-source": same_source}[what]()
