"""An exponential moving average of a model's weights, for evaluation (``ema_decay``)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

__all__ = ["ModelEma"]


class ModelEma(nn.Module):
    """Exponential moving average of a model's weights, for evaluation.

    After each optimizer step, ``update(model)`` sets every floating-point parameter and
    buffer to ``d * ema + (1 - d) * live`` with ``d = min(decay, (1 + n) / (10 + n))`` after
    ``n`` updates (a short warm-up so early weights fade quickly). BatchNorm running
    statistics are averaged like the weights (they must match the averaged weights, which
    the live model's statistics do not); integer buffers (``num_batches_tracked``) are
    copied. The copy is kept in ``eval()`` mode and never receives gradients. Pass the
    unwrapped model (not its DDP wrapper).
    """

    num_updates: Tensor

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), not {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        n = int(self.num_updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current state (same architecture)."""
        d = self.current_decay()
        ema_state = self.module.state_dict()
        live_state = model.state_dict()
        if ema_state.keys() != live_state.keys():
            raise ValueError("EMA update: the model's state keys differ from the average's")
        avg, new = [], []
        for k, e in ema_state.items():
            v = live_state[k].detach()
            if e.dtype.is_floating_point:
                avg.append(e)
                new.append(v.to(e.dtype))
            else:
                e.copy_(v)
        if avg:
            torch._foreach_lerp_(avg, new, 1.0 - d)
        self.num_updates += 1

    def train(self, mode: bool = True) -> ModelEma:
        """The average stays in evaluation mode."""
        super().train(False)
        return self

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.module(x)
        return out
