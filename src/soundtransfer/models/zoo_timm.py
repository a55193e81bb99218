"""timm models as encoders: ``timm:<name>`` (an optional extra: ``pip install timm``).

``timm:resnet18``, ``timm:convnext_tiny.fb_in22k``, ``timm:vit_small_patch16_224`` ...: the
model made by ``timm.create_model(name, num_classes=0)``, so ``forward`` gives timm's pooled
pre-logit features (``num_features``) and ``forward_features`` its last feature map when
that is a ``(B, C, h, w)`` map (convolutional models; a ViT's tokens are not). Models with a
fixed input size (a strict patch embedding) get their input resized to it. Weights load under
timm's own key names, its classifier (``pretrained_cfg["classifier"]``) dropped; the
statistics its pretrained weights expect come from its ``pretrained_cfg`` (mean, std).
"""

from __future__ import annotations

import re
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from soundtransfer.errors import WeightsError
from soundtransfer.models.backbones import Encoder

__all__ = ["PREFIX", "TimmEncoder", "model_name", "pretrained_stats", "timm_module"]

PREFIX = "timm:"
NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")  # model[.pretrained_tag]


def timm_module() -> Any:
    """The ``timm`` package, or a :class:`WeightsError` saying how to install it."""
    try:
        import timm
    except ImportError:
        raise WeightsError("timm models need the extra 'timm': pip install timm") from None
    return timm


def model_name(arch: str) -> str:
    """``timm:<name>`` -> ``<name>``, checked against timm's registry.

    Raises:
        WeightsError: not of the form ``timm:<model>[.<tag>]``, timm missing, or a model timm
            does not know.
    """
    name = arch.removeprefix(PREFIX)
    if not arch.startswith(PREFIX) or not NAME.match(name):
        raise WeightsError(f"{arch!r} is not a timm model name (timm:<model>[.<tag>])")
    timm = timm_module()
    if not timm.is_model(name.split(".")[0]):
        raise WeightsError(f"unknown timm model {name!r} (see timm.list_models())")
    return name


def pretrained_stats(
    arch: str, pixel_mean: tuple[float, ...], pixel_std: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet's pixel statistics in the input space of the model's pretrained weights
    (after timm's ``pretrained_cfg`` mean/std), as (mean, std) per channel."""
    cfg = timm_module().models.get_pretrained_cfg(model_name(arch))
    mean = tuple(getattr(cfg, "mean", None) or pixel_mean)
    std = tuple(getattr(cfg, "std", None) or pixel_std)
    return (
        tuple((p - m) / s for p, m, s in zip(pixel_mean, mean, std, strict=True)),
        tuple(p / s for p, s in zip(pixel_std, std, strict=True)),
    )


class TimmEncoder(Encoder):
    """A timm model without its classifier (see the module docstring).

    Args:
        arch: ``timm:<model>[.<tag>]``.
    """

    state_prefix = "net."

    def __init__(self, arch: str) -> None:
        super().__init__()
        name = model_name(arch)
        self.arch = arch
        self.net = timm_module().create_model(name, pretrained=False, num_classes=0)
        self.feature_dim = int(self.net.num_features)
        classifier = self.net.pretrained_cfg.get("classifier") or ()
        heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        self.head_keys = tuple(f"{h}." for h in heads)
        embed = getattr(self.net, "patch_embed", None)
        strict = embed is not None and getattr(embed, "strict_img_size", False)
        self.input_size = tuple(embed.img_size) if embed is not None and strict else None
        # Convolutional families give (B, C, h, w); token models (B, N, C) have no map.
        self.has_feature_map = embed is None

    def _inputs(self, x: Tensor) -> Tensor:
        if self.input_size is None or tuple(x.shape[-2:]) == self.input_size:
            return x
        return F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(self._inputs(x))  # (B, D)
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        out: Tensor = self.net.forward_features(self._inputs(x))  # (B, C, h, w) or tokens
        if out.dim() != 4:
            return super().forward_features(x)  # raises: no map
        return out
