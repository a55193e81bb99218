"""Regression net for bad input at the command line (issue 11).

Each case builds a bad input under ``tmp_path / "in"`` and returns the command line that
feeds it to ``soundtransfer``. Every case must end with exit code 2, exactly one line on stderr
matching the case's culprit (a file or setting name), no traceback, the inputs unchanged and
nothing written except what a rerun resumes from (the fetched archive, an unfinished feature
store's rows). Add a case: one function returning :class:`Bad`, one line in ``CASES``.
Inputs that are accepted on purpose (spreadsheet encodings) are in ``ACCEPTED``.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.cli.main import main

from ..inference.conftest import make_bundle


@dataclass(frozen=True)
class Bad:
    """A command line and the regex its one stderr line must match."""

    argv: list[str]
    culprit: str


# Files a failed command may leave under tmp_path/out: a fetched archive (so a rerun does not
# download again) and the resumable parts of an unfinished feature store. Nothing else.
ALLOWED_LEFTOVERS = (
    lambda rel: rel.parts[:2] == ("root", "downloads") and rel.suffix in (".gz", ".zip", ".tar"),
    lambda rel: (
        rel.parts[:2] == ("cache", "features")
        and (rel.name in ("images.f16", "build.lock") or rel.match("progress*.log"))
    ),
)


def _esc_copy(tmp: Path, esc10_root: Path, n: int = 4) -> tuple[Path, list[str]]:
    """``tmp/in/esc``: n real ESC-10 clips (copied, so a case may damage them) and their
    metadata lines (header first), written back by :func:`_write_meta`."""
    root = tmp / "in" / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    lines = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()
    rows = [r for r in lines[1:] if ",True," in r and r.startswith(("1-", "2-"))][::25][:n]
    for r in rows:
        shutil.copy(esc10_root / "audio" / r.split(",")[0], root / "audio")
    _write_meta(root, [lines[0], *rows])
    return root, [lines[0], *rows]


def _write_meta(root: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    meta = root / "meta" / "esc50.csv"
    meta.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return meta


def _features(root: Path, tmp: Path, *extra: str) -> list[str]:
    cache = str(tmp / "out" / "cache")
    return ["features", "esc10", "--root", str(root), "--cache", cache, "--quiet", *extra]


# --- archives (download --url file://...) -------------------------------------------------


def _tar_with(tmp: Path, member: tarfile.TarInfo) -> Bad:
    archive = tmp / "in" / "ESC-50-master.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tf:
        ok = tarfile.TarInfo("ESC-50-master/README.md")
        ok.size = 3
        tf.addfile(ok, io.BytesIO(b"ok\n"))
        tf.addfile(member, io.BytesIO(b"bad") if member.isreg() else None)
    root = tmp / "out" / "root"
    argv = ["download", "esc10", "--root", str(root), "--url", archive.as_uri(), "--quiet"]
    return Bad(argv, rf"{archive.name}.*{member.name}")


def tar_device(tmp: Path, esc10_root: Path) -> Bad:
    info = tarfile.TarInfo("ESC-50-master/audio/dev")
    info.type, info.mode = tarfile.CHRTYPE, 0o666
    return _tar_with(tmp, info)


def tar_fifo(tmp: Path, esc10_root: Path) -> Bad:
    info = tarfile.TarInfo("ESC-50-master/audio/pipe")
    info.type = tarfile.FIFOTYPE
    return _tar_with(tmp, info)


def tar_symlink_outside(tmp: Path, esc10_root: Path) -> Bad:
    info = tarfile.TarInfo("ESC-50-master/meta/esc50.csv")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return _tar_with(tmp, info)


def tar_traversal(tmp: Path, esc10_root: Path) -> Bad:
    info = tarfile.TarInfo("ESC-50-master/../../../evil.txt")
    info.size = 3
    return _tar_with(tmp, info)


# --- front-end settings (features --frontend key=value) -------------------------------------


def _frontend(setting: str) -> Callable[[Path, Path], Bad]:
    def case(tmp: Path, esc10_root: Path) -> Bad:
        root, _ = _esc_copy(tmp, esc10_root, n=1)
        return Bad(_features(root, tmp, "--frontend", setting), setting.split("=")[0])

    return case


def _probe(command: str, setting: str, culprit: str) -> Callable[[Path, Path], Bad]:
    """A probe setting the training command refuses before it reads or writes anything."""

    def case(tmp: Path, esc10_root: Path) -> Bad:
        root, _ = _esc_copy(tmp, esc10_root, n=1)
        argv = [command, "esc10", "--root", str(root), "--cache", str(tmp / "out" / "cache"),
                "--out", str(tmp / "out" / "runs"), "--quiet", "--set", setting]  # fmt: skip
        return Bad(argv, culprit)

    return case


# --- training settings (finetune --set key=value) -----------------------------------------


def _finetune_set(setting: str) -> Callable[[Path, Path], Bad]:
    def case(tmp: Path, esc10_root: Path) -> Bad:
        root, _ = _esc_copy(tmp, esc10_root, n=1)
        out, cache = str(tmp / "out" / "runs"), str(tmp / "out" / "cache")
        argv = ["finetune", "esc10", "--root", str(root), "--preset", "recipe", "--out", out,
                "--cache", cache, "--set", setting]  # fmt: skip
        return Bad(argv, setting.split("=")[0])

    return case


# --- metadata and audio in a dataset copy -----------------------------------------------------


def csv_absolute_path(tmp: Path, esc10_root: Path) -> Bad:
    root, lines = _esc_copy(tmp, esc10_root)
    name = lines[2].split(",")[0]
    absolute = str(root / "audio" / name)
    meta = _write_meta(root, [*lines[:2], lines[2].replace(name, absolute, 1), *lines[3:]])
    return Bad(_features(root, tmp), rf"{meta}: line 3: filename '{absolute}'")


def truncated_mp3(tmp: Path, esc10_root: Path) -> Bad:
    root, lines = _esc_copy(tmp, esc10_root)
    name = lines[3].split(",")[0]
    mp3 = (root / "audio" / name).with_suffix(".mp3")
    whole = tmp / "whole.mp3"
    sf.write(whole, *sf.read(root / "audio" / name, dtype="float32"))
    mp3.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    _write_meta(root, [*lines[:3], lines[3].replace(name, mp3.name, 1), *lines[4:]])
    return Bad(_features(root, tmp), rf"{mp3}: truncated file")


def overflowing_float_wav(tmp: Path, esc10_root: Path) -> Bad:
    root, lines = _esc_copy(tmp, esc10_root)
    clip = root / "audio" / lines[2].split(",")[0]
    sf.write(clip, np.full(44100, 1e30, np.float32), 44100, format="WAV", subtype="FLOAT")
    return Bad(_features(root, tmp), rf"{clip}: log-mel values not finite")


# --- own data (a folder of class folders, a CSV) ---------------------------------------------


def _own_features(data: Path, tmp: Path) -> list[str]:
    return ["features", str(data), "--cache", str(tmp / "out" / "cache"), "--quiet"]


def own_empty_folder(tmp: Path, esc10_root: Path) -> Bad:
    data = tmp / "in" / "empty"
    (data / "dog").mkdir(parents=True)  # a class folder, but no audio anywhere
    return Bad(_own_features(data, tmp), rf"{data}: no audio files in class folders")


def own_csv_without_label(tmp: Path, esc10_root: Path) -> Bad:
    root, lines = _esc_copy(tmp, esc10_root, n=2)
    listing = root / "list.csv"
    names = [r.split(",")[0] for r in lines[1:]]
    listing.write_text("file,category\n" + "".join(f"audio/{n},dog\n" for n in names))
    return Bad(_own_features(listing, tmp), rf"{listing}: missing column\(s\) \['label'\]")


def own_recording_in_two_folds(tmp: Path, esc10_root: Path) -> Bad:
    """ESC-50-style names: recording 100032 cut into a clip of fold 1 and one of fold 2."""
    data = tmp / "in" / "leaky"
    lines = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()[1:]
    rows = [r.split(",") for r in lines if ",True," in r]
    for cls in ("dog", "rain"):  # 3 clips of each class in fold 1 and 3 in fold 2
        picked = [r for k in "12" for r in [x for x in rows if x[3] == cls and x[1] == k][:3]]
        (data / cls).mkdir(parents=True)
        for r in picked:
            shutil.copy(esc10_root / "audio" / r[0], data / cls)
    dog = sorted((data / "dog").glob("2-*"))[0]
    leaked = data / "dog" / "2-100032-B.ogg"  # the recording of 1-100032-A.ogg, in fold 2
    dog.rename(leaked)
    return Bad(_own_features(data, tmp), r"'src100032' is in fold 1, fold 2.*2-100032-B\.ogg")


def _own_list(tmp: Path, esc10_root: Path, cells: list[str]) -> Path:
    """``tmp/in/esc/list.csv`` over 4 real clips (dog, rain alternately), one extra cell per
    row (e.g. ``split`` values) after ``file,label``."""
    root, lines = _esc_copy(tmp, esc10_root, n=4)
    names = [r.split(",")[0] for r in lines[1:]]
    listing = root / "list.csv"
    head = "file,label" + (",split" if cells else "")
    rows = [
        f"audio/{n},{'dog' if k % 2 else 'rain'}" + (f",{cells[k]}" if cells else "")
        for k, n in enumerate(names)
    ]
    listing.write_text("\n".join([head, *rows]) + "\n")
    return listing


def own_csv_escaping_path(tmp: Path, esc10_root: Path) -> Bad:
    """Issue 23 defect 12: ``../`` paths were read although the README calls them errors."""
    listing = _own_list(tmp, esc10_root, [])
    text = listing.read_text().replace("audio/", "../esc/audio/", 1)
    listing.write_text(text)
    return Bad(_own_features(listing, tmp), rf"{listing}: line 2: file '\.\./esc/audio/")


def own_split_without_test(tmp: Path, esc10_root: Path) -> Bad:
    """Issue 23 defect 3: a split CSV without test rows reported 0.00 % and exit 0."""
    listing = _own_list(tmp, esc10_root, ["train", "train", "valid", "valid"])
    return Bad(_own_features(listing, tmp), rf"{listing}: the split column has no 'test' row")


def weights_arch_is_a_path(tmp: Path, esc10_root: Path) -> Bad:
    """Issue 23, defect 2: a stranger's sidecar ``{"arch": "../../../../x"}`` made
    ``x.w/linear/fold1/config.json`` outside ``--out`` before the "unknown arch" error."""
    import torch
    import torchvision

    root, _lines = _esc_copy(tmp, esc10_root, n=2)
    weights = tmp / "in" / "w.pt"
    state = torchvision.models.resnet18().state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, weights)
    weights.with_suffix(".json").write_text('{"arch": "../../../../x"}')
    argv = ["linear-eval", "esc10", "--root", str(root), "--weights", str(weights), "--quiet",
            "--out", str(tmp / "out" / "runs"), "--cache", str(tmp / "out" / "cache")]  # fmt: skip
    return Bad(argv, r"w\.pt: recorded arch refused: unknown arch '\.\./\.\./\.\./\.\./x'")


def figures_missing_runs(tmp: Path, esc10_root: Path) -> Bad:
    argv = ["figures", str(tmp / "in" / "no-such-runs"), "--out", str(tmp / "out" / "figs")]
    return Bad(argv, r"no-such-runs: runs directory not found")


def figures_no_runs(tmp: Path, esc10_root: Path) -> Bad:
    (tmp / "in" / "runs" / "esc10").mkdir(parents=True)  # a runs directory without any run
    argv = ["figures", str(tmp / "in" / "runs"), "--out", str(tmp / "out" / "figs")]
    return Bad(argv, r"runs: no runs \(no metrics.jsonl found\)")


# --- predict over recordings (thresholds files, event settings, outputs) ---------------------


def _predict(tmp: Path, esc10_root: Path, *extra: str) -> list[str]:
    """``predict`` of a random bundle on one real clip, both under ``tmp/in``; results to
    ``tmp/out/det``."""
    (tmp / "in").mkdir(parents=True, exist_ok=True)
    bundle = make_bundle(tmp / "in" / "model.pt")
    clip = tmp / "in" / "clip.ogg"
    shutil.copy(sorted((esc10_root / "audio").glob("*.ogg"))[0], clip)
    out = tmp / "out" / "det"
    return ["predict", str(bundle), str(clip), "--format", "raven", "--out", str(out),
            "--quiet", *extra]  # fmt: skip


def _thresholds_file(name: str, text: str, culprit: str) -> Callable[[Path, Path], Bad]:
    def case(tmp: Path, esc10_root: Path) -> Bad:
        path = tmp / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if text:
            path.write_text(text)
        return Bad(_predict(tmp, esc10_root, "--thresholds", str(path)), culprit.format(path))

    return case


def _predict_option(option: str, value: str, culprit: str) -> Callable[[Path, Path], Bad]:
    def case(tmp: Path, esc10_root: Path) -> Bad:
        return Bad(_predict(tmp, esc10_root, option, value), culprit)

    return case


def predict_out_is_a_file(tmp: Path, esc10_root: Path) -> Bad:
    argv = _predict(tmp, esc10_root)
    kept = tmp / "in" / "notes.txt"  # a file of the user's (under in/: checked unchanged)
    kept.write_text("a file the user keeps\n")
    argv[argv.index("--out") + 1] = str(kept)
    return Bad(argv, rf"--out {kept} is a file")


def predict_skip_existing_without_out(tmp: Path, esc10_root: Path) -> Bad:
    argv = _predict(tmp, esc10_root, "--skip-existing")
    at = argv.index("--out")
    return Bad(argv[:at] + argv[at + 2 :], r"--skip-existing needs --out")


def review_bad_mark(tmp: Path, esc10_root: Path) -> Bad:
    marked = tmp / "in" / "marked.csv"
    marked.parent.mkdir(parents=True, exist_ok=True)
    marked.write_text("id,class,score,mark\n1,dog,0.8,yes\n2,dog,0.3,maybe\n")
    argv = ["review", "--marked", str(marked), "--out", str(tmp / "out" / "thresholds.csv")]
    return Bad(argv, rf"{marked}: line 3: mark 'maybe' is not yes, no or blank")


def review_bad_table(tmp: Path, esc10_root: Path) -> Bad:
    table = tmp / "in" / "a.selections.txt"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("Selection\tBegin Time (s)\n1\t0.0\n")
    argv = ["review", str(table), "--audio", str(tmp / "in"), "--out", str(tmp / "out" / "rev")]
    return Bad(argv, rf"{table}: not a detections table of predict")


def review_bad_value(tmp: Path, esc10_root: Path) -> Bad:
    table = tmp / "in" / "a.selections.txt"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("x\n")
    argv = ["review", str(table), "--per-class", "0", "--out", str(tmp / "out" / "rev")]
    return Bad(argv, r"per_class must be at least 1")


CASES: dict[str, Callable[[Path, Path], Bad]] = {
    "tar: device": tar_device,
    "tar: fifo": tar_fifo,
    "tar: symlink outside": tar_symlink_outside,
    "tar: path traversal": tar_traversal,
    "frontend n_mels=0": _frontend("n_mels=0"),
    "frontend out_frames=0": _frontend("out_frames=0"),
    "frontend f_min=30000": _frontend("f_min=30000"),
    "frontend clip_seconds=1e-9": _frontend("clip_seconds=1e-9"),
    "frontend n_mels=4000": _frontend("n_mels=4000"),
    "frontend f_max=100000": _frontend("f_max=100000"),
    "linear-eval probe=svm": _probe("linear-eval", "probe=svm", "probe: 'svm' is not one of"),
    "finetune probe=logistic": _probe("finetune", "probe=logistic", "linear evaluation only"),
    "linear-eval probe_inner_folds=1": _probe(
        "linear-eval", "probe_inner_folds=1", "probe_inner_folds must be at least 2"
    ),
    "finetune aug_mixup_alpha=-1": _finetune_set("aug_mixup_alpha=-1"),
    "finetune task=regression": _probe("finetune", "task=regression", "task: 'regression'"),
    "finetune optimiser.momentum": _probe(
        "finetune", "optimiser.momentum=0.9", "unknown setting 'optimiser.momentum'"
    ),
    "csv: absolute path": csv_absolute_path,
    "audio: truncated mp3": truncated_mp3,
    "audio: 1e30 float wav": overflowing_float_wav,
    "own: empty folder": own_empty_folder,
    "own: csv without label column": own_csv_without_label,
    "own: recording in two folds": own_recording_in_two_folds,
    "own: csv path with ..": own_csv_escaping_path,
    "own: split without test rows": own_split_without_test,
    "weights: recorded arch is a path": weights_arch_is_a_path,
    "figures: missing runs directory": figures_missing_runs,
    "figures: no runs": figures_no_runs,
    "predict: thresholds file missing": _thresholds_file(
        "none.csv", "", r"{}: thresholds file not found"
    ),
    "predict: threshold not a number": _thresholds_file(
        "t.csv", "class,threshold\na,high\n", r"{}: line 2: threshold 'high' is not a number"
    ),
    "predict: threshold of no class": _thresholds_file(
        "t.csv", "class,threshold\nowl,0.5\n", r"{}: line 2: 'owl' is not a class of the bundle"
    ),
    "predict: thresholds without a threshold column": _thresholds_file(
        "t.csv", "class,score\na,0.5\n", r"{}: missing column\(s\) \['threshold'\]"
    ),
    "predict: thresholds bad JSON": _thresholds_file(
        "t.json", "{thresholds: 1", r"{}: not valid JSON"
    ),
    "predict: negative threshold": _thresholds_file(
        "t.json", '{"thresholds": {"a": -1}}', r"{}: class 'a': threshold -1 must be a score >= 0"
    ),
    "predict --merge-gap -1": _predict_option("--merge-gap", "-1", r"merge_gap must be"),
    "predict --min-score nan": _predict_option("--min-score", "nan", r"min_score must be"),
    "predict --min-event inf": _predict_option("--min-event", "inf", r"min_event must be"),
    "predict --unknown-below -1": _predict_option("--unknown-below", "-1", r"unknown_below must"),
    "predict --top-k 0": _predict_option("--top-k", "0", r"top_k must be at least 1"),
    "predict: --out is a file": predict_out_is_a_file,
    "predict: --skip-existing without --out": predict_skip_existing_without_out,
    "review: bad mark": review_bad_mark,
    "review: not a detections table": review_bad_table,
    "review --per-class 0": review_bad_value,
}


def _snapshot(folder: Path) -> dict[Path, str]:
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: str, tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    if case == "audio: truncated mp3" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    bad = CASES[case](tmp_path, esc10_root)
    (tmp_path / "out").mkdir(exist_ok=True)
    inputs = _snapshot(tmp_path / "in")
    capfd.readouterr()
    code = main(bad.argv)  # a traceback would propagate out of main and fail the test here
    out, err = capfd.readouterr()  # file-descriptor level: C libraries' messages too
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("soundtransfer "), err
    assert "Traceback" not in err
    assert re.search(bad.culprit, err), (bad.culprit, err)
    assert _snapshot(tmp_path / "in") == inputs  # nothing lost or changed
    leftovers = [
        rel for rel in _snapshot(tmp_path / "out") if not any(ok(rel) for ok in ALLOWED_LEFTOVERS)
    ]
    assert leftovers == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert not (tmp_path.parent / "x.w").exists()  # the path a weights file's arch named


def test_skip_bad_leaves_the_overflowing_clip_out(
    tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = overflowing_float_wav(tmp_path, esc10_root)
    assert main([*bad.argv, "--skip-bad"]) == 0
    out, err = capfd.readouterr()
    assert "clips: 3" in out and "bad clips left out: 1" in out
    assert "warning: 1 bad clip(s) left out" in err and "Traceback" not in err


# Inputs read on purpose, with at most a note: (encoding of the metadata, note expected).
ACCEPTED = {
    "csv: UTF-8 with BOM (Excel)": ("utf-8-sig", None),
    "csv: Latin-1": ("latin-1", "not UTF-8"),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_spreadsheet_csv_is_accepted(
    case: str, tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    encoding, note = ACCEPTED[case]
    root, lines = _esc_copy(tmp_path, esc10_root, n=2)
    if encoding == "latin-1":  # a name that is not ASCII, so the file is not UTF-8
        name = lines[1].split(",")[0]
        accented = "caf\u00e9-" + name
        (root / "audio" / name).rename(root / "audio" / accented)
        lines = [lines[0], lines[1].replace(name, accented, 1), lines[2]]
    meta = _write_meta(root, lines, encoding)
    assert main(_features(root, tmp_path)) == 0
    out, err = capfd.readouterr()
    assert "clips: 2" in out and "Traceback" not in err
    if note is None:
        assert err == ""
    else:
        assert err.count("\n") == 1 and note in err and str(meta) in err


# --- leak3 (issue 24 point 1): --group-level ------------------------------------------------


def _own_tree(tmp: Path, esc10_root: Path) -> Path:
    """``tmp/in/tree/<class>/<recording>/take<k>.wav``: 2 classes x 2 recordings x 2 real
    ESC-10 clips each, no recording id in the names (as most own data is named)."""
    lines = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()[1:]
    rows = [r.split(",") for r in lines if ",True," in r]
    root = tmp / "in" / "tree"
    for label in sorted({r[3] for r in rows})[:2]:
        files = [r[0] for r in rows if r[3] == label][:4]
        for k, name in enumerate(files):
            folder = root / label / f"rec{k // 2}"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(esc10_root / "audio" / name, folder / f"take{k % 2}.wav")
    return root


@pytest.mark.parametrize("value", ["0", "-1"])
def test_group_level_below_one_is_one_line_exit_2(
    value: str, tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = _own_tree(tmp_path, esc10_root)
    code = main([*_own_features(root, tmp_path), "--n-folds", "2", "--group-level", value])
    _, err = capfd.readouterr()
    assert code == 2 and err.count("\n") == 1 and "--group-level" in err, err


def test_group_level_groups_a_folder_tree_and_drops_the_own_group_note(
    tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = _own_tree(tmp_path, esc10_root)
    assert main([*_own_features(root, tmp_path), "--n-folds", "2"]) == 0
    plain = "".join(capfd.readouterr())
    assert "their own group" in plain and "--group-level" in plain
    argv = [*_own_features(root, tmp_path / "b"), "--n-folds", "2", "--group-level", "1"]
    assert main(argv) == 0
    grouped = "".join(capfd.readouterr())
    assert "their own group" not in grouped, grouped
    assert "groups = folder level 1 below the class (8 of 8 files)" in grouped, grouped


# --- defects3 (issue 23: outputs equal to inputs, the streamed reader, a failed extraction;
# hostile thresholds files and marked review CSVs) --------------------------------------------


def predict_out_is_the_recording(tmp: Path, esc10_root: Path) -> Bad:
    """Defect 1: ``predict M clip.wav --out clip.wav`` truncated the recording to 0 bytes."""
    argv = _predict(tmp, esc10_root)
    clip = argv[2]
    argv[argv.index("--out") + 1] = clip
    return Bad(argv, rf"--out {re.escape(clip)} is an input")


def predict_out_is_the_bundle(tmp: Path, esc10_root: Path) -> Bad:
    """Defect 1: ``predict model.pt clip.wav --out model.pt`` replaced the bundle, exit 0."""
    argv = _predict(tmp, esc10_root)
    argv[argv.index("--out") + 1] = argv[1]
    return Bad(argv, rf"--out {re.escape(argv[1])} is an input")


def predict_truncated_mp3(tmp: Path, esc10_root: Path) -> Bad:
    """Defect 5: predict's streamed reader classified the first half of a cut MP3, exit 0."""
    argv = _predict(tmp, esc10_root)
    whole, cut = tmp / "whole.mp3", tmp / "in" / "cut.mp3"
    sf.write(whole, *sf.read(argv[2], dtype="float32"))
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    argv[2] = str(cut)
    return Bad(argv, rf"{cut}: truncated file")


