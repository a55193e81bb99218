"""All figures and tables of runs directories in one call (``soundtransfer figures``).

Every figure says which split, which clips and which model it shows (:func:`split_phrase`,
:func:`model_phrase`): training curves per held-out split (loss, validation accuracy, and the
test accuracy drawn apart as reported only), the training loss per initialisation, pooled
confusion matrices with counts and their tables (``confusions_*.md`` / ``.csv``), the t-SNE.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundtransfer.analysis.confusion import confusion_counts, confusion_csv, confusion_markdown
from soundtransfer.analysis.figures import (
    Points,
    SplitCurves,
    block4_features,
    confusion_figure,
    plot_loss_curves,
    plot_training_curves,
    plot_tsne,
    save_figure,
)
from soundtransfer.analysis.tables import (
    Warn,
    collect_protocol,
    collect_results,
    run_cells,
    warn_once,
    write_tables,
)
from soundtransfer.config import ConfigError
from soundtransfer.errors import RunError
from soundtransfer.runs import RunRef, read_jsonl
from soundtransfer.runs.rundir import CONFIG, FINAL, METRICS, parse_run_dir


def _json_object(path: Path) -> dict[str, Any]:
    """A run file's JSON object, ``{}`` when absent; anything else is a RunError naming it."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a JSON object")
    return data


@dataclass(frozen=True)
class RunFiles:
    """What one run directory holds: ``config.json``, ``metrics.jsonl``, ``final.json``."""

    ref: RunRef
    config: dict[str, Any]
    records: list[dict[str, Any]]
    final: dict[str, Any] | None

    @classmethod
    def read(cls, ref: RunRef) -> RunFiles:
        final = _json_object(ref.dir / FINAL) if ref.done else None
        return cls(ref, _json_object(ref.dir / CONFIG), read_jsonl(ref.dir / METRICS), final)

    def count(self, key: str) -> int | None:
        """``n_train`` / ``n_valid`` / ``n_test`` from the final result or the config."""
        for source in (self.final or {}, self.config):
            if isinstance(source.get(key), int):
                return int(source[key])
        if key == "n_test" and self.final is not None and "labels" in self.final:
            return len(self.final["labels"])
        return None

    def points(self, key: str) -> Points:
        """(epoch, value) of every record that logged ``key``."""
        out = []
        for n, r in enumerate(self.records, start=1):
            if key in r:
                try:
                    out.append((int(r.get("epoch", n)), float(r[key])))
                except (TypeError, ValueError):
                    raise RunError(f"{self.ref.dir / METRICS}: line {n}: bad {key!r}") from None
        return tuple(out)

    def predictions(self) -> tuple[list[int], list[int], list[str]]:
        """(labels, predictions, classes) of the test clips, from ``final.json``."""
        f = self.final or {}
        try:
            labels, preds, classes = list(f["labels"]), list(f["predictions"]), list(f["classes"])
            return [int(v) for v in labels], [int(v) for v in preds], [str(c) for c in classes]
        except (KeyError, TypeError, ValueError):
            raise RunError(
                f"{self.ref.dir / FINAL}: no readable labels, predictions and classes"
            ) from None


def split_phrase(name: str) -> str:
    """``fold3`` -> ``held-out fold 3``; ``fixed`` / ``test`` -> ``test split``."""
    m = re.fullmatch(r"fold(\d+)", name)
    if m:
        return f"held-out fold {m.group(1)}"
    return "test split" if name in ("fixed", "test") else f"held-out split {name}"


def model_phrase(weights_label: str, mode: str, config: dict[str, Any]) -> str:
    """``efficientnet_lite0 (lite0 weights), fine-tuned 6 epochs``: the architecture, the
    weights and how they were trained, from the run directory's names and ``config.json``
    (``mode`` may carry a runs-directory label, ``finetune@recipe``)."""
    arch, _, source = weights_label.partition(".")
    weights = "random init" if source == "random" else f"{source or arch} weights"
    base, _, label = mode.partition("@")
    train = config.get("train", {}) if isinstance(config.get("train"), dict) else {}
    epochs = f" {train['epochs']} epochs" if isinstance(train.get("epochs"), int) else ""
    how = {
        "finetune": f"fine-tuned{epochs}",
        "linear": f"frozen, linear probe{epochs}",
        "logistic": "frozen, logistic probe",
        "mlp": "frozen, MLP probe",
    }.get(base, base)
    text = f"{arch} ({weights}), {how}" if source else f"{weights_label}, {how}"
    return f"{text} [{label}]" if label else text


def _splits_phrase(runs: Sequence[RunFiles]) -> str:
    """``held-out fold 3``, or ``5 held-out folds (fold1, ..., fold5)``."""
    if len(runs) == 1:
        return split_phrase(runs[0].ref.split)
    folds = all(re.fullmatch(r"fold\d+", r.ref.split) for r in runs)
    names = ", ".join(r.ref.split for r in runs)
    return f"{len(runs)} held-out {'folds' if folds else 'splits'} ({names})"


