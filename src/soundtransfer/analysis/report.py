"""All figures and tables of runs directories in one call (``soundtransfer figures``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from soundtransfer.analysis.figures import (
    block4_features,
    plot_confusion,
    plot_loss_curves,
    plot_tsne,
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
from soundtransfer.runs import RunRef, read_jsonl
from soundtransfer.runs.rundir import METRICS


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


def make_figures(
    runs_dirs: Path | Sequence[Path],
    out_dir: Path,
    dataset: str | None = None,
    warn: Warn | None = None,
) -> list[Path]:
    """Loss curves (first split, per init; runs of two epochs or more), pooled confusion
    matrices, the results table (mean, sample std, 95 % CI, paired comparisons, epoch
    selection: :func:`~soundtransfer.analysis.tables.results_table`).

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
    cells: dict[tuple[str, str, str], list[RunRef]] = {}
    for runs_dir, label in zip(dirs, labels, strict=True):
        for (ds, weights, mode), refs in run_cells(runs_dir, label, False, warn).items():
            logged = [r for r in refs if (r.dir / METRICS).exists()]
            if logged and dataset in (None, ds):
                cells[(ds, mode, weights)] = logged
    firsts: dict[tuple[str, str], dict[str, Path]] = {}
    for (ds, mode, weights), refs in cells.items():  # refs in fold order
        if len(read_jsonl(refs[0].dir / METRICS)) >= 2:  # a fitted probe logs one record
            firsts.setdefault((ds, mode), {})[weights] = refs[0].dir
        finals = [r.final() for r in refs if r.done]
        if finals:
            written += plot_confusion(
                [label for f in finals for label in f["labels"]],
                [p for f in finals for p in f["predictions"]],
                list(finals[0]["classes"]),
                out_dir / f"confusion_{ds}_{weights}_{mode}",
                title=f"{ds}, {weights}, {mode} (all folds)",
            )
    for (ds, mode), runs in sorted(firsts.items()):
        first_split = next(iter(runs.values())).name
        written += plot_loss_curves(
            runs, out_dir / f"loss_{ds}_{mode}", title=f"{ds}, {mode}, {first_split}"
        )
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


def tsne_figure(
    bundle: Path,
    store: Any,
    out_stem: Path,
    classes: list[str] | None = None,
    max_per_class: int = 40,
    seed: int = 0,
) -> list[Path]:
    """t-SNE of block-4 features of a model bundle on a feature store's clips."""
    from soundtransfer.errors import DatasetError
    from soundtransfer.inference.bundle import load_bundle

    model, meta = load_bundle(bundle)
    names = list(store.table.classes)
    wanted = classes or names
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise DatasetError(f"unknown classes {unknown}; the dataset has {names}")
    ids = [names.index(c) for c in wanted]
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    for k in ids:
        members = [i for i, c in enumerate(store.table.clips) if c.label == k]
        rng.shuffle(members)
        rows += sorted(members[:max_per_class])
    feats = block4_features(model.classifier, store.batch(rows))
    labels = [store.table.clips[i].label for i in rows]
    return plot_tsne(feats, labels, names, out_stem, title=f"block-4 features, {meta.weights}")
