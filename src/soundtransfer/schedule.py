"""The one learning-rate schedule: linear warm-up, then a half cosine (a pure function).

Fine-tuning's ``schedule=cosine`` (:mod:`soundtransfer.train.loop`) and SimCLR pre-training's
LARS schedule (:func:`soundtransfer.pretrain.lars.lr_at_step`, SimCLR appendix B.1) are both
``peak * warmup_cosine(step, total, warmup, final_ratio)``. The warm-up rises in equal steps to
the peak, which the last warm-up step reaches (``(step + 1) / warmup``: no step is spent at a
learning rate of 0, unlike TF SimCLR's ``step / warmup``), then the cosine falls from the peak at
step ``warmup`` to ``final_ratio`` at step ``total`` (one past the last step, as DINO's
schedule). Written once, so the two loops cannot drift apart.
"""

from __future__ import annotations

import math

__all__ = ["warmup_cosine"]


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int = 0, final_ratio: float = 0.0
) -> float:
    """Learning-rate multiplier at optimiser step ``step`` (0-based): linear warm-up, cosine.

    ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, then
    ``final_ratio + (1 - final_ratio) * (1 + cos(pi * p)) / 2`` with
    ``p = (step - warmup_steps) / (total_steps - warmup_steps)``, and ``final_ratio`` from step
    ``total_steps`` on.

    Args:
        step: 0-based optimiser step.
        total_steps: steps of the whole run (> 0).
        warmup_steps: steps of linear warm-up, ``0 <= warmup_steps <= total_steps``.
        final_ratio: the multiplier the cosine ends at (0: to zero, SimCLR's).

    Raises:
        ValueError: ``total_steps <= 0`` or ``warmup_steps`` outside ``[0, total_steps]``.
    """
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"bad schedule: total_steps={total_steps}, warmup_steps={warmup_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return final_ratio
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
