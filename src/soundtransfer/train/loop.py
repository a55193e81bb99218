"""The one epoch skeleton of fine-tuning and linear evaluation (nanoGPT-style plain loop).

Both modes train a module with cross-entropy on shuffled batches, evaluate a validation set
(to select, never the test fold) and the test fold (logged), write one JSON line per epoch
and a resume checkpoint, and report the selected epoch's test accuracy. They differ only in
what :class:`RunContext` holds (see :mod:`soundtransfer.train.modes`): fine-tuning trains the
whole classifier on feature-store images (DDP under torchrun), linear evaluation trains the
head on cached frozen-encoder embeddings.

The fine-tuning recipe (issue 14) lives here too, each part off in the paper's preset:
``RunContext.augment`` transforms each training batch ``(x, y)`` on the device with a
generator seeded by (seed, epoch, rank) (mixup makes ``y`` soft targets, then the loss is
:func:`~soundtransfer.train.augment.soft_target_cross_entropy`); label smoothing; a learning
rate schedule stepped per optimiser step (:func:`lr_multiplier`); an EMA of the weights that
validation, test and the saved model use. Scheduler and EMA state are in ``last.pt``, so a
resumed run equals an uninterrupted one. Any other trainable module on the same inputs (a
probe) is a new :class:`RunContext` run through :func:`fit`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
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
from soundtransfer.train.augment import ModelEma, soft_target_cross_entropy, warmup_cosine
from soundtransfer.train.config import TrainConfig, embed_batch_for

__all__ = [
    "BatchHook",
    "Batches",
    "RunContext",
    "evaluate",
    "fit",
    "lr_multiplier",
    "make_optimizer",
    "make_scheduler",
]

#: ``(rows, batch_size) -> (x, y)`` batches on the run's device.
Batches = Callable[[np.ndarray, int], Iterator[tuple[Tensor, Tensor]]]
#: ``(x, y, generator) -> (x, y)`` applied to training batches only; ``y`` (B,) class indices
#: may come back as (B, K) soft targets. The generator lives on the batch's device.
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


def make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser named by ``cfg.optimizer`` at ``cfg.lr`` / ``cfg.weight_decay``."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def steps_per_epoch(ctx: RunContext) -> int:
    """Optimiser steps in one epoch (the same on every rank)."""
    return math.ceil(len(_my_rows(ctx, 0)) / (ctx.cfg.batch_size // ctx.world_size))


def lr_multiplier(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) as a fraction of ``cfg.lr``.

    Linear warm-up over ``round(warmup_epochs * steps_per_epoch)`` steps, then 1
    (``constant``) or :func:`~soundtransfer.train.augment.warmup_cosine` down to
    ``min_lr_ratio`` at the end of the last epoch (``cosine``).
    """
    total = cfg.epochs * steps_per_epoch
    warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total)
    if cfg.schedule == "cosine":
        return warmup_cosine(step, total, warmup, cfg.min_lr_ratio)
    return (step + 1) / warmup if step < warmup else 1.0


