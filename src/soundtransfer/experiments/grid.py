"""The paper's experiment grid: Table 1 (fine-tuning) and Table 2 (linear evaluation).

Each cell of the grid is one cross-validation run (dataset x weight source x mode); a run is
resumable and skipped when every split has its ``final.json``. The grid writes
``results.md`` / ``results.csv`` beside the paper's numbers and the figures of
:mod:`soundtransfer.analysis`.

Presets:
    ``paper``: GTZAN, ESC-50 and UrbanSound8K; ResNet-50 from random, supervised ImageNet and
    SimCLR (v1) ImageNet weights, fine-tuned with the paper's recipe (Adam 1e-4, weight decay
    1e-3, batch 32, 70 epochs); linear evaluation of the SimCLR encoder (Table 2) and, for
    context, of the other two.
    ``cpu``: a reduced, clearly labelled grid that finishes in minutes on a laptop: ESC-10,
    EfficientNet-Lite0 (the only ImageNet weights that install offline) from random and
    ImageNet weights, a few epochs. Its numbers are not the paper's and are labelled so.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundtransfer.config import ConfigError, override, save_json, to_dict
from soundtransfer.errors import DatasetError
from soundtransfer.locking import file_lock


@dataclass(frozen=True)
class Cell:
    """One grid cell: a cross-validation run."""

    dataset: str
    weights: str
    arch: str
    mode: str  # "finetune" | "linear"


@dataclass(frozen=True)
class GridPreset:
    """What the grid runs.

    Attributes:
        name: preset name, written into every result table.
        datasets: dataset names (each needs a root).
        finetune: (weights, arch) pairs fine-tuned (Table 1).
        linear: (weights, arch) pairs evaluated with a frozen encoder (Table 2).
        train_preset: name of the :class:`~soundtransfer.train.config.TrainConfig` preset.
        train_overrides: ``key=value`` overrides applied to that preset.
        linear_overrides: further overrides for the linear-evaluation cells (cheap: the
            frozen features are cached, so the CPU preset keeps the paper's 70 epochs there).
        label: a note printed above the table (e.g. "reduced CPU preset, not the paper's").
    """

    name: str
    datasets: tuple[str, ...]
    finetune: tuple[tuple[str, str], ...]
    linear: tuple[tuple[str, str], ...]
    train_preset: str = "paper"
    train_overrides: tuple[str, ...] = ()
    linear_overrides: tuple[str, ...] = ()
    label: str = ""

    def cells(self) -> list[Cell]:
        out = []
        for ds in self.datasets:
            out += [Cell(ds, w, a, "finetune") for w, a in self.finetune]
            out += [Cell(ds, w, a, "linear") for w, a in self.linear]
        return out


GRID_PRESETS: dict[str, GridPreset] = {
    "paper": GridPreset(
        name="paper",
        datasets=("gtzan", "esc50", "us8k"),
        finetune=(("random", "resnet50"), ("supervised", "resnet50"), ("simclr-v1", "resnet50")),
        linear=(("simclr-v1", "resnet50"), ("supervised", "resnet50"), ("random", "resnet50")),
        train_preset="paper",
        label="The paper's protocol: ResNet-50, 70 epochs, every official fold.",
    ),
    "cpu": GridPreset(
        name="cpu",
        datasets=("esc10",),
        finetune=(("random", "efficientnet_lite0"), ("lite0", "efficientnet_lite0")),
        linear=(("random", "efficientnet_lite0"), ("lite0", "efficientnet_lite0")),
        train_preset="cpu",
        linear_overrides=("epochs=70",),
        label=(
            "Reduced CPU preset (ESC-10, EfficientNet-Lite0, few epochs): a quick look, NOT the "
            "paper's setting; its numbers are not comparable to the paper's tables."
        ),
    ),
}


def get_grid_preset(name: str) -> GridPreset:
    try:
        return GRID_PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown grid preset {name!r}; choose from {sorted(GRID_PRESETS)}"
        ) from None


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def reproduce(
    preset: GridPreset,
    data_roots: Mapping[str, Path],
    out_dir: Path,
    *,
    folds: Sequence[int] | None = None,
    cache_dir: Path | None = None,
    device: str = "auto",
    spread: bool = False,
    extra_overrides: Sequence[str] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Run every cell of ``preset`` (skipping finished splits) and write the result tables.

    Args:
        preset: the grid.
        data_roots: dataset name -> root folder in its official layout.
        out_dir: runs directory; results go to ``out_dir/results.{md,csv}``.
        folds: hold out only these folds (k-fold datasets); None = all.
        cache_dir: feature / embedding cache.
        device: "auto", "cpu", "cuda", "cuda:1" ...
        spread: under ``torchrun``, the independent runs (cell x held-out split) are dealt
            round-robin to the processes, each training its runs alone on its own GPU (no
            gradient sync), instead of all processes training each run together with DDP.
            Shared caches are locked, so the features and weights are computed once. Every
            process rewrites the tables when it ends, so the last to finish leaves them
            complete (re-running ``reproduce`` skips finished runs and rewrites them too).
        extra_overrides: ``key=value`` overrides of the training config.

    Returns:
        ``{"cells": [...], "markdown": str, "csv": str}``.
    """
    import torch

    from soundtransfer.analysis.tables import collect_results, results_table
    from soundtransfer.datasets import load_dataset
    from soundtransfer.features import build_features
    from soundtransfer.train import get_train_preset, run_crossval

    missing = [d for d in preset.datasets if d not in data_roots]
    if missing:
        raise DatasetError(
            f"grid {preset.name!r} needs a root for {missing}; pass --root NAME=DIR for each"
        )
    cfg = get_train_preset(preset.train_preset, [*preset.train_overrides, *extra_overrides])
    cells = preset.cells()
    rank, world = _rank_world()
    if spread:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device in ("auto", "cuda") and torch.cuda.is_available():
            device = f"cuda:{local}"
        # Each process trains its own runs: no process group for the runs themselves.
        for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            os.environ.pop(var, None)
    cfg = dataclasses.replace(cfg, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        save_json(
            out_dir / "grid.json",
            {"preset": to_dict(preset), "train": to_dict(cfg), "folds": list(folds or [])},
        )
    stores = {}
    # The independent runs in grid order: (cell, the one held-out fold; None: fixed split).
    units: list[tuple[Cell, list[int] | None]] = []
    for cell in cells:
        if cell.dataset not in stores:
            table = load_dataset(cell.dataset, Path(data_roots[cell.dataset]))
            stores[cell.dataset] = build_features(table, cache_dir=cache_dir, progress=progress)
        table = stores[cell.dataset].table
        if table.protocol == "fixed":
            units.append((cell, None))
        else:
            table.splits(folds)  # an absent fold fails here, before any run starts
            units += [(cell, [k]) for k in (folds or table.folds)]
    mine = units[rank::world] if spread else units
    for cell, unit_folds in mine:
        run_cfg = override(cfg, {"mode": cell.mode})
        if cell.mode == "linear" and preset.linear_overrides:
            run_cfg = override(run_cfg, preset.linear_overrides)
        run_crossval(
            stores[cell.dataset],
            cell.weights,
            cell.arch,
            run_cfg,
            out_dir,
            folds=unit_folds,
            cache_dir=cache_dir,
            progress=progress,
        )
    header = f"# Results: grid preset `{preset.name}`\n\n{preset.label}\n\n"
    # Under the lock, the process that writes last has seen every run finished before it.
    with file_lock(out_dir / ".results.lock"):
        markdown, csv = results_table(collect_results(out_dir))
        if spread or rank == 0:
            _write_atomic(out_dir / "results.md", header + markdown)
            _write_atomic(out_dir / "results.csv", csv)
    return {"cells": [to_dict(c) for c in cells], "markdown": header + markdown, "csv": csv}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: spread runs race
    tmp.write_text(text)
    tmp.replace(path)
