"""One split of one (dataset, weights, mode) cell: identity, training, result files.

:func:`run_split` decides the run's identity (settings that change its numbers, the weights'
fingerprint, the feature store's key, the split's rows, the DDP world size), asks
:func:`soundtransfer.runs.open_run` whether the run directory is new, resumable or done (another
identity is an error naming the difference), trains with the run's mode
(:func:`soundtransfer.train.modes.training_mode`: fine-tuning, or linear evaluation's probe;
every one returns a :class:`~soundtransfer.train.modes.Trained`) and writes ``final.json`` and
the model bundle (rank 0 only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundtransfer import distributed as D
from soundtransfer.config import ConfigError, config_hash, override, save_json, to_dict
from soundtransfer.datasets.clips import ClipTable, Split
from soundtransfer.features.store import FeatureStore
from soundtransfer.models.classifier import Classifier
from soundtransfer.models.registry import check_embedding
from soundtransfer.runs import open_run
from soundtransfer.runs.rundir import FINAL, MODEL
from soundtransfer.train.config import TrainConfig, embed_batch_for, identity_settings
from soundtransfer.train.data import carve_validation
from soundtransfer.train.modes import Job, Rows, build_classifier, training_mode
from soundtransfer.train.tagging import tagging, write_thresholds
from soundtransfer.weights import ResolvedWeights, fingerprint, resolve

__all__ = ["run_identity", "run_split"]


def run_identity(
    store: FeatureStore,
    split_name: str,
    rows: Rows,
    weights: ResolvedWeights,
    cfg: TrainConfig,
    world_size: int,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """What produces a run's numbers (JSON-ready); see :mod:`soundtransfer.runs.rundir`."""
    return {
        "settings": identity_settings(cfg),
        "weights": {"label": weights.label, "fingerprint": fingerprint(weights, cache_dir)},
        "store": store.key,
        "split": {"name": split_name, "rows": config_hash(*(r.tolist() for r in rows))},
        "world_size": world_size,
    }


def _rows(store: FeatureStore, split: Split, cfg: TrainConfig) -> tuple[Rows, TrainConfig, str]:
    """The split's train, valid and test store rows, the settings they allow and a line
    saying where the validation part came from ("" without one).

    The split's own ``valid`` rows when it has them (the training rows stay whole); else
    ``val_fraction`` of the training rows carved by recording. When carving would leave a
    class without training clips (one recording of it), there is no validation part:
    ``select=best_val`` falls back to ``last`` and the line says so.
    """
    table, test = store.table, np.asarray(split.test, dtype=np.int64)
    if split.valid:
        rows = (np.asarray(split.train, np.int64), np.asarray(split.valid, np.int64), test)
        return rows, cfg, f"validation: the split's {len(split.valid)} valid clips"
    train, valid = carve_validation(table, split.train, cfg.val_fraction, cfg.seed)
    lost = sorted(
        {table.clips[i].label for i in split.train} - {table.clips[i].label for i in train}
    )
    if valid and lost:
        cfg = override(cfg, {"val_fraction": 0.0, "select": "last"})
        train, valid = tuple(split.train), ()
        line = (
            f"validation: none carved (class {table.classes[lost[0]]!r} has one recording in "
            "the training folds); the final epoch is kept (select=last)"
        )
    else:
        line = (
            f"validation: {len(valid)} of {len(split.train)} training clips carved by recording "
            f"(val_fraction={cfg.val_fraction})"
            if valid
            else ""
        )
    rows = (np.asarray(train, np.int64), np.asarray(valid, np.int64), test)
    return rows, cfg, line


def _header(
    store: FeatureStore,
    split: Split,
    rows: Rows,
    cfg: TrainConfig,
    resolved: ResolvedWeights,
    info: D.DistInfo,
    world: int,
) -> dict[str, Any]:
    """What ``config.json`` records besides the identity (not compared when reopened)."""
    return {
        "train": to_dict(cfg),
        "frontend": to_dict(store.frontend),
        "dataset": store.table.name,
        "dataset_origin": store.origin,  # source, layout, fold assignment, front-end choice
        "store_key": store.key,
        "split": split.name,
        "n_train": len(rows[0]),
        "n_valid": len(rows[1]),
        "n_test": len(rows[2]),
        "world_size": world,
        "effective_batch_size": cfg.batch_size,
        "batch_size_per_process": cfg.batch_size // world,
        "torch": torch.__version__,
        "device": str(info.device),
        "weights": resolved.spec,
        "arch": resolved.arch,
        "weight_source": to_dict(resolved.source),
    }