def make_scheduler(
    ctx: RunContext,
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The per-step schedule of ``ctx.cfg`` on ``ctx.optimizer``; None for a constant rate
    without warm-up (the paper)."""
    cfg = ctx.cfg
    if cfg.schedule == "constant" and cfg.warmup_epochs == 0:
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


@torch.no_grad()
def evaluate(
    ctx: RunContext, rows: np.ndarray, model: nn.Module | None = None
) -> tuple[float, float, list[int]]:
    """(mean loss, accuracy %, predictions) of ``model`` (default ``ctx.module``) over the
    given rows."""
    model = ctx.module if model is None else model
    model.eval()
    total, correct, preds = 0.0, 0, []
    for x, y in ctx.batches(rows, embed_batch_for(ctx.cfg, ctx.precision.device.type)):
        with ctx.precision.autocast():
            logits = model(ctx.precision.inputs(x))
        total += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        p = logits.argmax(1)
        correct += int((p == y).sum())
        preds += p.cpu().tolist()
    n = max(len(rows), 1)
    return total / n, 100.0 * correct / n, preds


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
    seen, loss_sum, correct = 0, 0.0, 0
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
            if y.dim() == 1:
                loss = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
            else:
                loss = soft_target_cross_entropy(logits, y, smoothing)
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
        hard = y if y.dim() == 1 else y.argmax(1)  # soft targets from an augmentation hook
        seen += len(y)
        loss_sum += loss_value * len(y)
        correct += int((logits.argmax(1) == hard).sum())
        bar.update(len(y))
    bar.close()
    seconds = time.perf_counter() - t0
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / max(seen, 1),
        "train_acc": 100.0 * correct / max(seen, 1),
        "lr": lr,  # of the epoch's last step
        "seconds": seconds,
        "samples_per_s": seen * ctx.world_size / seconds,
    }


def fit(ctx: RunContext) -> dict[str, Any]:
    """Train ``ctx.module`` for ``cfg.epochs`` (resuming from ``last.pt``) and evaluate the
    selected epoch on the test fold.

    With ``cfg.ema_decay > 0`` the weight average is what is validated, tested, saved to
    ``best.pt`` and left in ``ctx.module`` at the end (so the saved model is the average).

    Returns:
        ``test_acc``, ``test_loss``, ``epochs``, ``selected_epoch``, ``predictions``.
    """
    cfg, device = ctx.cfg, ctx.precision.device
    scaler = ctx.precision.scaler()
    scheduler = make_scheduler(ctx)
    ema = ModelEma(ctx.module, cfg.ema_decay) if cfg.ema_decay > 0 else None
    scored = ctx.module if ema is None else ema.module  # what is evaluated and kept
    last, best_path = ctx.dir / LAST, ctx.dir / BEST
    start, best = 0, {"val_acc": -1.0, "epoch": 0}
    if last.exists():  # the run's identity was checked by runs.open_run
        state = load_checkpoint(last, device)
        ctx.module.load_state_dict(state["model"])
        ctx.optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start, best = int(state["epoch"]), state["best"]
    log = MetricsLog(ctx.dir / METRICS, "epoch", cfg.tensorboard, dense=True)
    log.start(start)
    final_eval: tuple[float, float, list[int]] | None = None
    for epoch in range(start, cfg.epochs):
        record = train_epoch(ctx, epoch, scaler, scheduler, ema)
        if len(ctx.valid_rows):
            record["val_loss"], record["val_acc"], _ = evaluate(ctx, ctx.valid_rows, scored)
            if record["val_acc"] > best["val_acc"]:
                best = {"val_acc": record["val_acc"], "epoch": epoch + 1}
                if cfg.select == "best_val" and D.is_main():
                    atomic_torch_save(scored.state_dict(), best_path)
        final_epoch = epoch + 1 == cfg.epochs
        if final_epoch or (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0):
            final_eval = evaluate(ctx, ctx.test_rows, scored)
            record["test_loss"], record["test_acc"] = final_eval[0], final_eval[1]
        log.write(record)
        state = {
            "model": ctx.module.state_dict(),
            "optimizer": ctx.optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch + 1,
            "best": best,
        }
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        if ema is not None:
            state["ema"] = ema.state_dict()
        save_checkpoint(last, state, device)
    log.close()
    if ema is not None:  # the saved model is the average
        ctx.module.load_state_dict(ema.module.state_dict())
    selected = cfg.epochs
    if cfg.select == "best_val" and best_path.exists():
        D.barrier()
        ctx.module.load_state_dict(load_tensors(best_path))
        selected, final_eval = int(best["epoch"]), None
    if final_eval is None:
        final_eval = evaluate(ctx, ctx.test_rows)
    test_loss, test_acc, preds = final_eval
    check_finite(test_loss, f"on the test fold of {ctx.dir}")
    return {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "epochs": cfg.epochs,
        "selected_epoch": selected,
        "predictions": preds,
    }
