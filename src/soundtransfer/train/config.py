"""Training settings: one frozen dataclass with the paper's preset and smaller ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from soundtransfer.config import ConfigError, check_bounds, get_named, to_dict

__all__ = [
    "AUTO_EMBED_BATCH",
    "PRESETS",
    "RUNTIME_FIELDS",
    "TrainConfig",
    "embed_batch_for",
    "get_preset",
    "identity_settings",
]


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning / linear-evaluation settings.

    The paper (section 4): Adam, learning rate 1e-4, weight decay 1e-3, batch 32, 70 epochs,
    cross-entropy, accuracy of the final epoch on the held-out fold.

    Attributes:
        mode: ``finetune`` (every layer trains) or ``linear`` (encoder frozen, FC only).
        epochs: passes over the training folds.
        batch_size: clips per optimiser step, all processes together (as in pre-training);
            under torchrun each of the N processes takes ``batch_size / N`` (a multiple of N).
        lr: learning rate (> 0).
        weight_decay: L2 coefficient (Adam's coupled L2 as in the paper; ``adamw`` decouples).
        optimizer: ``adam``, ``adamw`` or ``sgd`` (momentum 0.9).
        val_fraction: carve this fraction of the training folds (grouped by source recording)
            as a validation set; 0 = none. Never the test fold.
        select: ``last`` (the paper: final epoch) or ``best_val`` (needs a validation set).
        seed: seed of initialisation, shuffling and validation carving.
        amp: ``auto`` (bf16 autocast on CUDA), ``bf16``, ``fp16`` or ``off``; float32 on CPU.
        channels_last: ``auto`` (on CUDA), ``on`` or ``off``.
        compile: wrap the model in ``torch.compile`` (CUDA).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        eval_every: evaluate the test fold every N epochs (logged, never used to select);
            the final epoch is always evaluated; 0 = only the final epoch.
        embed_batch_size: batch size of evaluation and of the frozen-encoder pass; ``auto``:
            :func:`embed_batch_for` of the device (small batches run faster on CPU).
        feature_norm: linear evaluation standardises the frozen features with training-clip
            statistics (folded into the head afterwards, so still one linear layer).
        tensorboard: also log the metrics to TensorBoard (``<run>/tensorboard``; needs the
            ``tensorboard`` package). ``metrics.jsonl`` is always written.
        probe: linear evaluation's classifier on the frozen embeddings: ``linear`` (the
            paper: the FC layer trained by the loop with the settings above), ``logistic``
            (converged multinomial logistic regression, ``C`` chosen on inner folds of the
            training rows grouped by recording) or ``mlp`` (one hidden layer, hidden size,
            learning rate and epoch chosen on a validation part of the training rows); see
            :mod:`soundtransfer.train.probes`.
        probe_inner_folds: inner cross-validation folds of the ``logistic`` probe.
        probe_valid_fraction: share of the training rows (whole recordings) the ``mlp``
            probe holds out for its choices.
    """

    mode: Literal["finetune", "linear"] = "finetune"
    epochs: int = 70
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    val_fraction: float = 0.0
    select: Literal["last", "best_val"] = "last"
    seed: int = 0
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    compile: bool = False
    device: str = "auto"
    eval_every: int = 1
    embed_batch_size: int | Literal["auto"] = "auto"
    feature_norm: bool = True
    tensorboard: bool = False
    # Probes on the frozen embeddings (linear evaluation only).
    probe: Literal["linear", "logistic", "mlp"] = "linear"
    probe_inner_folds: int = 5
    probe_valid_fraction: float = 0.2

    def __post_init__(self) -> None:
        auto_batch = self.embed_batch_size == "auto"
        at_least_1 = ("epochs", "batch_size", *(() if auto_batch else ("embed_batch_size",)))
        positive = ("lr",)
        non_negative = ("weight_decay", "seed", "eval_every")
        check_bounds(self, at_least_1=at_least_1, positive=positive, non_negative=non_negative)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.select == "best_val" and self.val_fraction == 0.0:
            raise ConfigError("select=best_val needs val_fraction > 0 (never the test fold)")
        if self.probe != "linear" and self.mode != "linear":
            raise ConfigError(f"probe={self.probe} applies to linear evaluation only")
        if self.probe_inner_folds < 2:
            raise ConfigError(f"probe_inner_folds must be at least 2, got {self.probe_inner_folds}")
        if not 0.0 < self.probe_valid_fraction < 1.0:
            raise ConfigError(
                f"probe_valid_fraction must be in (0, 1), got {self.probe_valid_fraction}"
            )

    @property
    def run_mode(self) -> str:
        """The run directory's mode: ``finetune``, ``linear`` or the probe (``logistic``,
        ``mlp``), so each probe's runs sit in their own cell."""
        return self.probe if self.mode == "linear" and self.probe != "linear" else self.mode


#: ``embed_batch_size=auto``: Lite0 inference on 2 CPU cores ran fastest at batch 8 (134
#: clips/s against 69 at 32 and 48 at 64; re-measured back to back on a loaded machine: 12.4,
#: 11.5, 10.6, 5.9 clips/s at 8, 16, 32, 64, indicative); GPUs want large batches.
AUTO_EMBED_BATCH = {"cpu": 8, "cuda": 64}


def embed_batch_for(cfg: TrainConfig, device: str) -> int:
    """``cfg.embed_batch_size``, or for ``auto`` the batch of the device type."""
    if cfg.embed_batch_size != "auto":
        return cfg.embed_batch_size
    return AUTO_EMBED_BATCH.get(device.split(":")[0], AUTO_EMBED_BATCH["cuda"])


#: Settings that do not change a run's numbers: left out of its identity, so a run may resume
#: or be reused with other values (another device, another logging cadence).
RUNTIME_FIELDS = frozenset({"device", "eval_every", "compile", "tensorboard", "embed_batch_size"})


def identity_settings(cfg: TrainConfig) -> dict[str, Any]:
    """The settings that belong to a run's identity (all but :data:`RUNTIME_FIELDS`)."""
    return {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_FIELDS}


PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    # A quick look on a laptop: same optimiser, few epochs.
    "cpu": TrainConfig(epochs=4, batch_size=32),
    # The demo: smaller still.
    "demo": TrainConfig(epochs=2, batch_size=16),
}


def get_preset(name: str, overrides: Mapping[str, Any] | Iterable[str] = ()) -> TrainConfig:
    """A named preset (``paper``, ``cpu``, ``demo``) with ``key=value`` overrides."""
    return get_named(PRESETS, name, overrides, "training preset")
