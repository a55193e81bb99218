"""SimCLR pre-training on a folder of natural images (Chen et al. 2020), one or many processes.

``pretrain(images_dir, cfg, out_dir)`` trains an encoder ``f`` and projection head ``g`` with
NT-Xent on two augmented views of each image, LARS and a warm-up + cosine schedule, and writes
the encoder (without head) as a safetensors file in torchvision's ResNet key layout, which
:func:`soundtransfer.weights.load_encoder` reads. Run it in one process (CPU or one GPU), or
under ``torchrun`` for DDP: negatives are then gathered across ranks with their gradients, batch
norm is synchronised on CUDA (SimCLR's global BN), and rank 0 alone writes files.

Files in ``out_dir`` (a run directory of :mod:`soundtransfer.runs`: its identity, the settings
that change the result, the process count and the image count, is recorded in ``config.json``
and checked by :func:`~soundtransfer.runs.open_run` before anything is built):
    ``config.json``        resolved :class:`PretrainConfig` and the run's ``identity``.
    ``log.jsonl``          one object per step: ``step, epoch, loss, lr, seconds``.
    ``checkpoints/last.pt`` model, head, optimiser, grad scaler, step and every rank's RNG
                           state; written atomically every ``checkpoint_every`` steps.
    ``skipped.jsonl``      undecodable images replaced by the next one (only with ``skip_bad``).
    ``encoder.safetensors`` + ``encoder.json`` the result and its description.

Reproducibility: the shuffle of each epoch comes from ``(seed, epoch)`` and the augmentation of
each image in the workers from ``(seed, epoch, image index)``, so a resumed run sees the same
views as an uninterrupted one, whatever the number of workers. The device-side colour and blur
of the batch path draw from each rank's generator, whose state the checkpoint keeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from soundtransfer import distributed as D
from soundtransfer.config import ConfigError, save_json, to_dict
from soundtransfer.errors import DatasetError, RunError
from soundtransfer.models import Encoder, build_encoder
from soundtransfer.pretrain.config import PretrainConfig, identity_settings
from soundtransfer.pretrain.data import ImageViews, epoch_batches, find_images
from soundtransfer.pretrain.lars import LARS, lars_param_groups, lr_at_step, scaled_lr
from soundtransfer.pretrain.ntxent import NTXentLoss
from soundtransfer.runs import (
    MetricsLog,
    Precision,
    atomic_write,
    check_finite,
    load_checkpoint,
    open_run,
    save_checkpoint,
)
from soundtransfer.runs.rundir import CONFIG

CHECKPOINT = Path("checkpoints") / "last.pt"

__all__ = [
    "SimCLRModel",
    "encoder_state_dict",
    "pretrain",
    "projection_head",
    "save_encoder",
]

# ---------------------------------------------------------------------------------------------
# Model


def projection_head(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> nn.Sequential:
    """SimCLR projection head ``g``: ``num_layers - 1`` blocks of Linear-BN-ReLU, then Linear.

    Two layers is SimCLR v1's ``2048-2048-128`` MLP, three is v2's.

    Args:
        in_dim: encoder feature width.
        hidden_dim: width of the hidden layers.
        out_dim: width of ``z``.
        num_layers: linear layers in total (>= 1).
    """
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU()]
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class SimCLRModel(nn.Module):
    """Encoder ``f`` then projection head ``g``; ``forward(x) -> z``.

    Args:
        encoder: module with ``.feature_dim`` and ``forward(x) -> (B, D)``.
        cfg: head sizes.
    """

    def __init__(self, encoder: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__()
        feature_dim = int(getattr(encoder, "feature_dim"))  # noqa: B009  (contract attribute)
        self.encoder = encoder
        self.head = projection_head(
            feature_dim, cfg.proj_hidden_dim, cfg.proj_out_dim, cfg.proj_layers
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` images in [0, 1] -> ``(B, proj_out_dim)`` projections."""
        h = self.encoder(x)  # (B, D)
        out: torch.Tensor = self.head(h)  # (B, proj_out_dim)
        return out


def _reference_keys(arch: str) -> set[str] | None:
    """torchvision's state-dict keys for ``arch`` without ``fc.``/``classifier.``, if it has it."""
    import torchvision

    try:
        net = torchvision.models.get_model(arch, weights=None)
    except ValueError:
        return None
    return {k for k in net.state_dict() if not k.startswith(("fc.", "classifier."))}


