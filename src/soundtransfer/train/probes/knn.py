"""``probe=knn``: weighted cosine k-nearest neighbours on the frozen embeddings.

A standard frozen-feature baseline (Wu et al. 2018; DINO, Caron et al. 2021, sec. 4.1): the
embeddings are standardised with the training rows' statistics and L2-normalised; a clip's
class scores are the votes of its ``k`` most cosine-similar training clips, each weighted by
``exp(similarity / temperature)`` (DINO's T = 0.07). ``k`` is chosen among :data:`KS` by the
mean accuracy on stratified inner folds of the training rows grouped by recording (ties to the
smaller ``k``), then the bank is every training row. The head
(:class:`soundtransfer.models.heads.KNNHead`) holds the bank, so the model bundle predicts
exactly as the run evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from soundtransfer.config import ConfigError
from soundtransfer.models.heads import KNNHead
from soundtransfer.train.probes.base import FitData, FittedProbe, Probe, inner_splits, standardise

if TYPE_CHECKING:
    from soundtransfer.train.config import ProbeConfig

__all__ = ["KS", "PROBE", "KNNConfig", "KNNProbe", "knn_votes"]

KS = (1, 3, 5, 10, 20, 50)


@dataclass(frozen=True)
class KNNConfig:
    """k-NN probe.

    Attributes:
        ks: candidate neighbour counts (those above an inner training part's size are
            skipped).
        inner_folds: inner cross-validation folds on the training rows.
        temperature: vote weight ``exp(cosine / temperature)``.
    """

    ks: tuple[int, ...] = KS
    inner_folds: int = 5
    temperature: float = 0.07

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"knn probe ks must be positive integers, got {self.ks}")
        if not self.temperature > 0:
            raise ConfigError(f"knn probe temperature must be positive, got {self.temperature}")


def knn_votes(
    query: Tensor, bank: Tensor, labels: Tensor, num_classes: int, ks: tuple[int, ...], t: float
) -> dict[int, Tensor]:
    """Weighted votes ``(Q, K)`` of each ``k`` in ``ks`` (all ``<= len(bank)``), from one
    top-``max(ks)`` search; ``query`` (Q, D) and ``bank`` (N, D) unit-norm rows."""
    sim = query @ bank.T  # (Q, N)
    top, idx = sim.topk(max(ks), dim=1)  # (Q, max k), most similar first
    weights = torch.exp(top / t)
    onehot = F.one_hot(labels[idx], num_classes).to(weights.dtype)  # (Q, max k, K)
    cumulative = (weights.unsqueeze(-1) * onehot).cumsum(dim=1)  # votes of the first j
    return {k: cumulative[:, k - 1] for k in ks}


def _unit(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> Tensor:
    return F.normalize(torch.from_numpy((x - mean) / std).float(), dim=1)


def choose_k(data: FitData, cfg: KNNConfig) -> tuple[int, dict[str, Any]]:
    """The ``k`` of ``cfg.ks`` with the best mean inner accuracy on the inner folds of the
    training rows (ties: the smaller); each fold's bank standardised with its own rows."""
    x, y, k = data.x, data.y, data.num_classes
    splits = inner_splits(y, data.groups, cfg.inner_folds, data.seed)
    smallest = min(len(tr) for tr, _ in splits)
    ks = tuple(sorted(c for c in set(cfg.ks) if c <= smallest)) or (min(smallest, min(cfg.ks)),)
    acc = dict.fromkeys(ks, 0.0)
    for tr, va in splits:
        mean, std = standardise(x[tr])
        bank, query = _unit(x[tr], mean, std), _unit(x[va], mean, std)
        labels = torch.from_numpy(y[tr])
        votes = knn_votes(query, bank, labels, k, ks, cfg.temperature)
        for c, v in votes.items():
            hits = (v.argmax(1).numpy() == y[va]).mean()
            acc[c] += 100.0 * float(hits) / len(splits)
    best = max(ks, key=lambda c: (round(acc[c], 9), -c))
    return best, {"inner_folds": len(splits), "inner_acc": {str(c): a for c, a in acc.items()}}


class KNNProbe(FittedProbe):
    """Weighted cosine k-NN (see the module docstring)."""

    name = "knn"
    config_type = KNNConfig

    def settings(self, probe: ProbeConfig) -> KNNConfig:
        return KNNConfig(inner_folds=probe.inner_folds)

    def fit_model(self, data: FitData, config: Any) -> tuple[nn.Module, dict[str, Any]]:
        if data.y.ndim == 2:  # its head votes one class per neighbour
            raise ConfigError("probe=knn is single-label only; use logistic, mlp or linear")
        k, info = choose_k(data, config)
        x, y, num_classes = data.x, data.y, data.num_classes
        mean, std = standardise(x)
        head = KNNHead(x.shape[1], num_classes, len(y), k, config.temperature)
        # The Probe standardises its inputs already: the bank's own statistics stay 0 / 1.
        head.bank.copy_(_unit(x, mean, std))
        head.labels.copy_(torch.from_numpy(y))
        return head, {"k": k, "bank": len(y), "temperature": config.temperature, **info}

    def head_spec(self, probe: Probe) -> dict[str, Any]:
        model = probe.model
        assert isinstance(model, KNNHead)
        n = model.bank.shape[0]
        return {"kind": "knn", "k": model.k, "n": n, "temperature": model.temperature}

    @torch.no_grad()
    def take_standardisation(self, head: nn.Module, mean: Tensor, std: Tensor) -> None:
        # The bank is stored standardised; the head standardises its queries itself.
        assert isinstance(head, KNNHead)
        head.mean.copy_(mean)
        head.std.copy_(std)


PROBE = KNNProbe()
