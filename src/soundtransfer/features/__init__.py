"""The feature store: 3-channel log-mel images computed once, memory-mapped, resumable.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the store imports torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports

if TYPE_CHECKING:
    from soundtransfer.cache import default_cache_dir
    from soundtransfer.features.store import (
        FeatureStore,
        build_features,
        dataset_store,
        open_features,
    )

if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "soundtransfer.cache": ("default_cache_dir",),
            "soundtransfer.features.store": (
                "FeatureStore",
                "build_features",
                "dataset_store",
                "open_features",
            ),
        },
    )

__all__ = ["FeatureStore", "build_features", "dataset_store", "default_cache_dir", "open_features"]
