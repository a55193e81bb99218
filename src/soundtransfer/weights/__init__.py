"""Weight sources (random, supervised, SimCLR v1/v2, EfficientNet-Lite, files), cache, loader.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the sources import torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.weights.sources import (
        DEFAULT_ARCH,
        SOURCES,
        ResolvedWeights,
        WeightSource,
        cache_status,
        fetch_weights,
        fingerprint,
        get_source,
        list_sources,
        load_encoder,
        resolve,
    )

else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
