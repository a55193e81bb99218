"""Encoders f(.) by name (:mod:`~soundtransfer.models.registry`), input normalisation, heads
(:mod:`~soundtransfer.models.heads`), the embedding the head takes
(:mod:`~soundtransfer.models.embedding`, :mod:`~soundtransfer.models.pooling`) and the
classifier.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the encoders import torch and torchvision.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.models.backbones import LITES, RESNETS, Encoder
    from soundtransfer.models.classifier import Classifier, InputNorm
    from soundtransfer.models.embedding import EmbeddingSpec
    from soundtransfer.models.heads import build_head
    from soundtransfer.models.registry import (
        EncoderSpec,
        build_encoder,
        check_arch,
        encoder_spec,
        list_encoders,
    )

else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
