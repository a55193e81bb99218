"""Any torchvision classification model as an encoder, by its torchvision name.

``convnext_tiny``, ``efficientnet_b0``, ``regnet_y_800mf``, ``mobilenet_v3_small``,
``vit_b_16`` ... (``torchvision.models.list_models(module=torchvision.models)``): the model
without the layer that produces its 1000 ImageNet logits (replaced by the identity), so
``forward`` gives the penultimate representation, the usual frozen-feature input (for
MobileNetV3 and VGG that includes their hidden classifier layers; for ConvNeXt its final
LayerNorm). ``forward_features`` is the last convolutional map where the family has one
(:data:`FEATURE_MAPS`); ViT and MaxViT take a fixed image size, so their input is resized to
it (bilinear). Weights load under torchvision's own key names (the logit layer and the
auxiliary classifiers of GoogLeNet and Inception dropped); the ImageNet weights are those
of torchvision's ``DEFAULT`` weight enum (:func:`imagenet_weights`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from soundtransfer.errors import WeightsError
from soundtransfer.models.backbones import Encoder

__all__ = ["FEATURE_MAPS", "TorchvisionEncoder", "TorchvisionWeights", "imagenet_weights", "names"]

IMAGENET_CLASSES = 1000
# Auxiliary classifiers (used in training only) of GoogLeNet and Inception v3.
AUX_KEYS = ("aux1.", "aux2.", "AuxLogits.")
# GoogLeNet and Inception v3: no auxiliary heads; ``transform_input`` maps the
# ImageNet-standardised input into the space their ImageNet weights were trained in
# ((x - 0.5) / 0.5), which torchvision also switches on when it loads those weights.
BUILD_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": True},
    "inception_v3": {"aux_logits": False, "transform_input": True, "init_weights": True},
}
# Families whose architecture fixes the input size (position embeddings, window partitions).
FIXED_SIZE: dict[str, Callable[[Any], int]] = {
    "VisionTransformer": lambda net: int(net.image_size),
    "MaxVit": lambda net: 224,
}


def _resnet_map(net: Any, x: Tensor) -> Tensor:
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    out: Tensor = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return out


def _shufflenet_map(net: Any, x: Tensor) -> Tensor:
    x = net.stage4(net.stage3(net.stage2(net.maxpool(net.conv1(x)))))
    out: Tensor = net.conv5(x)
    return out


#: How each family's last convolutional map ``(B, C, h, w)`` is computed (by class name).
FEATURE_MAPS: dict[str, Callable[[Any, Tensor], Tensor]] = {
    **{
        name: lambda net, x: net.features(x)
        for name in ("AlexNet", "VGG", "EfficientNet", "MobileNetV2", "MobileNetV3", "ConvNeXt")
    },
    "SqueezeNet": lambda net, x: net.features(x),
    "DenseNet": lambda net, x: F.relu(net.features(x)),
    "MNASNet": lambda net, x: net.layers(x),
    "RegNet": lambda net, x: net.trunk_output(net.stem(x)),
    "ResNet": _resnet_map,
    "ShuffleNetV2": _shufflenet_map,
    "SwinTransformer": lambda net, x: net.norm(net.features(x)).permute(0, 3, 1, 2),
}


def names() -> list[str]:
    """Every torchvision classification model name."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _logit_layer(net: nn.Module, arch: str) -> tuple[str, int]:
    """The name and input width of the last layer producing the 1000 ImageNet logits (a
    ``Linear``, or SqueezeNet's 1x1 ``Conv2d``)."""
    found = None
    for name, m in net.named_modules():
        if isinstance(m, nn.Linear) and m.out_features == IMAGENET_CLASSES:
            found = (name, m.in_features)
        elif isinstance(m, nn.Conv2d) and m.out_channels == IMAGENET_CLASSES:
            found = (name, m.in_channels)
    if found is None:
        raise WeightsError(f"{arch}: no layer with {IMAGENET_CLASSES} outputs to remove")
    return found


def _replace(net: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, child, module)


class TorchvisionEncoder(Encoder):
    """A torchvision classification model without its logit layer (see the module docstring).

    Args:
        arch: a torchvision classification model name.
    """

    state_prefix = "net."

    def __init__(self, arch: str) -> None:
        super().__init__()
        with warnings.catch_warnings():  # torchvision's notes on default initialisations
            warnings.simplefilter("ignore")
            net = torchvision.models.get_model(arch, weights=None, **BUILD_KWARGS.get(arch, {}))
        head, width = _logit_layer(net, arch)
        _replace(net, head, nn.Identity())
        self.arch = arch
        self.net = net
        self.feature_dim = int(width)
        self.head_keys = (f"{head}.", *AUX_KEYS)
        family = type(net).__name__
        self._map = FEATURE_MAPS.get(family)
        self.has_feature_map = self._map is not None
        size = FIXED_SIZE.get(family)
        self.input_size = size(net) if size is not None else None

    def _inputs(self, x: Tensor) -> Tensor:
        if self.input_size is None or tuple(x.shape[-2:]) == (self.input_size,) * 2:
            return x
        size = (self.input_size, self.input_size)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(self._inputs(x))  # (B, D)
        return torch.flatten(out, 1)

    def forward_features(self, x: Tensor) -> Tensor:
        if self._map is None:
            return super().forward_features(x)
        return self._map(self.net, self._inputs(x))  # (B, C, h, w)


@dataclass(frozen=True)
class TorchvisionWeights:
    """A model's ImageNet weights as torchvision's ``DEFAULT`` weight enum gives them.

    Attributes:
        url: the download address.
        sha256_prefix: the leading hex digits of the file's sha256, from its name (as
            ``torch.hub`` checks them).
        input_mean, input_std: the statistics of natural images in the network's input space
            (ImageNet's pixel statistics after the enum's normalisation; 0 / 1 for the usual
            ImageNet mean/std).
        description: the enum's name and ImageNet top-1 accuracy.
    """

    url: str
    sha256_prefix: str | None
    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    description: str


def imagenet_weights(
    arch: str, pixel_mean: tuple[float, ...], pixel_std: tuple[float, ...]
) -> TorchvisionWeights:
    """The ``DEFAULT`` ImageNet weights of a torchvision model.

    Args:
        arch: a torchvision classification model name.
        pixel_mean, pixel_std: ImageNet's per-channel pixel statistics in [0, 1].
    """
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    found = re.search(r"-([a-f0-9]+)\.", weights.url.rsplit("/", 1)[-1])  # torch.hub's rule
    transform = weights.transforms()
    mean = tuple(getattr(transform, "mean", pixel_mean))
    std = tuple(getattr(transform, "std", pixel_std))
    top1 = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    return TorchvisionWeights(
        weights.url,
        found.group(1) if found else None,
        tuple((p - m) / s for p, m, s in zip(pixel_mean, mean, std, strict=True)),
        tuple(p / s for p, s in zip(pixel_std, std, strict=True)),
        f"torchvision {arch} {weights.name}" + (f" ({top1}% top-1)" if top1 else ""),
    )
