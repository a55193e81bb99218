"""What every probe shares: the fitted :class:`Probe`, the kind interface
(:class:`ProbeKind`, :class:`FittedProbe`) and the inner splits of the training rows.

Every fitted probe takes only the training rows (so nothing can be chosen on the test fold),
makes every choice on held-out parts of them grouped by recording, and leaves a head on the
raw embeddings (its standardisation taken in) in the model: one ``nn.Linear`` (``logistic``),
the MLP (``mlp``), the neighbour bank (``knn``). That head is built from its spec by
:func:`soundtransfer.models.heads.build_head`, the one definition model bundles load too, and
evaluated on the test rows with the run's task, so the bundle predicts what the run scored.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from torch import Tensor, nn

from soundtransfer import distributed as D
from soundtransfer.config import ConfigError
from soundtransfer.models.heads import build_head, fold_standardisation
from soundtransfer.runs import MetricsLog
from soundtransfer.runs.rundir import METRICS
from soundtransfer.train.modes import Job, Trained, split_embeddings

if TYPE_CHECKING:
    from soundtransfer.train.config import ProbeConfig

__all__ = [
    "FitData",
    "FittedProbe",
    "Probe",
    "ProbeKind",
    "as_tensor",
    "check_arrays",
    "holdout_split",
    "inner_splits",
    "probe_accuracy",
    "probe_loss",
    "standardise",
]

ArrayLike = np.ndarray | Tensor


@dataclass(frozen=True)
class Probe:
    """A fitted probe: standardisation with training statistics, then ``model``.

    Attributes:
        kind: the probe's name (``logistic``, ``mlp``, ``knn``).
        model: maps standardised features (N, D) to logits (N, K).
        mean, std: (1, D) training-feature statistics.
        num_classes: K.
        info: the selection record (chosen settings, inner scores), JSON-serialisable.
    """

    kind: str
    model: nn.Module
    mean: Tensor
    std: Tensor
    num_classes: int
    info: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def logits(self, x: ArrayLike) -> Tensor:
        """(N, D) features -> (N, K) logits (float32, on the probe's device)."""
        z = as_tensor(x, self.mean.device, self.mean.dtype, self.mean.shape[1])
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


def as_tensor(x: ArrayLike, device: torch.device, dtype: torch.dtype, dim: int = -1) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2 or (dim >= 0 and t.shape[1] != dim):
        raise ValueError(f"features must be (N, {dim if dim >= 0 else 'D'}), got {tuple(t.shape)}")
    return t.to(device=device, dtype=dtype)


def check_arrays(
    x: ArrayLike, y: ArrayLike, groups: Sequence[Any] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    xa = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
    ya = np.asarray(y.cpu() if isinstance(y, Tensor) else y)
    if xa.ndim != 2 or ya.ndim not in (1, 2) or len(ya) != xa.shape[0] or xa.shape[0] == 0:
        raise ValueError(f"probe: features {xa.shape} and labels {ya.shape} do not match")
    if not np.isfinite(xa).all():
        raise ValueError("probe: non-finite value in the training features")
    if ya.ndim == 2:  # multi-label: (N, K) multi-hot rows
        if not np.isin(ya, (0, 1)).all():
            raise ValueError("probe: multi-label targets must be 0 or 1")
    elif not np.issubdtype(ya.dtype, np.integer) or ya.min() < 0:
        raise ValueError("probe: labels must be non-negative class indices")
    ga = None if groups is None else np.asarray(groups)
    if ga is not None and ga.shape != ya.shape[:1]:
        raise ValueError(f"probe: {ga.shape[0]} groups for {ya.shape[0]} rows")
    return xa, ya.astype(np.int64), ga


def inner_splits(
    y: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds of the training rows; with ``groups``, no group is split.

    ``n_splits`` is lowered to what the data allow (the rarest class's count, or the number
    of groups).
    """
    if y.ndim == 2:  # multi-label: iterative stratification by group
        return _multilabel_inner_splits(y, groups, n_splits, seed)
    smallest = int(np.bincount(y)[np.unique(y)].min())
    k = min(n_splits, smallest)
    if groups is not None:
        k = min(k, len(np.unique(groups)))
    if k < 2:
        raise ValueError(f"probe: too few rows per class (or groups) for {n_splits} inner folds")
    return list(_stratified_folds(y, groups, k, seed))


def _stratified_folds(
    y: np.ndarray, groups: np.ndarray | None, k: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's ``k`` shuffled stratified folds; with ``groups``, whole groups. Lazy:
    each fold is made (and warns) as it is drawn."""
    dummy = np.zeros((len(y), 1))
    if groups is None:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(dummy, y)
    else:
        sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = sgkf.split(dummy, y, groups)
    yield from folds


def _multilabel_inner_splits(
    y: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner folds of multi-hot rows: iterative stratification with groups (fewer folds when
    there are fewer groups)."""
    from soundtransfer.datasets.multilabel_folds import iterative_group_folds
    from soundtransfer.errors import DatasetError

    g = [str(v) for v in (np.arange(len(y)) if groups is None else groups)]
    k = min(n_splits, len(set(g)))
    if k < 2:
        raise ValueError(f"probe: too few groups for {n_splits} inner folds")
    try:
        folds = np.asarray(iterative_group_folds(y, g, k, seed).folds)
    except DatasetError as exc:
        raise ValueError(f"probe: {exc}") from None
    return [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(1, k + 1)]


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0, keepdims=True)
    std = x.std(0, keepdims=True)
    return mean, np.where(std > 1e-8, std, 1.0)


def holdout_split(
    y: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) row indices: about ``fraction`` of the rows held out, stratified, whole
    groups at a time (one fold of ``round(1 / fraction)`` stratified group folds)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"valid_fraction must be in (0, 1), not {fraction}")
    if y.ndim == 2:
        return _multilabel_inner_splits(y, groups, max(2, round(1 / fraction)), seed)[0]
    # Issue 24 pt 4: the fold count comes from the fraction alone (capped by the number of
    # groups), not from the rarest class, so a class with 2 clips no longer turns a 20 %
    # hold-out into 50 %; such a class simply gets at most one held-out row per fold.
    units = len(np.unique(groups)) if groups is not None else len(y)
    largest = int(np.bincount(y).max())  # scikit-learn needs one class with k members
    k = min(max(2, round(1 / fraction)), units, largest)
    if k < 2:
        raise ValueError("probe: too few rows (or groups) to hold out a validation part")
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits"
        warnings.simplefilter("ignore", UserWarning)
        tr, va = next(_stratified_folds(y, groups, k, seed))
    return np.asarray(tr), np.asarray(va)


@dataclass(frozen=True)
class FitData:
    """The training rows a fitted probe learns from, and how.

    Attributes:
        x: (N, D) float64 embeddings (raw, or standardised where a kind says so).
        y: (N,) int64 class indices, or (N, K) multi-hot rows (multi-label: each kind fits
            one sigmoid per class, binary cross-entropy).
        groups: (N,) recording ids (inner splits never split one), or None.
        num_classes: K.
        seed: seeds the inner splits, initialisation and batch order.
        device: where to fit.
    """

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    num_classes: int
    seed: int
    device: torch.device

    def standardised(self) -> FitData:
        """The same rows with ``x`` standardised by its own statistics (:func:`standardise`)."""
        mean, std = standardise(self.x)
        return replace(self, x=(self.x - mean) / std)


class ProbeKind:
    """A probe: how linear evaluation turns a split's frozen embeddings into a head.

    ``train(job)`` is the run's mode (:data:`soundtransfer.train.modes.MODES`;
    :func:`soundtransfer.train.run.run_split` calls it as it calls fine-tuning's): it leaves
    the trained head in ``job.model.head`` and returns the result and the head's spec for the
    bundle.
    """

    name: str = ""
    shares_batches = False  # seconds on cached embeddings: no DDP

    def train(self, job: Job) -> Trained:
        raise NotImplementedError


class FittedProbe(ProbeKind):
    """A probe fitted to convergence on the cached embeddings (not by the epoch loop).

    Subclasses set ``name`` and ``config_type`` and write :meth:`settings` (their config from
    the ``probe`` settings group), :meth:`fit_model` (on the training rows) and
    :meth:`head_spec`; :meth:`take_standardisation` folds the training statistics into the
    first linear layer unless a kind's head keeps them itself.
    """

    config_type: type = object

    def settings(self, probe: ProbeConfig) -> Any:
        """The kind's config from the ``probe`` settings group."""
        raise NotImplementedError

    def fit_model(self, data: FitData, config: Any) -> tuple[nn.Module, dict[str, Any]]:
        """Fit on the raw (N, D) training rows; return a model of the standardised features
        ``(x - mean) / std`` (all rows' statistics, :func:`standardise`) to logits, shaped as
        :meth:`head_spec`'s head (its state dict loads into it), and the selection record."""
        raise NotImplementedError

    def head_spec(self, probe: Probe) -> dict[str, Any]:
        """The spec (:func:`soundtransfer.models.heads.build_head`) of the fitted probe's head."""
        raise NotImplementedError

    @torch.no_grad()
    def take_standardisation(self, head: nn.Module, mean: Tensor, std: Tensor) -> None:
        """Make ``head`` take raw embeddings: ``(x - mean) / std`` folded into its first
        ``nn.Linear`` (``mean``, ``std``: (1, D))."""
        first = next(m for m in head.modules() if isinstance(m, nn.Linear))
        fold_standardisation(first, mean, std)

    @torch.no_grad()
    def head(self, probe: Probe) -> tuple[nn.Module, dict[str, Any]]:
        """The fitted probe as a head on raw embeddings (CPU, float32, eval mode), built from
        its spec as bundles build it, and the spec."""
        spec = self.head_spec(probe)
        head = build_head(spec, probe.mean.shape[1], probe.num_classes)
        head.load_state_dict({k: v.cpu().float() for k, v in probe.model.state_dict().items()})
        self.take_standardisation(head, probe.mean.cpu().float(), probe.std.cpu().float())
        return head.eval(), spec

    def fit_arrays(
        self,
        x_train: ArrayLike,
        y_train: ArrayLike,
        groups_train: Sequence[Any] | np.ndarray | None = None,
        seed: int = 0,
        *,
        num_classes: int | None = None,
        config: Any = None,
        device: str | torch.device = "cpu",
    ) -> Probe:
        """Fit on training embeddings only (see :func:`soundtransfer.train.probes.fit_probe`)."""
        cfg = self.config_type() if config is None else config
        if not isinstance(cfg, self.config_type):
            raise ConfigError(f"the {self.name} probe takes a {self.config_type.__name__}")
        x, y, groups = check_arrays(x_train, y_train, groups_train)
        k = y.shape[1] if y.ndim == 2 else (num_classes or int(y.max()) + 1)
        if y.ndim == 1 and y.max() >= k:
            raise ValueError(f"probe: label {int(y.max())} out of range for {k} classes")
        dev = torch.device(device)
        mean, std = standardise(x)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            model, info = self.fit_model(FitData(x, y, groups, k, seed, dev), cfg)
        info["config"] = asdict(cfg) if is_dataclass(cfg) and not isinstance(cfg, type) else {}
        info["seed"] = seed
        return Probe(
            self.name,
            model.to(dev).float().eval(),
            torch.from_numpy(mean).to(dev, torch.float32),
            torch.from_numpy(std).to(dev, torch.float32),
            k,
            info,
        )

    def train(self, job: Job) -> Trained:
        """Fit on the cached embeddings of the training (+ validation) rows, put the head into
        ``job.model.head``, evaluate the test rows through it with the run's task and write
        the run's one-line ``metrics.jsonl``.

        Returns:
            The result (``test_<metric>``, ``test_loss``, ``predictions``, ``probe``: the
            choices, e.g. ``C``, the hidden size or ``k``, and the inner scores) and the
            head's spec.
        """
        t0 = time.perf_counter()
        emb, pos, cache = split_embeddings(job)
        rows, y_fit, groups = fit_rows(job)
        t1 = time.perf_counter()
        try:
            probe = self.fit_arrays(
                emb[[pos[int(i)] for i in rows]], y_fit, groups, job.cfg.seed,
                num_classes=len(job.store.table.classes), config=self.settings(job.cfg.probe),
            )  # fmt: skip
        except ValueError as exc:  # e.g. too few training clips per class for the inner folds
            raise ConfigError(f"probe={self.name} in {job.run_dir}: {exc}") from None
        seconds = time.perf_counter() - t1
        head, spec = self.head(probe)
        job.model.head = head
        fit_eval, test_eval = (_head_logits(head, emb, pos, r) for r in (rows, job.rows[2]))
        scores = _scores(job, self.name, fit_eval, rows, test_eval)
        if D.is_main():
            log = MetricsLog(job.run_dir / METRICS, "epoch", job.cfg.tensorboard)
            log.start(0)
            log.write({"epoch": 1, "probe": self.name, **scores,
                       "seconds": time.perf_counter() - t0, "fit_seconds": seconds})  # fmt: skip
            log.close()
        result = {
            **{k: v for k, v in scores.items() if k.startswith("test_")},
            "epochs": 1,
            "selected_epoch": 1,
            "predictions": list(job.task.predictions(test_eval)),
            "probe": {"kind": self.name, "fit_seconds": seconds, **probe.info},
            "embedding_cache": str(cache),
        }
        return Trained(result, spec)


def probe_loss(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy against class indices (N,), or binary cross-entropy summed over the
    classes against multi-hot rows (N, K) (one-vs-rest: each class its own logistic)."""
    if y.dim() == 2:
        per_row = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
        total = per_row.sum(1)
        return total.sum() if reduction == "sum" else total.mean()
    return F.cross_entropy(logits, y, reduction=reduction)


def probe_accuracy(logits: Tensor, y: Tensor) -> float:
    """Accuracy in % (class indices); multi-label rows: 0 (selection falls to the loss)."""
    if y.dim() == 2:
        return 0.0
    return 100.0 * float((logits.argmax(1) == y).double().mean())


def fit_rows(job: Job) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows a fitted probe learns from: the training and validation rows (it makes its
    own choices on inner splits grouped by recording), their targets and groups (a clip
    without a group is its own)."""
    table = job.store.table
    # multi-label: the validation rows are kept out, its thresholds are chosen on them
    multi = job.task.name == "multi_label"
    rows = job.rows[0] if multi else np.concatenate([job.rows[0], job.rows[1]])
    y = job.targets[torch.from_numpy(rows)].numpy()
    groups = np.asarray([table.clips[int(i)].group or f"clip:{int(i)}" for i in rows])
    return rows, y, groups


@torch.no_grad()
def _head_logits(head: nn.Module, emb: np.ndarray, pos: dict[int, int], rows: np.ndarray) -> Tensor:
    x = torch.from_numpy(emb[[pos[int(i)] for i in rows]]).float()  # (N, D) raw embeddings
    out: Tensor = head.eval()(x)  # (N, K)
    return out


def _scores(
    job: Job, name: str, fit_logits: Tensor, fit: np.ndarray, test_logits: Tensor
) -> dict[str, float]:
    """``train_*`` and ``test_*`` metrics of the run's task, through the bundle's own head."""
    task, targets = job.task, job.targets
    test = job.rows[2]
    out = {f"train_{k}": v for k, v in task.metrics(fit_logits, targets[fit]).items()}
    if len(test):
        out.update({f"test_{k}": v for k, v in task.metrics(test_logits, targets[test]).items()})
        if not math.isfinite(out["test_loss"]):
            raise ConfigError(f"probe={name} in {job.run_dir}: non-finite test loss")
    else:
        out.update({"test_loss": 0.0, f"test_{task.primary_metric}": 0.0})
    return out