def _clips_phrase(runs: Sequence[RunFiles]) -> str:
    """Which clips a pooled figure shows: one split, or several held-out splits pooled."""
    n = sum(r.count("n_test") or 0 for r in runs)
    if len(runs) == 1:
        return f"{split_phrase(runs[0].ref.split)}, {n} clips"
    return (
        f"{_splits_phrase(runs)} pooled: {n} clips, each predicted by the model not trained on it"
    )


def split_curves(run: RunFiles) -> SplitCurves:
    """A run's curves, titled with its split and clip counts."""
    counts = [(k, run.count(f"n_{k}")) for k in ("train", "valid")]
    known = ", ".join(f"{v} {k}" for k, v in counts if v is not None)
    title = f"{split_phrase(run.ref.split)}: {run.count('n_test') or '?'} test clips"
    title += f"\n({known})" if known else ""
    selected = (run.final or {}).get("selected_epoch")
    train = run.config.get("train", {}) if isinstance(run.config.get("train"), dict) else {}
    how = "best validation epoch" if train.get("select") == "best_val" else "final epoch"
    return SplitCurves(
        title,
        run.points("train_loss"),
        run.points("val_acc"),
        run.points("test_acc"),
        int(selected) if isinstance(selected, int) else None,
        how,
    )


def run_labels(runs_dirs: Sequence[Path]) -> list[str]:
    """The label of each runs directory in tables and file names: none for a single one,
    else each directory's name (its path where two names are the same)."""
    if len(runs_dirs) < 2:
        return [""] * len(runs_dirs)
    names = [Path(d).name for d in runs_dirs]
    if len(set(names)) < len(names):
        names = [Path(d).as_posix().strip("/").replace("/", "_") for d in runs_dirs]
    if len(set(names)) < len(names):
        raise ConfigError(f"the same runs directory given twice: {[str(d) for d in runs_dirs]}")
    return names


def _cells(
    dirs: Sequence[Path], labels: Sequence[str], dataset: str | None, warn: Warn | None
) -> dict[tuple[str, str, str], list[RunFiles]]:
    """(dataset, weights, mode) -> the runs that logged something, in split order."""
    cells: dict[tuple[str, str, str], list[RunFiles]] = {}
    for runs_dir, label in zip(dirs, labels, strict=True):
        for (ds, weights, mode), refs in run_cells(runs_dir, label, False, warn).items():
            logged = [RunFiles.read(r) for r in refs if (r.dir / METRICS).exists()]
            if logged and dataset in (None, ds):
                cells[(ds, weights, mode)] = logged
    return cells


def _confusion_files(
    ds: str, model: str, runs: Sequence[RunFiles], stem: str, out: Path
) -> list[Path]:
    """The pooled confusion matrix of a cell's finished runs and its two tables."""
    from soundtransfer.runs import atomic_write_text

    labels: list[int] = []
    preds: list[int] = []
    classes: list[str] = []
    for r in runs:
        y, p, classes = r.predictions()
        labels, preds = labels + y, preds + p
    title = f"{ds}, {_clips_phrase(runs)}\n{model}"
    try:  # before anything is written: a label outside the classes names the cell
        cm = confusion_counts(labels, preds, len(classes))
    except ValueError as exc:
        raise RunError(f"{runs[0].ref.dir.parent}: {exc}") from None
    written = save_figure(confusion_figure(cm, classes, title), out / f"confusion_{stem}", title)
    md = confusion_markdown(cm, classes, title.replace("\n", "; "))
    written.append(atomic_write_text(out / f"confusions_{stem}.md", md))
    written.append(atomic_write_text(out / f"confusions_{stem}.csv", confusion_csv(cm, classes)))
    return written


