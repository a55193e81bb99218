"""The one epoch skeleton of fine-tuning and linear evaluation (nanoGPT-style plain loop).

Both modes train a module with the task's loss (:mod:`soundtransfer.tasks`: cross-entropy for
single-label runs) on shuffled batches, evaluate a validation set (to select, never the test
fold) and the test fold (logged), write one JSON line per epoch and a resume checkpoint, and
report the selected epoch's test metrics (``test_<metric>``: ``test_acc``, ``test_loss``).
They differ only in what :class:`RunContext` holds (see :mod:`soundtransfer.train.modes`):
fine-tuning trains the whole classifier on feature-store images (DDP under torchrun), linear
evaluation trains the head on cached frozen-encoder embeddings.

The fine-tuning recipe (issue 14) lives here too, each part off in the paper's preset:
``RunContext.augment`` transforms each training batch ``(x, y)`` on the device with a
generator seeded by (seed, epoch, rank) (mixup makes ``y`` soft targets, which the task's loss
takes); label smoothing; a learning
rate schedule stepped per optimiser step (:func:`lr_multiplier`); an EMA of the weights that
validation, test and the saved model use. Scheduler and EMA state are in ``last.pt``, so a
resumed run equals an uninterrupted one. Any other trainable module on the same inputs (a
probe) is a new :class:`RunContext` run through :func:`fit`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from soundtransfer import distributed as D
from soundtransfer.runs import (
    MetricsLog,
    Precision,
    atomic_torch_save,
    check_finite,
    load_checkpoint,
    load_tensors,
    save_checkpoint,
)
from soundtransfer.runs.rundir import BEST, LAST, METRICS
from soundtransfer.schedule import warmup_cosine
from soundtransfer.tasks import DEFAULT_TASK, get_task
from soundtransfer.tasks.base import Task
from soundtransfer.train.config import ScheduleConfig, TrainConfig, embed_batch_for
from soundtransfer.train.ema import ModelEma, WeightAverage, recompute_batchnorm

__all__ = [
    "BatchHook",
    "Batches",
    "Evaluation",
    "RunContext",
    "evaluate",
    "fit",
    "lr_multiplier",
    "make_optimizer",
    "make_scheduler",
    "tta_logits",
    "tta_views",
]

#: ``(rows, batch_size) -> (x, y)`` batches on the run's device; ``y`` the task's targets
#: (:meth:`soundtransfer.tasks.base.Task.targets`: (B,) class indices or (B, K) rows).
Batches = Callable[[np.ndarray, int], Iterator[tuple[Tensor, Tensor]]]
#: ``(x, y, generator) -> (x, y)`` applied to training batches only; ``y`` may come back as
#: (B, K) soft targets. The generator lives on the batch's device.
BatchHook = Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]]


@dataclass
class RunContext:
    """Everything :func:`fit` needs; the two modes differ only in what they put here.

    Attributes:
        cfg: the settings.
        dir: the run directory (``metrics.jsonl``, ``last.pt``, ``best.pt``).
        module: the trained module, unwrapped: its state is saved and evaluated.
        net: what the training forward calls (``module``, or it wrapped in DDP / compiled).
        optimizer: over ``module``'s trained parameters.
        precision: device, autocast and memory format.
        batches: rows -> batches on the device.
        train_rows, valid_rows, test_rows: store rows of the split's parts.
        world_size: processes sharing each batch (DDP); 1 when each process trains alone.
        augment: optional training-batch hook (fine-tuning's batch augmentation).
        progress: show a progress bar on the main rank.
        task: what the outputs mean: the loss, the metrics, what is predicted.
        tta: evaluation scores each clip as the mean logits of this many time shifts of its
            image (:func:`tta_views`); 1 = the image alone. Fine-tuning only.
    """

    cfg: TrainConfig
    dir: Path
    module: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    precision: Precision
    batches: Batches
    train_rows: np.ndarray
    valid_rows: np.ndarray
    test_rows: np.ndarray
    world_size: int = 1
    augment: BatchHook | None = None
    progress: bool = False
    task: Task = dataclasses.field(default_factory=lambda: get_task(DEFAULT_TASK))
    tta: int = 1


#: ``OptimiserConfig.name`` -> ``(params, lr, weight_decay) -> optimiser``.
OPTIMISERS: dict[str, Callable[[Any, float, float], torch.optim.Optimizer]] = {
    "adam": lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd),
    "adamw": lambda p, lr, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd),
    "sgd": lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd),
}


def make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser of ``cfg.optimiser`` (name, peak learning rate, weight decay)."""
    opt = cfg.optimiser
    return OPTIMISERS[opt.name](params, opt.lr, opt.weight_decay)


def steps_per_epoch(ctx: RunContext) -> int:
    """Optimiser steps in one epoch (the same on every rank)."""
    return math.ceil(len(_my_rows(ctx, 0)) / (ctx.cfg.batch_size // ctx.world_size))


def lr_multiplier(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) as a fraction of the peak
    (``cfg.optimiser.lr``).

    :func:`~soundtransfer.schedule.warmup_cosine` with a linear warm-up over
    ``round(warmup_epochs * steps_per_epoch)`` steps, then 1 (``constant``: a final ratio of
    1) or down to ``min_lr_ratio`` at the end of the last epoch (``cosine``).
    """
    sched: ScheduleConfig = cfg.schedule
    total = cfg.epochs * steps_per_epoch
    warmup = min(round(sched.warmup_epochs * steps_per_epoch), total)
    final = sched.min_lr_ratio if sched.kind == "cosine" else 1.0
    return warmup_cosine(step, total, warmup, final)


def make_scheduler(
    ctx: RunContext,
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The per-step schedule of ``ctx.cfg`` on ``ctx.optimizer``; None for a constant rate
    without warm-up (the paper)."""
    cfg = ctx.cfg
    if cfg.schedule.kind == "constant" and cfg.schedule.warmup_epochs == 0:
        return None
    n = steps_per_epoch(ctx)
    return torch.optim.lr_scheduler.LambdaLR(
        ctx.optimizer, lambda step: lr_multiplier(step, cfg, n)
    )


def augment_generator(ctx: RunContext, epoch: int) -> torch.Generator:
    """The epoch's augmentation generator on the training device, seeded by (seed, epoch,
    rank): a resumed run draws the same augmentations, DDP ranks different ones."""
    seed = np.random.default_rng([ctx.cfg.seed, epoch, D.get_rank()]).integers(2**62)
    gen = torch.Generator(device=ctx.precision.device)
    gen.manual_seed(int(seed))
    return gen


@dataclass(frozen=True)
class Evaluation:
    """The task's metrics over some rows and what it predicts for each.

    Attributes:
        metrics: :meth:`soundtransfer.tasks.base.Task.metrics` (``loss`` and the primary
            metric, e.g. ``acc`` in %); an empty set of rows scores ``loss`` 0.
        predictions: one entry per row (a class index for single-label runs).
        probabilities: ``(N, K)`` the task's activation of the logits (softmax or sigmoid),
            what ensembles average (:mod:`soundtransfer.analysis.ensemble`).
    """

    metrics: dict[str, float]
    predictions: list[Any]
    probabilities: list[list[float]] = dataclasses.field(default_factory=list)

    def logged(self, prefix: str) -> dict[str, float]:
        """The metrics under ``<prefix>_<name>`` (``val_loss``, ``test_acc`` ...)."""
        return {f"{prefix}_{k}": v for k, v in self.metrics.items()}


@torch.no_grad()
def evaluate(ctx: RunContext, rows: np.ndarray, model: nn.Module | None = None) -> Evaluation:
    """The task's metrics of ``model`` (default ``ctx.module``) over the given rows (logits
    gathered on the CPU, (N, K) float32, so metrics over the whole set such as mAP work)."""
    model = ctx.module if model is None else model
    model.eval()
    logits, targets = [], []
    for x, y in ctx.batches(rows, embed_batch_for(ctx.cfg, ctx.precision.device.type)):
        logits.append(tta_logits(model, x, ctx.tta, ctx.precision))
        targets.append(y.cpu())
    if not logits:
        return Evaluation({"loss": 0.0, ctx.task.primary_metric: 0.0}, [])
    scores = torch.cat(logits)  # (N, K)
    probs = ctx.task.activation(scores).double().numpy().round(PROBABILITY_DIGITS).tolist()
    return Evaluation(
        ctx.task.metrics(scores, torch.cat(targets)), list(ctx.task.predictions(scores)), probs
    )


#: Decimals of the test probabilities ``final.json`` keeps: far below any difference that
#: moves an averaged decision, and a 400-clip, 50-class fold stays near 0.5 MB.
PROBABILITY_DIGITS = 6


def tta_views(x: Tensor, n: int) -> Iterator[Tensor]:
    """``n`` views of ``(B, C, F, T)`` images for test-time augmentation: circular time
    shifts by ``round(k * T / n)`` frames, ``k = 0 .. n - 1`` (the first is the image
    itself), spread evenly over the clip; the training time shift's ``roll`` mode."""
    t = x.shape[-1]
    for k in range(n):
        yield x if k == 0 else torch.roll(x, shifts=round(k * t / n), dims=-1)


def tta_logits(model: nn.Module, x: Tensor, n: int, precision: Precision) -> Tensor:
    """``(B, K)`` float32 CPU logits of ``model`` on ``x`` averaged over :func:`tta_views`
    (the logits, not the probabilities: the mean works for every task's activation, and for
    ``n = 1`` it is the plain forward)."""
    total: Tensor | None = None
    for view in tta_views(x, n):
        with precision.autocast():
            out = model(precision.inputs(view)).float()
        total = out if total is None else total + out
    assert total is not None
    return (total / n if n > 1 else total).cpu()


def _my_rows(ctx: RunContext, epoch: int) -> np.ndarray:
    """This process's share of the epoch's shuffle, which depends only on (seed, epoch): a
    resumed run sees the same batches; under DDP each rank a disjoint shard of it."""
    perm = np.random.default_rng([ctx.cfg.seed, epoch]).permutation(ctx.train_rows)
    if ctx.world_size == 1:
        return perm
    usable = len(perm) // ctx.world_size * ctx.world_size
    return perm[:usable][D.get_rank() :: ctx.world_size]


def train_epoch(
    ctx: RunContext,
    epoch: int,
    scaler: torch.amp.GradScaler,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ema: ModelEma | None = None,
) -> dict[str, Any]:
    """One pass over this process's training rows; returns the epoch's record.

    ``scheduler`` steps and ``ema`` updates after every optimiser step.
    """
    t0 = time.perf_counter()
    rows = _my_rows(ctx, epoch)
    ctx.net.train()
    gen = augment_generator(ctx, epoch) if ctx.augment is not None else None
    smoothing = ctx.cfg.label_smoothing
    seen, loss_sum = 0, 0.0
    outputs, targets = [], []  # the epoch's logits and targets, for the task's train metric
    lr = ctx.optimizer.param_groups[0]["lr"]
    bar = tqdm(
        total=len(rows),
        desc=f"{ctx.dir.name} epoch {epoch + 1}/{ctx.cfg.epochs}",
        unit="clip",
        disable=not ctx.progress or not D.is_main(),
        leave=False,
    )
    for step, (x, y) in enumerate(ctx.batches(rows, ctx.cfg.batch_size // ctx.world_size)):
        if ctx.augment is not None and gen is not None:
            x, y = ctx.augment(x, y, gen)
        with ctx.precision.autocast():
            logits = ctx.net(ctx.precision.inputs(x))
            loss = ctx.task.loss(logits, y, smoothing)
        loss_value = float(loss.detach())
        check_finite(loss_value, f"at epoch {epoch + 1}, step {step} of {ctx.dir}")
        lr = ctx.optimizer.param_groups[0]["lr"]
        ctx.optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(ctx.optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(ctx.module)
        seen += len(y)
        loss_sum += loss_value * len(y)
        outputs.append(logits.detach().float().cpu())
        targets.append(y.detach().cpu())
        bar.update(len(y))
    bar.close()
    seconds = time.perf_counter() - t0
    primary = ctx.task.primary_metric
    train = ctx.task.metrics(torch.cat(outputs), torch.cat(targets)) if outputs else {}
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / max(seen, 1),  # the training loss (smoothed, soft targets)
        f"train_{primary}": train.get(primary, 0.0),
        "lr": lr,  # of the epoch's last step
        "seconds": seconds,
        "samples_per_s": seen * ctx.world_size / seconds,
    }


@dataclass
class _Resumable:
    """What ``last.pt`` holds besides the model and the optimiser (each None when off)."""

    scaler: torch.amp.GradScaler
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    ema: ModelEma | None
    average: WeightAverage | None

    def parts(self) -> dict[str, Any]:
        """``last.pt`` key -> the part (those that are on)."""
        named = {"scaler": self.scaler, "scheduler": self.scheduler, "ema": self.ema,
                 "average": self.average}  # fmt: skip
        return {k: v for k, v in named.items() if v is not None}


def _resume(ctx: RunContext, parts: _Resumable, best: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Restore ``last.pt`` if there is one (the run's identity was checked by
    :func:`soundtransfer.runs.open_run`); the epoch to start at and the best validation
    record so far."""
    last = ctx.dir / LAST
    if not last.exists():
        return 0, best
    state = load_checkpoint(last, ctx.precision.device)
    ctx.module.load_state_dict(state["model"])
    ctx.optimizer.load_state_dict(state["optimizer"])
    for key, part in parts.parts().items():
        part.load_state_dict(state[key])
    return int(state["epoch"]), state["best"]


def fit(ctx: RunContext) -> dict[str, Any]:
    """Train ``ctx.module`` for ``cfg.epochs`` (resuming from ``last.pt``) and evaluate the
    selected model on the test fold.

    With ``cfg.ema_decay > 0`` the weight average is what is validated, tested, saved to
    ``best.pt`` and left in ``ctx.module`` at the end (so the saved model is the average).
    With ``cfg.average_last = K`` the evaluated weights of the last K epochs are averaged
    (the running average lives in ``last.pt``) and BatchNorm statistics recomputed on the
    training rows (:func:`_averaged`). ``select=last`` keeps the average when there is one,
    else the final epoch; ``select=best_val`` keeps whichever of the best epoch and the
    average scores the higher validation primary metric (the task's; higher is better).

    Returns:
        ``test_<metric>`` for each of the task's metrics (``test_acc``, ``test_loss``) of the
        kept model, ``epochs``, ``selected_epoch``, ``selected`` (``final_epoch``,
        ``best_val`` or ``average``), ``predictions``; when the kept model is not the final
        epoch's, ``final_epoch`` (that model's ``test_<metric>``); with averaging,
        ``average`` (its epochs and validation metrics).
    """
    cfg = ctx.cfg
    scaler = ctx.precision.scaler()
    scheduler = make_scheduler(ctx)
    ema = ModelEma(ctx.module, cfg.ema_decay) if cfg.ema_decay > 0 else None
    average = WeightAverage() if cfg.average_last > 0 else None
    scored = ctx.module if ema is None else ema.module  # what is evaluated and kept
    best_path, key = ctx.dir / BEST, f"val_{ctx.task.primary_metric}"
    parts = _Resumable(scaler, scheduler, ema, average)
    start, best = _resume(ctx, parts, {key: -math.inf, "epoch": 0})
    log = MetricsLog(ctx.dir / METRICS, "epoch", cfg.tensorboard, dense=True)
    log.start(start)
    final_eval: Evaluation | None = None
    for epoch in range(start, cfg.epochs):
        record = train_epoch(ctx, epoch, scaler, scheduler, ema)
        if len(ctx.valid_rows):
            record.update(evaluate(ctx, ctx.valid_rows, scored).logged("val"))
            if record[key] > best[key]:
                best = {key: record[key], "epoch": epoch + 1}
                if cfg.select == "best_val" and D.is_main():
                    atomic_torch_save(scored.state_dict(), best_path)
        if average is not None and epoch >= cfg.epochs - cfg.average_last:
            average.add(scored)
        final_epoch = epoch + 1 == cfg.epochs
        if final_epoch or (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0):
            final_eval = evaluate(ctx, ctx.test_rows, scored)
            record.update(final_eval.logged("test"))
        log.write(record)
        _checkpoint(ctx, epoch, parts, best)
    log.close()
    if ema is not None:  # the saved model is the average
        ctx.module.load_state_dict(ema.module.state_dict())
    if final_eval is None:  # resumed after the last checkpoint: the final epoch's model
        final_eval = evaluate(ctx, ctx.test_rows)
    check_finite(final_eval.metrics["loss"], f"on the test fold of {ctx.dir}")
    return _select(ctx, final_eval, best, average)


def _checkpoint(ctx: RunContext, epoch: int, parts: _Resumable, best: dict[str, Any]) -> None:
    """Write ``last.pt``: everything a resumed run needs to continue as if never stopped."""
    state = {
        "model": ctx.module.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "epoch": epoch + 1,
        "best": best,
        **{key: part.state_dict() for key, part in parts.parts().items()},
    }
    save_checkpoint(ctx.dir / LAST, state, ctx.precision.device)


def batchnorm_rows(ctx: RunContext) -> tuple[np.ndarray, int]:
    """The training rows the weight average's BatchNorm statistics are recomputed on, in
    order, and the batch size: the batches training normalised with.

    Per-batch variances underestimate the population's by the spread of the batch means, so
    the statistics depend on how the batches are drawn. Training's running statistics average
    shuffled batches of ``batch_size // world_size`` (BatchNorm is per device); the recompute
    draws the same kind: a shuffle fixed by ``(seed, epochs)`` (every rank and a resumed run
    get the same), cut into whole batches (a short remainder is left out when there is a
    whole batch, so each batch counts alike). Not the evaluation batch, which is a runtime
    setting, and not the stored order, where neighbouring rows are often slices of one
    recording (UrbanSound8K) whose batches understate the variance most.
    """
    size = max(1, ctx.cfg.batch_size // ctx.world_size)
    rows = np.random.default_rng([ctx.cfg.seed, ctx.cfg.epochs]).permutation(
        np.sort(ctx.train_rows)
    )
    whole = len(rows) // size * size
    return (rows[:whole] if whole else rows), size


def _averaged(ctx: RunContext, average: WeightAverage) -> Evaluation | None:
    """Load the weight average into ``ctx.module``, recompute its BatchNorm statistics on
    the training rows (unaugmented, batched as :func:`batchnorm_rows` says) and return its
    validation evaluation (None without validation rows)."""
    ctx.module.load_state_dict(average.state)
    rows, size = batchnorm_rows(ctx)
    inputs = (ctx.precision.inputs(x) for x, _ in ctx.batches(rows, size))
    with torch.no_grad(), ctx.precision.autocast():
        recompute_batchnorm(ctx.module, inputs)
    return evaluate(ctx, ctx.valid_rows) if len(ctx.valid_rows) else None


def _select(
    ctx: RunContext,
    final_eval: Evaluation,
    best: dict[str, Any],
    average: WeightAverage | None,
) -> dict[str, Any]:
    """Choose the model ``ctx.module`` keeps (see :func:`fit`) and its result."""
    cfg, primary = ctx.cfg, ctx.task.primary_metric
    best_path = ctx.dir / BEST
    extra: dict[str, Any] = {}
    keep_average = average is not None and average.count > 0
    if average is not None and keep_average:
        valid = _averaged(ctx, average)
        extra["average"] = {
            "epochs": [cfg.epochs - average.count + 1, cfg.epochs],
            **({} if valid is None else valid.logged("val")),
        }
        if cfg.select == "best_val" and valid is not None and best_path.exists():
            keep_average = valid.metrics[primary] >= best[f"val_{primary}"]
    selected, epoch = ("average", cfg.epochs) if keep_average else ("final_epoch", cfg.epochs)
    if cfg.select == "best_val" and best_path.exists() and not keep_average:
        D.barrier()
        ctx.module.load_state_dict(load_tensors(best_path))
        selected, epoch = "best_val", int(best["epoch"])
    kept = final_eval
    if selected != "final_epoch":
        kept = evaluate(ctx, ctx.test_rows)
        check_finite(kept.metrics["loss"], f"on the test fold of {ctx.dir}")
        extra["final_epoch"] = final_eval.logged("test")
    return {
        **kept.logged("test"),
        "epochs": cfg.epochs,
        "selected_epoch": epoch,
        "selected": selected,
        "predictions": kept.predictions,
        "test_probabilities": kept.probabilities,
        **extra,
    }
