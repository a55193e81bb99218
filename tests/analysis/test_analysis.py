"""Result tables (means over folds beside the paper) and figure files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soundtransfer.analysis import collect_results, make_figures, plot_tsne, results_table
from soundtransfer.analysis.tables import Row, collect_protocol, paired_rows, protocol_table
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
    # Here and below: float64 means of the accuracies written above: approx's 1e-6 relative.
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
    assert {"protocol_summary", "sign_flip_pvalue", "write_tables"} <= set(dir(A))


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


# --- figures a reader trusts (issue 24 point 7) ---


def _png_title(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return str(im.text["Title"])


def _curve_runs(root: Path, splits: list[str], n_test: int = 20, valid: bool = True) -> None:
    """A fine-tuned cell with config.json, per-epoch validation and test accuracy."""
    for k, split in enumerate(splits, start=1):
        d = root / "us8k" / "efficientnet_lite0.lite0" / "finetune" / split
        d.mkdir(parents=True)
        config = {"split": split, "n_train": 300, "n_valid": 30 if valid else 0,
                  "n_test": n_test, "train": {"epochs": 6, "mode": "finetune"}}  # fmt: skip
        (d / "config.json").write_text(json.dumps(config))
        labels = [i % 10 for i in range(n_test)]
        final = {"test_acc": 63.5, "labels": labels, "predictions": labels[::-1], "n_test": n_test,
                 "classes": [f"c{i}" for i in range(10)], "selected_epoch": 6}  # fmt: skip
        (d / "final.json").write_text(json.dumps(final))
        with (d / "metrics.jsonl").open("w") as fh:
            for e in range(1, 7):
                rec = {
                    "epoch": e,
                    "train_loss": 2.0 / e,
                    "test_acc": 60.0 + k + (10 if e == 4 else 0),
                }
                if valid:
                    rec["val_acc"] = 50.0 + e
                fh.write(json.dumps(rec) + "\n")


def test_training_curves_show_validation_and_test_per_fold(tmp_path: Path) -> None:
    """Every held-out fold gets its own loss and accuracy panels; the test curve is drawn
    apart (dashed) and labelled as reported only; titles name split, clips and model."""
    from soundtransfer.analysis.figures import TEST_LABEL, VAL_LABEL, training_curves_figure
    from soundtransfer.analysis.report import RunFiles, split_curves
    from soundtransfer.runs import list_runs

    _curve_runs(tmp_path / "runs", ["fold1", "fold10"])
    curves = [split_curves(RunFiles.read(r)) for r in list_runs(tmp_path / "runs")]
    fig = training_curves_figure(curves, "title")
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == [
        "held-out fold 1: 20 test clips\n(300 train, 30 valid)",
        "held-out fold 10: 20 test clips\n(300 train, 30 valid)",
    ]
    accuracy = [ax for ax in fig.axes if ax.get_ylim() == (0.0, 100.0)]
    assert len(accuracy) == 2
    for k, ax in enumerate(accuracy, start=1):
        lines = {str(line.get_label()): line for line in ax.get_lines()}
        assert list(lines[VAL_LABEL].get_ydata()) == [51.0, 52.0, 53.0, 54.0, 55.0, 56.0]
        test = lines[TEST_LABEL]
        assert test.get_linestyle() == "--" and "never used for selection" in TEST_LABEL
        # The epoch-4 peak and the fall to the reported final epoch are both drawn.
        assert list(test.get_ydata()) == [60.0 + k] * 3 + [70.0 + k] + [60.0 + k] * 2
    import matplotlib.pyplot as plt

    plt.close(fig)
    written = {p.name: p for p in make_figures(tmp_path / "runs", tmp_path / "figs")}
    title = _png_title(written["curves_us8k_efficientnet_lite0.lite0_finetune.png"])
    assert title == (
        "us8k, efficientnet_lite0 (lite0 weights), fine-tuned 6 epochs: per epoch, "
        "2 held-out folds (fold1, fold10)"
    )
    loss_title = _png_title(written["loss_us8k_finetune.png"])
    assert "fine-tuned 6 epochs" in loss_title and "each held-out split" in loss_title


def test_one_split_is_titled_as_that_split(tmp_path: Path) -> None:
    """A single train/test split says so, never "(all folds)"; no validation is said too."""
    from soundtransfer.analysis.figures import training_curves_figure
    from soundtransfer.analysis.report import RunFiles, split_curves
    from soundtransfer.runs import list_runs

    _curve_runs(tmp_path / "runs", ["fixed"], n_test=40, valid=False)
    written = {p.name: p for p in make_figures(tmp_path / "runs", tmp_path / "figs")}
    title = _png_title(written["confusion_us8k_efficientnet_lite0.lite0_finetune.png"])
    assert (
        title
        == "us8k, test split, 40 clips\nefficientnet_lite0 (lite0 weights), fine-tuned 6 epochs"
    )
    assert "all folds" not in title
    md = written["confusions_us8k_efficientnet_lite0.lite0_finetune.md"].read_text()
    assert md.startswith("# us8k, test split, 40 clips; efficientnet_lite0")
    (run,) = list_runs(tmp_path / "runs")
    fig = training_curves_figure([split_curves(RunFiles.read(run))], "t")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no validation clips" in texts and "63.0 %" not in texts
    assert "61.0 %" in texts  # the reported (final) epoch's test accuracy, as in the table


def test_confusion_has_counts_and_fits_a_page_at_50_classes() -> None:
    from soundtransfer.analysis import confusion_counts, confusion_figure

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(50), 8)  # ESC-50's 400 clips of one fold
    preds = np.where(rng.random(400) < 0.6, labels, rng.integers(0, 50, 400))
    cm = confusion_counts(labels.tolist(), preds.tolist(), 50)
    fig = confusion_figure(cm, [f"class {i}" for i in range(50)], "t")
    (ax,) = fig.axes
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert {k: int(t.get_text()) for k, t in cells.items()} == {
        (int(i), int(j)): int(cm[i, j]) for i, j in zip(*np.nonzero(cm), strict=True)
    }
    assert min(t.get_fontsize() for t in ax.texts) >= 3.5
    width, height = fig.get_size_inches()
    assert width <= 8.0 and height <= 8.0  # a page's width, at 300 dpi
    assert len(ax.get_xticklabels()) == 50 and len(ax.get_yticklabels()) == 50
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_confusion_tables() -> None:
    from soundtransfer.analysis import class_results, confusion_counts, top_confusions
    from soundtransfer.analysis.confusion import class_table_lines, confusion_csv

    classes = ["dog", "rain", "siren"]
    cm = confusion_counts([0, 0, 0, 1, 1, 2], [0, 2, 2, 1, 0, 2], 3)
    assert cm.tolist() == [[1, 0, 2], [1, 1, 0], [0, 0, 1]]
    dog = class_results(cm, classes)[0]
    assert (dog.right, dog.total, dog.heard_as) == (1, 3, (("siren", 2),))
    top = top_confusions(cm, classes)
    assert [(c.true, c.predicted, c.clips) for c in top] == [
        ("dog", "siren", 2),
        ("rain", "dog", 1),
    ]
    assert top[0].share == pytest.approx(2 / 3)
    assert class_table_lines(cm, classes)[1].split() == ["dog", "1", "/", "3", "siren", "(2)"]
    assert confusion_csv(cm, classes).splitlines()[1:3] == [
        "dog,dog,1,0.3333",
        "dog,siren,2,0.6667",
    ]
    with pytest.raises(ValueError, match=r"label 3 outside 0\.\.2"):
        confusion_counts([3], [0], 3)


def test_tsne_says_which_clips_and_which_model(demo_root: Path, tmp_path: Path) -> None:
    """Clips of the bundle's held-out fold are drawn hollow and counted in the title."""
    from soundtransfer.analysis import tsne_figure
    from soundtransfer.audio import get_preset
    from soundtransfer.datasets import load_dataset
    from soundtransfer.features import build_features
    from soundtransfer.inference.bundle import save_bundle
    from soundtransfer.models import Classifier, InputNorm, build_encoder

    fe = get_preset("esc10", n_mels=32, out_frames=64)
    store = build_features(load_dataset("esc10", demo_root), fe, cache_dir=tmp_path, progress=False)
    run = tmp_path / "runs" / "esc10" / "resnet18.random" / "finetune" / "fold2"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"split": "fold2", "train": {"epochs": 3}}))
    model = Classifier(build_encoder("resnet18"), 10, InputNorm([-6.0] * 3, [4.0] * 3)).eval()
    save_bundle(run / "model.pt", model, fe, store.table.classes, "resnet18", "random")
    names = list(store.table.classes[:3])
    (png, _pdf) = tsne_figure(run / "model.pt", store, tmp_path / "t", names, max_per_class=5)
    # 3 classes x 10 clips in the sample, 5 drawn each; fold 2 holds 2 of each class's 10.
    title = _png_title(png)
    assert title.startswith(
        "t-SNE of block-4 features: 15 esc10 clips (up to 5 a class, all 5 folds;"
    )
    held = int(title.split("; ")[1].split(" held out")[0])
    assert 0 <= held <= 6 and f"{held} held out, {15 - held} seen in training" in title
    assert title.endswith(
        "\nresnet18 (random init), fine-tuned 3 epochs, the model of held-out fold 2"
    )


