"""The model bundle: one file holding everything needed to classify raw audio.

A bundle holds the classifier's state dict, the front-end settings, the classes, the
architecture and its build options, the weight source's name and input statistics, and the
head's spec, and is loadable with ``torch.load(weights_only=True)`` (plain tensors and types
only). The mel matrix and windows are not stored: they are rebuilt from the front-end
settings, so front ends of any size load. The head is rebuilt from its spec by
:func:`soundtransfer.models.heads.build_head`, the definition the probes train, so a head
changed there changes both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from soundtransfer.audio.frontend import LogMel3
from soundtransfer.audio.presets import FrontEnd
from soundtransfer.config import from_dict, to_dict
from soundtransfer.errors import WeightsError
from soundtransfer.models.classifier import Classifier, InputNorm
from soundtransfer.models.heads import build_head
from soundtransfer.models.registry import build_encoder

FORMAT = "soundtransfer-bundle-1"


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
        "task": task,
        "thresholds": None if thresholds is None else {k: float(v) for k, v in thresholds.items()},
        "background": list(background),
        "input_mean": None if input_stats is None else [float(v) for v in input_stats[0]],
        "input_std": None if input_stats is None else [float(v) for v in input_stats[1]],
        "torch": str(torch.__version__),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_bundle(path: Path, map_location: str = "cpu") -> tuple[AudioClassifier, BundleMeta]:
    """Rebuild the :class:`AudioClassifier` of a bundle (in eval mode)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: model bundle not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable model bundle ({exc})") from None
    missing = [
        k for k in ("format", "state_dict", "frontend", "classes", "arch") if k not in payload
    ]
    if missing or payload.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a soundtransfer model bundle (missing {missing})")
    frontend = from_dict(FrontEnd, payload["frontend"])
    classes = tuple(payload["classes"])
    options = payload.get("encoder_options") or {"tf_same_pool": payload.get("tf_same_pool", False)}
    try:
        encoder = build_encoder(payload["arch"], **options)
        head = build_head(
            payload.get("head") or {"kind": "linear"}, encoder.feature_dim, len(classes)
        )
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    c = frontend.channels
    model = Classifier(encoder, len(classes), InputNorm([0.0] * c, [1.0] * c))
    model.head = head
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit {payload['arch']}: {exc}") from None
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
