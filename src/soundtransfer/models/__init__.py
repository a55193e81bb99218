"""Encoders f(.) by name, input normalisation and the linear head g(.).

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the encoders import torch and torchvision.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports

if TYPE_CHECKING:
    from soundtransfer.models.backbones import (
        LITES,
        RESNETS,
        Encoder,
        LiteEncoder,
        ResNetEncoder,
        build_encoder,
    )
    from soundtransfer.models.classifier import Classifier, InputNorm

if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "soundtransfer.models.backbones": (
                "LITES",
                "RESNETS",
                "Encoder",
                "LiteEncoder",
                "ResNetEncoder",
                "build_encoder",
            ),
            "soundtransfer.models.classifier": ("Classifier", "InputNorm"),
        },
    )

__all__ = [
    "LITES",
    "RESNETS",
    "Classifier",
    "Encoder",
    "InputNorm",
    "LiteEncoder",
    "ResNetEncoder",
    "build_encoder",
]