def download_unreadable_dataset(tmp: Path, esc10_root: Path) -> Bad:
    """Defect 17: a download whose extracted tree is not a readable dataset left the extracted
    files in ``--root``; only the fetched archive may stay (ALLOWED_LEFTOVERS)."""
    member = tarfile.TarInfo("ESC-50-master/meta/esc50.csv")
    text = b"filename,fold,target,category,esc10,src_file,take\nnone.ogg,1,0,dog,True,1,A\n"
    member.size = len(text)
    archive = tmp / "in" / "ESC-50-master.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tf:
        tf.addfile(member, io.BytesIO(text))
    root = tmp / "out" / "root"
    argv = ["download", "esc10", "--root", str(root), "--url", archive.as_uri(), "--quiet"]
    return Bad(argv, rf"{archive.name}: extracted, but not a readable esc10")


def _marked_csv(text: str, culprit: str, out: str = "t.csv") -> Callable[[Path, Path], Bad]:
    def case(tmp: Path, esc10_root: Path) -> Bad:
        marked = tmp / "in" / "marked.csv"
        marked.parent.mkdir(parents=True, exist_ok=True)
        marked.write_text(text)
        argv = ["review", "--marked", str(marked), "--out", str(tmp / "out" / out)]
        return Bad(argv, culprit.format(re.escape(str(marked))))

    return case


