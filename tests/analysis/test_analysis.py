"""Result tables (means over folds beside the paper) and figure files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soundtransfer.analysis import collect_results, make_figures, plot_tsne, results_table
from soundtransfer.analysis.tables import collect_protocol, paired_rows, protocol_table
from soundtransfer.config import ConfigError
from soundtransfer.errors import RunError


def _fake_runs(root: Path) -> None:
    rng = np.random.default_rng(0)
    for weights, accs in (
        ("resnet50.supervised", [90.0, 92.0, 88.0]),
        ("resnet50.random", [70.0, 75.0, 80.0]),
    ):
        for k, acc in enumerate(accs, start=1):
            d = root / "esc50" / weights / "finetune" / f"fold{k}"
            d.mkdir(parents=True)
            labels = rng.integers(0, 3, 20).tolist()
            (d / "final.json").write_text(
                json.dumps(
                    {
                        "test_acc": acc,
                        "labels": labels,
                        "predictions": labels[::-1],
                        "classes": ["dog", "rain", "siren"],
                    }
                )
            )
            with (d / "metrics.jsonl").open("w") as fh:
                for e in range(1, 6):
                    # Test accuracy peaks at epoch 3 and ends at the final accuracy.
                    test = acc - 1.0 + (2.0 if e == 3 else 0.0) + (1.0 if e == 5 else 0.0)
                    rec = {"epoch": e, "train_loss": 2.0 / e, "test_acc": test}
                    fh.write(json.dumps(rec) + "\n")


def test_table_means_and_paper_column(tmp_path: Path) -> None:
    _fake_runs(tmp_path)
    rows = collect_results(tmp_path)
    assert [r.weights for r in rows] == ["resnet50.random", "resnet50.supervised"]
    sup = rows[1]
    assert sup.mean == pytest.approx(90.0) and sup.std == pytest.approx(2.0)
    assert sup.paper == 90.55 and rows[0].paper == 78.25
    md, csv = results_table(rows)
    assert "90.00 +- 2.00" in md and "90.55" in md and "fold2 92.00" in md
    # 95 % t-interval: 90 +- t(0.975, 2) * 2 / sqrt(3) = 90 +- 4.97.
    assert "[85.03, 94.97]" in md
    line = csv.splitlines()[2]
    assert line.startswith("esc50,resnet50.supervised,finetune,90.0000,2.0000,85.0317,94.9683,3")
    # The two weight sources share their folds: one paired comparison, random - supervised.
    assert "Paired comparisons" in md and "| -15.00 +- 6.24 |" in md
    (pair,) = paired_rows(rows)
    assert pair[2].wins == (0, 0, 3) and pair[2].perm_pvalue == pytest.approx(2 / 8)


def test_no_pairs_across_different_folds(tmp_path: Path) -> None:
    _fake_runs(tmp_path)
    rows = collect_results(tmp_path)
    (tmp_path / "esc50" / "resnet50.random" / "finetune" / "fold3" / "final.json").unlink()
    rows = collect_results(tmp_path)
    assert paired_rows(rows) == []
    assert "Paired" not in results_table(rows)[0]


def test_protocol_table_from_metrics(tmp_path: Path) -> None:
    _fake_runs(tmp_path)
    prot = collect_protocol(tmp_path)
    assert [r.weights for r in prot] == ["resnet50.random", "resnet50.supervised"]
    sup = prot[1].summary
    assert sup.oracle_epochs == (3, 3, 3) and sup.best_val is None
    assert sup.oracle.mean == pytest.approx(91.0) and sup.final.mean == pytest.approx(90.0)
    md, csv = protocol_table(prot)
    assert "| +1.00 |" in md and "91.00 +- 2.00" in md
    assert csv.splitlines()[2].split(",")[-2] == "3;3;3"
    full_md, _ = results_table(collect_results(tmp_path), prot)
    assert "Epoch selection" in full_md
    # A run that skipped the test on some epoch has no per-epoch curve: left out.
    m = tmp_path / "esc50" / "resnet50.random" / "finetune" / "fold1" / "metrics.jsonl"
    m.write_text(json.dumps({"epoch": 1, "train_loss": 1.0}) + "\n")
    assert [r.weights for r in collect_protocol(tmp_path)] == ["resnet50.supervised"]


def test_figures_are_written(tmp_path: Path) -> None:
    _fake_runs(tmp_path / "runs")
    written = make_figures(tmp_path / "runs", tmp_path / "figs")
    names = {p.name for p in written}
    assert "loss_esc50_finetune.pdf" in names and "results.md" in names
    assert "confusion_esc50_resnet50.supervised_finetune.png" in names
    assert all(p.stat().st_size > 1000 for p in written if p.suffix in (".png", ".pdf"))


def test_tsne_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(0, 1, (15, 8)), rng.normal(6, 1, (15, 8))])
    out = plot_tsne(feats, [0] * 15 + [1] * 15, ["dog", "rain"], tmp_path / "t")
    assert [p.suffix for p in out] == [".png", ".pdf"]


def _probe_runs(root: Path, accs: list[float]) -> None:
    """A fitted probe's cell: one metrics record per split."""
    for k, acc in enumerate(accs, start=1):
        d = root / "esc50" / "resnet50.supervised" / "logistic" / f"fold{k}"
        d.mkdir(parents=True)
        final = {"test_acc": acc, "labels": [0, 1], "predictions": [0, 1], "classes": ["a", "b"]}
        (d / "final.json").write_text(json.dumps(final))
        rec = {"epoch": 1, "probe": "logistic", "train_loss": 0.1, "test_acc": acc}
        (d / "metrics.jsonl").write_text(json.dumps(rec) + "\n")