def run_split(
    store: FeatureStore,
    split: Split,
    weights: str | ResolvedWeights,
    arch: str | None,
    cfg: TrainConfig,
    run_dir: Path,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one split in ``run_dir``.

    The same identity reuses a finished run (its ``final.json``) or resumes from ``last.pt``;
    a directory of another identity is a :class:`~soundtransfer.errors.RunError`.

    Args:
        store: the feature store.
        split: train/valid/test rows.
        weights: a source name or file (with ``arch``, see :func:`soundtransfer.weights.resolve`)
            or resolved weights.
        arch: architecture (ignored for resolved ``weights``).
        cfg: settings.
        run_dir: the run directory.
        cache_dir: cache root (weights, embeddings).
        progress: progress bars.

    Returns:
        The contents of ``final.json``.
    """
    resolved = weights if isinstance(weights, ResolvedWeights) else resolve(weights, arch)
    check_embedding(resolved.arch, cfg.embedding)  # before the run directory is written
    cfg = task_settings(cfg, store)
    mode = training_mode(cfg)
    info = D.init_distributed(cfg.device)
    cfg = override(cfg, {"embed_batch_size": embed_batch_for(cfg, info.device.type)})
    ddp_world = info.world_size if mode.shares_batches else 1
    if cfg.batch_size % ddp_world:
        raise ConfigError(
            f"batch_size={cfg.batch_size} is not a multiple of the {ddp_world} processes"
        )
    rows, cfg, valid_line = _rows(store, split, cfg)
    identity = run_identity(store, split.name, rows, resolved, cfg, ddp_world, cache_dir)
    status = open_run(
        run_dir, identity, _header(store, split, rows, cfg, resolved, info, ddp_world)
    )
    if status.state == "done":
        return status.final()
    torch.manual_seed(cfg.seed)
    model, stats = build_classifier(store, rows[0], resolved, cfg, cache_dir)
    trained = mode.train(Job(store, rows, model, cfg, info, run_dir, cache_dir, progress))
    model.to("cpu")
    table = store.table
    result = {
        **trained.result,
        "split": split.name,
        "n_train": len(rows[0]),
        "n_test": len(split.test),
        "labels": [list(s) if table.multi_label else s[0] for s in _test_sets(table, split)],
        "classes": list(table.classes),
        "train_mean": stats["train_mean"],
        "train_std": stats["train_std"],
        "task": cfg.task,
        "selection_lines": selection_lines(trained.result, valid_line, store.table.task),
    }
    tag = None
    if cfg.task == "multi_label":
        scores = np.asarray(trained.result["predictions"], np.float64).reshape(len(rows[2]), -1)
        tag = tagging(model, store, rows, scores, cfg, info.device)
        result.update(tag.result)
        result["tagging_lines"] = list(tag.lines)
    if D.is_main():
        _save_bundle(
            run_dir / MODEL, model, store, resolved, trained.head, cfg.task,
            None if tag is None else tag.thresholds,
        )  # fmt: skip
        if tag is not None:
            write_thresholds(run_dir, tag)
        save_json(run_dir / FINAL, result)
    D.barrier()
    return result


def selection_lines(result: dict[str, Any], valid_line: str, task: str) -> list[str]:
    """What the user reads about the kept model: where validation came from, which model
    was kept (best epoch, average) and the final epoch's test figure beside it."""
    from soundtransfer.tasks import get_task

    metric = f"test_{get_task(task).primary_metric}"
    lines = [valid_line] if valid_line else []
    kept = result.get("selected", "final_epoch")
    if kept == "best_val":
        lines.append(f"kept the best validation epoch {result['selected_epoch']}")
    elif kept == "average":
        first, last = result["average"]["epochs"]
        lines.append(f"kept the weight average of epochs {first}-{last} (BatchNorm recomputed)")
    if "final_epoch" in result:
        lines.append(
            f"{metric} {result[metric]:.2f} kept, {result['final_epoch'][metric]:.2f} at the "
            "final epoch"
        )
    return lines


def task_settings(cfg: TrainConfig, store: FeatureStore) -> TrainConfig:
    """The settings with the task the data call for (:attr:`ClipTable.task`: multi-hot
    labels make a run multi-label); a multi-label run without a validation part gets one
    (``val_fraction=0.2``, carved by recording), where its thresholds are chosen."""
    task = store.table.task
    changes: dict[str, Any] = {"task": task}
    if task == "multi_label" and cfg.val_fraction == 0.0:
        changes["val_fraction"] = MULTI_LABEL_VAL_FRACTION
    return override(cfg, changes)


#: The validation part a multi-label run carves when none is asked for (its thresholds).
MULTI_LABEL_VAL_FRACTION = 0.2


def _test_sets(table: ClipTable, split: Split) -> list[tuple[int, ...]]:
    sets = table.label_sets()
    return [sets[i] for i in split.test]


def _save_bundle(
    path: Path,
    model: Classifier,
    store: FeatureStore,
    w: ResolvedWeights,
    head: dict[str, Any],
    task: str,
    thresholds: dict[str, float] | None = None,
) -> None:
    from soundtransfer.inference.bundle import save_bundle

    stats = (w.source.input_mean, w.source.input_std)
    save_bundle(
        path, model, store.frontend, store.table.classes, w.arch, w.spec, head=head,
        input_stats=stats, task=task, thresholds=thresholds, background=store.table.background,
    )  # fmt: skip