def encoder_state_dict(encoder: nn.Module, arch: str) -> dict[str, torch.Tensor]:
    """The encoder's tensors under torchvision's key names (no classifier).

    A wrapping prefix common to all keys (``backbone.`` and the like) is removed; for
    torchvision architectures the key set must then equal torchvision's without ``fc``.

    Raises:
        RunError: keys that do not match torchvision's layout.
    """
    if isinstance(encoder, Encoder):  # the interface's own adapter: its published key names
        return encoder.portable_state()
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    reference = _reference_keys(arch)
    if reference is None:
        return state
    for _ in range(3):  # strip up to three wrapper prefixes
        if set(state) == reference:
            return state
        heads = {k.split(".", 1)[0] for k in state}
        if len(heads) != 1 or any("." not in k for k in state):
            break
        state = {k.split(".", 1)[1]: v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    if set(state) != reference:
        extra = sorted(set(state) - reference)[:5]
        missing = sorted(reference - set(state))[:5]
        raise RunError(
            f"encoder {arch!r} does not have torchvision's key layout (extra {extra}, "
            f"missing {missing})"
        )
    return state


# ---------------------------------------------------------------------------------------------
# Outputs


def save_encoder(encoder: nn.Module, arch: str, path: Path, description: dict[str, Any]) -> Path:
    """Write ``path`` (safetensors, torchvision keys) and ``path.with_suffix('.json')``.

    The sidecar holds ``arch``, the input statistics (``[0, 1]`` RGB: mean 0, std 1) and
    ``description`` (config, steps, epochs ...). Both files are written atomically.
    """
    from safetensors.torch import save_file

    state = encoder_state_dict(encoder, arch)
    metadata = {"arch": arch, "source": "soundtransfer-simclr"}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    sidecar = {
        "arch": arch,
        "kind": "simclr",
        "input_range": "[0, 1] RGB",
        # Pixel statistics of natural images in [0, 1] (ImageNet's): what the encoder saw.
        "input_mean": [0.485, 0.456, 0.406],
        "input_std": [0.229, 0.224, 0.225],
        **description,
    }
    save_json(path.with_suffix(".json"), sidecar)
    return path


# ---------------------------------------------------------------------------------------------
# The loop


@dataclass
class _Setup:
    files: list[Path]
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    peak_lr: float


def _plan(images_dir: Path, cfg: PretrainConfig, world_size: int) -> _Setup:
    if cfg.batch_size % world_size:
        raise ConfigError(
            f"batch_size={cfg.batch_size} is not a multiple of the {world_size} processes"
        )
    files = find_images(images_dir)
    steps_per_epoch = len(files) // cfg.batch_size
    if steps_per_epoch == 0:
        raise DatasetError(
            f"{images_dir} has {len(files)} images, fewer than batch_size={cfg.batch_size}"
        )
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total)
    peak = scaled_lr(cfg.base_lr, cfg.batch_size, cfg.lr_scaling)
    return _Setup(files, steps_per_epoch, total, warmup, peak)


def _batches(
    setup: _Setup,
    dataset: ImageViews,
    cfg: PretrainConfig,
    info: D.DistInfo,
    start_step: int,
) -> Iterator[tuple[int, tuple[torch.Tensor, torch.Tensor, list[str]]]]:
    """``(epoch, batch)`` from ``start_step`` to the end of the run, epoch by epoch."""
    step = start_step
    while step < setup.total_steps:
        epoch, first = divmod(step, setup.steps_per_epoch)
        batches = epoch_batches(
            len(setup.files), cfg.batch_size, info.world_size, info.rank, cfg.seed, epoch
        )
        batches = batches[first : first + setup.total_steps - step]
        loader = DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=cfg.num_workers,
            pin_memory=info.device.type == "cuda",
        )
        try:
            for batch in loader:
                yield epoch, batch
                step += 1
        except DatasetError as exc:
            # A worker's error arrives with its traceback in the message: keep the last line.
            last = str(exc).strip().splitlines()[-1]
            prefix = f"{DatasetError.__module__}.DatasetError: "
            raise DatasetError(last.removeprefix(prefix)) from None


