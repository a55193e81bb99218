"""Heads g(.) on the encoder's pooled features: one definition per kind, for training and for
loading a model bundle alike.

A head is described by a JSON-ready spec (``{"kind": "mlp", "hidden": 1024}``), stored in the
bundle; :func:`build_head` makes the module of a spec for a feature width and a class count,
the same module the probe trained (so its state dict loads strictly). Kinds
(:data:`HEADS`):

- ``linear``: one ``nn.Linear(D, K)``, the paper's g (and the logistic probe's);
- ``mlp``: ``Linear(D, H) - ReLU - Dropout - Linear(H, K)`` (HEAR's prediction head);
- ``knn``: cosine k-nearest neighbours over a bank of training embeddings
  (:class:`KNNHead`), weighted votes as scores.

To add a kind: its builder here and one entry in :data:`HEADS`, with a test in
``tests/models/test_heads.py``; the probe that trains it returns its spec.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from soundtransfer.errors import WeightsError

__all__ = ["HEADS", "KNNHead", "build_head", "fold_standardisation", "linear_head", "mlp_head"]

#: The largest hidden width or neighbour bank a spec may ask for (a stranger's bundle saying
#: ``hidden=1e9`` must not allocate terabytes before its tensors are checked).
MAX_HIDDEN = 16384  # an MLP head's hidden units (probes choose 256 or 1024): 128 MB at most
MAX_BANK = 1 << 24


def linear_head(dim: int, num_classes: int) -> nn.Linear:
    """``nn.Linear(dim, num_classes)``: logits of (B, D) features."""
    return nn.Linear(dim, num_classes)


def mlp_head(dim: int, hidden: int, num_classes: int, dropout: float = 0.1) -> nn.Sequential:
    """``Linear(dim, hidden) - ReLU - Dropout(dropout) - Linear(hidden, num_classes)``.

    State-dict keys ``0.weight, 0.bias, 3.weight, 3.bias`` (bundles depend on them).
    """
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
    )


class KNNHead(nn.Module):
    """Cosine k-nearest-neighbour classifier over a bank of training embeddings.

    ``forward(z)`` standardises the (B, D) embeddings with the bank's training statistics,
    L2-normalises them, takes the ``k`` most cosine-similar bank rows and sums their one-hot
    labels weighted by ``exp(similarity / temperature)`` (the weighted k-NN of Wu et al. 2018
    and DINO, Caron et al. 2021, sec. 4.1). The output is the log of the normalised votes, so a
    softmax of it gives the vote shares; classes no neighbour votes for get log(1e-8).

    Buffers: ``bank`` (N, D) standardised, unit-norm training embeddings; ``labels`` (N,)
    class indices; ``mean``, ``std`` (1, D) the training statistics.
    """

    bank: Tensor
    labels: Tensor
    mean: Tensor
    std: Tensor

    def __init__(
        self, dim: int, num_classes: int, n: int, k: int, temperature: float = 0.07
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.k = k
        self.temperature = temperature
        self.register_buffer("bank", torch.zeros(n, dim))
        self.register_buffer("labels", torch.zeros(n, dtype=torch.long))
        self.register_buffer("mean", torch.zeros(1, dim))
        self.register_buffer("std", torch.ones(1, dim))

    def normalise(self, z: Tensor) -> Tensor:
        """(B, D) embeddings -> standardised, unit-norm (B, D)."""
        return F.normalize((z - self.mean) / self.std, dim=1)

    def forward(self, z: Tensor) -> Tensor:
        sim = self.normalise(z.float()) @ self.bank.T  # (B, N) cosine similarities
        k = min(self.k, sim.shape[1])
        top, idx = sim.topk(k, dim=1)  # (B, k)
        weights = torch.exp(top / self.temperature)  # (B, k)
        votes = torch.zeros(z.shape[0], self.num_classes, device=z.device)
        votes.scatter_add_(1, self.labels[idx], weights)  # (B, K)
        share = votes / votes.sum(1, keepdim=True)
        return torch.log(share.clamp_min(1e-8))  # (B, K)


@torch.no_grad()
def fold_standardisation(head: nn.Linear, mu: Tensor, sd: Tensor) -> None:
    """Fold ``(x - mu) / sd`` into a linear layer in place, so it takes the raw features
    (``mu``, ``sd``: (1, D) training statistics)."""
    head.bias.sub_((head.weight * (mu / sd)).sum(1))
    head.weight.div_(sd)


def _positive_int(spec: Mapping[str, Any], key: str, limit: int) -> int:
    value = spec.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= limit:
        raise WeightsError(f"head {dict(spec)!r}: {key} must be an integer in [1, {limit}]")
    return value


def _linear(spec: Mapping[str, Any], dim: int, num_classes: int) -> nn.Module:
    return linear_head(dim, num_classes)


def _mlp(spec: Mapping[str, Any], dim: int, num_classes: int) -> nn.Module:
    dropout = spec.get("dropout", 0.1)
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise WeightsError(f"head {dict(spec)!r}: dropout must be in [0, 1)")
    return mlp_head(dim, _positive_int(spec, "hidden", MAX_HIDDEN), num_classes, float(dropout))


def _knn(spec: Mapping[str, Any], dim: int, num_classes: int) -> nn.Module:
    temperature = spec.get("temperature", 0.07)
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature):
        raise WeightsError(f"head {dict(spec)!r}: temperature must be a finite number")
    if temperature <= 0:
        raise WeightsError(f"head {dict(spec)!r}: temperature must be positive")
    n = _positive_int(spec, "n", MAX_BANK)
    return KNNHead(dim, num_classes, n, _positive_int(spec, "k", n), float(temperature))


#: Every head kind: ``(spec, feature width D, classes K) -> module``.
HEADS: dict[str, Callable[[Mapping[str, Any], int, int], nn.Module]] = {
    "linear": _linear,
    "mlp": _mlp,
    "knn": _knn,
}


def build_head(spec: Mapping[str, Any], dim: int, num_classes: int) -> nn.Module:
    """The head module a spec describes (untrained; load its state dict after).

    Raises:
        WeightsError: an unknown kind or a spec out of range (the spec named).
    """
    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind not in HEADS:
        raise WeightsError(f"unknown head {spec!r} (kinds: {', '.join(HEADS)})")
    return HEADS[str(kind)](spec, dim, num_classes)
