"""``probe=logistic``: multinomial logistic regression fitted to convergence.

Full-batch L-BFGS in float64 on standardised features; the regularisation strength ``C``
(scikit-learn's convention: the objective is ``sum_i CE_i + ||W||^2 / (2 C)``, bias not
penalised) chosen by stratified, group-aware inner cross-validation on the training rows,
then refitted on all of them. Its head is one ``nn.Linear`` with the standardisation folded in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from soundtransfer.config import ConfigError
from soundtransfer.train.probes.base import (
    FitData,
    FittedProbe,
    Probe,
    inner_splits,
    probe_accuracy,
    probe_loss,
    standardise,
)

if TYPE_CHECKING:
    from soundtransfer.train.config import ProbeConfig

__all__ = ["PROBE", "LogisticConfig", "LogisticProbe", "fit_logistic", "logistic_objective"]


@dataclass(frozen=True)
class LogisticConfig:
    """Logistic-regression probe.

    Attributes:
        cs: candidate inverse regularisation strengths (scikit-learn's ``C``).
        inner_folds: inner cross-validation folds on the training rows.
        select: choose ``C`` by the mean inner log-loss (``nll``: smooth in ``C``, a proper
            score) or the mean inner accuracy (``acc``; ties to the lower log-loss).
        max_iter: L-BFGS iterations per fit.
        tol: L-BFGS tolerance on the largest gradient entry of the mean loss.
    """

    cs: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 1, 9))
    inner_folds: int = 5
    select: str = "nll"
    max_iter: int = 500
    tol: float = 1e-5

    def __post_init__(self) -> None:
        if self.select not in ("nll", "acc"):
            raise ConfigError(f"logistic probe select must be 'nll' or 'acc', not {self.select!r}")
        if not self.cs or min(self.cs) <= 0:
            raise ConfigError(f"logistic probe cs must be positive, got {self.cs}")


def _fit_logistic(
    x: Tensor,
    y: Tensor,
    k: int,
    c: float,
    cfg: LogisticConfig,
    init: nn.Linear | None = None,
) -> tuple[nn.Linear, int]:
    """Minimise ``mean CE + ||W||^2 / (2 C N)`` with L-BFGS; (model, iterations)."""
    lin = nn.Linear(x.shape[1], k).to(device=x.device, dtype=x.dtype)
    with torch.no_grad():
        if init is None:
            lin.weight.zero_()
            lin.bias.zero_()
        else:
            lin.load_state_dict(init.state_dict())
    opt = torch.optim.LBFGS(
        lin.parameters(),
        lr=1.0,
        max_iter=cfg.max_iter,
        tolerance_grad=cfg.tol,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    l2 = 1.0 / (2.0 * c * x.shape[0])

    def closure() -> Tensor:
        opt.zero_grad()
        loss = probe_loss(lin(x), y) + l2 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    n_iter = int(opt.state[next(iter(lin.parameters()))].get("n_iter", 0))
    return lin, n_iter


def logistic_objective(model: nn.Linear, x: Tensor, y: Tensor, c: float) -> float:
    """scikit-learn's objective ``sum_i CE_i + ||W||^2 / (2 C)`` (bias not penalised)."""
    with torch.no_grad():
        ce = probe_loss(model(x), y, reduction="sum")
        return float(ce + model.weight.square().sum() / (2 * c))


def fit_logistic(data: FitData, cfg: LogisticConfig) -> tuple[nn.Module, dict[str, Any]]:
    """Inner CV over ``cfg.cs``, refit with the best ``C`` (on standardised features)."""
    x, y, num_classes = data.x, data.y, data.num_classes
    xt = torch.from_numpy(x).to(device=data.device, dtype=torch.float64)
    yt = torch.from_numpy(y).to(data.device)
    if y.ndim == 2:  # one-vs-rest: multi-hot rows as float, the log-loss selects C
        yt, cfg = yt.to(torch.float64), replace(cfg, select="nll")
    cs = sorted(cfg.cs)
    acc = np.zeros((len(cs),))
    nll = np.zeros((len(cs),))
    splits = inner_splits(y, data.groups, cfg.inner_folds, data.seed)
    if len(splits) < cfg.inner_folds:  # issue 24 pt 4: say when the protocol changed, and why
        print(
            f"probe logistic: {len(splits)} inner folds instead of {cfg.inner_folds} "
            "(the rarest class, or the number of groups, allows no more)",
            file=sys.stderr,
        )
    for tr, va in splits:
        mu, sd = standardise(x[tr])
        mu_t = torch.from_numpy(mu).to(xt)
        sd_t = torch.from_numpy(sd).to(xt)
        xtr, xva = (xt[tr] - mu_t) / sd_t, (xt[va] - mu_t) / sd_t
        prev: nn.Linear | None = None
        for j, c in enumerate(cs):  # strong to weak regularisation, warm-started
            prev, _ = _fit_logistic(xtr, yt[tr], num_classes, c, cfg, prev)
            with torch.no_grad():
                lv = prev(xva)
                acc[j] += probe_accuracy(lv, yt[va]) / 100.0 / len(splits)
                nll[j] += float(probe_loss(lv, yt[va])) / len(splits)
    if cfg.select == "nll":
        best = int(np.argmin(nll))
    else:  # best inner accuracy; ties go to the lower inner log-loss
        best = min(range(len(cs)), key=lambda j: (-round(float(acc[j]), 12), float(nll[j])))
    model, n_iter = _fit_logistic(xt, yt, num_classes, cs[best], cfg)
    info: dict[str, Any] = {"C": cs[best], "inner_folds": len(splits)}
    if y.ndim == 2:  # multi-label: no inner accuracy is computed, C is chosen on the log-loss
        info["inner_metric"] = "nll"
    else:
        info["inner_acc"] = {f"{c:.3g}": 100.0 * a for c, a in zip(cs, acc, strict=True)}
    info["inner_nll"] = {f"{c:.3g}": float(v) for c, v in zip(cs, nll, strict=True)}
    info["lbfgs_iterations"] = n_iter
    return model.float(), info


class LogisticProbe(FittedProbe):
    """Converged logistic regression (see the module docstring)."""

    name = "logistic"
    config_type = LogisticConfig

    def settings(self, probe: ProbeConfig) -> LogisticConfig:
        return LogisticConfig(inner_folds=probe.inner_folds)

    def fit_model(self, data: FitData, config: Any) -> tuple[nn.Module, dict[str, Any]]:
        return fit_logistic(data.standardised(), config)

    def head_spec(self, probe: Probe) -> dict[str, Any]:
        return {"kind": "linear"}


PROBE = LogisticProbe()
