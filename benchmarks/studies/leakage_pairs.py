"""The leakage report's false pairs on every real clip, and a same-recording signal's ROC.

``pairs`` (default): all 1,200 real clips of ../shared/data (ESC-10, ESC-50 fold 4,
UrbanSound8K folds 1 and 10) in one table, each clip its own group and fold, fingerprinted and
compared as the leakage report does (:func:`soundtransfer.datasets.leakage.find_duplicates`).
Every pair found is printed. An ESC-10 clip reappears in ESC-50 under the same name
(``4-100038-A.ogg`` is ``4-100038-A-<target>.flac``): those are true copies, counted apart.
Prints the wall time of fingerprinting and of the comparison (the machine's load included).

``same-source``: the 200 ESC-50 fold-4 clips, named ``{fold}-{src}-{take}-{target}``: how
well the fingerprints' background-spectrum cosine
(:attr:`soundtransfer.datasets.fingerprint.Fingerprint.floor`) separates two takes of one
source recording (same ``src``) from two clips of different recordings, as a ROC AUC
(scikit-learn) over all pairs and over the pairs of one class (takes of one recording are
always of one class, so the class alone would separate part of them); ESC-10 (400 clips,
named ``{fold}-{src}-{take}``) is run the same way as a second set. Results:
docs/results/leakage-same-source.md.

Usage: ``PYTHONPATH=src nice -n 10 python benchmarks/studies/leakage_pairs.py [pairs|same-source]``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
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


def source_pairs(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of ESC clips, and whether its two clips are takes of one source recording.

    Args:
        names: ``N`` ESC file names ``{fold}-{src}-{take}[-{target}].{ext}`` (folders allowed).

    Returns:
        ``(i, j, same)``: int ``(P,)`` row indices with ``i < j``, ``P = N (N - 1) / 2``, and
        bool ``(P,)``: the two names share ``src`` (other takes of one recording).

    Raises:
        ValueError: a name is not in the ESC pattern (the message names it).
    """
    src = []
    for name in names:
        parts = Path(name).stem.split("-")
        if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"{name}: not an ESC name <fold>-<src>-<take>[-<target>]")
        src.append(parts[1])
    i, j = np.triu_indices(len(src), 1)
    codes = np.array(src)
    return i, j, codes[i] == codes[j]


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """ROC AUC of ``scores`` (float ``(P,)``) for same-source pairs (bool ``(P,)``): the
    probability that a same-source pair scores above a different-source one (ties half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(same, scores))


def floor_similarity(prints: Sequence[Fingerprint], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine of the two clips' background spectra
    (:attr:`soundtransfer.datasets.fingerprint.Fingerprint.floor`, unit norm; zeros for a
    silent clip, which scores 0 with every clip), float ``(P,)`` for the pairs ``(i, j)``."""
    zero = np.zeros(256, np.float32)
    floor = np.stack([p.landmarks.floor if p.landmarks else zero for p in prints])
    return np.einsum("pk,pk->p", floor[i], floor[j])


def same_source() -> None:
    """ESC-50 fold 4 (and ESC-10 as a second set): does the background-spectrum cosine
    separate takes of one recording from clips of different recordings (all pairs, and the
    pairs of one class)?"""
    for name, folder in (("esc50", "esc50-fold4"), ("esc10", "esc10")):
        table = load_dataset(name, DATA / folder)
        t0 = time.perf_counter()
        prints = fingerprint_table(table, workers=2)
        t1 = time.perf_counter()
        i, j, same = source_pairs([c.file for c in table.clips])
        score = floor_similarity(prints, i, j)
        label = np.array([c.label for c in table.clips])
        one_class = label[i] == label[j]  # takes of one recording are always of one class
        print(f"{folder}: {len(table)} clips; fingerprinting {t1 - t0:.1f} s (2 threads, shared)")
        for what, keep in (("all pairs", np.ones_like(same)), ("pairs of one class", one_class)):
            print(f"  {what}: " + roc_line(score[keep], same[keep]))


def roc_line(score: np.ndarray, same: np.ndarray) -> str:
    """Pairs, AUC, recall above the other pairs' 99th percentile, precision at cosine 0.99."""
    q = float(np.quantile(score[~same], 0.99))
    top = score >= 0.99
    return (
        f"{int(same.sum())} same-source, {int((~same).sum())} different-source; AUC "
        f"{roc_auc(score, same):.3f}; same-source above the others' 99th percentile "
        f"({q:.3f}): {float((score[same] > q).mean()):.1%}; cosine >= 0.99: {int(top.sum())} "
        f"pairs, {int(same[top].sum())} same-source"
    )


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "pairs"
    {"pairs": pairs, "same-source": same_source}[what]()