MARKED = "id,class,score,mark\n1,dog,0.9,yes\n2,dog,0.2,no\n"

DEFECTS3: dict[str, Callable[[Path, Path], Bad]] = {
    "predict: --out is the input recording": predict_out_is_the_recording,
    "predict: --out is the bundle": predict_out_is_the_bundle,
    "predict: truncated mp3": predict_truncated_mp3,
    "download: extracted tree not a dataset": download_unreadable_dataset,
    # csv keeps the first copy of a column and json the last copy of a key, without a word.
    "predict: thresholds column twice": _thresholds_file(
        "t.csv", "class,threshold,threshold\na,0.5,0.9\n", r"{}: column\(s\) \['threshold'\] appear"
    ),
    "predict: thresholds JSON key twice": _thresholds_file(
        "t.json", '{"thresholds": {"a": 0.1, "a": 0.9}}', r"{}: key 'a' is given twice"
    ),
    "review: marked column twice": _marked_csv(
        "id,class,score,mark,mark\n1,dog,0.9,yes,no\n", r"{}: column\(s\) \['mark'\] appear"
    ),
    # 1e308 reached matplotlib and died there (singular matrix traceback).
    "review: marked score 1e308": _marked_csv(
        MARKED.replace("0.9", "1e308"), r"{}: line 2: score '1e308' is not in \[0, 1\]"
    ),
    "review: marked row without a class": _marked_csv(
        MARKED.replace("dog", "", 1), r"{}: line 2: a marked row without a class"
    ),
    # The figure is --out with .png: the thresholds would overwrite their own figure.
    "review: --out ends in .png": _marked_csv(
        MARKED, r"t\.png: the thresholds file needs", "t.png"
    ),
}