def make_figures(
    runs_dirs: Path | Sequence[Path],
    out_dir: Path,
    dataset: str | None = None,
    warn: Warn | None = None,
) -> list[Path]:
    """Per cell (dataset, weights, mode): training curves of every split that logged two
    epochs or more (``curves_*``), the pooled confusion matrix with counts and its tables
    (``confusion_*``, ``confusions_*.md`` / ``.csv``); per (dataset, mode) the training loss
    of each initialisation over all its splits (``loss_*``); the results table (mean, sample
    std, 95 % CI, paired comparisons, epoch selection:
    :func:`~soundtransfer.analysis.tables.results_table`).

    Several runs directories (e.g. the same cells run with two presets) go into one table,
    each mode named with its directory (``finetune@paper``, ``finetune@recipe``), so rows of
    the same splits are compared pairwise.

    A run whose files are damaged is left out with one ``warn`` line naming the file
    (:func:`~soundtransfer.analysis.tables.run_cells`); without ``warn`` it is an error.
    """
    warn = warn_once(warn)
    dirs = [Path(runs_dirs)] if isinstance(runs_dirs, (str, Path)) else [Path(d) for d in runs_dirs]
    labels = run_labels(dirs)
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: runs directory not found")
    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    losses: dict[tuple[str, str], dict[str, list[Points]]] = {}
    modes: dict[tuple[str, str], str] = {}
    for (ds, weights, mode), runs in sorted(_cells(dirs, labels, dataset, warn).items()):
        model = model_phrase(weights, mode, runs[0].config)
        curved = [r for r in runs if len(r.records) >= 2]  # a fitted probe logs one record
        if curved:
            title = f"{ds}, {model}: per epoch, {_splits_phrase(curved)}"
            written += plot_training_curves(
                [split_curves(r) for r in curved], out_dir / f"curves_{ds}_{weights}_{mode}", title
            )
            key = f"{weights}, {_splits_phrase(curved)}"
            losses.setdefault((ds, mode), {})[key] = [r.points("train_loss") for r in curved]
            modes[(ds, mode)] = model.split(", ", 1)[1]
        # A confusion matrix needs one label per clip: multi-label runs report their mAP in
        # the results table and their tagging report in the run folder instead.
        done = [r for r in runs if r.final is not None and r.final.get("task") != "multi_label"]
        if done:
            written += _confusion_files(ds, model, done, f"{ds}_{weights}_{mode}", out_dir)
    for (ds, mode), by_weights in sorted(losses.items()):
        title = (
            f"{ds}, {modes[(ds, mode)]}: training loss per initialisation\n"
            "thin: each held-out split; thick: their mean"
        )
        written += plot_loss_curves(by_weights, out_dir / f"loss_{ds}_{mode}", title)
    rows = [r for d, lab in zip(dirs, labels, strict=True) for r in collect_results(d, lab, warn)]
    rows = [r for r in rows if dataset in (None, r.dataset)]
    if rows:
        protocol = [
            p
            for d, lab in zip(dirs, labels, strict=True)
            for p in collect_protocol(d, lab, warn)
            if dataset in (None, p.dataset)
        ]
        written += write_tables(out_dir, rows, protocol)[2]
    if not written:
        only = f" of dataset {dataset!r}" if dataset else ""
        raise ConfigError(f"{', '.join(map(str, dirs))}: no runs{only} (no metrics.jsonl found)")
    return written


def _bundle_model(bundle: Path, arch: str, weights: str) -> tuple[str, str | None]:
    """(model phrase, the split it was trained without) of a bundle: from its run directory
    when it sits in one (``config.json`` beside it), else from its metadata."""
    config = _json_object(bundle.parent / CONFIG)
    if config and isinstance(config.get("split"), str):
        ref = parse_run_dir(bundle.parent)
        model = model_phrase(ref.weights, ref.mode, config)
        return f"{model}, the model of {split_phrase(ref.split)}", ref.split
    return f"{arch} ({weights} weights), bundle {bundle.name}", None


def tsne_figure(
    bundle: Path,
    store: Any,
    out_stem: Path,
    classes: list[str] | None = None,
    max_per_class: int = 40,
    seed: int = 0,
) -> list[Path]:
    """t-SNE of a model bundle's block-4 features on up to ``max_per_class`` clips of each
    class of a feature store (all its folds); the title names the clips and the model, and
    when the bundle's run directory says which split it was trained without, that split's
    clips are drawn hollow (held out) and the others filled (seen in training)."""
    from soundtransfer.errors import DatasetError
    from soundtransfer.inference.bundle import load_bundle

    model, meta = load_bundle(bundle)
    names = list(store.table.classes)
    wanted = classes or names
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise DatasetError(f"unknown classes {unknown}; the dataset has {names}")
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    for k in (names.index(c) for c in wanted):
        members = [i for i, c in enumerate(store.table.clips) if c.label == k]
        rng.shuffle(members)
        rows += sorted(members[:max_per_class])
    feats = block4_features(model.classifier, store.batch(rows))
    labels = [store.table.clips[i].label for i in rows]
    described, split = _bundle_model(Path(bundle), meta.arch, meta.weights)
    try:
        tests = {s.name: set(s.test) for s in store.table.splits()}
    except DatasetError:  # e.g. a single fold: no split to find
        tests = {}
    held = [i in tests[split] for i in rows] if split in tests else None
    where = (
        f"all {len(store.table.folds)} folds" if store.table.protocol == "kfold" else "all splits"
    )
    clips = f"{len(rows)} {store.table.name} clips (up to {max_per_class} a class, {where}"
    if held is not None:
        clips += f"; {sum(held)} held out, {len(rows) - sum(held)} seen in training"
    title = f"t-SNE of block-4 features: {clips})\n{described}"
    return plot_tsne(feats, labels, names, out_stem, title=title, held_out=held)