def test_figures_tables_carry_ci_paired_tests_and_epoch_selection(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _fake_runs(runs)
    _probe_runs(runs, [93.0, 94.0, 92.0])
    # An unfinished run (no final.json) is not a result.
    (runs / "esc50" / "resnet50.random" / "linear" / "fold1").mkdir(parents=True)
    (runs / "esc50" / "resnet50.random" / "linear" / "fold1" / "config.json").write_text("{}")
    written = {p.name: p for p in make_figures(runs, tmp_path / "figs")}
    md = written["results.md"].read_text()
    assert "| esc50 | resnet50.supervised | logistic | 93.00 +- 1.00 | [90.52, 95.48] |" in md
    assert "resnet50.random | linear" not in md
    # supervised finetune vs supervised logistic, and random vs supervised finetune.
    assert "resnet50.supervised finetune | resnet50.supervised logistic | -3.00 +- 1.00" in md
    assert "paired t p" in md and "sign-flip p" in md
    assert "Epoch selection" in md and "| esc50 | resnet50.supervised | finetune | 91.00" in md
    assert "| logistic |" not in md.split("Epoch selection")[1]  # one record: no epoch to pick
    paired = written["paired.csv"].read_text().splitlines()
    assert len(paired) == 1 + 2 and paired[0].endswith("t_pvalue,perm_pvalue")
    assert written["protocol.csv"].read_text().count("\n") == 1 + 2
    assert "loss_esc50_logistic.png" not in written  # no curve from one point
    assert "confusion_esc50_resnet50.supervised_logistic.png" in written


def test_collect_results_names_an_unreadable_final(tmp_path: Path) -> None:
    _fake_runs(tmp_path)
    bad = tmp_path / "esc50" / "resnet50.random" / "finetune" / "fold2" / "final.json"
    bad.write_text("{}")
    with pytest.raises(RunError, match=r"fold2/final\.json: incomplete final\.json \(no test_acc"):
        collect_results(tmp_path)


def test_stats_are_exported() -> None:
    import soundtransfer.analysis as A

    assert A.summarize([1.0, 2.0, 3.0]).std == pytest.approx(1.0)
    assert A.paired_comparison([2.0, 3.0], [1.0, 1.0]).wins == (2, 0, 0)
    assert {"protocol_summary", "sign_flip_pvalue", "write_tables"} <= set(A.__all__)


def test_two_runs_directories_are_labelled_and_paired(tmp_path: Path) -> None:
    """The same cells run twice (e.g. two presets): one row each, compared on their folds."""
    _fake_runs(tmp_path / "paper")
    _fake_runs(tmp_path / "recipe")
    final = tmp_path / "recipe" / "esc50" / "resnet50.supervised" / "finetune" / "fold2"
    data = json.loads((final / "final.json").read_text())
    (final / "final.json").write_text(json.dumps({**data, "test_acc": 95.0}))
    written = {
        p.name: p for p in make_figures([tmp_path / "paper", tmp_path / "recipe"], tmp_path / "f")
    }
    md = written["results.md"].read_text()
    assert "| esc50 | resnet50.supervised | finetune@paper | 90.00 +- 2.00 |" in md
    assert "| esc50 | resnet50.supervised | finetune@recipe | 91.00 +- 3.61 |" in md
    pair = "resnet50.supervised finetune@paper | resnet50.supervised finetune@recipe | -1.00"
    assert pair in md
    assert "confusion_esc50_resnet50.supervised_finetune@recipe.png" in written
    with pytest.raises(ConfigError, match="given twice"):
        make_figures([tmp_path / "paper", tmp_path / "paper"], tmp_path / "g")
