"""The model bundle: one file holding everything needed to classify raw audio.

A bundle holds the classifier's state dict, the front-end settings, the classes, the
architecture and its build options, the weight source's name and input statistics, the
embedding the head takes (:class:`~soundtransfer.models.embedding.EmbeddingSpec`; bundles
written before it was recorded take the default, ``mean``) and the head's spec, and is
loadable with ``torch.load(weights_only=True)`` (plain tensors and types only). The mel matrix
and windows are not stored: they are rebuilt from the front-end settings, so front ends of
any size load. The head is rebuilt from its spec by
:func:`soundtransfer.models.heads.build_head`, the definition the probes train, so a head
changed there changes both.

A bundle may come from anyone, so :func:`load_bundle` checks it before building anything: a
dict of the format with a state dict of named tensors, every floating-point weight finite,
class names, front-end settings valid and within :data:`LIMITS` (a window of 10^7 s or an
image of 10^6 mel bands would otherwise be allocated), an MLP head's hidden size within
:data:`MAX_HIDDEN`, and the tensors' names and shapes those of the architecture. Each fault is
a :class:`~soundtransfer.errors.WeightsError` naming the file and what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from soundtransfer.audio.frontend import LogMel3
from soundtransfer.audio.presets import FrontEnd
from soundtransfer.config import from_dict, to_dict
from soundtransfer.errors import ConfigError, WeightsError
from soundtransfer.models.classifier import Classifier, InputNorm
from soundtransfer.models.embedding import EmbeddingSpec
from soundtransfer.models.heads import MAX_HIDDEN, build_head
from soundtransfer.models.registry import build_encoder
from soundtransfer.runs.checkpoint import (
    load_error_reason,
    non_finite_tensor,
    quiet_load,
    state_dict_mismatch,
)
from soundtransfer.runs.files import atomic_torch_save

FORMAT = "soundtransfer-bundle-1"

#: Upper bounds on a bundle's front end. Every dataset we know trains on clips of 4-30 s at
#: 16-48 kHz with 64-128 mel bands and a few hundred frames per image; these are far above
#: that and far below what would exhaust memory when the front end is built (a 600 s window
#: at 192 kHz is 0.46 GB of float32 audio per window).
LIMITS: dict[str, float] = {
    "clip_seconds": 600.0,
    "sample_rate": 192_000,
    "n_fft": 1 << 16,
    "n_mels": 512,
    "out_frames": 8192,
}
MAX_CLASSES = 100_000


#: The task a bundle was trained for (see ``BundleMeta.task``).
TASKS = ("single_label", "multi_label")


@dataclass(frozen=True)
class BundleMeta:
    """What a bundle says about its model besides the weights.

    Attributes:
        frontend: the front-end settings.
        classes: class names, index = output.
        arch: the encoder architecture.
        weights: the weight source it was trained from.
        task: ``single_label`` (softmax over the classes) or ``multi_label`` (one sigmoid per
            class). Bundles written before the field existed are single-label.
        thresholds: per-class score thresholds chosen on a validation split (class name ->
            threshold on the output score), or None when none were chosen.
        background: classes that stand for "no event" (negatives, noise): never reported as
            an event by ``predict``.
        input_mean, input_std: the statistics the encoder's weights expect in its input space
            (the weight source's), what a per-clip normalisation maps to (the HEAR API); None
            for bundles written before they were recorded.
        embedding: the embedding the head takes (bundles written before it was recorded:
            the default, the encoder's own pooled features).
    """

    frontend: FrontEnd
    classes: tuple[str, ...]
    arch: str
    weights: str
    task: str = "single_label"
    thresholds: dict[str, float] | None = None
    background: tuple[str, ...] = ()
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    embedding: EmbeddingSpec = field(default_factory=EmbeddingSpec)


class AudioClassifier(nn.Module):
    """Raw audio ``(B, T)`` at ``frontend.sample_rate`` -> logits ``(B, classes)``."""

    def __init__(self, frontend: LogMel3, classifier: Classifier) -> None:
        super().__init__()
        self.frontend = frontend
        self.classifier = classifier

    def forward(self, wave: Tensor) -> Tensor:
        logits: Tensor = self.classifier(self.frontend(wave))  # (B, classes)
        return logits


def save_bundle(
    path: Path,
    classifier: Classifier,
    frontend: FrontEnd,
    classes: Sequence[str],
    arch: str,
    weights: str,
    extra: dict[str, Any] | None = None,
    head: dict[str, Any] | None = None,
    *,
    task: str = "single_label",
    thresholds: dict[str, float] | None = None,
    background: Sequence[str] = (),
    input_stats: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Path:
    """Write a bundle atomically.

    Args:
        head: the head's spec (:mod:`soundtransfer.models.heads`; default ``{"kind":
            "linear"}``), e.g. ``{"kind": "mlp", "hidden": H}`` for an MLP probe's.
        task, thresholds, background: as :class:`BundleMeta`.
        input_stats: (mean, std) per channel the weights expect (the weight source's).
    """
    if task not in TASKS:
        raise WeightsError(f"unknown task {task!r}; choose from {TASKS}")
    unknown = sorted(set(thresholds or {}) - set(classes)) + sorted(set(background) - set(classes))
    if unknown:
        raise WeightsError(f"thresholds or background name no class: {unknown}")
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in classifier.state_dict().items()},
        "frontend": to_dict(frontend),
        "classes": list(classes),
        "arch": arch,
        "weights": weights,
        "tf_same_pool": bool(classifier.encoder.build_options.get("tf_same_pool", False)),
        "encoder_options": dict(classifier.encoder.build_options),
        "extra": extra or {},
        "head": head or {"kind": "linear"},
        "embedding": classifier.embedding.record(),
        "task": task,
        "thresholds": None if thresholds is None else {k: float(v) for k, v in thresholds.items()},
        "background": list(background),
        "input_mean": None if input_stats is None else [float(v) for v in input_stats[0]],
        "input_std": None if input_stats is None else [float(v) for v in input_stats[1]],
        "torch": str(torch.__version__),
    }
    return atomic_torch_save(payload, path)  # a full disk: one error naming the bundle


def _read_payload(path: Path, map_location: str) -> dict[str, Any]:
    """The bundle's dict, its format, state dict and head checked (see the module docstring)."""
    if not path.exists():
        raise WeightsError(f"{path}: model bundle not found")
    try:
        payload = quiet_load(path, map_location)
    except Exception as exc:
        raise WeightsError(
            f"{path}: not a readable model bundle ({load_error_reason(exc)})"
        ) from None
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise WeightsError(f"{path}: not a soundtransfer model bundle (it holds a {kind})")
    missing = [
        k for k in ("format", "state_dict", "frontend", "classes", "arch") if k not in payload
    ]
    if missing or payload.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a soundtransfer model bundle (missing {missing})")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsError(f"{path}: state_dict is not a mapping of names to tensors")
    bad = non_finite_tensor(state)
    if bad is not None:
        raise WeightsError(f"{path}: weight {bad} holds NaN or infinite values")
    negative = [k for k, v in state.items() if k.endswith("running_var") and bool((v < 0).any())]
    if negative:  # a variance below zero gives NaN outputs
        raise WeightsError(f"{path}: weight {negative[0]} holds negative variances")
    head = payload.get("head") or {"kind": "linear"}
    hidden = head.get("hidden") if isinstance(head, dict) else None
    if hidden is not None and not (
        isinstance(hidden, int) and not isinstance(hidden, bool) and 0 < hidden <= MAX_HIDDEN
    ):
        raise WeightsError(f"{path}: head hidden size {hidden!r} is not in 1..{MAX_HIDDEN}")
    if not isinstance(payload["arch"], str):
        raise WeightsError(f"{path}: arch must be a name, got {payload['arch']!r:.40}")
    return payload


def _frontend_and_classes(path: Path, payload: dict[str, Any]) -> tuple[FrontEnd, tuple[str, ...]]:
    """The bundle's front end (valid, within :data:`LIMITS`) and class names."""
    try:
        frontend = from_dict(FrontEnd, payload["frontend"])
    except (ConfigError, TypeError, ValueError, AttributeError) as exc:
        raise WeightsError(f"{path}: bad front-end settings ({exc})") from None
    for key, limit in LIMITS.items():
        if getattr(frontend, key) > limit:
            raise WeightsError(
                f"{path}: front-end {key}={getattr(frontend, key):g} is beyond {limit:g} "
                "(not a model of ours, or a damaged file)"
            )
    classes = payload["classes"]
    ok = isinstance(classes, list) and 0 < len(classes) <= MAX_CLASSES
    if not ok or not all(isinstance(c, str) for c in classes) or len(set(classes)) < len(classes):
        raise WeightsError(f"{path}: classes must be 1..{MAX_CLASSES} distinct names")
    return frontend, tuple(classes)


def _encoder_options(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The encoder's build options a bundle records (older bundles: ``tf_same_pool`` only)."""
    options = payload.get("encoder_options")
    if options is None:
        return {"tf_same_pool": bool(payload.get("tf_same_pool"))}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise WeightsError(f"{path}: encoder_options must be a mapping, got {options!r:.40}")
    return options


def load_bundle(path: Path, map_location: str = "cpu") -> tuple[AudioClassifier, BundleMeta]:
    """Rebuild the :class:`AudioClassifier` of a bundle (in eval mode), checked first (see the
    module docstring).

    Raises:
        WeightsError: missing, unreadable or not a bundle, or a check fails (file named).
    """
    path = Path(path)
    payload = _read_payload(path, map_location)
    frontend, classes = _frontend_and_classes(path, payload)
    c = frontend.channels
    try:
        embedding = EmbeddingSpec.from_record(payload.get("embedding"))
        encoder = build_encoder(payload["arch"], **_encoder_options(path, payload))
        model = Classifier(encoder, len(classes), InputNorm([0.0] * c, [1.0] * c), embedding)
        model.head = build_head(
            payload.get("head") or {"kind": "linear"}, model.embed_dim, len(classes)
        )
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    mismatch = state_dict_mismatch(model.state_dict(), payload["state_dict"])
    if mismatch:
        raise WeightsError(f"{path}: weights do not fit {payload['arch']}: {mismatch}")
    model.load_state_dict(payload["state_dict"], strict=True)
    audio_model = AudioClassifier(LogMel3(frontend), model).eval()
    meta = BundleMeta(
        frontend,
        classes,
        payload["arch"],
        payload.get("weights", ""),
        task=_task(path, payload.get("task", "single_label")),
        thresholds=_thresholds(path, payload.get("thresholds"), classes),
        background=_background(path, payload.get("background", []), classes),
        input_mean=_stats(path, payload.get("input_mean"), c),
        input_std=_stats(path, payload.get("input_std"), c),
        embedding=embedding,
    )
    return audio_model, meta


def _stats(path: Path, value: Any, channels: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == channels
    if not ok or not all(isinstance(v, float) and math.isfinite(v) for v in value):
        raise WeightsError(f"{path}: input statistics must be {channels} finite numbers")
    return tuple(value)


def _task(path: Path, task: Any) -> str:
    if task not in TASKS:
        raise WeightsError(f"{path}: unknown task {task!r} (choose from {TASKS})")
    return str(task)


def _thresholds(path: Path, value: Any, classes: tuple[str, ...]) -> dict[str, float] | None:
    if value is None:
        return None
    ok = isinstance(value, dict) and all(
        k in classes and isinstance(v, float) and math.isfinite(v) for k, v in value.items()
    )
    if not ok:
        raise WeightsError(f"{path}: thresholds must map class names to finite numbers")
    return {str(k): float(v) for k, v in value.items()}


def _background(path: Path, value: Any, classes: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or any(v not in classes for v in value):
        raise WeightsError(f"{path}: background must list class names of the bundle")
    return tuple(str(v) for v in value)
