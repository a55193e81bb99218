"""Strong probes on cached embeddings: converged logistic regression and a HEAR-style MLP.

The paper's linear evaluation (a linear head trained with Adam for a fixed number of epochs)
is the training loop's; these probes ask how much a frozen encoder's embeddings hold when
the classifier on top is fitted properly. Both take only the training rows (so nothing can
be chosen on the test fold) and make every choice on held-out parts of them:

- ``logistic``: multinomial logistic regression minimised to convergence (full-batch
  L-BFGS, float64) on standardised features, its regularisation strength ``C`` chosen by
  stratified, group-aware inner cross-validation, then refitted on all training rows.
  ``C`` follows scikit-learn's convention: the objective is
  ``sum_i CE_i + ||W||^2 / (2 C)`` (bias not penalised).
- ``mlp``: one hidden layer (HEAR's ``hidden_dim=1024``, ReLU, dropout), Adam, full
  batches up to ``batch_size``; a validation part carved from the training rows by group
  picks the hidden size, the learning rate and the epoch (early stopping on the validation
  loss); the early-stopped model is kept, as in HEAR (``refit=True`` instead retrains on all
  training rows for the chosen number of epochs).

``fit_probe(kind, X, y, groups, seed)`` returns a :class:`Probe` with ``predict_proba`` and
the selection record (``info``) to store with the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from torch import Tensor, nn

from soundtransfer.config import ConfigError

PROBES = ("logistic", "mlp")
ArrayLike = np.ndarray | Tensor


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
            epochs (False: keep the early-stopped model, as HEAR).
    """

    hidden: tuple[int, ...] = (256, 1024)
    lrs: tuple[float, ...] = (1e-3, 3.2e-4)
    dropout: float = 0.1
    weight_decay: float = 0.0
    max_epochs: int = 500
    patience: int = 20
    batch_size: int = 1024
    valid_fraction: float = 0.2
    refit: bool = False


@dataclass(frozen=True)
class Probe:
    """A fitted probe: standardisation with training statistics, then ``model``.

    Attributes:
        kind: ``logistic`` or ``mlp``.
        model: maps standardised features (N, D) to logits (N, K).
        mean, std: (1, D) training-feature statistics.
        info: the selection record (chosen settings, inner scores), JSON-serialisable.
    """

    kind: str
    model: nn.Module
    mean: Tensor
    std: Tensor
    info: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def logits(self, x: ArrayLike) -> Tensor:
        """(N, D) features -> (N, K) logits (float32, on the probe's device)."""
        z = _as_tensor(x, self.mean.device, self.mean.dtype, self.mean.shape[1])
        self.model.eval()
        out: Tensor = self.model((z - self.mean) / self.std)
        return out.float()

    def predict_proba(self, x: ArrayLike) -> np.ndarray:
        """(N, D) features -> (N, K) class probabilities."""
        p: np.ndarray = torch.softmax(self.logits(x), dim=1).cpu().numpy()
        return p

    def predict(self, x: ArrayLike) -> np.ndarray:
        """(N, D) features -> (N,) class indices."""
        out: np.ndarray = self.logits(x).argmax(1).cpu().numpy()
        return out

    def accuracy(self, x: ArrayLike, y: ArrayLike) -> float:
        """Accuracy % on labelled rows."""
        labels = np.asarray(y.cpu() if isinstance(y, Tensor) else y)
        return 100.0 * float(np.mean(self.predict(x) == labels))


def _as_tensor(x: ArrayLike, device: torch.device, dtype: torch.dtype, dim: int = -1) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2 or (dim >= 0 and t.shape[1] != dim):
        raise ValueError(f"features must be (N, {dim if dim >= 0 else 'D'}), got {tuple(t.shape)}")
    return t.to(device=device, dtype=dtype)


