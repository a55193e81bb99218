"""The model bundle: one file holding everything needed to classify raw audio.

A bundle holds the classifier's state dict, the front-end settings, the classes, the
architecture and the weight source's name, and is loadable with ``torch.load(weights_only=True)``
(plain tensors and types only). The mel matrix and windows are not stored: they are rebuilt
from the front-end settings, so front ends of any size load.
"""

from __future__ import annotations

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
from soundtransfer.models.backbones import build_encoder
from soundtransfer.models.classifier import Classifier, InputNorm

FORMAT = "soundtransfer-bundle-1"


@dataclass(frozen=True)
class BundleMeta:
    frontend: FrontEnd
    classes: tuple[str, ...]
    arch: str
    weights: str


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
) -> Path:
    """Write a bundle atomically; ``head`` describes a head other than one ``nn.Linear``
    (``{"kind": "mlp", "hidden": H}``: a probe's ``Linear-ReLU-Dropout-Linear``)."""
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in classifier.state_dict().items()},
        "frontend": to_dict(frontend),
        "classes": list(classes),
        "arch": arch,
        "weights": weights,
        "tf_same_pool": bool(getattr(classifier.encoder, "tf_same_pool", False)),
        "extra": extra or {},
        "head": head or {"kind": "linear"},
        "torch": str(torch.__version__),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _head(path: Path, spec: Any, linear: nn.Module) -> nn.Module:
    """The head a bundle describes (``linear``: the classifier's own; ``mlp``: a probe's)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "linear":
        return linear
    hidden = spec.get("hidden") if isinstance(spec, dict) else None
    if kind == "mlp" and isinstance(hidden, int) and hidden > 0 and isinstance(linear, nn.Linear):
        dim, k = linear.in_features, linear.out_features
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, k))
    raise WeightsError(f"{path}: unknown head {spec!r}")


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
    encoder = build_encoder(payload["arch"], tf_same_pool=payload.get("tf_same_pool", False))
    c = frontend.channels
    model = Classifier(encoder, len(classes), InputNorm([0.0] * c, [1.0] * c))
    model.head = _head(path, payload.get("head") or {"kind": "linear"}, model.head)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit {payload['arch']}: {exc}") from None
    audio_model = AudioClassifier(LogMel3(frontend), model).eval()
    meta = BundleMeta(frontend, classes, payload["arch"], payload.get("weights", ""))
    return audio_model, meta