def test_defects3_predict_out_inside_the_input_folder_reads_no_results(
    tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An --out folder inside the walked input folder is allowed (it is not an input), and a
    second run over the same folder finds the same recordings: results are never read as audio."""
    argv = _predict(tmp_path, esc10_root)
    inside = tmp_path / "in" / "results"
    argv[2] = str(tmp_path / "in")  # the folder holding clip.ogg (and model.pt: not audio)
    argv[argv.index("--out") + 1] = str(inside)
    for _ in range(2):
        assert main(argv) == 0
        err = capfd.readouterr().err
        assert "1 recording(s)" in err and "Traceback" not in err, err
    assert sorted(p.name for p in inside.rglob("*")) == ["clip.selections.txt"]


# --- avg (issue 22): predict --tta and the ensemble command ---------------------------------


def test_avg_predict_bad_tta_is_one_line_exit_2(
    tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bundle = make_bundle(tmp_path / "model.pt")
    clip = sorted((esc10_root / "audio").glob("*.ogg"))[0]
    assert main(["predict", str(bundle), str(clip), "--tta", "-3"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "--tta must be at least 1" in err


def test_avg_ensemble_of_a_damaged_run_is_one_line_exit_2(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cells = []
    for name in ("a", "b"):
        cell = tmp_path / name / "ds" / "x.imagenet" / "finetune"
        (cell / "fold1").mkdir(parents=True)
        cells.append(cell)
    (cells[0] / "fold1" / "final.json").write_text('{"test_acc": 50.0, "labels": [0], ')
    (cells[1] / "fold1" / "final.json").write_text("{}")
    assert main(["ensemble", *map(str, cells)]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and str(cells[0] / "fold1" / "final.json") in err
    assert main(["ensemble", str(cells[1]), "--out", str(cells[1])]) == 2  # output = input
    assert capfd.readouterr().err.count("\n") == 1


# --- ml3 (issue 20): annotated recordings and multi-label tables ------------------------------


def _recordings(tmp: Path, esc10_root: Path) -> Path:
    from .test_recordings_cli import build_recordings

    data = tmp / "in" / "rec"
    data.mkdir(parents=True)
    build_recordings(esc10_root, data, n=2)
    return data


def _rec_features(data: Path, tmp: Path, *extra: str) -> list[str]:
    return [*_own_features(data, tmp), "--n-folds", "2", *extra]


def _edit_table(change: Callable[[list[str]], list[str]], culprit: str) -> Callable[..., Bad]:
    """A case whose first recording's Raven table is ``change``d (its lines)."""

    def case(tmp: Path, esc10_root: Path) -> Bad:
        data = _recordings(tmp, esc10_root)
        table = data / "rec0.Table.1.selections.txt"
        table.write_text("\n".join(change(table.read_text().splitlines())) + "\n")
        return Bad(_rec_features(data, tmp), culprit.format(re.escape(str(table))))

    return case


def _swap_times(lines: list[str]) -> list[str]:
    cells = lines[2].split("\t")
    cells[3], cells[4] = cells[4], cells[3]
    return [*lines[:2], "\t".join(cells), *lines[3:]]


def _no_end_column(lines: list[str]) -> list[str]:
    return ["\t".join(c for i, c in enumerate(line.split("\t")) if i != 4) for line in lines]


def _past_the_end(lines: list[str]) -> list[str]:
    return [*lines, "9\tSpectrogram 1\t1\t19.000\t25.000\tdog"]


def rec_table_without_audio(tmp: Path, esc10_root: Path) -> Bad:
    data = _recordings(tmp, esc10_root)
    (data / "rec1.wav").unlink()
    return Bad(_rec_features(data, tmp), r"rec1\.Table\.1\.selections\.txt")


def _four_clips(tmp: Path, esc10_root: Path) -> tuple[Path, list[Path]]:
    """``tmp/in`` holding copies of four real ESC-10 clips, and the originals."""
    data = tmp / "in"
    data.mkdir()
    clips = sorted((esc10_root / "audio").glob("*.ogg"))[:4]
    for c in clips:
        shutil.copy(c, data)
    return data, clips


def _labels_csv(cell: str, culprit: str, absent: bool = False) -> Callable[..., Bad]:
    def case(tmp: Path, esc10_root: Path) -> Bad:
        data, clips = _four_clips(tmp, esc10_root)
        names = [c.name for c in clips] + (["absent.wav"] if absent else [])
        rows = ["file,labels"] + [f"{n},{cell if i == 1 else 'dog'}" for i, n in enumerate(names)]
        table = data / "l.csv"
        table.write_text("\n".join(rows) + "\n")
        return Bad(_own_features(table, tmp), culprit.format(re.escape(str(table))))

    return case


def _rec_option(*extra: str, culprit: str) -> Callable[..., Bad]:
    def case(tmp: Path, esc10_root: Path) -> Bad:
        return Bad(_rec_features(_recordings(tmp, esc10_root), tmp, *extra), culprit)

    return case


ML3: dict[str, Callable[[Path, Path], Bad]] = {
    "ml3: labels cell a;;b": _labels_csv(
        "dog;;rain", r"{}: line 3: labels 'dog;;rain' hold an empty"
    ),
    "ml3: labels csv naming an absent file": _labels_csv("dog", r"absent\.wav", absent=True),
    "ml3: raven table without End Time": _edit_table(_no_end_column, r"{}.*End Time"),
    "ml3: raven box with begin after end": _edit_table(_swap_times, r"{}: line 3"),
    "ml3: raven box past the recording's end": _edit_table(
        _past_the_end, r"{}: line 6: box 19-25 s ends after the end of rec0\.wav"
    ),
    "ml3: raven table whose audio is absent": rec_table_without_audio,
    "ml3: --min-overlap without a unit": _rec_option(
        "--min-overlap", "50", culprit="--min-overlap"
    ),
    "ml3: --window 0": _rec_option("--window", "0", culprit=r"--window / --hop: window_s 0"),
    "ml3: --hop longer than --window": _rec_option(
        "--window", "2", "--hop", "3", culprit=r"--window / --hop: hop_s 3 is longer"
    ),
}


# --- leak4 (issue 24 point 2 at the command line: a shifted copy in another fold) -------------


def own_shifted_copy_in_another_fold(tmp: Path, esc10_root: Path) -> Bad:
    """Issue 24 point 2: a real clip and a copy of it delayed by 100 ms (re-exported to FLAC
    under an unrelated name and group) in another fold went into training unseen; ``features``
    must stop, naming both files. Every file has its own group, so no note is printed."""
    root, lines = _esc_copy(tmp, esc10_root, n=4)
    names = [f"audio/{r.split(',')[0]}" for r in lines[1:]]
    x, sr = sf.read(root / names[0], dtype="float32")
    delayed = np.r_[np.zeros(int(0.1 * sr), x.dtype), x][: len(x)]
    sf.write(root / "audio" / "export.flac", delayed, sr)  # 16-bit FLAC: re-quantised
    rows = [f"{n},{'rain' if k % 2 else 'dog'},{1 + k // 2},g{k}" for k, n in enumerate(names)]
    listing = root / "list.csv"
    listing.write_text("\n".join(["file,label,fold,group", *rows, "audio/export.flac,dog,2,g9"]))
    first = re.escape(names[0])
    return Bad(_own_features(listing, tmp), rf"near-duplicate audio.*{first} ~ audio/export\.flac")


LEAK4: dict[str, Callable[[Path, Path], Bad]] = {
    "own: a copy shifted by 100 ms in another fold": own_shifted_copy_in_another_fold,
}


# --- hostile5 (issue 23, last deliverable: hostile input to predict and review; see
# docs/hostile-detection.md) ------------------------------------------------------------------

HOSTILE5: dict[str, Callable[[Path, Path], Bad]] = {
    # Scores are softmax or sigmoid outputs in [0, 1]: --min-score 2 reported nothing, exit 0,
    # and --unknown-below 2 turned every hit into "unknown", both without a word.
    "predict --min-score 2": _predict_option("--min-score", "2", r"min_score must be a score in"),
    "predict --unknown-below 2": _predict_option(
        "--unknown-below", "2", r"unknown_below must be a score in"
    ),
    # A threshold of 1.5 silenced the class (inf is the documented way to say so).
    "predict: threshold above 1": _thresholds_file(
        "t.csv", "class,threshold\na,1.5\n", r"{}: line 2: threshold '1.5' is above 1"
    ),
    "predict: JSON threshold above 1": _thresholds_file(
        "t.json", '{"thresholds": {"b": 7}}', r"{}: class 'b': threshold 7 is above 1"
    ),
}


# --- ml5 (issue 20 point 4): hostile multi-label CSVs and Raven tables ----------------------


def _labels_csv_text(header: str, row: Callable[[int, str], str]) -> Callable[..., Bad]:
    """A ``labels`` CSV of four real clips: ``header``, then ``row(i, name)`` per clip."""

    def case(tmp: Path, esc10_root: Path) -> Bad:
        data, clips = _four_clips(tmp, esc10_root)
        table = data / "l.csv"
        table.write_text("\n".join([header, *(row(i, c.name) for i, c in enumerate(clips))]))
        culprit = {"labels,labels": r"line 1: column 'labels' given twice"}.get(
            header.removeprefix("file,"), r"line 3: label 'dog' differs only by case from 'Dog'"
        )
        return Bad(_own_features(table, tmp), rf"{re.escape(str(table))}: {culprit}")

    return case


def _selection_twice(lines: list[str]) -> list[str]:
    return ["\t".join([line.split("\t")[0], *line.split("\t")]) for line in lines]


def _dog_capitalised(lines: list[str]) -> list[str]:
    """The last box (line 5, ``dog``) relabelled ``Dog``: line 3 spells it ``dog``."""
    assert lines[4].endswith("\tdog") and lines[2].endswith("\tdog")
    return [*lines[:4], lines[4].removesuffix("dog") + "Dog", *lines[5:]]


def rec_boxes_all_noise(tmp: Path, esc10_root: Path) -> Bad:
    """Every Raven box labelled ``Noise``: the default background names reach the annotation
    reader at the command line (ignoring case), so no class is left (before: one class
    ``Noise`` was learnt from the noise boxes)."""
    data = _recordings(tmp, esc10_root)
    for table in sorted(data.glob("*.selections.txt")):
        lines = table.read_text().splitlines()
        rows = ["\t".join([*line.split("\t")[:-1], "Noise"]) for line in lines[1:]]
        table.write_text("\n".join([lines[0], *rows]) + "\n")
    return Bad(_rec_features(data, tmp), r"no class: every box is background")


def _negative_begin(lines: list[str]) -> list[str]:
    cells = lines[2].split("\t")
    cells[3] = "-1.5"
    return [*lines[:2], "\t".join(cells), *lines[3:]]


def labels_csv_all_empty(tmp: Path, esc10_root: Path) -> Bad:
    """A ``labels`` column that is empty on every row: no class to learn."""
    data, clips = _four_clips(tmp, esc10_root)
    table = data / "l.csv"
    table.write_text("\n".join(["file,labels", *(f"{c.name}," for c in clips)]) + "\n")
    return Bad(_own_features(table, tmp), rf"{re.escape(str(table))}: the 'labels' column is empty")


def labels_csv_test_label_never_trained(tmp: Path, esc10_root: Path) -> Bad:
    """A ``labels`` split CSV whose class ``rain`` is named on a test row only: no trained
    class stands for it."""
    data, clips = _four_clips(tmp, esc10_root)
    cells = [("dog", "train"), ("dog", "train"), ("dog;rain", "test"), ("dog", "valid")]
    rows = [f"{c.name},{lab},{split}" for c, (lab, split) in zip(clips, cells, strict=True)]
    table = data / "l.csv"
    table.write_text("\n".join(["file,labels,split", *rows]) + "\n")
    culprit = rf"{re.escape(str(table))}: class\(es\) \['rain'\] have no 'train' row"
    return Bad(_own_features(table, tmp), culprit)


ML5: dict[str, Callable[[Path, Path], Bad]] = {
    "ml5: labels csv naming a class no training row has": labels_csv_test_label_never_trained,
    "ml5: labels column empty on every row": labels_csv_all_empty,
    "ml5: raven box with a negative begin time": _edit_table(
        _negative_begin, r"{}: line 3: negative time"
    ),
    "ml5: raven boxes all labelled Noise (background)": rec_boxes_all_noise,
    "ml5: labels csv with the labels column twice": _labels_csv_text(
        "file,labels,labels", lambda i, n: f"{n},dog,rain"
    ),
    "ml5: labels differing only by case": _labels_csv_text(
        "file,labels", lambda i, n: f"{n},{('Dog', 'dog', 'rain', 'rain')[i]}"
    ),
    "ml5: raven labels differing only by case": _edit_table(
        _dog_capitalised,
        r"{0}: line 5: label 'Dog' differs only by case from 'dog' \({0}: line 3\)",
    ),
    "ml5: raven table with Selection twice": _edit_table(
        _selection_twice, r"{}: line 1: column 'selection' given twice"
    ),
}


# --- the appended cases: each block above adds its dict; one test runs them all -----------------

APPENDED: dict[str, Callable[[Path, Path], Bad]] = {**DEFECTS3, **ML3, **LEAK4, **HOSTILE5, **ML5}
# leak4: the duplicate check runs on the built store's audio (features/dataset.py step 4), so the
# finished store's index and the fingerprint cache stay: a rerun with --allow-duplicates reuses
# both instead of extracting again (no run loses finished work).
KEPT: dict[str, tuple[Callable[[Path], bool], ...]] = {
    case: (
        lambda rel: rel.parts[:2] == ("cache", "features") and rel.name == "index.json",
        lambda rel: rel.parts[:2] == ("cache", "leakage") and rel.suffix == ".json",
    )
    for case in LEAK4
}


@pytest.mark.parametrize("case", list(APPENDED))
def test_appended_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: str,
    tmp_path: Path,
    esc10_root: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same checks as the main test (exit 2, one line, inputs unchanged, no leftovers)."""
    if "mp3" in case and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    kept = ALLOWED_LEFTOVERS + KEPT.get(case, ())
    monkeypatch.setattr(sys.modules[__name__], "ALLOWED_LEFTOVERS", kept)
    monkeypatch.setitem(CASES, case, APPENDED[case])
    test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, esc10_root, capfd)


# --- defects4 (issue 23 defect 15: progress bars on a stderr that is not a terminal) ---------


def test_defects4_download_draws_no_bars_off_a_terminal(
    tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without ``--quiet``, a download whose stderr is a pipe or log file (here pytest's capture)
    printed every redraw of tqdm's bar before the error; now the error is the only line."""
    bad = download_unreadable_dataset(tmp_path, esc10_root)
    argv = [a for a in bad.argv if a != "--quiet"]
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "\r" not in err, err
    assert re.search(bad.culprit, err), err


# --- ml4 (issue 20): comma-separated folder names and background folders --------------------


def _ml4_tree(tmp: Path, esc10_root: Path, folders: tuple[str, ...]) -> Path:
    """``tmp/in/tree/<folder>/<clip>``: two real ESC-10 clips per folder (copied)."""
    clips = sorted((esc10_root / "audio").glob("*.ogg"))
    data = tmp / "in" / "tree"
    for i, folder in enumerate(folders):
        (data / folder).mkdir(parents=True)
        for clip in clips[2 * i : 2 * i + 2]:
            shutil.copy(clip, data / folder)
    return data


ML4 = {
    "folder: empty label in a comma name": (("dog,,rain", "rain"), (), r"holds an empty label"),
    "folder: background name joined with a label": (
        ("dog,noise", "rain"), (), r"'noise' is a background folder name"
    ),
    "folder: background folders only": (("noise", "other"), (), r"only background folders"),
    "folder: labels differing only by case": (
        ("Dog", "dog", "rain"), (), r"tree/dog: label 'dog' differs only by case from 'Dog' \("
    ),
    "folder: a comma name's label differing only by case": (
        ("dog", "Dog,rain", "rain"),
        (),
        r"tree/dog: label 'dog' differs only by case from 'Dog' \(.*Dog,rain\)",
    ),
    "option: empty background folder name": (
        ("dog", "rain"), ("--background-folders", "noise,,other"), r"--background-folders expects"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ML4))
def test_ml4_bad_folder_is_one_line_exit_2(
    case: str, tmp_path: Path, esc10_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folders, extra, culprit = ML4[case]
    data = _ml4_tree(tmp_path, esc10_root, folders)
    inputs = _snapshot(tmp_path / "in")
    capfd.readouterr()
    assert main([*_own_features(data, tmp_path), *extra]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and re.search(culprit, err), err
    assert _snapshot(tmp_path / "in") == inputs