def _check(
    x: ArrayLike, y: ArrayLike, groups: Sequence[Any] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    xa = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
    ya = np.asarray(y.cpu() if isinstance(y, Tensor) else y)
    if xa.ndim != 2 or ya.shape != (xa.shape[0],) or xa.shape[0] == 0:
        raise ValueError(f"probe: features {xa.shape} and labels {ya.shape} do not match")
    if not np.isfinite(xa).all():
        raise ValueError("probe: non-finite value in the training features")
    if not np.issubdtype(ya.dtype, np.integer) or ya.min() < 0:
        raise ValueError("probe: labels must be non-negative class indices")
    ga = None if groups is None else np.asarray(groups)
    if ga is not None and ga.shape != ya.shape:
        raise ValueError(f"probe: {ga.shape[0]} groups for {ya.shape[0]} rows")
    return xa, ya.astype(np.int64), ga


def inner_splits(
    y: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds of the training rows; with ``groups``, no group is split.

    ``n_splits`` is lowered to what the data allow (the rarest class's count, or the number
    of groups).
    """
    smallest = int(np.bincount(y)[np.unique(y)].min())
    k = min(n_splits, smallest)
    if groups is not None:
        k = min(k, len(np.unique(groups)))
    if k < 2:
        raise ValueError(f"probe: too few rows per class (or groups) for {n_splits} inner folds")
    dummy = np.zeros((len(y), 1))
    if groups is None:
        skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(skf.split(dummy, y))
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(sgkf.split(dummy, y, groups))


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0, keepdims=True)
    std = x.std(0, keepdims=True)
    return mean, np.where(std > 1e-8, std, 1.0)


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
        loss = F.cross_entropy(lin(x), y) + l2 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    n_iter = int(opt.state[next(iter(lin.parameters()))].get("n_iter", 0))
    return lin, n_iter


def logistic_objective(model: nn.Linear, x: Tensor, y: Tensor, c: float) -> float:
    """scikit-learn's objective ``sum_i CE_i + ||W||^2 / (2 C)`` (bias not penalised)."""
    with torch.no_grad():
        ce = F.cross_entropy(model(x), y, reduction="sum")
        return float(ce + model.weight.square().sum() / (2 * c))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    num_classes: int,
    seed: int,
    cfg: LogisticConfig,
    device: torch.device,
) -> tuple[nn.Module, dict[str, Any]]:
    """Inner CV over ``cfg.cs``, refit with the best ``C`` (on standardised features)."""
    xt = torch.from_numpy(x).to(device=device, dtype=torch.float64)
    yt = torch.from_numpy(y).to(device)
    cs = sorted(cfg.cs)
    acc = np.zeros((len(cs),))
    nll = np.zeros((len(cs),))
    splits = inner_splits(y, groups, cfg.inner_folds, seed)
    for tr, va in splits:
        mu, sd = _standardise(x[tr])
        mu_t = torch.from_numpy(mu).to(xt)
        sd_t = torch.from_numpy(sd).to(xt)
        xtr, xva = (xt[tr] - mu_t) / sd_t, (xt[va] - mu_t) / sd_t
        prev: nn.Linear | None = None
        for j, c in enumerate(cs):  # strong to weak regularisation, warm-started
            prev, _ = _fit_logistic(xtr, yt[tr], num_classes, c, cfg, prev)
            with torch.no_grad():
                lv = prev(xva)
                acc[j] += float((lv.argmax(1) == yt[va]).double().mean()) / len(splits)
                nll[j] += float(F.cross_entropy(lv, yt[va])) / len(splits)
    if cfg.select == "nll":
        best = int(np.argmin(nll))
    else:  # best inner accuracy; ties go to the lower inner log-loss
        best = min(range(len(cs)), key=lambda j: (-round(float(acc[j]), 12), float(nll[j])))
    model, n_iter = _fit_logistic(xt, yt, num_classes, cs[best], cfg)
    info = {
        "C": cs[best],
        "inner_folds": len(splits),
        "inner_acc": {f"{c:.3g}": 100.0 * a for c, a in zip(cs, acc, strict=True)},
        "inner_nll": {f"{c:.3g}": float(v) for c, v in zip(cs, nll, strict=True)},
        "lbfgs_iterations": n_iter,
    }
    return model.float(), info


class MLP(nn.Module):
    """``Linear -> ReLU -> Dropout -> Linear`` (one hidden layer)."""

    def __init__(self, dim: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)  # (N, K)
        return out


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
) -> tuple[MLP, dict[str, Any]]:
    """Train for ``epochs`` epochs, or with early stopping on ``valid`` (best-loss weights)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MLP(x.shape[1], hidden, num_classes, cfg.dropout).to(x.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    best: dict[str, Any] = {"loss": math.inf, "acc": 0.0, "epoch": 0, "state": None}
    since = 0
    for epoch in range(1, epochs + 1):
        model.train()
        for b in _batches(len(y), cfg.batch_size, gen):
            b = b.to(x.device)
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if valid is None:
            continue
        model.eval()
        with torch.no_grad():
            lv = model(valid[0])
            v_loss = float(F.cross_entropy(lv, valid[1]))
            v_acc = 100.0 * float((lv.argmax(1) == valid[1]).float().mean())
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


def holdout_split(
    y: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) row indices: about ``fraction`` of the rows held out, stratified, whole
    groups at a time (one fold of ``round(1 / fraction)`` stratified group folds)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"valid_fraction must be in (0, 1), not {fraction}")
    splits = inner_splits(y, groups, max(2, round(1 / fraction)), seed)
    return splits[0]


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    num_classes: int,
    seed: int,
    cfg: MLPConfig,
    device: torch.device,
) -> tuple[nn.Module, dict[str, Any]]:
    """Grid over hidden sizes and learning rates on a carved validation part (early stopping)."""
    tr, va = holdout_split(y, groups, cfg.valid_fraction, seed)
    xt = torch.from_numpy(x).to(device=device, dtype=torch.float32)
    yt = torch.from_numpy(y).to(device)
    mu, sd = _standardise(x[tr])
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
        return _restandardise(model, x, mu, sd), info
    mu_all, sd_all = _standardise(x)
    z_all = (xt - torch.from_numpy(mu_all).to(xt)) / torch.from_numpy(sd_all).to(xt)
    epochs = max(1, int(chosen["epoch"]))
    full, _ = _train_mlp(z_all, yt, chosen["hidden"], chosen["lr"], cfg, num_classes, seed, epochs)
    return full, info


def _restandardise(model: MLP, x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> MLP:
    """Rewrite the first layer so it expects features standardised with all rows' statistics."""
    mu_all, sd_all = _standardise(x)
    first = model.net[0]
    assert isinstance(first, nn.Linear)
    with torch.no_grad():
        # z_sub = (x - mu) / sd = z_all * (sd_all / sd) + (mu_all - mu) / sd
        a = torch.from_numpy(sd_all / sd).to(first.weight).flatten()  # (D,)
        b = torch.from_numpy((mu_all - mu) / sd).to(first.weight).flatten()  # (D,)
        first.bias.add_(first.weight @ b)
        first.weight.mul_(a.view(1, -1))
    return model


