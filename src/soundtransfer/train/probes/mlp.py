"""``probe=mlp``: HEAR's prediction head, one hidden layer.

``Linear - ReLU - Dropout - Linear`` (:func:`soundtransfer.models.heads.mlp_head`, the
definition bundles load too), Adam, full batches up to ``batch_size``; a validation part
carved from the training rows by group picks the hidden size, the learning rate and the
epoch (early stopping on the validation loss); then it retrains on all training rows for the
chosen number of epochs (``refit=False`` keeps the early-stopped model, as in HEAR).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from soundtransfer.models.heads import mlp_head
from soundtransfer.train.probes.base import (
    FitData,
    FittedProbe,
    Probe,
    holdout_split,
    probe_accuracy,
    probe_loss,
    standardise,
)

if TYPE_CHECKING:
    from soundtransfer.train.config import ProbeConfig

__all__ = ["PROBE", "MLPConfig", "MLPProbe", "fit_mlp", "restandardise"]


@dataclass(frozen=True)
class MLPConfig:
    """MLP probe (after HEAR's ``heareval`` prediction head).

    Attributes:
        hidden: candidate hidden sizes.
        lrs: candidate Adam learning rates.
        dropout: dropout after the hidden layer's ReLU.
        weight_decay: Adam's L2 penalty.
        max_epochs: epochs at most; ``patience`` epochs without a better validation loss stop.
        patience: see ``max_epochs``.
        batch_size: mini-batch size (HEAR: 1024, i.e. full batches on small datasets).
        valid_fraction: share of the training rows (whole groups) held out for selection.
        refit: after selection, train again on all training rows for the chosen number of
            epochs (the default, issue 24 pt 4; False: keep the early-stopped model, as HEAR).
    """

    hidden: tuple[int, ...] = (256, 1024)
    lrs: tuple[float, ...] = (1e-3, 3.2e-4)
    dropout: float = 0.1
    weight_decay: float = 0.0
    max_epochs: int = 500
    patience: int = 20
    batch_size: int = 1024
    valid_fraction: float = 0.2
    refit: bool = True


def _batches(n: int, size: int, gen: torch.Generator) -> Iterator[Tensor]:
    perm = torch.randperm(n, generator=gen)
    yield from perm.split(size)


def _train_mlp(
    x: Tensor,
    y: Tensor,
    hidden: int,
    lr: float,
    cfg: MLPConfig,
    num_classes: int,
    seed: int,
    epochs: int,
    valid: tuple[Tensor, Tensor] | None = None,
) -> tuple[nn.Sequential, dict[str, Any]]:
    """Train for ``epochs`` epochs, or with early stopping on ``valid`` (best-loss weights)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = mlp_head(x.shape[1], hidden, num_classes, cfg.dropout).to(x.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    best: dict[str, Any] = {"loss": math.inf, "acc": 0.0, "epoch": 0, "state": None}
    since = 0
    for epoch in range(1, epochs + 1):
        model.train()
        for b in _batches(len(y), cfg.batch_size, gen):
            b = b.to(x.device)
            loss = probe_loss(model(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if valid is None:
            continue
        model.eval()
        with torch.no_grad():
            lv = model(valid[0])
            v_loss = float(probe_loss(lv, valid[1]))
            v_acc = probe_accuracy(lv, valid[1])
        if v_loss < best["loss"]:
            best = {"loss": v_loss, "acc": v_acc, "epoch": epoch}
            best["state"] = {n: t.clone() for n, t in model.state_dict().items()}
            since = 0
        else:
            since += 1
            if since >= cfg.patience:
                break
    if valid is not None and best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return model, {k: v for k, v in best.items() if k != "state"}


def fit_mlp(data: FitData, cfg: MLPConfig) -> tuple[nn.Module, dict[str, Any]]:
    """Grid over hidden sizes and learning rates on a carved validation part (early stopping)."""
    x, y, num_classes, seed = data.x, data.y, data.num_classes, data.seed
    tr, va = holdout_split(y, data.groups, cfg.valid_fraction, seed)
    xt = torch.from_numpy(x).to(device=data.device, dtype=torch.float32)
    yt = torch.from_numpy(y).to(data.device)
    if y.ndim == 2:  # multi-hot rows: binary cross-entropy per class
        yt = yt.float()
    mu, sd = standardise(x[tr])
    mu_t, sd_t = torch.from_numpy(mu).to(xt), torch.from_numpy(sd).to(xt)
    xtr, xva = (xt[tr] - mu_t) / sd_t, (xt[va] - mu_t) / sd_t
    results = []
    for hidden in cfg.hidden:
        for lr in cfg.lrs:
            model, rec = _train_mlp(
                xtr, yt[tr], hidden, lr, cfg, num_classes, seed, cfg.max_epochs, (xva, yt[va])
            )
            results.append(({"hidden": hidden, "lr": lr, **rec}, model))
    # Best validation accuracy at the early-stopping epoch; ties go to the lower loss.
    chosen, model = min(results, key=lambda r: (-r[0]["acc"], r[0]["loss"]))
    info: dict[str, Any] = {
        "hidden": chosen["hidden"],
        "lr": chosen["lr"],
        "epochs": chosen["epoch"],
        "val_acc": chosen["acc"],
        "val_loss": chosen["loss"],
        "valid_rows": len(va),
        "grid": [r for r, _ in results],
        "refit": cfg.refit,
    }
    if not cfg.refit:
        # The model saw standardised features with the carved part's statistics; fold them
        # into the first layer so the Probe's all-rows standardisation applies.
        return restandardise(model, x, mu, sd), info
    mu_all, sd_all = standardise(x)
    z_all = (xt - torch.from_numpy(mu_all).to(xt)) / torch.from_numpy(sd_all).to(xt)
    epochs = max(1, int(chosen["epoch"]))
    full, _ = _train_mlp(z_all, yt, chosen["hidden"], chosen["lr"], cfg, num_classes, seed, epochs)
    return full, info


def restandardise(
    model: nn.Sequential, x: np.ndarray, mu: np.ndarray, sd: np.ndarray
) -> nn.Sequential:
    """Rewrite the first layer so it expects features standardised with all rows' statistics."""
    mu_all, sd_all = standardise(x)
    first = model[0]
    assert isinstance(first, nn.Linear)
    with torch.no_grad():
        # z_sub = (x - mu) / sd = z_all * (sd_all / sd) + (mu_all - mu) / sd
        a = torch.from_numpy(sd_all / sd).to(first.weight).flatten()  # (D,)
        b = torch.from_numpy((mu_all - mu) / sd).to(first.weight).flatten()  # (D,)
        first.bias.add_(first.weight @ b)
        first.weight.mul_(a.view(1, -1))
    return model


class MLPProbe(FittedProbe):
    """The HEAR-style MLP (see the module docstring)."""

    name = "mlp"
    config_type = MLPConfig

    def settings(self, probe: ProbeConfig) -> MLPConfig:
        return MLPConfig(valid_fraction=probe.valid_fraction)

    def fit_model(self, data: FitData, config: Any) -> tuple[nn.Module, dict[str, Any]]:
        return fit_mlp(data, config)

    def head_spec(self, probe: Probe) -> dict[str, Any]:
        first = next(m for m in probe.model.modules() if isinstance(m, nn.Linear))
        dropout = float(probe.info["config"]["dropout"])
        return {"kind": "mlp", "hidden": first.out_features, "dropout": dropout}


PROBE = MLPProbe()
