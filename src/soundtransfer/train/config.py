"""Training settings: one frozen dataclass with the paper's preset, smaller ones and a modern
fine-tuning recipe (``recipe``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from soundtransfer.config import ConfigError, check_bounds, get_named, to_dict

__all__ = [
    "AUTO_EMBED_BATCH",
    "PRESETS",
    "RECIPE_FIELDS",
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
        channels_last: ``auto`` (NHWC, on CPU too), ``on`` or ``off``.
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
        aug_*: batch augmentation of the fine-tuning images on the training device
            (:class:`~soundtransfer.train.augment.AugmentConfig`'s fields with an ``aug_``
            prefix; a strength of 0 is off): ``aug_gain_db`` random gain (dB),
            ``aug_time_shift`` (fraction of the width) with ``aug_time_shift_mode``,
            SpecAugment ``aug_time_masks`` / ``aug_freq_masks`` of at most
            ``aug_time_mask_width`` / ``aug_freq_mask_width`` (fractions) filled with
            ``aug_mask_fill``, mixup ``aug_mixup_alpha`` (Beta) in a ``aug_mixup_prob`` of the
            batches. Drawn from a generator seeded by (seed, epoch, rank): a resumed run sees
            the same augmentations. Fine-tuning only: linear evaluation trains on cached
            embeddings of the unaugmented images.
        label_smoothing: cross-entropy against ``(1 - eps) * target + eps / K``.
        schedule: learning rate per optimiser step: ``constant`` (the paper) or ``cosine``
            (half cosine from ``lr`` down to ``min_lr_ratio * lr`` at the end of training);
            both after a linear warm-up of ``warmup_epochs`` (may be fractional).
        warmup_epochs: linear warm-up from ``lr / warmup_steps`` to ``lr``; 0 = none.
        min_lr_ratio: the cosine schedule's final learning rate as a fraction of ``lr``.
        ema_decay: keep an exponential moving average of the weights (decay per optimiser
            step, with a short warm-up); validation, test, ``best.pt`` and the saved model use
            the average. 0 = off.
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
    aug_gain_db: float = 0.0
    aug_time_shift: float = 0.0
    aug_time_shift_mode: Literal["roll", "edge", "min"] = "roll"
    aug_time_masks: int = 0
    aug_time_mask_width: float = 0.1
    aug_freq_masks: int = 0
    aug_freq_mask_width: float = 0.1
    aug_mask_fill: Literal["mean", "min"] = "mean"
    aug_mixup_alpha: float = 0.0
    aug_mixup_prob: float = 1.0
    label_smoothing: float = 0.0
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        auto_batch = self.embed_batch_size == "auto"
        at_least_1 = ("epochs", "batch_size", *(() if auto_batch else ("embed_batch_size",)))
        positive = ("lr",)
        non_negative = (
            "weight_decay", "seed", "eval_every", "aug_gain_db", "aug_time_masks",
            "aug_freq_masks", "aug_mixup_alpha", "warmup_epochs",
        )  # fmt: skip
        check_bounds(self, at_least_1=at_least_1, positive=positive, non_negative=non_negative)
        unit = ("aug_time_shift", "aug_time_mask_width", "aug_freq_mask_width", "aug_mixup_prob")
        for name in (*unit, "min_lr_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("label_smoothing", "ema_decay"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.warmup_epochs > self.epochs:
            raise ConfigError(
                f"warmup_epochs={self.warmup_epochs} is longer than epochs={self.epochs}; "
                f"shorten the warm-up (--set warmup_epochs=0 for none) or train longer"
            )
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


#: Settings added with the fine-tuning recipe: left out of a run's identity while they hold
#: their default (off), so runs made before they existed are still reused and resumed.
RECIPE_FIELDS = frozenset(
    {f.name for f in fields(TrainConfig) if f.name.startswith("aug_")}
    | {"label_smoothing", "schedule", "warmup_epochs", "min_lr_ratio", "ema_decay"}
)


def identity_settings(cfg: TrainConfig) -> dict[str, Any]:
    """The settings that belong to a run's identity: all but :data:`RUNTIME_FIELDS`, and
    :data:`RECIPE_FIELDS` only where they differ from their default."""
    default = to_dict(TrainConfig())
    return {
        k: v
        for k, v in to_dict(cfg).items()
        if k not in RUNTIME_FIELDS and not (k in RECIPE_FIELDS and v == default[k])
    }


PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    # A quick look on a laptop: same optimiser, few epochs.
    "cpu": TrainConfig(epochs=4, batch_size=32),
    # The demo: smaller still.
    "demo": TrainConfig(epochs=2, batch_size=16),
    # A modern fine-tuning recipe (issue 14), tuned on a validation split carved from the
    # training folds of ESC-10 fold 1 (docs/recipe-tuning.md), never on a test fold: AdamW,
    # warm-up + cosine learning rate, label smoothing, gain, time shift, SpecAugment. Mixup
    # (aug_mixup_alpha=0.4) and EMA are available but off: mixup lost 6 validation points
    # at 20 epochs; lr 1e-4 lost 11; 30 epochs fit the 45-minute 5-fold budget with Lite0.
    "recipe": TrainConfig(
        epochs=30,
        lr=3e-4,
        weight_decay=0.05,
        optimizer="adamw",
        schedule="cosine",
        warmup_epochs=2.0,
        min_lr_ratio=0.01,
        label_smoothing=0.1,
        aug_gain_db=6.0,
        aug_time_shift=0.5,
        aug_time_masks=2,
        aug_time_mask_width=0.1,
        aug_freq_masks=2,
        aug_freq_mask_width=0.1,
    ),
}


def get_preset(name: str, overrides: Mapping[str, Any] | Iterable[str] = ()) -> TrainConfig:
    """A named preset (``paper``, ``cpu``, ``demo``, ``recipe``) with ``key=value`` overrides."""
    return get_named(PRESETS, name, overrides, "training preset")