def fit_probe(
    kind: str,
    x_train: ArrayLike,
    y_train: ArrayLike,
    groups_train: Sequence[Any] | np.ndarray | None = None,
    seed: int = 0,
    *,
    num_classes: int | None = None,
    config: LogisticConfig | MLPConfig | None = None,
    device: str | torch.device = "cpu",
) -> Probe:
    """Fit a probe of ``kind`` on training embeddings only; every choice on inner splits.

    Args:
        kind: ``logistic`` or ``mlp``.
        x_train: (N, D) embeddings of the training rows.
        y_train: (N,) class indices.
        groups_train: (N,) recording ids: inner folds and the validation part never split a
            group (e.g. ``Clip.group``); ``None``: rows are independent.
        seed: seeds the inner folds, initialisation and batch order (same seed, same probe).
        num_classes: K (default ``max(y) + 1``).
        config: :class:`LogisticConfig` or :class:`MLPConfig` (default: the kind's defaults).
        device: where to fit.

    Returns:
        The fitted :class:`Probe`; ``probe.info`` records the choices (C, epochs, ...).
    """
    if kind not in PROBES:
        raise ConfigError(f"unknown probe {kind!r} (choose from {', '.join(PROBES)})")
    x, y, groups = _check(x_train, y_train, groups_train)
    k = int(y.max()) + 1 if num_classes is None else num_classes
    if y.max() >= k:
        raise ValueError(f"probe: label {int(y.max())} out of range for {k} classes")
    dev = torch.device(device)
    mean, std = _standardise(x)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        if kind == "logistic":
            lcfg = config if isinstance(config, LogisticConfig) else LogisticConfig()
            if config is not None and not isinstance(config, LogisticConfig):
                raise ConfigError("the logistic probe takes a LogisticConfig")
            model, info = fit_logistic((x - mean) / std, y, groups, k, seed, lcfg, dev)
            info["config"] = asdict(lcfg)
        else:
            mcfg = config if isinstance(config, MLPConfig) else MLPConfig()
            if config is not None and not isinstance(config, MLPConfig):
                raise ConfigError("the mlp probe takes an MLPConfig")
            model, info = fit_mlp(x, y, groups, k, seed, mcfg, dev)
            info["config"] = asdict(mcfg)
    info["seed"] = seed
    return Probe(
        kind,
        model.to(dev).float().eval(),
        torch.from_numpy(mean).to(dev, torch.float32),
        torch.from_numpy(std).to(dev, torch.float32),
        info,
    )
