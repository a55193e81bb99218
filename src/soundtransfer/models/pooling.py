"""The maths of the embedding options (:class:`~soundtransfer.models.embedding.EmbeddingSpec`):
pure functions of feature maps ``(B, C, h, w)`` (h: frequency, w: time), and
:func:`embed`, the classifier's embedding of an encoder's input.

To add a pooling: see :mod:`soundtransfer.models.embedding`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from soundtransfer.models.backbones import Encoder
from soundtransfer.models.embedding import EmbeddingSpec

__all__ = ["POOL_FUNCTIONS", "STD_FLOOR", "embed", "mean_pool", "meanstd_pool"]

#: The variance below which ``meanstd``'s standard deviation is ``sqrt(STD_FLOOR)`` (a map one
#: column wide has none; the floor keeps fine-tuning's gradient finite there).
STD_FLOOR = 1e-12


def mean_pool(fmap: Tensor) -> Tensor:
    """``(B, C, h, w) -> (B, C)``: the global average (the encoders' own pooling)."""
    return torch.flatten(F.adaptive_avg_pool2d(fmap, 1), 1)


def meanstd_pool(fmap: Tensor) -> Tensor:
    """``(B, C, h, w) -> (B, 2C)``: the average over frequency, then over time its mean
    (the first C) and its standard deviation (population, ``sqrt(max(var, STD_FLOOR))``), in
    float32 (a bf16 map under autocast would keep ~3 digits of the variance)."""
    cols = fmap.float().mean(dim=2)  # (B, C, w)
    mean = cols.mean(dim=2)  # (B, C)
    var = (cols - mean.unsqueeze(2)).square().mean(dim=2)  # (B, C)
    return torch.cat([mean, var.clamp_min(STD_FLOOR).sqrt()], dim=1)  # (B, 2C)


#: Every pooling of :data:`soundtransfer.models.embedding.POOLS`: map -> vector.
POOL_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "mean": mean_pool,
    "meanstd": meanstd_pool,
}


def embed(encoder: Encoder, x: Tensor, spec: EmbeddingSpec) -> Tensor:
    """``(B, 3, H, W)`` encoder inputs -> ``(B, spec.width(...))`` embeddings: the encoder's
    ``forward`` for the default spec (bit for bit what it always gave), else the pooled maps
    of its last ``spec.blocks`` stages (``Encoder.forward_blocks``), concatenated, last first."""
    if spec.is_default:
        out: Tensor = encoder(x)
        return out
    pool = POOL_FUNCTIONS[spec.pool]
    return torch.cat([pool(m) for m in encoder.forward_blocks(x, spec.blocks)], dim=1)
