"""What differs between fine-tuning and linear evaluation: the :class:`RunContext` each builds.

Protocol (paper, section 4): the encoder f(.) starts from the chosen weights, a linear head
g(.) sized to the classes is added, and the whole network (``finetune``) or only g
(``linear``: f frozen, in ``eval()`` and ``no_grad``) is trained with Adam (lr 1e-4, weight
decay 1e-3, batch 32) for 70 epochs with cross-entropy; the accuracy of the final epoch on the
held-out fold is reported. Input normalisation uses statistics of the split's training clips
only.

Linear evaluation extracts the frozen encoder's pooled features once per clip (cached, keyed by
the feature store, the weights and the normalisation) and trains g on them: seconds instead of
a network pass per epoch, with the same result since f is frozen and deterministic in eval().
Stronger probes (``probe=logistic``, ``probe=mlp``, :func:`probe_run`) are fitted on the same
cached embeddings, every choice made on the training rows only.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from soundtransfer import distributed as D
from soundtransfer.cache import embeddings_dir
from soundtransfer.config import ConfigError, config_hash, to_dict
from soundtransfer.features.store import FeatureStore
from soundtransfer.locking import file_lock
from soundtransfer.models.classifier import Classifier, InputNorm
from soundtransfer.runs import MetricsLog, Precision, atomic_write, load_array
from soundtransfer.runs.rundir import METRICS
from soundtransfer.train.augment import BatchAugment, augment_from
from soundtransfer.train.config import TrainConfig, embed_batch_for
from soundtransfer.train.data import channel_stats, chunks, store_batches
from soundtransfer.train.loop import Batches, RunContext, make_optimizer
from soundtransfer.train.probes import MLP, LogisticConfig, MLPConfig, Probe, fit_probe
from soundtransfer.weights import ResolvedWeights, load_encoder

__all__ = [
    "Job",
    "Rows",
    "build_classifier",
    "cached_embeddings",
    "embed_rows",
    "finetune_context",
    "fold_standardisation",
    "linear_context",
    "probe_config",
    "probe_head",
    "probe_run",
    "split_embeddings",
]

Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # train, valid, test store rows


def build_classifier(
    store: FeatureStore,
    train_rows: np.ndarray,
    weights: ResolvedWeights,
    cfg: TrainConfig,
    cache_dir: Path | None = None,
) -> tuple[Classifier, dict[str, Any]]:
    """Encoder from ``weights`` + InputNorm from training-clip statistics + linear head."""
    encoder, src = load_encoder(weights, cache_dir=cache_dir, seed=cfg.seed)
    mean, std = channel_stats(store, train_rows)
    norm = InputNorm(mean, std, src.input_mean, src.input_std)
    torch.manual_seed(cfg.seed)
    model = Classifier(encoder, len(store.table.classes), norm)
    return model, {"train_mean": mean, "train_std": std, "source": to_dict(src)}


@dataclass(frozen=True)
class Job:
    """One split to train: what both modes start from.

    Attributes:
        store: the feature store.
        rows: train, valid and test store rows.
        model: the classifier (weights loaded, input normalisation from the training rows).
        cfg: settings.
        info: this process's rank, world size and device.
        run_dir: the run directory.
        cache_dir: cache root (embeddings).
        progress: progress bars.
    """

    store: FeatureStore
    rows: Rows
    model: Classifier
    cfg: TrainConfig
    info: D.DistInfo
    run_dir: Path
    cache_dir: Path | None = None
    progress: bool = False


def finetune_context(job: Job) -> RunContext:
    """The whole classifier trained on store images; DDP under torchrun (each rank a shard).

    The ``aug_*`` settings that are on become the context's batch augmentation
    (:class:`~soundtransfer.train.augment.BatchAugment` on the log-mel images, before the
    input normalisation, on the training device).
    """
    store, model, cfg, info = job.store, job.model, job.cfg, job.info
    precision = Precision.resolve(info.device, cfg.amp, cfg.channels_last)
    precision.model(model)
    net: nn.Module = model
    if info.distributed:
        cuda = info.device.type == "cuda"
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if cuda else None
        )
    if cfg.compile and info.device.type == "cuda":
        net = torch.compile(net)  # type: ignore[assignment]

    def batches(r: np.ndarray, size: int) -> Iterator[tuple[Tensor, Tensor]]:
        return store_batches(store, r, size, info.device)

    ctx = _context(job, model, net, precision, batches, info.world_size)
    aug = augment_from(cfg)  # the recipe's batch augmentation, on the training device
    if aug.active:
        ctx.augment = BatchAugment(aug, len(store.table.classes))
    return ctx


def _context(
    job: Job,
    module: nn.Module,
    net: nn.Module,
    precision: Precision,
    batches: Batches,
    world_size: int,
) -> RunContext:
    """The :class:`RunContext` of ``job`` training ``module`` (through ``net``)."""
    optimizer = make_optimizer(module.parameters(), job.cfg)
    train, valid, test = job.rows
    return RunContext(
        job.cfg, job.run_dir, module, net, optimizer, precision, batches, train, valid, test,
        world_size=world_size, progress=job.progress,
    )  # fmt: skip


@torch.no_grad()
def embed_rows(
    model: Classifier,
    store: FeatureStore,
    rows: np.ndarray,
    cfg: TrainConfig,
    device: torch.device,
    progress: bool = False,
) -> np.ndarray:
    """Frozen-encoder pooled features ``(N, D)`` float32 of the given rows."""
    precision = Precision.resolve(device, cfg.amp, cfg.channels_last)
    precision.model(model.eval())
    out = []
    batch = embed_batch_for(cfg, device.type)
    n_batches = len(chunks(rows, batch))
    for x, _y in tqdm(
        store_batches(store, rows, batch, device),
        total=n_batches,
        desc="embedding",
        disable=not progress,
        leave=False,
    ):
        with precision.autocast():
            out.append(model.embed(precision.inputs(x)).float().cpu().numpy())
    model.to("cpu")
    return np.concatenate(out) if out else np.zeros((0, model.encoder.feature_dim), np.float32)


def cached_embeddings(
    model: Classifier,
    store: FeatureStore,
    rows: np.ndarray,
    cfg: TrainConfig,
    device: torch.device,
    cache_dir: Path | None,
    progress: bool,
) -> tuple[np.ndarray, Path]:
    """:func:`embed_rows`, cached in ``<cache>/embeddings/<hash>.npy``; the hash covers the
    store, the encoder's weights, the fold's input normalisation and the rows. A lock makes
    concurrent processes compute it once."""
    norm = model.norm
    assert isinstance(norm, InputNorm)
    key = config_hash(
        store.key,
        model.encoder.arch,
        [norm.scale.flatten().tolist(), norm.shift.flatten().tolist()],
        [  # a fingerprint of every weight tensor (cheap next to one embedding pass)
            float(p.double().sum())
            for p in model.encoder.state_dict().values()
            if p.dtype.is_floating_point
        ],
        rows.tolist(),
    )
    path = embeddings_dir(cache_dir) / f"{key}.npy"
    with file_lock(path.with_suffix(".lock")):  # one process embeds, the others reuse it
        if path.exists():  # checked: a damaged cache file is an error naming it
            return load_array(path, len(rows), "embeddings cache"), path
        emb = embed_rows(model, store, rows, cfg, device, progress)
        atomic_write(path, lambda tmp: _save_npy(tmp, emb))
    return emb, path


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as fh:  # a file object: np.save would append ".npy" to a name
        np.save(fh, array)


def split_embeddings(job: Job) -> tuple[np.ndarray, dict[int, int], Path]:
    """Cached frozen embeddings of every row of the split: ``(N, D)``, store row -> its
    position, the cache file."""
    train, valid, test = job.rows
    every = np.asarray(sorted({*train.tolist(), *valid.tolist(), *test.tolist()}), np.int64)
    emb, cache = cached_embeddings(
        job.model, job.store, every, job.cfg, job.info.device, job.cache_dir, job.progress
    )
    return emb, {int(r): k for k, r in enumerate(every)}, cache


def linear_context(job: Job) -> tuple[RunContext, Tensor, Tensor, Path]:
    """The head alone trained on cached frozen embeddings, on the CPU; every process trains
    the same head (no DDP: it takes seconds), the main rank writes.

    Returns:
        The context, and the standardisation ``(mu, sd)`` (``(1, D)`` each) to fold into the
        head afterwards (:func:`fold_standardisation`), and the embedding cache file.
    """
    store, model, cfg = job.store, job.model, job.cfg
    train = job.rows[0]
    emb, pos, cache = split_embeddings(job)
    x_all = torch.from_numpy(emb)  # (N, D)
    labels = torch.tensor(store.table.labels, dtype=torch.long)
    xtr = x_all[[pos[int(i)] for i in train]]
    if cfg.feature_norm:
        # Standardise features with training statistics: an affine reparametrisation of the
        # linear head (still a linear classifier of frozen features) that makes Adam at the
        # paper's learning rate converge whatever the scale of the encoder's outputs.
        mu, sd = xtr.mean(0, keepdim=True), xtr.std(0, keepdim=True).clamp_min(1e-6)
    else:
        mu, sd = torch.zeros(1, x_all.shape[1]), torch.ones(1, x_all.shape[1])
    x_std = (x_all - mu) / sd  # (N, D)

    def batches(r: np.ndarray, size: int) -> Iterator[tuple[Tensor, Tensor]]:
        for b in chunks(r, size):
            yield x_std[[pos[int(i)] for i in b]], labels[torch.from_numpy(b)]

    head = model.head.to("cpu")
    assert isinstance(head, nn.Linear)
    torch.manual_seed(cfg.seed)
    head.reset_parameters()
    cpu = Precision.resolve(torch.device("cpu"), "off", "off")
    ctx = _context(job, head, head, cpu, batches, world_size=1)
    return ctx, mu, sd, cache


def probe_config(cfg: TrainConfig) -> LogisticConfig | MLPConfig:
    """The :mod:`~soundtransfer.train.probes` settings of ``cfg.probe`` (``logistic``/``mlp``)."""
    if cfg.probe == "logistic":
        return LogisticConfig(inner_folds=cfg.probe_inner_folds)
    if cfg.probe == "mlp":
        return MLPConfig(valid_fraction=cfg.probe_valid_fraction)
    raise ConfigError(f"probe {cfg.probe!r} is trained by the loop, not fitted")


def probe_run(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit ``cfg.probe`` (``logistic`` or ``mlp``) on the cached embeddings of the training
    rows (with the validation rows, if any: the probe makes its own choices on inner splits
    grouped by recording), evaluate the test rows, put the fitted head (standardisation folded
    in) into ``job.model.head`` and write the run's one-line ``metrics.jsonl``.

    Returns:
        The result (``test_acc``, ``test_loss``, ``predictions``, ``probe``: the choices, e.g.
        ``C`` or the hidden size, and the inner scores) and the head's description for the
        model bundle (``{"kind": "linear"}`` or ``{"kind": "mlp", "hidden": H}``).
    """
    cfg, table = job.cfg, job.store.table
    t0 = time.perf_counter()
    emb, pos, cache = split_embeddings(job)
    fit_rows = np.concatenate([job.rows[0], job.rows[1]])
    test = job.rows[2]
    x_fit = emb[[pos[int(i)] for i in fit_rows]]  # (N_train, D)
    y_fit = np.asarray([table.clips[int(i)].label for i in fit_rows], np.int64)
    groups = np.asarray([table.clips[int(i)].group or f"clip:{int(i)}" for i in fit_rows])
    t1 = time.perf_counter()
    try:
        probe = fit_probe(
            cfg.probe, x_fit, y_fit, groups, cfg.seed,
            num_classes=len(table.classes), config=probe_config(cfg),
        )  # fmt: skip
    except ValueError as exc:  # e.g. too few training clips per class for the inner folds
        raise ConfigError(f"probe={cfg.probe} in {job.run_dir}: {exc}") from None
    seconds = time.perf_counter() - t1
    y_test = torch.tensor([table.clips[int(i)].label for i in test], dtype=torch.long)
    logits = probe.logits(emb[[pos[int(i)] for i in test]])  # (N_test, K)
    logits_fit = probe.logits(x_fit)
    test_loss = float(F.cross_entropy(logits, y_test)) if len(test) else math.nan
    test_acc = 100.0 * float((logits.argmax(1) == y_test).float().mean()) if len(test) else 0.0
    head, head_spec = probe_head(probe)
    job.model.head = head
    record = {
        "epoch": 1,
        "probe": cfg.probe,
        "train_loss": float(F.cross_entropy(logits_fit, torch.from_numpy(y_fit))),
        "train_acc": probe.accuracy(x_fit, y_fit),
        "test_loss": test_loss,
        "test_acc": test_acc,
        "seconds": time.perf_counter() - t0,
        "fit_seconds": seconds,
    }
    if D.is_main():
        log = MetricsLog(job.run_dir / METRICS, "epoch", cfg.tensorboard)
        log.start(0)
        log.write(record)
        log.close()
    result = {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "epochs": 1,
        "selected_epoch": 1,
        "predictions": logits.argmax(1).tolist(),
        "probe": {"kind": cfg.probe, "fit_seconds": seconds, **probe.info},
        "embedding_cache": str(cache),
    }
    return result, head_spec


@torch.no_grad()
def probe_head(probe: Probe) -> tuple[nn.Module, dict[str, Any]]:
    """The probe as a head on raw embeddings: its standardisation folded into the first
    linear layer (one ``nn.Linear`` for ``logistic``; ``Linear-ReLU-Dropout-Linear`` for
    ``mlp``), float32 on the CPU, and its description for the model bundle."""
    mean, std = probe.mean.cpu().float(), probe.std.cpu().float()  # (1, D)
    model = copy.deepcopy(probe.model).cpu().float().eval()
    if isinstance(model, nn.Linear):
        fold_standardisation(model, mean, std)
        return model, {"kind": "linear"}
    assert isinstance(model, MLP)
    seq = model.net
    first, last = seq[0], seq[3]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    fold_standardisation(first, mean, std)
    return seq, {"kind": "mlp", "hidden": first.out_features}


@torch.no_grad()
def fold_standardisation(head: nn.Linear, mu: Tensor, sd: Tensor) -> None:
    """Fold ``(x - mu) / sd`` into ``head`` so the bundle takes raw embeddings."""
    head.bias.sub_((head.weight * (mu / sd)).sum(1))
    head.weight.div_(sd)
