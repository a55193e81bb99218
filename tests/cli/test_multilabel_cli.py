"""Multi-label own data at the command line (issue 20): a CSV with a ``labels`` column of real
ESC-10 clips, ``linear-eval`` end to end: the task chosen from the data, mAP printed,
thresholds chosen on the validation rows and stored in the bundle."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from soundtransfer.cli.main import main
from soundtransfer.inference.bundle import load_bundle

CLASSES = ("dog", "rain", "chainsaw")


def labels_csv(esc10_root: Path, dst: Path) -> Path:
    """``dst/list.csv``: 4 clips per class and part (train / valid / test) with their class
    in ``labels``, plus per part 2 crackling-fire clips with an empty cell (negatives)."""
    rows = list(csv.DictReader((esc10_root / "meta" / "esc50.csv").open()))
    parts = {1: "train", 2: "train", 3: "valid", 4: "test"}
    out = []
    for name in (*CLASSES, "crackling_fire"):
        for fold, part in parts.items():
            mine = [r for r in rows if r["category"] == name and int(r["fold"]) == fold]
            for r in mine[: 2 if name == "crackling_fire" else 4]:
                shutil.copy(esc10_root / "audio" / r["filename"], dst)
                labels = "" if name == "crackling_fire" else name
                out.append({"file": r["filename"], "labels": labels, "split": part})
    path = dst / "list.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "labels", "split"])
        w.writeheader()
        w.writerows(out)
    return path


@pytest.mark.parametrize("probe", ["linear", "logistic", "mlp"])
def test_linear_eval_labels_csv_prints_map_and_stores_thresholds(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], probe: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    listing = labels_csv(esc10_root, data)
    runs = tmp_path / "runs"
    argv = ["linear-eval", str(listing), "--weights", "random", "--arch", "resnet18",
            "--preset", "cpu", "--set", "epochs=2", "--set", "batch_size=8",
            "--set", f"probe={probe}", "--set", "probe_inner_folds=2", "--out",
            str(runs), "--cache", str(tmp_path / "cache"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert re.search(r"^\s+test\s+mAP \d\.\d{3}$", out, re.MULTILINE), out
    assert "test: mAP" in out and "thresholds:" in out
    run = runs / "own-list" / "resnet18.random" / probe / "fixed"
    final = json.loads((run / "final.json").read_text())
    assert final["task"] == "multi_label" and 0.0 <= final["test_mAP"] <= 1.0
    assert final["classes"] == sorted(CLASSES)  # the negatives' folder is no class
    assert all(len(s) <= 1 and set(s) <= {0, 1, 2} for s in final["labels"])
    assert sum(not s for s in final["labels"]) == 2  # the test part's two negatives
    assert set(final["thresholds"]) == set(CLASSES)
    _, meta = load_bundle(run / "model.pt")
    assert meta.task == "multi_label" and meta.thresholds == final["thresholds"]
    assert (run / "thresholds.csv").read_text().startswith("class,threshold")
    # the split column's validation rows, not a carve of the training rows
    config = json.loads((run / "config.json").read_text())
    assert config["n_valid"] == 14 and config["n_test"] == 14


@pytest.mark.parametrize(
    ("cell", "message"),
    [("dog;;rain", "empty name"), ("", "empty on every row")],
)
def test_bad_labels_cell_is_one_line(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, message: str
) -> None:
    rows = list(csv.DictReader((esc10_root / "meta" / "esc50.csv").open()))[:3]
    for r in rows:
        shutil.copy(esc10_root / "audio" / r["filename"], tmp_path)
    lines = ["file,labels"] + [f"{r['filename']},{cell}" for r in rows]
    (tmp_path / "l.csv").write_text("\n".join(lines) + "\n")
    argv = ["linear-eval", str(tmp_path / "l.csv"), "--weights", "random", "--arch",
            "resnet18", "--out", str(tmp_path / "runs"),
            "--cache", str(tmp_path / "c")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "l.csv" in err[0], err


def test_finished_multilabel_run_is_reused_and_tabled(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finished multi-label run's ``final.json`` (``test_mAP``, label sets, no ``test_acc``)
    is read back: the same command again reuses it, and the results table shows its mAP %."""
    from soundtransfer.analysis.tables import collect_results, results_table

    data = tmp_path / "data"
    data.mkdir()
    runs = tmp_path / "runs"
    argv = ["linear-eval", str(labels_csv(esc10_root, data)), "--weights", "random",
            "--arch", "resnet18", "--preset", "cpu", "--set", "probe=logistic",
            "--set", "probe_inner_folds=2", "--out", str(runs), "--cache",
            str(tmp_path / "cache"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0, capsys.readouterr().err  # done: read back, not trained again
    assert capsys.readouterr().out == first
    final = json.loads((runs / "own-list" / "resnet18.random" / "logistic" / "fixed" /
                        "final.json").read_text())  # fmt: skip
    (row,) = collect_results(runs)
    assert row.metric == "mAP" and row.accuracies == (100 * final["test_mAP"],)
    markdown, table_csv = results_table([row])
    assert "mAP % (mean +- std)" in markdown and f"{100 * final['test_mAP']:.2f}" in markdown
    assert table_csv.splitlines()[0].endswith(",metric") and table_csv.splitlines()[1].endswith(
        ",mAP"
    )
    # figures: no confusion matrix for multi-label runs, the results table with their mAP
    figs = tmp_path / "figs"
    assert main(["figures", str(runs), "--out", str(figs)]) == 0, capsys.readouterr().err
    assert not list(figs.glob("confusion*"))
    assert "mAP %" in (figs / "results.md").read_text()
    # ensemble: one line naming the multi-label run, exit 2
    cell = runs / "own-list" / "resnet18.random" / "logistic"
    assert main(["ensemble", str(cell), str(cell)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a multi-label run" in err, err
