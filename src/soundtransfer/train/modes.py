"""The modes of a run and what they share: fine-tuning, linear evaluation and every probe
behind one interface, :class:`Mode` (``train(job) -> Trained``), found in :data:`MODES`.

Protocol (paper, section 4): the encoder f(.) starts from the chosen weights, a linear head
g(.) sized to the classes is added, and the whole network (``finetune``) or only g
(``linear``: f frozen, in ``eval()`` and ``no_grad``) is trained with Adam (lr 1e-4, weight
decay 1e-3, batch 32) for 70 epochs with cross-entropy; the accuracy of the final epoch on the
held-out fold is reported. Input normalisation uses statistics of the split's training clips
only.

Linear evaluation extracts the frozen encoder's embeddings once per clip (its pooled features,
or the richer ``cfg.embedding``; cached, keyed by the feature store, the weights, the
normalisation and a non-default embedding) and trains its probe on them
(:mod:`soundtransfer.train.probes`: the paper's loop-trained FC layer by default, or a probe
fitted to convergence): seconds instead of a network pass per epoch, with the same result
since f is frozen and deterministic in eval(). Every mode leaves its trained head in the
classifier and returns the result and the head's spec for the bundle, the same shape.

To add a mode: a :class:`Mode` (a class with ``train(job) -> Trained``), one entry in
:data:`MODES` and its name in ``TrainConfig.mode``, with a test in ``tests/train/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from soundtransfer import distributed as D
from soundtransfer.cache import embeddings_dir
from soundtransfer.config import config_hash, to_dict
from soundtransfer.features.store import FeatureStore
from soundtransfer.locking import file_lock
from soundtransfer.models.classifier import Classifier, InputNorm
from soundtransfer.runs import Precision, atomic_write, load_array
from soundtransfer.tasks import get_task
from soundtransfer.tasks.base import Task
from soundtransfer.train.augment import BatchAugment
from soundtransfer.train.config import TrainConfig, embed_batch_for
from soundtransfer.train.data import channel_stats, chunks, store_batches
from soundtransfer.train.loop import Batches, RunContext, fit, make_optimizer
from soundtransfer.train.probes import get_probe
from soundtransfer.weights import ResolvedWeights, load_encoder

__all__ = [
    "MODES",
    "Job",
    "Mode",
    "Rows",
    "Trained",
    "build_classifier",
    "cached_embeddings",
    "embed_rows",
    "finetune_context",
    "linear_context",
    "split_embeddings",
    "training_mode",
]

Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # train, valid, test store rows


def build_classifier(
    store: FeatureStore,
    train_rows: np.ndarray,
    weights: ResolvedWeights,
    cfg: TrainConfig,
    cache_dir: Path | None = None,
) -> tuple[Classifier, dict[str, Any]]:
    """Encoder from ``weights`` + InputNorm from training-clip statistics + linear head on
    the embedding ``cfg.embedding`` (its width)."""
    encoder, src = load_encoder(weights, cache_dir=cache_dir, seed=cfg.seed)
    mean, std = channel_stats(store, train_rows)
    norm = InputNorm(mean, std, src.input_mean, src.input_std)
    torch.manual_seed(cfg.seed)
    model = Classifier(encoder, len(store.table.classes), norm, cfg.embedding)
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

    @property
    def task(self) -> Task:
        """The run's task (``cfg.task``): targets, loss, metrics."""
        return get_task(self.cfg.task)

    @property
    def targets(self) -> Tensor:
        """Every store row's target, in the task's form."""
        return self.task.targets(self.store.table)


@dataclass(frozen=True)
class Trained:
    """What a mode returns: the result (``final.json``'s training part: ``test_<metric>``,
    ``test_loss``, ``epochs``, ``selected_epoch``, ``predictions`` ...) and the spec of the
    head it left in ``job.model.head`` (:func:`soundtransfer.models.heads.build_head`)."""

    result: dict[str, Any]
    head: dict[str, Any]


class Mode(Protocol):
    """A way to train one split: ``train(job)`` trains ``job.model`` (its head at least).

    Attributes:
        shares_batches: whether the processes under torchrun share each batch (DDP, the
            identity records their number); otherwise each trains the same head alone and
            the main rank writes.
    """

    shares_batches: bool

    def train(self, job: Job) -> Trained: ...


class Finetune:
    """Every layer trained by the epoch loop on the store's images (DDP under torchrun)."""

    shares_batches = True

    def train(self, job: Job) -> Trained:
        return Trained(fit(finetune_context(job)), {"kind": "linear"})


#: Every mode: ``TrainConfig.mode`` -> ``cfg -> Mode``; linear evaluation's mode is its probe.
MODES: dict[str, Callable[[TrainConfig], Mode]] = {
    "finetune": lambda cfg: Finetune(),
    "linear": lambda cfg: get_probe(cfg.probe.kind),
}


def training_mode(cfg: TrainConfig) -> Mode:
    """The mode that trains runs of ``cfg``."""
    return MODES[cfg.mode](cfg)


def finetune_context(job: Job) -> RunContext:
    """The whole classifier trained on store images; DDP under torchrun (each rank a shard).

    The ``augment`` settings that are on become the context's batch augmentation
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

    targets = job.targets

    def batches(r: np.ndarray, size: int) -> Iterator[tuple[Tensor, Tensor]]:
        return store_batches(store, r, size, info.device, targets)

    ctx = _context(job, model, net, precision, batches, info.world_size)
    ctx.tta = cfg.tta
    if cfg.augment.active:  # the recipe's batch augmentation, on the training device
        ctx.augment = BatchAugment(cfg.augment, len(store.table.classes))
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
        world_size=world_size, progress=job.progress, task=job.task,
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
    """Frozen-encoder embeddings ``(N, D)`` float32 of the given rows (``model.embedding``)."""
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
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), np.float32)


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
    store, the encoder's weights, the fold's input normalisation, the rows and the embedding
    option (only when not the default, so older caches are still found). A lock makes
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
        *([] if model.embedding.is_default else [model.embedding.record()]),
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
        head afterwards (:func:`~soundtransfer.models.heads.fold_standardisation`), and the
        embedding cache file.
    """
    model, cfg = job.model, job.cfg
    train = job.rows[0]
    emb, pos, cache = split_embeddings(job)
    x_all = torch.from_numpy(emb)  # (N, D)
    labels = job.targets
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
