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
    ``recipe``: ESC-10, EfficientNet-Lite0 ImageNet weights fine-tuned with the modern
    recipe (the ``recipe`` training preset: AdamW, warm-up + cosine, label smoothing,
    SpecAugment, gain and time shift; issue 14). Not the paper's protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundtransfer.config import get_named, override, save_json, to_dict
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
    "recipe": GridPreset(
        name="recipe",
        datasets=("esc10",),
        finetune=(("lite0", "efficientnet_lite0"),),
        linear=(),
        train_preset="recipe",
        label=(
            "Modern fine-tuning recipe (ESC-10, EfficientNet-Lite0 ImageNet, training preset "
            "`recipe`: AdamW, warm-up + cosine, label smoothing, SpecAugment, gain, "
            "time shift): NOT the paper's protocol."
        ),
    ),
}


def get_preset(name: str, overrides: Mapping[str, Any] | Iterable[str] = ()) -> GridPreset:
    """A grid preset (``paper``, ``cpu``, ``recipe``) with ``key=value`` overrides of its
    fields."""
    return get_named(GRID_PRESETS, name, overrides, "grid preset")


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
    frontend_overrides: Sequence[str] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Run every cell of ``preset`` (reusing finished splits) and write the result tables.

    Args:
        preset: the grid.
        data_roots: dataset name -> root folder in its official layout.
        out_dir: runs directory; results go to ``out_dir/results.{md,csv}``.
        folds: hold out only these folds (k-fold datasets); None = all.
        cache_dir: cache root (features, weights, embeddings).
        device: "auto", "cpu", "cuda", "cuda:1" ...
        spread: under ``torchrun``, the independent runs (cell x held-out split) are dealt
            round-robin to the processes, each training its runs alone on its own GPU (no
            gradient sync), instead of all processes training each run together with DDP.
            Shared caches are locked, so the features and weights are computed once. Every
            process rewrites the tables when it ends, so the last to finish leaves them
            complete (re-running ``reproduce`` reuses finished runs and rewrites them too).
        extra_overrides: ``key=value`` overrides of the training config.
        frontend_overrides: ``key=value`` overrides of every dataset's front-end preset.

    Returns:
        ``{"cells": [...], "markdown": str, "csv": str}``.
    """
    from soundtransfer import distributed as D
    from soundtransfer.features import BuildOptions, dataset_store
    from soundtransfer.train import get_preset as train_preset
    from soundtransfer.train.crossval import check_folds

    missing = [d for d in preset.datasets if d not in data_roots]
    if missing:
        raise DatasetError(
            f"grid {preset.name!r} needs a root for {missing}; pass --root NAME=DIR for each"
        )
    folds = check_folds(folds)
    cfg = train_preset(preset.train_preset, [*preset.train_overrides, *extra_overrides])
    cells = preset.cells()
    rank, world, local_rank = D.torchrun_slot()
    if spread and device in ("auto", "cuda"):
        device = str(D.resolve_device(device, local_rank))  # this process's own GPU
    cfg = override(cfg, {"device": device})
    if rank == 0:
        record: dict[str, Any] = {"preset": to_dict(preset), "train": to_dict(cfg)}
        record.update({"frontend_overrides": list(frontend_overrides), "folds": list(folds or [])})
        save_json(out_dir / "grid.json", record)
    # Spread: each process trains its own runs alone, the main rank of each.
    alone: AbstractContextManager[Any] = D.independent_process() if spread else nullcontext()
    with alone:
        build = BuildOptions(progress=progress)
        stores = {
            name: dataset_store(
                name,
                Path(data_roots[name]),
                frontend_overrides=frontend_overrides,
                cache_dir=cache_dir,
                build=build,
            )
            for name in dict.fromkeys(c.dataset for c in cells)
        }
        units = _units(cells, stores, folds)
        for cell, unit_folds in units[rank::world] if spread else units:
            _run_cell(preset, cell, cfg, stores[cell.dataset], out_dir, unit_folds,
                      cache_dir, progress)  # fmt: skip
    return _write_tables(preset, cells, out_dir, write=spread or rank == 0)


def _run_cell(
    preset: GridPreset,
    cell: Cell,
    cfg: Any,
    store: Any,
    out_dir: Path,
    folds: list[int] | None,
    cache_dir: Path | None,
    progress: bool,
) -> None:
    """One cell's runs on ``folds`` (its mode, and the preset's linear overrides)."""
    from soundtransfer.train import run_crossval

    run_cfg = override(cfg, {"mode": cell.mode})
    if cell.mode == "linear" and preset.linear_overrides:
        run_cfg = override(run_cfg, preset.linear_overrides)
    run_crossval(store, cell.weights, cell.arch, run_cfg, out_dir, folds=folds,
                 cache_dir=cache_dir, progress=progress)  # fmt: skip


def _units(
    cells: list[Cell], stores: Mapping[str, Any], folds: Sequence[int] | None
) -> list[tuple[Cell, list[int] | None]]:
    """The independent runs in grid order: (cell, its one held-out fold; None: the fixed
    split). An absent fold fails here, before any run starts."""
    units: list[tuple[Cell, list[int] | None]] = []
    for cell in cells:
        table = stores[cell.dataset].table
        if table.protocol == "fixed":
            units.append((cell, None))
        else:
            table.splits(folds)
            units += [(cell, [k]) for k in (folds or table.folds)]
    return units


def _write_tables(
    preset: GridPreset, cells: list[Cell], out_dir: Path, write: bool
) -> dict[str, Any]:
    from soundtransfer.analysis.tables import (
        collect_protocol,
        collect_results,
        results_table,
        write_tables,
    )

    header = f"# Results: grid preset `{preset.name}`\n\n{preset.label}\n\n"
    # Under the lock, the process that writes last has seen every run finished before it.
    with file_lock(out_dir / ".results.lock"):
        rows, protocol = collect_results(out_dir), collect_protocol(out_dir)
        if write:
            markdown, csv, _ = write_tables(out_dir, rows, protocol, header)
        else:
            body, csv = results_table(rows, protocol)
            markdown = header + body
    return {"cells": [to_dict(c) for c in cells], "markdown": markdown, "csv": csv}
