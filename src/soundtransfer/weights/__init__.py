"""Weight sources (random, supervised, SimCLR v1/v2, EfficientNet-Lite, files), cache, loader.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the sources import torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports

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

__all__ = [
    "DEFAULT_ARCH",
    "SOURCES",
    "ResolvedWeights",
    "WeightSource",
    "cache_status",
    "fetch_weights",
    "fingerprint",
    "get_source",
    "list_sources",
    "load_encoder",
    "resolve",
]

if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
    __getattr__, __dir__ = lazy_exports(__name__, {"soundtransfer.weights.sources": __all__})
