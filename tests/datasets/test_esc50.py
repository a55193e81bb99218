"""ESC-50 / ESC-10 on the real metadata in ../shared/data, and each kind of bad metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from soundtransfer.datasets import ClipTable, load_dataset
from soundtransfer.datasets.esc50 import CLASSES, ESC10_TARGETS
from soundtransfer.errors import DatasetError


def assert_clean_kfold(t: ClipTable) -> None:
    """Each split: disjoint, covers the table, tests one fold, no group on both sides."""
    splits = t.splits()
    assert [s.name for s in splits] == [f"fold{k}" for k in t.folds]
    for s in splits:
        k = int(s.name[4:])
        assert set(s.train) | set(s.test) == set(range(len(t)))
        assert not set(s.train) & set(s.test) and s.valid == ()
        assert {t.clips[i].fold for i in s.test} == {k}
        assert k not in {t.clips[i].fold for i in s.train}
        train_pairs = {(t.clips[i].group, t.clips[i].label) for i in s.train}
        assert not train_pairs & {(t.clips[i].group, t.clips[i].label) for i in s.test}
    folds_of: dict[tuple[str, int], set[int]] = {}
    for c in t.clips:
        folds_of.setdefault((c.group, c.label), set()).add(c.fold)
    assert all(len(f) == 1 for f in folds_of.values())


def _refused(root: Path, match: str, name: str = "esc10") -> None:
    """Loading ``name`` from ``root`` raises DatasetError matching ``match``."""
    with pytest.raises(DatasetError, match=match):
        load_dataset(name, root)


def test_esc10_real(esc10_root: Path) -> None:
    t = load_dataset("esc10", esc10_root)
    assert t.name == "esc10" and t.protocol == "kfold" and t.notes == ()
    assert len(t) == 400 and t.folds == (1, 2, 3, 4, 5)
    assert Counter(c.fold for c in t.clips) == {k: 80 for k in range(1, 6)}
    assert t.classes == (
        "dog",
        "rooster",
        "rain",
        "sea_waves",
        "crackling_fire",
        "crying_baby",
        "sneezing",
        "clock_tick",
        "helicopter",
        "chainsaw",
    )
    assert Counter(t.labels) == {k: 40 for k in range(10)}
    assert all(t.path(i).is_file() and t.path(i).suffix == ".ogg" for i in range(len(t)))
    assert all(c.group.startswith("src") for c in t.clips)
    assert_clean_kfold(t)
    assert len(t.splits([2, 5])) == 2


def test_esc50_fold4_real(esc50_fold4_root: Path) -> None:
    t = load_dataset("esc50", esc50_fold4_root)
    assert len(t) == 200 and t.classes == CLASSES and len(t.classes) == 50
    assert t.folds == (4,)
    # Labels are the ESC-50 targets, which the official file names end with.
    assert all(int(Path(c.file).stem.rsplit("-", 1)[1]) == c.label for c in t.clips)
    assert Counter(t.labels) == {k: 4 for k in range(50)}
    with pytest.raises(DatasetError, match="at least 2 folds"):
        t.splits()
    with pytest.raises(DatasetError, match=r"fold\(s\) \[1\] not present"):
        t.splits([1])


def test_full_official_metadata_missing_error_or_skip(
    esc50_fold4_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    # All 2,000 official rows pass every metadata check (including 4 recordings cut for two
    # classes in two folds); 1,800 have no audio here.
    meta.copy(esc50_fold4_root, tmp_path / "e", "meta/esc50.csv", "meta/esc50_full.csv")
    _refused(tmp_path / "e", r"1800 audio file\(s\).*first: 1-100032-A-0.wav", "esc50")
    t = load_dataset("esc50", tmp_path / "e", missing="skip")
    assert len(t) == 200 and t.folds == (4,)
    assert len(t.notes) == 1 and t.notes[0].startswith("1800 clip(s) missing")
    t10 = load_dataset("esc10", tmp_path / "e", missing="skip")
    assert len(t10) == 40 and "360 clip(s)" in t10.notes[0]
    assert {t10.classes[c.label] for c in t10.clips} == set(t10.classes)
    assert [CLASSES[t] for t in ESC10_TARGETS] == list(t10.classes)


def test_esc10_subset_keeps_the_label_space(
    esc10_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    path = meta.copy(esc10_root, tmp_path / "e", "meta/esc50.csv")
    rows = [r for r in meta.read(path) if r["category"] in ("rain", "chainsaw")]
    meta.write(path, rows)
    t = load_dataset("esc10", tmp_path / "e")
    assert len(t) == 80 and len(t.classes) == 10 and set(t.labels) == {2, 9}


def test_wav_names_resolve_to_other_extensions(
    esc10_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    t = meta.load_with_wav_names(esc10_root, tmp_path / "e", "meta/esc50.csv", "esc10", ".ogg")
    assert len(t) == 400 and all(c.file.endswith(".ogg") for c in t.clips)


# (edit to make on the rows, expected message); rows[0] is 1-100032-A.ogg (dog, fold 1).
BAD_EDITS = {
    "fold out of range": ({"fold": "6"}, r"line 2: fold 6 outside 1\.\.5"),
    "fold not an integer": ({"fold": "x"}, r"line 2: fold 'x' is not an integer"),
    "target out of range": ({"target": "50"}, r"line 2: target 50 outside 0\.\.49"),
    "category vs target": ({"category": "cat"}, r"line 2: category 'cat' does not match target 0"),
    "target vs category": ({"target": "5"}, r"line 2: category 'dog' does not match target 5"),
    "not an ESC-10 class": (
        {"target": "5", "category": "cat"},
        r"line 2: esc10 row with target 5 \(cat\)",
    ),
    "name vs fold": ({"fold": "2"}, r"'1-100032-A.ogg' disagrees with fold 2"),
    "name vs src_file": ({"src_file": "999"}, r"disagrees with src_file 999"),
}


@pytest.mark.parametrize("case", sorted(BAD_EDITS))
def test_bad_row(case: str, esc10_root: Path, tmp_path: Path, meta: SimpleNamespace) -> None:
    edit, message = BAD_EDITS[case]
    meta.refuses_edited_row(esc10_root, tmp_path / "e", "meta/esc50.csv", "esc10", edit, message)


def test_source_recording_in_two_folds(
    esc10_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    path, rows = meta.copy_rows(esc10_root, tmp_path / "e", "meta/esc50.csv")
    i = next(i for i, r in enumerate(rows) if r["fold"] == "2" and r["target"] == "0")
    # A consistent row (name, fold, source agree) whose source 100032 is a dog in fold 1 too.
    rows[i].update(filename="2-100032-Z.ogg", src_file="100032")
    meta.write(path, rows)
    _refused(tmp_path / "e", r"source 'src100032' with label 0 appears in folds 1")
    # The same recording under another class in another fold is what the official folds do.
    rows[i].update(target="1", category="rooster")
    meta.write(path, rows)
    t = load_dataset("esc10", tmp_path / "e", missing="skip")
    assert len(t) == 399


def test_duplicate_rows(esc10_root: Path, tmp_path: Path, meta: SimpleNamespace) -> None:
    path, rows = meta.copy_rows(esc10_root, tmp_path / "e", "meta/esc50.csv")
    meta.write(path, [*rows, rows[5]])
    _refused(tmp_path / "e", r"listed more than once: \['1-")


def test_two_names_resolving_to_one_file(
    esc10_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    path, rows = meta.copy_rows(esc10_root, tmp_path / "e", "meta/esc50.csv")
    meta.write(path, [*rows, {**rows[0], "filename": rows[0]["filename"][:-4] + ".wav"}])
    _refused(tmp_path / "e", "resolve to the same file")


def test_missing_column_and_no_esc10_rows(
    esc10_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    path, rows = meta.copy_rows(esc10_root, tmp_path / "e", "meta/esc50.csv")
    meta.write(path, rows, columns=["filename", "target", "category", "esc10"])
    _refused(tmp_path / "e", r"missing column\(s\) \['fold'\]", "esc50")
    meta.write(path, [{**r, "esc10": "False"} for r in rows])
    _refused(tmp_path / "e", "no row has esc10 == True")
    path.write_text("filename,fold,target,category,esc10\n")
    _refused(tmp_path / "e", "no rows")


def test_missing_audio_error_or_skip(
    esc10_root: Path, tmp_path: Path, meta: SimpleNamespace
) -> None:
    path, rows = meta.copy_rows(esc10_root, tmp_path / "e", "meta/esc50.csv")
    rows[3].update(filename="1-1-A.ogg", src_file="1")
    meta.write(path, rows)
    _refused(tmp_path / "e", r"1 audio file\(s\) .* \(first: 1-1-A.ogg\)")
    t = load_dataset("esc10", tmp_path / "e", missing="skip")
    assert len(t) == 399 and "1-1-A.ogg" in t.notes[0]
    assert all(c.file != "audio/1-1-A.ogg" for c in t.clips)


def test_missing_root_metadata_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset root not found"):
        load_dataset("esc50", tmp_path / "none")
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match=r"meta/esc50.csv: metadata file not found"):
        load_dataset("esc10", tmp_path / "x")
    with pytest.raises(DatasetError, match="unknown dataset 'esc70'"):
        load_dataset("esc70", tmp_path / "x")
    with pytest.raises(DatasetError, match="missing must be one of"):
        load_dataset("esc50", tmp_path / "x", missing="ignore")
