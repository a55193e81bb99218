"""The feature store: 3-channel log-mel images computed once, memory-mapped, resumable."""

from soundtransfer.cache import default_cache_dir
from soundtransfer.features.store import (
    FeatureStore,
    build_features,
    dataset_store,
    open_features,
)

__all__ = ["FeatureStore", "build_features", "dataset_store", "default_cache_dir", "open_features"]
