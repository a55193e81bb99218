"""The leakage report on real clips: a planted cross-fold recording, planted duplicates."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.datasets import Clip, ClipTable, leakage_report, load_dataset, open_dataset
from soundtransfer.datasets.leakage import NEAR_THRESHOLD, class_balance, fingerprint, signature
from soundtransfer.errors import DatasetError


@pytest.fixture(scope="module")
def esc10(esc10_root: Path) -> ClipTable:
    return load_dataset("esc10", esc10_root)


def small_folder(esc10: ClipTable, dst: Path, per_class_fold: int = 1) -> Path:
    """ESC-10 clips in class folders: ``per_class_fold`` per class in each fold (names kept)."""
    seen: dict[tuple[int, int], int] = {}
    for i, c in enumerate(esc10.clips):
        if seen.get((c.label, c.fold), 0) >= per_class_fold:
            continue
        seen[(c.label, c.fold)] = seen.get((c.label, c.fold), 0) + 1
        folder = dst / esc10.classes[c.label]
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(esc10.path(i), folder / Path(c.file).name)
    return dst


def test_planted_recording_in_two_folds_is_an_error(esc10: ClipTable, tmp_path: Path) -> None:
    root = small_folder(esc10, tmp_path / "set")
    dog = sorted((root / "dog").iterdir())[0]  # e.g. 1-100032-A.ogg, fold 1
    fold, src, _take = dog.stem.split("-")
    planted = root / "dog" / f"{int(fold) % 5 + 1}-{src}-Z.ogg"  # same recording, next fold
    os.symlink(dog.resolve(), planted)
    ds = open_dataset(root)
    report = leakage_report(ds.table)
    assert not report.ok
    (leak,) = report.group_leaks
    assert leak.group == f"src{src}" and leak.folds == tuple(sorted({int(fold), int(fold) % 5 + 1}))
    # The same audio is also listed as an exact duplicate across the two folds.
    exact = [d for d in report.duplicates if d.exact]
    assert {Path(exact[0].file_a).name, Path(exact[0].file_b).name} == {dog.name, planted.name}
    with pytest.raises(DatasetError, match=f"src{src}") as info:
        report.raise_for_leaks()
    assert "\n" not in str(info.value)
    text = "\n".join(report.lines())
    assert "ERROR" in text and planted.name in text


def test_planted_near_duplicate_is_listed(esc10: ClipTable, tmp_path: Path) -> None:
    """A re-encoded, quieter, slightly noisy copy under an unrelated name in another fold."""
    rows = []
    picked = [i for i, c in enumerate(esc10.clips) if c.fold in (1, 2)][::8]  # 20 clips
    for i in picked:
        c = esc10.clips[i]
        os.symlink(esc10.path(i), tmp_path / Path(c.file).name)  # CSV paths are relative
        rows.append({"file": Path(c.file).name, "label": esc10.classes[c.label], "fold": c.fold})
    src = esc10.path(picked[0])
    x, sr = sf.read(src, dtype="float32")
    noise = np.random.default_rng(0).normal(0, 0.01 * np.abs(x).max(), x.shape)
    copy = tmp_path / "holiday_recording.flac"
    sf.write(copy, (0.5 * x + noise).astype(np.float32), sr)
    rows.append({"file": copy.name, "label": rows[0]["label"], "fold": 2})
    meta = tmp_path / "list.csv"
    with meta.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "fold"])
        w.writeheader()
        w.writerows(rows)
    report = leakage_report(open_dataset(meta).table)
    assert report.ok  # no shared group: every file is its own group
    (dup,) = report.duplicates
    assert not dup.exact and dup.similarity >= NEAR_THRESHOLD
    assert {Path(dup.file_a).name, Path(dup.file_b).name} == {src.name, copy.name}


@pytest.mark.slow
def test_official_esc10_is_clean(esc10: ClipTable) -> None:
    report = leakage_report(esc10)
    assert report.ok and report.duplicates == () and report.fingerprinted == 400


def test_signature_properties(esc10: ClipTable) -> None:
    x, _ = sf.read(esc10.path(3), dtype="float32")
    a = signature(x[::5])  # roughly 8.8 kHz, enough here
    # Unit norm in float32 (the norm of ~1000 float32 terms: a few 6e-8 steps off 1): 1e-5.
    assert abs(float(np.linalg.norm(a)) - 1) < 1e-5
    assert float(a @ signature(0.25 * x[::5])) > 0.999  # gain does not count
    assert float(a @ signature(np.zeros_like(x[::5]))) == 0.0  # silence has no signature
    y, _ = sf.read(esc10.path(200), dtype="float32")
    assert float(a @ signature(y[::5])) < 0.9
    assert fingerprint(x[::5]).digest == fingerprint(x[::5].copy()).digest


def test_class_balance_table(esc10: ClipTable) -> None:
    text = class_balance(esc10)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "fold1", "fold2", "fold3", "fold4", "fold5", "total"]
    assert lines[1].split() == ["dog", "8", "8", "8", "8", "8", "40"]
    assert lines[-1].split() == ["total", "80", "80", "80", "80", "80", "400"]


def test_official_pairs_by_label(esc10: ClipTable) -> None:
    from dataclasses import replace

    clips = list(esc10.clips)
    clips[1] = replace(clips[1], group=clips[0].group, fold=2, label=5)  # other class, fold 2
    t = ClipTable("t", esc10.root, esc10.classes, tuple(clips))
    assert leakage_report(t, audio=False, by_label=True).ok
    assert not leakage_report(t, audio=False).ok


def _table_of(
    waves: list[np.ndarray], folds: list[int], root: Path, fixed: bool = False
) -> ClipTable:
    """A table of synthetic 8 kHz clips written as WAV files, two classes."""
    clips = []
    for k, (x, fold) in enumerate(zip(waves, folds, strict=True)):
        sf.write(root / f"c{k:02d}.wav", x, 8000, subtype="FLOAT")
        clips.append(Clip(f"c{k:02d}.wav", k % 2, fold, f"g{k}"))
    return ClipTable("t", root, ("a", "b"), tuple(clips), "fixed" if fixed else "kfold")


def test_clicks_and_silences_are_not_duplicates(tmp_path: Path) -> None:
    """Issue 23 defect 9: distinct 60 ms bursts over a -80 dB floor scored cosine 0.97-0.99,
    and two digital silences were "the same audio"."""
    rng = np.random.default_rng(5)
    waves = []
    for k in range(12):
        x = rng.normal(0, 1e-4, 5 * 8000).astype(np.float32)  # -80 dB floor
        s, m = 8000 + 400 * (k % 3), 480  # 60 ms from 1.0, 1.05 or 1.1 s
        burst = rng.normal(0, 0.3 if k < 6 else 0.5, m)
        x[s : s + m] += burst * (1.0 if k < 6 else np.exp(-np.arange(m) / 64.0))  # noise, click
        waves.append(x)
    waves += [np.zeros(5 * 8000, np.float32)] * 2
    table = _table_of(waves, [1 + k % 2 for k in range(len(waves))], tmp_path)
    report = leakage_report(table, workers=1)
    assert report.duplicates == ()
    assert report.silent == ("c12.wav", "c13.wav")
    assert "2 clip(s) are digital silence" in "\n".join(report.lines())
    # A real copy of a click-like clip is still exact (same samples, another fold).
    (tmp_path / "copy").mkdir()
    again = _table_of([waves[7], waves[7]], [1, 2], tmp_path / "copy")
    (dup,) = leakage_report(again, workers=1).duplicates
    assert dup.exact


def test_fixed_split_is_named_as_splits(esc10: ClipTable) -> None:
    """Issue 24 point 6: a train/valid/test split was reported as fold1 / fold3."""
    from dataclasses import replace

    clips = [replace(c, fold=1 + k % 3) for k, c in enumerate(esc10.clips[:30])]
    clips[3] = replace(clips[3], group=clips[0].group, fold=3)
    t = ClipTable("t", esc10.root, esc10.classes, tuple(clips), "fixed")
    report = leakage_report(t, audio=False)
    assert class_balance(t).splitlines()[0].split() == ["class", "train", "valid", "test", "total"]
    text = "\n".join(report.lines())
    assert "group(s) in more than one split" in text and "fold" not in text
    with pytest.raises(DatasetError, match=r"is in train, test \(.*move its clips into one"):
        report.raise_for_leaks()


def _copies(esc10: ClipTable, dst: Path) -> tuple[list[dict[str, object]], set[frozenset[str]]]:
    """Issue 24 point 2's copies: the first clip of each of 8 classes in fold 1 and fold 2
    (16 different recordings, names kept), and 8 copies of 8 of them, each re-exported to FLAC
    in another fold under an unrelated name: starting 50 or 250 ms later, delayed by 100 ms or
    by 37 samples, cut to its middle 60 %, its last 60 % (a start 40 % in), 6 dB quieter, and
    6 dB quieter starting 50 ms later. Returns the CSV rows and the planted pairs."""
    rows: list[dict[str, object]] = []
    firsts: list[int] = []
    for label in range(8):
        for fold in (1, 2):
            i = next(k for k, c in enumerate(esc10.clips) if (c.label, c.fold) == (label, fold))
            firsts.append(i)
            name = Path(esc10.clips[i].file).name
            os.symlink(esc10.path(i), dst / name)
            rows.append({"file": name, "label": esc10.classes[label], "fold": fold})
    ms = 44  # samples per ms at 44.1 kHz (near enough: the offsets need not be round)

    def later(x: np.ndarray, n: int) -> np.ndarray:
        return x[n:]

    def delayed(x: np.ndarray, n: int) -> np.ndarray:
        return np.r_[np.zeros(n, x.dtype), x][: len(x)]

    edits = [
        lambda x: later(x, 50 * ms),
        lambda x: later(x, 250 * ms),
        lambda x: delayed(x, 100 * ms),
        lambda x: delayed(x, 37),
        lambda x: x[int(0.2 * len(x)) : int(0.8 * len(x))],
        lambda x: x[int(0.4 * len(x)) :],
        lambda x: 0.5 * x,
        lambda x: 0.5 * later(x, 50 * ms),
    ]
    planted = set()
    for k, edit in enumerate(edits):
        i = firsts[2 * k + k % 2]  # classes 0..7, fold 1 or 2 alternately
        x, sr = sf.read(esc10.path(i), dtype="float32")
        name = f"export_{k:02d}.flac"
        sf.write(dst / name, edit(x), sr)  # 16-bit FLAC: re-quantised
        c = esc10.clips[i]
        rows.append({"file": name, "label": esc10.classes[c.label], "fold": 3 + k % 3})
        planted.add(frozenset({Path(c.file).name, name}))
    return rows, planted


def test_shifted_cut_and_regained_copies_are_caught(esc10: ClipTable, tmp_path: Path) -> None:
    """Issue 24 point 2: a copy shifted by 50, 100 or 250 ms went into training unseen. Every
    planted copy is found with its original, and no pair of the 16 different recordings."""
    rows, planted = _copies(esc10, tmp_path)
    meta = tmp_path / "list.csv"
    with meta.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "fold"])
        w.writeheader()
        w.writerows(rows)
    report = leakage_report(open_dataset(meta).table, workers=1)
    found = {frozenset({Path(d.file_a).name, Path(d.file_b).name}) for d in report.duplicates}
    assert found == planted, (found - planted, planted - found)
    assert all(not d.exact for d in report.duplicates)  # re-quantised: none is byte-equal
    late = {Path(d.file_b).name: d for d in report.duplicates}
    # The 250 ms later start and the 100 ms delay are found as shifted copies, their offsets
    # to within a landmark frame (16 ms) and a half (votes at the next frame count too).
    for name, seconds in (("export_01.flac", -0.25), ("export_02.flac", 0.1)):
        assert late[name].measure == "correlation", late[name]
        assert abs(late[name].offset_s - seconds) <= 0.024, late[name]
    text = "\n".join(report.lines())
    assert "correlation >= 0.85" in text and "(correlation, shifted -0.2" in text
    with pytest.raises(DatasetError, match="near-duplicate audio"):
        report.raise_for_duplicates()