def test_a_prediction_outside_the_classes_names_the_file_and_writes_no_figure(
    tmp_path: Path,
) -> None:
    from soundtransfer.errors import RunError

    _curve_runs(tmp_path / "runs", ["fold1"])
    final = tmp_path / "runs/us8k/efficientnet_lite0.lite0/finetune/fold1/final.json"
    data = json.loads(final.read_text())
    data["predictions"][0] = 12  # 10 classes
    final.write_text(json.dumps(data))
    # runs/records.py checks final.json as it is read: the message names the file.
    with pytest.raises(RunError, match=r"finetune/fold1/final\.json: predictions .* 0\.\.9"):
        make_figures(tmp_path / "runs", tmp_path / "figs")
    assert not list((tmp_path / "figs").glob("confusion*"))


def test_one_split_is_named_test_and_has_no_interval() -> None:
    """Issue 24 point 6: the train / valid / test split (run folder ``fixed``) reads ``test``
    in the table; one split prints no interval; the CSV keeps the folder's name."""
    md, table_csv = results_table(
        [Row("gtzan", "resnet50.imagenet", "finetune", ("fixed",), (90.5,))]
    )
    line = md.splitlines()[2]
    assert "| test 90.50 |" in line and "fixed" not in line and "| - |" in line
    assert "| 90.50 | - |" in line and "+-" not in line, line
    assert "fixed=90.5000" in table_csv
