"""Own datasets (folder of class folders, CSV / TSV) on real clips copied into a temp dir."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.audio.presets import get_preset
from soundtransfer.datasets import ClipTable, load_dataset, open_dataset
from soundtransfer.datasets.own import OpenedDataset, ReadOptions, infer_frontend, read_folder
from soundtransfer.errors import DatasetError
from soundtransfer.features import build_features


def link_class_folders(table: ClipTable, dst: Path, indices: list[int] | None = None) -> Path:
    """``dst/<class>/<file name>`` for the given clips of an official table (symlinks)."""
    for i in indices if indices is not None else range(len(table)):
        c = table.clips[i]
        folder = dst / table.classes[c.label]
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(table.path(i), folder / Path(c.file).name)
    return dst


def write_csv(path: Path, rows: list[dict[str, object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def esc10(esc10_root: Path) -> ClipTable:
    return load_dataset("esc10", esc10_root)


@pytest.fixture(scope="module")
def esc10_folder(esc10: ClipTable, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return link_class_folders(esc10, tmp_path_factory.mktemp("own") / "esc10-by-class")


def test_folder_keeps_official_folds_and_groups(esc10: ClipTable, esc10_folder: Path) -> None:
    ds = open_dataset(esc10_folder)
    t = ds.table
    assert ds.layout == "folder" and t.protocol == "kfold" and t.name == "own-esc10-by-class"
    assert t.classes == tuple(sorted(esc10.classes))  # sorted class names, documented
    assert ds.folds.method == "names" and ds.folds.seed is None
    official = {Path(c.file).name: c for c in esc10.clips}
    assert len(t) == len(official) == 400
    for c in t.clips:
        o = official[Path(c.file).name]
        assert (c.fold, c.group) == (o.fold, o.group)
        assert t.classes[c.label] == esc10.classes[o.label]
        assert Path(c.file).parts[0] == t.classes[c.label]
    # The inferred front end is ESC-10's preset: 44.1 kHz, 5 s (the 90th percentile).
    assert ds.frontend.frontend == get_preset("esc10")
    assert any("44100 Hz" in r for r in ds.frontend.reasons)
    assert any(r.startswith("clip_seconds 5:") for r in ds.frontend.reasons)


def test_folder_features_and_accuracy_equal_official(
    esc10: ClipTable, esc10_folder: Path, tmp_path: Path
) -> None:
    """The same clips in the same folds give identical feature-store rows, hence the same
    accuracy of any classifier trained on them (a probe on fold 1 vs 2 here)."""
    from sklearn.linear_model import LogisticRegression

    pick = [i for i, c in enumerate(esc10.clips) if c.fold in (1, 2)][::4]  # 40 clips
    names = {Path(esc10.clips[i].file).name for i in pick}
    official = esc10.subset(pick)
    own_all = open_dataset(esc10_folder)
    own = own_all.table.subset(
        [i for i, c in enumerate(own_all.table.clips) if Path(c.file).name in names]
    )
    kw = {"cache_dir": tmp_path, "workers": 0, "progress": False}
    s_off = build_features(official, get_preset("esc10"), **kw)  # type: ignore[arg-type]
    s_own = build_features(own, own_all.frontend.frontend, **kw)  # type: ignore[arg-type]
    row_of = {Path(c.file).name: i for i, c in enumerate(own.clips)}
    order = [row_of[Path(c.file).name] for c in official.clips]
    # Bitwise: the same files decoded and computed the same way (inline, this process's
    # threads), whatever the layout that named them; hence the same accuracy below.
    assert np.array_equal(np.asarray(s_off.images), np.asarray(s_own.images)[order])

    def accuracy(store_images: np.ndarray, table: ClipTable, rows: list[int]) -> float:
        x = store_images[rows].astype(np.float32).mean(axis=3).reshape(len(rows), -1)
        y = np.array([table.classes[table.clips[i].label] for i in rows])
        f = np.array([table.clips[i].fold for i in rows])
        clf = LogisticRegression(max_iter=300).fit(x[f == 1], y[f == 1])
        return float((clf.predict(x[f == 2]) == y[f == 2]).mean())

    acc_off = accuracy(np.asarray(s_off.images), official, list(range(len(official))))
    acc_own = accuracy(np.asarray(s_own.images), own, order)
    assert acc_off == acc_own


def test_folder_without_name_folds_is_grouped_kfold(esc10: ClipTable, tmp_path: Path) -> None:
    pick = [i for i, c in enumerate(esc10.clips) if c.label < 3]  # 120 clips, 3 classes
    root = link_class_folders(esc10, tmp_path / "three", pick)
    ds = open_dataset(root, use_name_folds=False, n_folds=4, seed=7)
    assert ds.folds.method == "kfold" and ds.folds.n_folds == 4 and ds.folds.seed == 7
    assert ds.folds.to_dict() == {
        "method": "kfold",
        "n_folds": 4,
        "seed": 7,
        "groups": ds.folds.groups,
    }
    assert "esc50 pattern" in ds.folds.groups
    folds_of: dict[str, set[int]] = {}
    for c in ds.table.clips:
        folds_of.setdefault(c.group, set()).add(c.fold)
    assert all(len(f) == 1 for f in folds_of.values())  # recordings never split
    assert ds.table.folds == (1, 2, 3, 4)
    again = open_dataset(root, use_name_folds=False, n_folds=4, seed=7)
    assert again.folds.folds == ds.folds.folds
    other = open_dataset(root, use_name_folds=False, n_folds=4, seed=8)
    assert other.folds.folds != ds.folds.folds


def test_csv_with_groups_and_given_folds(esc10: ClipTable, tmp_path: Path) -> None:
    audio = tmp_path / "clips"
    audio.mkdir()
    rows = []
    for i, c in enumerate(esc10.clips[:120]):
        name = f"clip{i:03d}.ogg"  # names carry no recording id: groups come from the column
        os.symlink(esc10.path(i), audio / name)
        rows.append({"file": f"clips/{name}", "label": esc10.classes[c.label], "group": c.group})
    ds = open_dataset(write_csv(tmp_path / "mine.csv", rows), n_folds=3, seed=1)
    assert ds.layout == "csv" and ds.folds.method == "kfold"
    assert ds.folds.groups == "groups = the group column"
    assert [c.group for c in ds.table.clips] == [r["group"] for r in rows]
    folds_of: dict[str, set[int]] = {}
    for c in ds.table.clips:
        folds_of.setdefault(c.group, set()).add(c.fold)
    assert all(len(f) == 1 for f in folds_of.values())
    assert ds.table.path(0).resolve() == esc10.path(0).resolve()

    # Given folds are used as they are; a TSV reads the same.
    given = [{**r, "fold": 1 + k % 2} for k, r in enumerate(rows)]
    tsv = open_dataset(write_csv(tmp_path / "given.tsv", given, delimiter="\t"))
    assert tsv.folds.method == "given"
    assert [c.fold for c in tsv.table.clips] == [r["fold"] for r in given]

    # A split column gives GTZAN's fixed protocol.
    names = ["train", "valid", "test"]
    split_rows = [
        {"file": r["file"], "label": r["label"], "split": names[k % 3]} for k, r in enumerate(rows)
    ]
    fixed = open_dataset(write_csv(tmp_path / "split.csv", split_rows))
    assert fixed.table.protocol == "fixed"
    (s,) = fixed.table.splits()
    assert len(s.train) == len(s.valid) == len(s.test) == 40


def test_generated_split(esc10: ClipTable, esc10_folder: Path) -> None:
    ds = open_dataset(esc10_folder, split=(0.6, 0.2, 0.2), seed=3)
    assert ds.table.protocol == "fixed" and ds.folds.method == "split"
    (s,) = ds.table.splits()
    assert abs(len(s.train) - 240) <= 24 and abs(len(s.test) - 80) <= 16
    for part in (s.train, s.valid, s.test):
        assert {ds.table.clips[i].label for i in part} == set(range(10))
    groups = [{ds.table.clips[i].group for i in part} for part in (s.train, s.valid, s.test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])


def test_infer_frontend_from_headers(tmp_path: Path, shared_data: Path) -> None:
    us8k = sorted((shared_data / "us8k" / "audio" / "fold1").glob("*.flac"))
    choice = infer_frontend(us8k)
    assert choice.frontend.sample_rate == 22050 and choice.frontend.n_fft == 2205
    durations = np.array([sf.info(str(p)).duration for p in us8k])
    assert choice.frontend.clip_seconds >= np.percentile(durations, 90) - 0.01
    assert any("22050 Hz" in r for r in choice.reasons)
    # Mostly 96 kHz files: capped at 48 kHz, and the reason says so.
    for k in range(3):
        sf.write(tmp_path / f"hi{k}.wav", np.zeros(96000, dtype=np.float32), 96000)
    hi = infer_frontend(sorted(tmp_path.glob("hi*.wav")), crop="centre")
    assert hi.frontend.sample_rate == 48000 and hi.frontend.clip_seconds == 1.0
    assert hi.frontend.crop == "centre" and "96000" in hi.reasons[0]
    given = infer_frontend([], sample_rate=16000, clip_seconds=2.0)
    assert (given.frontend.sample_rate, given.frontend.out_frames) == (16000, 250)
    preset = infer_frontend([], preset="us8k", clip_seconds=3.0)
    assert preset.frontend == get_preset("us8k", clip_seconds=3.0)


def _bad_cases(esc10: ClipTable, tmp: Path) -> dict[str, tuple[Path, dict[str, object], str]]:
    """name -> (path, options, text the one-line message must contain)."""
    clip = esc10.path(0)
    cases: dict[str, tuple[Path, dict[str, object], str]] = {}
    (tmp / "empty").mkdir()
    cases["empty folder"] = (tmp / "empty", {}, "no audio files")
    (tmp / "txt" / "dog").mkdir(parents=True)
    (tmp / "txt" / "dog" / "a.xyz").write_text("x")
    cases["unknown extension only"] = (tmp / "txt", {}, "'.xyz'")
    (tmp / "one" / "dog").mkdir(parents=True)
    os.symlink(clip, tmp / "one" / "dog" / "a.ogg")
    cases["one class"] = (tmp / "one", {}, "only one class ('dog')")
    few = tmp / "few"
    for k, name in enumerate(["1-1-A.ogg", "1-2-A.ogg", "1-3-A.ogg"]):
        (few / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        os.symlink(clip, few / f"c{k % 2}" / name)
    cases["fewer clips than folds"] = (
        few,
        {"use_name_folds": False},
        "few: class 'c0' has 2 clip(s)",
    )
    os.symlink(clip, tmp / "a.ogg")
    os.symlink(esc10.path(100), tmp / "b.ogg")
    ok = [{"file": "a.ogg", "label": "x"}, {"file": "b.ogg", "label": "y"}]
    cases["no label column"] = (
        write_csv(tmp / "nolabel.csv", [{"file": "a.ogg", "class": "x"}]),
        {},
        "missing column(s) ['label']",
    )
    cases["file missing"] = (
        write_csv(tmp / "missing.csv", [*ok, {"file": "gone.wav", "label": "x"}]),
        {},
        "line 4: audio file",
    )
    cases["label empty"] = (
        write_csv(tmp / "nolab.csv", [*ok, {"file": "a.ogg", "label": ""}]),
        {},
        "line 4: empty label for a.ogg",
    )
    cases["fold not integer"] = (
        write_csv(tmp / "fold.csv", [{**ok[0], "fold": 1}, {**ok[1], "fold": "two"}]),
        {},
        "line 3: fold 'two' is not an integer",
    )
    cases["bad split"] = (
        write_csv(tmp / "split.csv", [{**ok[0], "split": "train"}, {**ok[1], "split": "eval"}]),
        {},
        "split 'eval'",
    )
    cases["listed twice"] = (write_csv(tmp / "dup.csv", [*ok, ok[0]]), {}, "already listed")
    # Issue 23 defect 11: one file under two spellings (and two labels) in one list.
    (tmp / "audio").mkdir()
    os.symlink(clip, tmp / "audio" / "x.ogg")
    twice = [*ok, {"file": "audio/x.ogg", "label": "x"}, {"file": "audio/./x.ogg", "label": "y"}]
    cases["one file, two spellings"] = (
        write_csv(tmp / "twice.csv", twice),
        {},
        "line 5: audio/x.ogg is already listed on line 4",
    )
    # Defect 12: absolute and escaping paths are errors (the README's Errors section).
    for name, file in (("absolute path", str(tmp / "a.ogg")), ("escaping path", "../a.ogg")):
        (tmp / name).mkdir()
        for link in ("a.ogg", "b.ogg"):
            os.symlink(tmp / link, tmp / name / link)
        cases[name] = (
            write_csv(tmp / name / "list.csv", [*ok, {"file": file, "label": "x"}]),
            {},
            "line 4: file",
        )
    cases["escaping then back"] = (
        write_csv(tmp / "back.csv", [*ok, {"file": "audio/../audio/x.ogg", "label": "y"}]),
        {},
        "without '..'",
    )
    # Defect 3: a split without test (or train) rows; a class without a training clip.
    tr, te = {**ok[0], "split": "train"}, {**ok[1], "split": "test"}
    cases["split without test"] = (
        write_csv(tmp / "notest.csv", [tr, {**ok[1], "split": "train"}]),
        {},
        "no 'test' row",
    )
    cases["split without train"] = (
        write_csv(tmp / "notrain.csv", [{**ok[0], "split": "test"}, te]),
        {},
        "no 'train' row",
    )
    cases["class never trained"] = (
        write_csv(tmp / "untrained.csv", [tr, te]),
        {},
        "class(es) ['y'] have no 'train' row",
    )
    (tmp / "notes.json").write_text("{}")
    cases["not a list"] = (tmp / "notes.json", {}, "not a dataset list")
    cases["no such thing"] = (tmp / "nothing-here", {}, "neither a dataset name")
    return cases


def test_bad_input_raises_one_line(esc10: ClipTable, tmp_path: Path) -> None:
    for name, (path, options, text) in _bad_cases(esc10, tmp_path).items():
        with pytest.raises(DatasetError) as info:
            open_dataset(path, **options)  # type: ignore[arg-type]
        msg = str(info.value)
        assert text in msg and "\n" not in msg, (name, msg)


def test_official_names_unchanged(esc10_root: Path, esc10: ClipTable) -> None:
    ds = open_dataset("esc10", esc10_root)
    assert ds.table == esc10 and ds.layout == "official"
    assert ds.frontend.frontend == get_preset("esc10") and ds.folds.method == "given"
    with pytest.raises(DatasetError, match="needs its root"):
        open_dataset("esc10")


def test_quoted_line_break_is_an_error_on_its_line(esc10: ClipTable, tmp_path: Path) -> None:
    """Issue 23 defect 16: a quoted label with a newline was read as another class name and
    shifted the line numbers of later messages."""
    os.symlink(esc10.path(0), tmp_path / "a.ogg")
    os.symlink(esc10.path(100), tmp_path / "b.ogg")
    text = 'file,label\na.ogg,"dog\nbark"\nb.ogg,rain\nc.ogg,rain\n'
    (tmp_path / "nl.csv").write_text(text)
    with pytest.raises(DatasetError, match=r"line 2: a quoted cell holds a line break"):
        open_dataset(tmp_path / "nl.csv")
    # Lines after a quoted line break keep their file line numbers (c.ogg is on line 5).

    rows = 'file,label\na.ogg,dog\nb.ogg,rain\n"c\nd.ogg",rain\ngone.ogg,rain\n'
    (tmp_path / "nl3.csv").write_text(rows)
    with pytest.raises(DatasetError, match=r"line 4: a quoted cell"):
        open_dataset(tmp_path / "nl3.csv")


def test_unreadable_header_does_not_stop_the_inference(esc10: ClipTable, tmp_path: Path) -> None:
    """Issue 23 defect 8: --skip-bad could not skip an unreadable file of own data, since the
    front-end inference read every header first and stopped on the bad one."""
    pick = [i for i, c in enumerate(esc10.clips) if c.label < 2][:20]
    root = link_class_folders(esc10, tmp_path / "two", pick)
    bad = root / esc10.classes[0] / "png.flac"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    ds = open_dataset(root, use_name_folds=False, n_folds=2)
    assert any("png.flac" in c.file for c in ds.table.clips)  # decoding decides (--skip-bad)
    said = [r for r in ds.frontend.reasons if "unreadable header" in r]
    assert len(said) == 1 and "png.flac" in said[0] and "--skip-bad" in said[0]
    assert ds.frontend.frontend.sample_rate == 44100  # from the readable files
    only = tmp_path / "bad-only"
    for k in range(4):
        (only / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        (only / f"c{k % 2}" / f"{k}.wav").write_bytes(bytes(100))
    with pytest.raises(DatasetError, match="cannot read the audio header"):
        open_dataset(only, use_name_folds=False, n_folds=2)


def _renamed_by_recording(esc10: ClipTable, root: Path) -> list[tuple[str, str]]:
    """ESC-10 clips renamed as most own clips are (``<class>/<recording>/take<k>.ogg``, no
    recording id in the file name); returns (relative path, official group) per clip."""
    out = []
    for i, c in enumerate(esc10.clips):
        folder = root / esc10.classes[c.label] / c.group.removeprefix("src")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"take{len(list(folder.iterdir()))}.ogg"
        os.symlink(esc10.path(i), folder / name)
        out.append((f"{esc10.classes[c.label]}/{c.group.removeprefix('src')}/{name}", c.group))
    return out


def test_folder_groups_from_a_tree_level_or_groups_csv(esc10: ClipTable, tmp_path: Path) -> None:
    """Issue 24 point 1: renamed takes of one recording were each their own group, so takes of
    one recording landed in two folds while the report said "no group in two folds"."""
    root = tmp_path / "tree"
    truth = dict(_renamed_by_recording(esc10, root))
    plain = open_dataset(root, n_folds=5)
    (note,) = [n for n in plain.table.notes if "their own group" in n]
    assert note.startswith("400 of 400 file(s)") and "groups.csv" in note and "inflate" in note
    # Recordings with several takes in two folds: the leak the note warns about.
    official = {c.file: truth[c.file] for c in plain.table.clips}
    folds_of: dict[str, set[int]] = {}
    for c in plain.table.clips:
        folds_of.setdefault(official[c.file], set()).add(c.fold)
    assert any(len(f) > 1 for f in folds_of.values())

    by_level = open_dataset_with(root, group_level=1)
    assert by_level.folds.groups.startswith("groups = folder level 1 below the class (400 of 400")
    assert not [n for n in by_level.table.notes if "their own group" in n]
    assert _recordings_in_one_fold(by_level.table, official)

    rows = [{"file": f, "group": g} for f, g in truth.items()]
    write_csv(root / "groups.csv", rows)
    by_csv = open_dataset(root, n_folds=5)
    assert by_csv.folds.groups.startswith("groups = groups.csv (400 of 400 files)")
    assert not any("groups.csv" in n for n in by_csv.table.notes)  # not a skipped file
    assert _recordings_in_one_fold(by_csv.table, official)
    write_csv(root / "groups.csv", [*rows[:3], {"file": "dog/none.ogg", "group": "x"}])
    with pytest.raises(DatasetError, match=r"groups.csv: line 5: 'dog/none.ogg' is no audio"):
        open_dataset(root)


def open_dataset_with(root: Path, **fields: object) -> OpenedDataset:
    """A folder read with ReadOptions fields that open_dataset does not pass on yet."""
    return read_folder(root, ReadOptions(**fields))  # type: ignore[arg-type]


def _recordings_in_one_fold(table: ClipTable, recording: dict[str, str]) -> bool:
    folds_of: dict[str, set[int]] = {}
    for c in table.clips:
        folds_of.setdefault(recording[c.file], set()).add(c.fold)
    return all(len(f) == 1 for f in folds_of.values())


def test_name_folds_all_one_fold_fall_back_to_grouped_folds_with_a_note() -> None:
    """Issue 24 point 5: ESC-50-named clips that are all of fold 1 (a user's own recordings
    named in the convention) gave a one-fold 'names' assignment; they must fall back to the
    grouped k-fold, keep the recording ids as groups, and say why."""
    from soundtransfer.datasets.own import assign_folds

    files = [f"{c}/1-{100 + k}-{t}.wav" for c in ("dog", "rain") for k in range(4) for t in "AB"]
    labels = [0] * 8 + [1] * 8
    assigned, groups = assign_folds(files, labels, ["dog", "rain"], None, ReadOptions(n_folds=2))
    assert assigned.method == "kfold" and assigned.n_folds == 2, assigned
    assert sorted(set(assigned.folds)) == [1, 2]
    assert "all fold 1" in assigned.groups and "grouped" in assigned.groups, assigned.groups
    for g in set(groups):  # both takes of a recording in one fold
        assert len({assigned.folds[i] for i, x in enumerate(groups) if x == g}) == 1


def _linked_rows(esc10: ClipTable, tmp_path: Path, n: int = 60) -> list[dict[str, object]]:
    audio = tmp_path / "clips"
    audio.mkdir()
    rows: list[dict[str, object]] = []
    for i, c in enumerate(esc10.clips[:n]):
        os.symlink(esc10.path(i), audio / f"clip{i:03d}.ogg")
        rows.append({"file": f"clips/clip{i:03d}.ogg", "label": esc10.classes[c.label]})
        rows[-1]["group"] = c.group
    return rows


def test_csv_background_label_is_a_background_class(esc10: ClipTable, tmp_path: Path) -> None:
    """Single-label CSV: a label that is a background name (ignoring case) is a class listed
    in ``ClipTable.background``, like a single-label background folder."""
    rows = _linked_rows(esc10, tmp_path)
    first = rows[0]["label"]
    for r in rows:
        r["label"] = "Noise" if r["label"] == first else r["label"]
    ds = open_dataset(write_csv(tmp_path / "mine.csv", rows), n_folds=2, seed=0)
    assert "Noise" in ds.table.classes and ds.table.background == ("Noise",)
    assert any("background class(es) ['Noise']" in n for n in ds.table.notes)
    plain = open_dataset(write_csv(tmp_path / "none.csv", rows), n_folds=2, background=())
    assert plain.table.background == ()


def test_labels_csv_background_name_means_no_label(esc10: ClipTable, tmp_path: Path) -> None:
    """Multi-label CSV: a background name in a ``labels`` cell is a negative (no label); joined
    with another name it is a one-line error naming file and line."""
    rows = _linked_rows(esc10, tmp_path)
    multi = [{"file": r["file"], "labels": r["label"], "group": r["group"]} for r in rows]
    multi[0]["labels"] = "NOISE"
    multi[1]["labels"] = f"{rows[1]['label']};{rows[2]['label']}"
    ds = open_dataset(write_csv(tmp_path / "multi.csv", multi), n_folds=2, seed=0)
    assert "NOISE" not in ds.table.classes and ds.table.clips[0].labels == ()
    assert any("1 row(s) labelled with a background name" in n for n in ds.table.notes)
    multi[0]["labels"] = f"noise;{rows[0]['label']}"
    with pytest.raises(DatasetError, match=r"multi2\.csv: line 2: 'noise' is a background name"):
        open_dataset(write_csv(tmp_path / "multi2.csv", multi), n_folds=2, seed=0)
