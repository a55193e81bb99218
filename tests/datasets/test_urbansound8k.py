"""UrbanSound8K on the real metadata in ../shared/data, and each kind of bad metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from soundtransfer.datasets import load_dataset
from soundtransfer.datasets.urbansound8k import CLASSES
from soundtransfer.errors import DatasetError

META = "metadata/UrbanSound8K.csv"


def test_us8k_real(us8k_root: Path) -> None:
    t = load_dataset("us8k", us8k_root)
    assert len(t) == 600 and t.folds == (1, 10) and t.classes == CLASSES
    assert Counter(c.fold for c in t.clips) == {1: 300, 10: 300}
    assert Counter((c.fold, c.label) for c in t.clips) == {
        (f, k): 30 for f in (1, 10) for k in range(10)
    }
    assert t.clips[0].file.startswith("audio/fold1/") and t.clips[0].group.startswith("fs")
    assert all(f"fold{c.fold}/" in c.file for c in t.clips)
    splits = t.splits()
    assert [s.name for s in splits] == ["fold1", "fold10"]
    for s in splits:
        assert not set(s.train) & set(s.test) and len(s.train) + len(s.test) == 600
        train_groups = {t.clips[i].group for i in s.train}
        assert not train_groups & {t.clips[i].group for i in s.test}


def test_full_official_metadata(us8k_root: Path, tmp_path: Path, meta: SimpleNamespace) -> None:
    # All 8,732 official rows pass the checks, including the 5 fsIDs that the official folds
    # place in two folds under two classes.
    meta.copy(us8k_root, tmp_path / "u", META, "metadata/UrbanSound8K_full.csv")
    with pytest.raises(DatasetError, match=r"8132 audio file\(s\)"):
        load_dataset("us8k", tmp_path / "u")
    t = load_dataset("us8k", tmp_path / "u", missing="skip")
    assert len(t) == 600 and t.notes[0].startswith("8132 clip(s) missing")


def test_wav_names_resolve_to_flac(us8k_root: Path, tmp_path: Path, meta: SimpleNamespace) -> None:
    t = meta.load_with_wav_names(us8k_root, tmp_path / "u", META, "us8k", ".flac")
    assert len(t) == 600 and all(c.file.endswith(".flac") for c in t.clips)


# rows[0] is 101415-3-0-2.flac, fsID 101415, fold 1, classID 3 (dog_bark).
BAD_EDITS = {
    "fold out of range": ({"fold": "11"}, r"line 2: fold 11 outside 1\.\.10"),
    "fold zero": ({"fold": "0"}, r"line 2: fold 0 outside 1\.\.10"),
    "classID out of range": ({"classID": "10"}, r"line 2: classID 10 outside 0\.\.9"),
    "classID not an integer": ({"classID": "3.0"}, r"line 2: classID '3.0' is not an integer"),
    "class vs classID": ({"class": "siren"}, r"line 2: class 'siren' does not match classID 3"),
    "name vs fsID": ({"fsID": "7"}, r"'101415-3-0-2.flac' disagrees with fsID 7"),
    "name vs classID": (
        {"classID": "8", "class": "siren"},
        r"'101415-3-0-2.flac' disagrees with fsID 101415 / classID 8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_EDITS))
def test_bad_row(case: str, us8k_root: Path, tmp_path: Path, meta: SimpleNamespace) -> None:
    edit, message = BAD_EDITS[case]
    meta.refuses_edited_row(us8k_root, tmp_path / "u", META, "us8k", edit, message)


def test_fsid_in_two_folds(us8k_root: Path, tmp_path: Path, meta: SimpleNamespace) -> None:
    path, rows = meta.copy_rows(us8k_root, tmp_path / "u", META)
    i = next(i for i, r in enumerate(rows) if r["fold"] == "10" and r["classID"] == "3")
    rows[i].update(slice_file_name="101415-3-9-9.flac", fsID="101415")
    meta.write(path, rows)
    with pytest.raises(DatasetError, match=r"source 'fs101415' with label 3 appears in folds 1"):
        load_dataset("us8k", tmp_path / "u")


def test_duplicates_and_missing_column(
    us8k_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    path, rows = meta.copy_rows(us8k_root, tmp_path / "u", META)
    meta.write(path, [*rows, rows[7]])
    with pytest.raises(DatasetError, match="listed more than once"):
        load_dataset("us8k", tmp_path / "u")
    meta.write(path, rows, columns=["slice_file_name", "fold", "classID", "class"])
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['fsID'\]"):
        load_dataset("us8k", tmp_path / "u")


def test_missing_audio_and_metadata(us8k_root: Path, tmp_path: Path, meta: SimpleNamespace) -> None:
    path, rows = meta.copy_rows(us8k_root, tmp_path / "u", META)
    rows[1].update(slice_file_name="101415-3-0-999.wav")
    meta.write(path, rows)
    with pytest.raises(DatasetError, match=r"1 audio file\(s\) .* \(first: fold1/101415-3-0-999"):
        load_dataset("us8k", tmp_path / "u")
    t = load_dataset("us8k", tmp_path / "u", missing="skip")
    assert len(t) == 599 and "fold1/101415-3-0-999.wav" in t.notes[0]
    path.unlink()
    with pytest.raises(DatasetError, match=r"UrbanSound8K.csv: metadata file not found"):
        load_dataset("us8k", tmp_path / "u")
