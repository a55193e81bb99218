"""LARS optimiser and the warm-up + cosine learning-rate schedule of SimCLR.

LARS (You et al. 2017) as in TensorFlow SimCLR's ``lars_optimizer.py``, for a parameter ``w``
with gradient ``g``, momentum buffer ``v``, learning rate ``lr``::

    g     <- g + wd * w                                 (weight decay, unless excluded)
    ratio <- eta * |w| / |g|  if |w| > 0 and |g| > 0 else 1    (no adaptation if excluded)
    v     <- momentum * v + lr * ratio * g
    w     <- w - v

with ``momentum = 0.9``, trust coefficient ``eta = 0.001`` and ``wd = 1e-6``. Biases and batch
norm parameters are excluded from both weight decay and adaptation (SimCLR's
``exclude_from_weight_decay`` / ``exclude_from_layer_adaptation``); here they are found by
shape (tensors of one dimension), not by name.

The learning rate is ``base_lr * batch / 256`` (SimCLR's "linear" scaling; ``0.075 *
sqrt(batch)`` with "sqrt"), warmed up linearly over 10 epochs and then decayed with a cosine to
zero (SimCLR appendix B.1), by the one schedule formula of :mod:`soundtransfer.schedule`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from soundtransfer.schedule import warmup_cosine

__all__ = ["LARS", "lars_param_groups", "lars_update", "lr_at_step", "scaled_lr"]


def scaled_lr(base_lr: float, batch_size: int, scaling: str = "linear") -> float:
    """Peak learning rate for a global batch.

    Args:
        base_lr: learning rate at batch 256 (``linear``) or the square-root coefficient.
        batch_size: global batch (all ranks), images.
        scaling: ``"linear"`` gives ``base_lr * batch / 256``; ``"sqrt"`` gives
            ``base_lr * sqrt(batch)``; ``"none"`` gives ``base_lr``.
    """
    if scaling == "linear":
        return base_lr * batch_size / 256.0
    if scaling == "sqrt":
        return base_lr * math.sqrt(batch_size)
    if scaling == "none":
        return base_lr
    raise ValueError(f"lr_scaling must be 'linear', 'sqrt' or 'none', got {scaling!r}")


def lr_at_step(step: int, total_steps: int, warmup_steps: int, peak_lr: float) -> float:
    """Learning rate used for optimiser step ``step`` (0-based): ``peak_lr *``
    :func:`soundtransfer.schedule.warmup_cosine` ``(step, total_steps, warmup_steps)``, the
    schedule fine-tuning uses too (linear warm-up to ``peak_lr``, then a cosine to zero).

    Args:
        step: 0-based step index.
        total_steps: steps in the whole run.
        warmup_steps: steps of linear warm-up (0 for none).
        peak_lr: learning rate reached at the end of the warm-up.
    """
    return peak_lr * warmup_cosine(step, total_steps, warmup_steps)


def lars_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters: matrices and kernels get weight decay and LARS adaptation; biases and
    batch-norm scales/shifts (any 1-D tensor) get neither.

    Returns:
        Two optimiser groups (empty ones dropped): ``{"params", "weight_decay", "lars"}``.
    """
    adapted = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    plain = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": adapted, "weight_decay": weight_decay, "lars": True},
        {"params": plain, "weight_decay": 0.0, "lars": False},
    ]
    return [g for g in groups if g["params"]]


@torch.no_grad()
def lars_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    buf: torch.Tensor,
    lr: float,
    momentum: float,
    weight_decay: float,
    trust_coefficient: float,
    adapt: bool,
) -> None:
    """One LARS step for one tensor, in place on ``param`` and ``buf`` (formula in the module
    docstring).

    Args:
        param: weights ``w``, any shape.
        grad: ``dL/dw``, same shape.
        buf: momentum ``v``, same shape.
        lr: learning rate of this step.
        momentum: momentum coefficient.
        weight_decay: L2 coefficient added to the gradient.
        trust_coefficient: ``eta``.
        adapt: scale the step by the trust ratio.
    """
    g = grad.float() if param.dtype != grad.dtype else grad
    if weight_decay != 0.0:
        g = g.add(param, alpha=weight_decay)
    if adapt:
        w_norm = torch.linalg.vector_norm(param)
        g_norm = torch.linalg.vector_norm(g)
        ratio = torch.where(
            (w_norm > 0) & (g_norm > 0),
            trust_coefficient * w_norm / g_norm.clamp_min(torch.finfo(g_norm.dtype).tiny),
            torch.ones_like(w_norm),
        )
        g = g * ratio
    buf.mul_(momentum).add_(g, alpha=lr)
    param.sub_(buf)


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling with momentum, as in TensorFlow SimCLR.

    Args:
        params: parameters or groups; a group may set ``weight_decay`` and ``lars`` (adapt or
            not), e.g. from :func:`lars_param_groups`.
        lr: learning rate (overwritten each step by the schedule in the pre-training loop).
        momentum: 0.9 in SimCLR.
        weight_decay: 1e-6 in SimCLR.
        trust_coefficient: ``eta``, 0.001 in SimCLR.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.3,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        trust_coefficient: float = 1e-3,
    ) -> None:
        if lr < 0 or not 0 <= momentum < 1 or weight_decay < 0 or trust_coefficient <= 0:
            raise ValueError(
                f"LARS needs lr >= 0, 0 <= momentum < 1, weight_decay >= 0, trust_coefficient "
                f"> 0; got {lr}, {momentum}, {weight_decay}, {trust_coefficient}"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
            "lars": True,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Apply one update to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                lars_update(
                    p,
                    p.grad,
                    state["momentum_buffer"],
                    lr=group["lr"],
                    momentum=group["momentum"],
                    weight_decay=group["weight_decay"],
                    trust_coefficient=group["trust_coefficient"],
                    adapt=group["lars"],
                )
        return loss
