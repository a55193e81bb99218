"""All figures and tables of a runs directory in one call (``soundtransfer figures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from soundtransfer.analysis.figures import (
    block4_features,
    plot_confusion,
    plot_loss_curves,
    plot_tsne,
)
from soundtransfer.analysis.tables import collect_protocol, collect_results, write_tables
from soundtransfer.runs import RunRef, list_runs, read_jsonl
from soundtransfer.runs.rundir import METRICS


def make_figures(runs_dir: Path, out_dir: Path, dataset: str | None = None) -> list[Path]:
    """Loss curves (first split, per init; runs of two epochs or more), pooled confusion
    matrices, the results table (mean, sample std, 95 % CI, paired comparisons, epoch
    selection: :func:`~soundtransfer.analysis.tables.results_table`)."""
    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    cells: dict[tuple[str, str, str], list[RunRef]] = {}
    for ref in list_runs(runs_dir):
        if (dataset is None or ref.dataset == dataset) and (ref.dir / METRICS).exists():
            cells.setdefault((ref.dataset, ref.mode, ref.weights), []).append(ref)
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
    rows = collect_results(runs_dir)
    if dataset is not None:
        rows = [r for r in rows if r.dataset == dataset]
    if rows:
        protocol = [p for p in collect_protocol(runs_dir) if dataset in (None, p.dataset)]
        written += write_tables(out_dir, rows, protocol)[2]
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
