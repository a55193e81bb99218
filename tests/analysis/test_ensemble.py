"""Ensembles of runs' saved test probabilities: the averaged decision, the checks that the
members share splits and clips, the table and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soundtransfer.analysis.ensemble import ensemble_of, ensemble_table
from soundtransfer.cli.main import main
from soundtransfer.errors import RunError

CLASSES = ["a", "b", "c"]
LABELS = [0, 1, 2, 0]


def _cell(root: Path, weights: str, probs: dict[str, list[list[float]]]) -> Path:
    """A run cell ``root/ds/<weights>/finetune`` with one final.json per split."""
    cell = root / "ds" / weights / "finetune"
    for split, p in probs.items():
        pred = np.asarray(p).argmax(1)
        acc = 100.0 * float(np.mean(pred == np.asarray(LABELS)))
        (cell / split).mkdir(parents=True)
        final = {"test_acc": acc, "labels": LABELS, "predictions": pred.tolist(),
                 "classes": CLASSES, "test_probabilities": p}  # fmt: skip
        (cell / split / "final.json").write_text(json.dumps(final))
    return cell


# Member A is right on clips 0, 1; B on clips 0, 2; neither alone on 3. Averaged, clip 1 and 2
# go to whoever is more confident: A on clip 1 (0.9 vs B's 0.4 for class 1), B on clip 2.
A = [[0.8, 0.1, 0.1], [0.05, 0.9, 0.05], [0.5, 0.4, 0.1], [0.1, 0.8, 0.1]]
B = [[0.6, 0.2, 0.2], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.2, 0.3, 0.5]]


def test_ensemble_averages_probabilities_and_compares_with_each_member(tmp_path: Path) -> None:
    a = _cell(tmp_path / "r1", "x.imagenet", {"fold1": A, "fold2": B})
    b = _cell(tmp_path / "r2", "y.imagenet", {"fold1": B, "fold2": B})
    e = ensemble_of([a, b])
    assert e.splits == ("fold1", "fold2") and e.dataset == "ds"
    assert e.accuracies == (75.0, 50.0)  # fold1: clips 0, 1, 2 right; fold2: B alone
    assert e.singles == ((50.0, 50.0), (50.0, 50.0))
    assert [p.diff.mean for p in e.paired()] == [12.5, 12.5]
    md, table = ensemble_table(e)
    assert "ensemble of 2" in md and "x.imagenet finetune" in md and "+12.50" in md
    assert table.splitlines()[1].startswith("ds,ensemble of 2,62.5000")


def test_members_of_the_same_name_are_told_apart(tmp_path: Path) -> None:
    a = _cell(tmp_path / "seed0", "x.imagenet", {"fold1": A})
    b = _cell(tmp_path / "seed1", "x.imagenet", {"fold1": B})
    assert all("seed" in name for name in ensemble_of([a, b]).members)


def test_bad_members_are_one_error_naming_them(tmp_path: Path) -> None:
    a = _cell(tmp_path / "r1", "x.imagenet", {"fold1": A, "fold2": A})
    with pytest.raises(RunError, match="at least 2"):
        ensemble_of([a])
    fewer = _cell(tmp_path / "r2", "x.imagenet", {"fold1": A})
    with pytest.raises(RunError, match="splits"):
        ensemble_of([a, fewer])
    old = _cell(tmp_path / "r3", "x.imagenet", {"fold1": A, "fold2": A})
    final = old / "fold2" / "final.json"
    data = json.loads(final.read_text())
    del data["test_probabilities"]
    final.write_text(json.dumps(data))
    with pytest.raises(RunError, match=f"{final}: no test_probabilities"):
        ensemble_of([a, old])
    other = _cell(tmp_path / "r4", "x.imagenet", {"fold1": A, "fold2": A})
    data = json.loads((other / "fold1" / "final.json").read_text())
    (other / "fold1" / "final.json").write_text(json.dumps({**data, "labels": [1, 1, 2, 0]}))
    with pytest.raises(RunError, match="other labels"):
        ensemble_of([a, other])
    with pytest.raises(RunError, match="no finished split"):
        ensemble_of([a, tmp_path])


def test_cli_prints_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _cell(tmp_path / "r1", "x.imagenet", {"fold1": A, "fold2": B})
    b = _cell(tmp_path / "r2", "y.imagenet", {"fold1": B, "fold2": B})
    assert main(["ensemble", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 runs, 2 splits" in out and "75.00" in out
    assert (tmp_path / "out" / "ensemble.csv").read_text().count("\n") == 4  # header, 3 rows
