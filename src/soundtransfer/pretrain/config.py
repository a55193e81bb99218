"""SimCLR pre-training settings: one frozen dataclass and the ``paper`` / ``cpu`` presets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from soundtransfer.config import ConfigError, check_bounds, get_named, to_dict

if TYPE_CHECKING:  # the settings import no torch (the command line reads them at once)
    from soundtransfer.pretrain.augment import SimCLRTransform

__all__ = ["PRESETS", "RUNTIME_FIELDS", "PretrainConfig", "get_preset", "identity_settings"]


@dataclass(frozen=True)
class PretrainConfig:
    """SimCLR pre-training settings (paper values in the ``paper`` preset).

    Attributes:
        arch: encoder name for :func:`soundtransfer.models.build_encoder`.
        input_size: side of the square views, pixels.
        batch_size: global batch (all ranks together), images; a multiple of the world size.
        epochs: passes over the image folder.
        max_steps: stop after this many steps (0: ``epochs`` full epochs); the schedule spans
            the steps actually run.
        temperature: NT-Xent temperature (0.1 for SimCLR v1 ResNet-50 at batch 4096).
        base_lr: learning rate per 256 images (``linear``) or sqrt coefficient (``sqrt``).
        lr_scaling: ``linear`` (``base_lr * batch / 256``), ``sqrt`` or ``none``.
        weight_decay: LARS L2 coefficient (biases and batch norm excluded).
        momentum: LARS momentum.
        trust_coefficient: LARS ``eta``.
        warmup_epochs: linear warm-up length, epochs (fractions allowed).
        proj_layers: layers of the projection head (2: SimCLR v1, 3: v2).
        proj_hidden_dim: width of its hidden layers.
        proj_out_dim: width of ``z``, where the loss is computed.
        color_strength: colour distortion strength ``s``.
        sync_bn: synchronise batch norm across ranks (CUDA with DDP only).
        amp: ``auto`` (bf16 autocast on CUDA), ``bf16``, ``fp16`` (with a grad scaler) or
            ``off``; float32 on CPU (the same option as fine-tuning's).
        channels_last: ``auto`` (NHWC, on CPU too), ``on`` or ``off``.
        batch_augment: ``auto`` (on CUDA), ``on`` or ``off``: colour and blur on the device
            for the whole batch (workers only crop) instead of per image in the workers.
        num_workers: DataLoader worker processes per rank.
        checkpoint_every: steps between checkpoints (and at the end).
        seed: seed of the shuffle, augmentations and initial weights.
        device: ``auto``, ``cpu``, ``cuda``.
        tensorboard: also log to TensorBoard (``<out>/tensorboard``; needs the package).
        skip_bad: replace undecodable images by the next one and list them in
            ``skipped.jsonl`` (otherwise the first one stops the run with a ``DatasetError``).
    """

    # The network and its views.
    arch: str = "resnet50"
    input_size: int = 224
    color_strength: float = 1.0
    batch_augment: Literal["auto", "on", "off"] = "auto"

    # How long, and the loss.
    batch_size: int = 4096
    epochs: int = 100
    max_steps: int = 0
    temperature: float = 0.1

    # LARS and its schedule.
    base_lr: float = 0.3
    lr_scaling: Literal["linear", "sqrt", "none"] = "linear"
    weight_decay: float = 1e-6
    momentum: float = 0.9
    trust_coefficient: float = 1e-3
    warmup_epochs: float = 10.0

    # The projection head g.
    proj_layers: int = 2
    proj_hidden_dim: int = 2048
    proj_out_dim: int = 128

    # Numerics and devices (the same options as fine-tuning's).
    sync_bn: bool = True
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    device: str = "auto"

    # Data loading, checkpoints, logs.
    num_workers: int = 8
    checkpoint_every: int = 1000
    seed: int = 0
    skip_bad: bool = False
    tensorboard: bool = False

    def __post_init__(self) -> None:
        check_bounds(
            self,
            at_least_1=("input_size", "batch_size", "epochs", "proj_layers", "proj_hidden_dim",
                        "proj_out_dim", "checkpoint_every"),
            positive=("temperature", "base_lr", "trust_coefficient"),
            non_negative=("max_steps", "num_workers", "warmup_epochs", "weight_decay", "seed",
                          "color_strength"),
        )  # fmt: skip
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2 (NT-Xent), got {self.batch_size}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")

    def transform(self) -> SimCLRTransform:
        """The view transform with this config's size and colour strength."""
        from soundtransfer.pretrain.augment import SimCLRTransform

        return SimCLRTransform(input_size=self.input_size, cj_strength=self.color_strength)


PRESETS: dict[str, PretrainConfig] = {
    "paper": PretrainConfig(),
    "cpu": PretrainConfig(
        arch="resnet18",
        input_size=64,
        batch_size=16,
        epochs=4,
        max_steps=4,
        warmup_epochs=0.0,
        proj_hidden_dim=512,
        proj_out_dim=64,
        amp="off",
        channels_last="off",
        num_workers=0,
        checkpoint_every=2,
        device="cpu",
    ),
}


#: Settings that may change between a checkpoint and its resumption (they do not change the
#: numbers computed): left out of the run's identity.
RUNTIME_FIELDS = frozenset({"num_workers", "checkpoint_every", "device", "tensorboard"})


def identity_settings(cfg: PretrainConfig) -> dict[str, Any]:
    """The settings that belong to a pre-training run's identity."""
    return {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_FIELDS}


def get_preset(name: str, overrides: Mapping[str, Any] | Iterable[str] = ()) -> PretrainConfig:
    """A preset by name (``paper`` or ``cpu``) with ``key=value`` overrides applied."""
    return get_named(PRESETS, name, overrides, "pretrain preset")
