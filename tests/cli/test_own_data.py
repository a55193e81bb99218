"""Own data at the command line, tried as a new user would (issue 12).

Real ESC-10 clips from ../shared/data copied into temporary layouts: a folder of class
folders, a CSV with a group column, a set where one recording sits in two folds, and the same
clips in the official ESC-50 layout, which must give exactly the accuracy of the folder.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from soundtransfer.cli.main import main

# Four classes whose alphabetical order is not their ESC-50 target order (dog 0, rain 10,
# sneezing 21, chainsaw 41), so label numbering cannot make two readings agree by chance.
CLASSES = ("dog", "rain", "sneezing", "chainsaw")


def esc_rows(esc10_root: Path, per_fold: int = 4, folds: tuple[int, ...] = (1, 2)) -> list[dict]:
    """``per_fold`` ESC-10 metadata rows per class and fold (4 classes x 8 clips by default)."""
    rows = list(csv.DictReader((esc10_root / "meta" / "esc50.csv").open()))
    out = []
    for name in CLASSES:
        for k in folds:
            mine = [r for r in rows if r["category"] == name and int(r["fold"]) == k]
            out += mine[:per_fold]
    return out


def class_folders(esc10_root: Path, rows: list[dict], dst: Path) -> Path:
    """``dst/<category>/<file name>`` copies of the rows' clips."""
    for r in rows:
        (dst / r["category"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(esc10_root / "audio" / r["filename"], dst / r["category"])
    return dst


def official_layout(esc10_root: Path, rows: list[dict], dst: Path) -> Path:
    """``dst/audio/*`` and ``dst/meta/esc50.csv`` (the official columns) of the rows."""
    (dst / "audio").mkdir(parents=True)
    (dst / "meta").mkdir()
    with (dst / "meta" / "esc50.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        shutil.copy(esc10_root / "audio" / r["filename"], dst / "audio")
    return dst


def accuracies(out: str) -> dict[str, str]:
    """``{"fold1": "62.50", ..., "mean": "..."}`` from a finetune / linear-eval printout."""
    return dict(re.findall(r"^\s+(fold\d+|fixed|test|mean)\s+([\d.]+)", out, re.MULTILINE))


@pytest.mark.slow
def test_folder_to_model_predict_and_figures(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune DIR``: folds from the names, front end and why, leakage report and class
    balance before training, cross-validated accuracy, a bundle whose class names are the
    folders, ``predict`` and ``figures`` on the run."""
    rows = esc_rows(esc10_root)
    data = class_folders(esc10_root, rows, tmp_path / "my sounds")
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    argv = ["finetune", str(data), "--weights", "random", "--arch", "resnet18", "--preset",
            "cpu", "--set", "epochs=1", "--set", "batch_size=8", "--out", str(runs),
            "--cache", str(cache), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "32 clips, 4 classes (folder), folds: names, 2 folds" in out
    assert "sample_rate 44100 Hz: the rate of every file" in out
    assert "groups: no group in two folds" in out and "32 clips fingerprinted" in out
    balance = out[out.index("class balance") :]
    for name in CLASSES:
        assert re.search(rf"^\s+{name}\s+4\s+4\s+8$", balance, re.MULTILINE), balance
    assert out.index("class balance") < out.index("mean")  # the report comes first
    accs = accuracies(out)
    assert set(accs) == {"fold1", "fold2", "mean"}, out
    cell = runs / "own-my_sounds" / "resnet18.random" / "finetune"
    config = json.loads((cell / "fold1" / "config.json").read_text())
    origin = config["dataset_origin"]
    assert origin["source"] == str(data) and origin["layout"] == "folder"
    assert origin["folds"]["method"] == "names" and "esc50 pattern" in origin["folds"]["groups"]
    assert any("44100" in r for r in origin["frontend"])
    assert f"soundtransfer predict {cell / 'fold1' / 'model.pt'}" in out
    assert "Traceback" not in err

    clip = data / "dog" / rows[0]["filename"]
    assert main(["predict", str(cell / "fold1" / "model.pt"), str(clip), "--format", "json"]) == 0
    pred = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    named = {c for c in re.findall(r'"([a-z_]+)"', json.dumps(pred)) if c in CLASSES}
    assert named == set(CLASSES), pred  # the bundle carries the folder names as classes

    figures = tmp_path / "figures"
    assert main(["figures", str(runs), "--dataset", "own-my_sounds", "--out", str(figures)]) == 0
    written = capsys.readouterr().out.split()
    assert written and all(Path(p).exists() for p in written)
    assert any("confusion" in p for p in written), written


def test_csv_with_groups_gets_grouped_seeded_folds(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV whose file names carry no recording id: the group column keeps recordings in
    one fold; the seed is reported and another seed is another store (another identity)."""
    rows = esc_rows(esc10_root, per_fold=2, folds=(1, 2, 3))  # 4 classes x 6 clips
    data = tmp_path / "csvdata"
    (data / "clips").mkdir(parents=True)
    listing = []
    for i, r in enumerate(rows):
        name = f"clip{i:03d}.ogg"
        shutil.copy(esc10_root / "audio" / r["filename"], data / "clips" / name)
        listing.append({"file": f"clips/{name}", "label": r["category"], "group": r["src_file"]})
    with (data / "list.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "group"])
        w.writeheader()
        w.writerows(listing)
    cache = tmp_path / "cache"
    base = ["features", str(data / "list.csv"), "--cache", str(cache), "--n-folds", "3",
            "--quiet"]  # fmt: skip
    assert main([*base, "--fold-seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "24 clips, 4 classes (csv), folds: kfold, 3 folds, seed 3" in out
    assert "groups = the group column" in out and "no group in two folds" in out
    store = Path(re.search(r"^store: (.+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    index = json.loads((store / "index.json").read_text())
    fold_of: dict[str, set[int]] = {}
    for _file, _label, fold, group in index["rows"]:
        fold_of.setdefault(group, set()).add(fold)
    assert len(fold_of) == len({r["src_file"] for r in rows})
    assert all(len(f) == 1 for f in fold_of.values())  # no recording split across folds
    assert main([*base, "--fold-seed", "4"]) == 0
    other = capsys.readouterr().out
    assert "seed 4" in other and f"store: {store}" not in other


def test_duplicate_audio_across_folds_is_an_error_unless_allowed(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same audio under another recording id in another fold: no group check can see it,
    the fingerprints do; exit 2 naming both files, or a warning with --allow-duplicates."""
    rows = esc_rows(esc10_root, per_fold=2)
    data = class_folders(esc10_root, rows, tmp_path / "dups")
    first = rows[0]["filename"]  # fold 1, class dog
    copy = data / "dog" / "2-999999-A.ogg"  # claims fold 2 and a recording of its own
    shutil.copy(data / "dog" / first, copy)
    argv = ["features", str(data), "--cache", str(tmp_path / "cache"), "--quiet"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "the same audio in fold 1 and fold 2" in err, err
    assert f"dog/{first}" in err and "dog/2-999999-A.ogg" in err and "--allow-duplicates" in err
    assert f"exact: dog/{first} (fold 1) ~ dog/2-999999-A.ogg (fold 2)" in out  # the report
    assert main([*argv, "--allow-duplicates"]) == 0
    assert "1 duplicate pair(s) across folds kept" in capsys.readouterr().err


@pytest.mark.slow
def test_folder_accuracy_equals_official_reader(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same clips with the same folds through the official ESC-50 reader and as class
    folders: identical accuracy per fold and identical predictions (lite0 linear eval)."""
    rows = esc_rows(esc10_root)
    folder = class_folders(esc10_root, rows, tmp_path / "folder")
    official = official_layout(esc10_root, rows, tmp_path / "official")
    cache = tmp_path / "cache"
    common = ["--weights", "lite0", "--preset", "cpu", "--cache", str(cache), "--quiet"]
    assert main(["linear-eval", "esc10", "--root", str(official), "--out",
                 str(tmp_path / "r1"), *common]) == 0  # fmt: skip
    out_official = capsys.readouterr().out
    assert main(["linear-eval", str(folder), "--out", str(tmp_path / "r2"), *common]) == 0
    out_folder = capsys.readouterr().out
    acc_official, acc_folder = accuracies(out_official), accuracies(out_folder)
    assert set(acc_official) == {"fold1", "fold2", "mean"}
    # Exact: the same clips in the same canonical order, the same computation repeated in this
    # process (store rows, embeddings, probe); any dependence on the layout would show.
    assert acc_folder == acc_official, (out_official, out_folder)
    for k in (1, 2):
        a = json.loads(
            (tmp_path / f"r1/esc10/efficientnet_lite0.lite0/linear/fold{k}/final.json").read_text()
        )
        b = json.loads(
            (
                tmp_path / f"r2/own-folder/efficientnet_lite0.lite0/linear/fold{k}/final.json"
            ).read_text()
        )
        assert a["classes"] == b["classes"] == sorted(CLASSES)
        assert a["predictions"] == b["predictions"] and a["labels"] == b["labels"]