@dataclass
class _Trainer:
    """The model and what updates it, on this rank's device."""

    model: SimCLRModel
    net: nn.Module  # model, or it wrapped in DDP
    optimizer: LARS
    scaler: torch.amp.GradScaler
    precision: Precision
    loss_fn: NTXentLoss
    device_augment: nn.Module | None

    def step(self, v0: torch.Tensor, v1: torch.Tensor, lr: float) -> float:
        """One optimiser step on the two views; returns the loss averaged over ranks."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = torch.cat([v0, v1]).to(self.precision.device, non_blocking=True)  # (2n, 3, S, S)
        if self.device_augment is not None:
            x = self.device_augment(x)
        with self.precision.autocast():
            z = self.net(self.precision.inputs(x))  # (2n, proj_out_dim)
        z0, z1 = z.float().chunk(2)  # (n, proj_out_dim) each
        loss = self.loss_fn(z0, z1)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(D.all_reduce_mean(loss.detach()).item())

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def _trainer(cfg: PretrainConfig, info: D.DistInfo, setup: _Setup) -> _Trainer:
    """Model (SyncBN under DDP on CUDA), LARS, grad scaler and augmentation on the device."""
    cuda = info.device.type == "cuda"
    torch.manual_seed(cfg.seed + info.rank)  # initial weights from rank 0 via DDP's broadcast
    if cuda:
        torch.backends.cudnn.benchmark = True
    model = SimCLRModel(build_encoder(cfg.arch), cfg)
    if cuda and info.distributed and cfg.sync_bn:
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # converts the children in place
    precision = Precision.resolve(info.device, cfg.amp, cfg.channels_last)
    precision.model(model)
    optimizer = LARS(
        lars_param_groups(model, cfg.weight_decay),
        lr=setup.peak_lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        trust_coefficient=cfg.trust_coefficient,
    )
    net: nn.Module = model
    if info.distributed:
        net = DistributedDataParallel(model, device_ids=[info.device.index] if cuda else None)
    batch_aug = cfg.batch_augment == "on" or (cfg.batch_augment == "auto" and cuda)
    device_augment = cfg.transform().batch_module().to(info.device) if batch_aug else None
    loss_fn = NTXentLoss(cfg.temperature, gather_distributed=True)
    return _Trainer(model, net, optimizer, precision.scaler(), precision, loss_fn, device_augment)


def pretrain(
    images_dir: Path,
    cfg: PretrainConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    progress: bool = True,
) -> Path:
    """Pre-train an encoder with SimCLR and save it (see the module docstring for the files).

    Args:
        images_dir: folder of jpg/png/webp images, any nesting (labels are not used).
        cfg: settings.
        out_dir: output folder (created).
        resume: continue from ``out_dir/checkpoints/last.pt`` if it exists (else start). Without
            it, an existing checkpoint is an error rather than being overwritten. A checkpoint
            of other settings (beyond ``RUNTIME_FIELDS``), image count or process count is an
            error naming the difference.
        stop_at: end this invocation after step ``stop_at`` with a checkpoint, as a
            time-limited job would; resume later. ``None`` runs to the end.
        progress: show a tqdm bar with the loss on rank 0.

    Returns:
        Path of ``encoder.safetensors``, or of the checkpoint when stopped by ``stop_at``.

    Raises:
        DatasetError: missing or empty folder, fewer images than a batch, an undecodable image
            (without ``skip_bad``).
        RunError: a non-finite loss (step and learning rate named), an unusable checkpoint.
        ConfigError: a batch that does not split over the processes.
    """
    with D.distributed_session(cfg.device) as info:
        return _pretrain(Path(images_dir), cfg, Path(out_dir), info, resume, stop_at, progress)


def _open(
    out_dir: Path, cfg: PretrainConfig, info: D.DistInfo, setup: _Setup, resume: bool
) -> tuple[_Trainer, int, dict[str, Any]]:
    """The run's identity checked and recorded (:func:`soundtransfer.runs.open_run`: another
    identity in ``config.json`` is an error naming the differences), the trainer, restored
    from ``checkpoints/last.pt`` when resuming, and the step to start at."""
    ckpt_path = out_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise RunError(f"{ckpt_path} exists: resume it (--resume) or choose another --out")
    identity = {
        "settings": identity_settings(cfg),
        "world_size": info.world_size,
        "num_images": len(setup.files),
    }
    config = out_dir / CONFIG
    if config.exists() and "identity" not in json.loads(config.read_text()):
        # Written before pre-training recorded its identity there: the checkpoint's is checked.
        if info.is_main:
            save_json(config, {**to_dict(cfg), "identity": identity})
    else:
        open_run(out_dir, identity, to_dict(cfg))
    trainer = _trainer(cfg, info, setup)
    if not ckpt_path.exists():
        return trainer, 0, identity
    state = load_checkpoint(ckpt_path, info.device, identity)
    trainer.load(state)
    return trainer, int(state["step"]), identity


def _pretrain(
    images_dir: Path,
    cfg: PretrainConfig,
    out_dir: Path,
    info: D.DistInfo,
    resume: bool,
    stop_at: int | None,
    progress: bool,
) -> Path:
    setup = _plan(images_dir, cfg, info.world_size)
    trainer, start_step, identity = _open(out_dir, cfg, info, setup, resume)
    log = MetricsLog(out_dir / "log.jsonl", "step", cfg.tensorboard)
    skipped = MetricsLog(out_dir / "skipped.jsonl", "step")
    log.start(start_step)
    skipped.start(start_step)
    dataset = ImageViews(
        setup.files,
        cfg.transform(),
        cfg.seed,
        crops_only=trainer.device_augment is not None,
        skip_bad=cfg.skip_bad,
    )
    bar = tqdm(
        total=setup.total_steps,
        initial=start_step,
        disable=not (progress and info.is_main),
        desc="pretrain",
        dynamic_ncols=True,
    )
    trainer.model.train()
    step, loss_value = start_step, float("nan")
    started = time.perf_counter()
    for epoch, (v0, v1, bad) in _batches(setup, dataset, cfg, info, start_step):
        lr = lr_at_step(step, setup.total_steps, setup.warmup_steps, setup.peak_lr)
        loss_value = trainer.step(v0, v1, lr)
        check_finite(
            loss_value, f"at step {step + 1} (lr {lr:.4g}); lower base_lr or check the images"
        )
        step += 1
        seconds = round(time.perf_counter() - started, 3)
        log.write({"step": step, "epoch": epoch, "loss": loss_value, "lr": lr, "seconds": seconds})
        _log_skipped(skipped, step, bad, cfg.skip_bad)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.3g}")
        done = step >= setup.total_steps
        if done or step % cfg.checkpoint_every == 0 or step == stop_at:
            state = {**trainer.state(), "step": step, "identity": identity}
            save_checkpoint(out_dir / CHECKPOINT, state, info.device)
        if stop_at is not None and step >= stop_at and not done:
            break
    bar.close()
    log.close()
    if step < setup.total_steps:  # stopped by stop_at: resume later
        return out_dir / CHECKPOINT
    return _finish(trainer, cfg, setup, info, images_dir, out_dir, step, loss_value)


def _finish(
    trainer: _Trainer,
    cfg: PretrainConfig,
    setup: _Setup,
    info: D.DistInfo,
    images_dir: Path,
    out_dir: Path,
    step: int,
    loss_value: float,
) -> Path:
    """Write the encoder and its description (rank 0); every rank waits for it."""
    weights_path = out_dir / "encoder.safetensors"
    if info.is_main:
        description = {
            "config": to_dict(cfg),
            "steps": step,
            "epochs": step / setup.steps_per_epoch,
            "num_images": len(setup.files),
            "images_dir": str(images_dir),
            "world_size": info.world_size,
            "final_loss": loss_value,
        }
        save_encoder(trainer.model.encoder, cfg.arch, weights_path, description)
    D.barrier()
    return weights_path


def _log_skipped(log: MetricsLog, step: int, bad: list[str], skip_bad: bool) -> None:
    """Record the images the workers replaced (``file\treason`` lines), every rank's."""
    mine = [line for text in bad if text for line in text.split("\n")]
    every = D.gather_objects(mine) if skip_bad else [mine]  # collective under skip_bad
    for record in (r for rank_bad in every for r in rank_bad):
        file, _, reason = record.partition("\t")
        log.write({"step": step, "file": file, "reason": reason})
