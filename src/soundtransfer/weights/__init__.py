"""Weight sources (random, supervised, SimCLR v1/v2, EfficientNet-Lite, files), cache, loader."""

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
