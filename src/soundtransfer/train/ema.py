"""Averages of a model's weights, for evaluation: an exponential moving average per step
(``ema_decay``) and the uniform average of the last epochs (``average_last``)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = ["ModelEma", "WeightAverage", "recompute_batchnorm"]


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


class WeightAverage:
    """The uniform average of a model's states at the ends of its last epochs
    (``average_last``: PSLA's weight averaging), kept as a state dict so it fits in
    ``last.pt`` and a resumed run continues the same average.

    Floating-point parameters and buffers are averaged (``avg += (w - avg) / n``); integer
    buffers (``num_batches_tracked``) take the latest value. BatchNorm running statistics
    averaged this way do not belong to the averaged weights: :func:`recompute_batchnorm`
    replaces them before the average is evaluated.
    """

    def __init__(self) -> None:
        self.state: dict[str, Tensor] = {}
        self.count = 0

    @torch.no_grad()
    def add(self, model: nn.Module) -> None:
        """Fold ``model``'s current state into the average (a CPU float32-or-wider copy)."""
        self.count += 1
        for k, v in model.state_dict().items():
            v = v.detach().to("cpu")
            if k not in self.state or not v.dtype.is_floating_point:
                self.state[k] = v.clone()
            else:
                self.state[k] += (v.to(self.state[k].dtype) - self.state[k]) / self.count

    def state_dict(self) -> dict[str, object]:
        return {"state": self.state, "count": self.count}

    def load_state_dict(self, saved: dict[str, object]) -> None:
        state, count = saved["state"], saved["count"]
        assert isinstance(state, dict) and isinstance(count, int)
        self.state, self.count = {k: v.to("cpu") for k, v in state.items()}, count


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, inputs: Iterable[Tensor]) -> int:
    """Replace every BatchNorm's running mean and variance by their exact averages over
    ``inputs`` (batches as the model takes them), the statistics the weights now in
    ``model`` produce; returns the number of BatchNorm layers (0: nothing to do).

    Unlike ``torch.optim.swa_utils.update_bn``, only the BatchNorm layers are in training
    mode: dropout and stochastic depth stay off, so the statistics draw nothing from the
    global random state (a resumed run gets the same ones) and see the network evaluation
    runs. The model is left in ``eval()`` mode.
    """
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over every batch, not an exponential one
        m.train()
    for x in inputs:
        model(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
        m.eval()
    return len(norms)
