"""The feature store: 3-channel log-mel images computed once, memory-mapped, resumable.

- :mod:`~soundtransfer.features.store`: the store's format (:class:`FeatureStore`,
  :func:`open_features`) and the helpers of a build step;
- :mod:`~soundtransfer.features.sharded`: the build, alone or shared by torchrun ranks;
- :mod:`~soundtransfer.features.build`: a clip table -> its store (:func:`build_features`);
- :mod:`~soundtransfer.features.dataset`: a dataset name or path -> its store, in steps
  (:func:`dataset_store`);
- :mod:`~soundtransfer.features.options`: :class:`BuildOptions`, the one set of build
  defaults (no torch).

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the store imports torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.cache import default_cache_dir
    from soundtransfer.features.build import build_features
    from soundtransfer.features.dataset import dataset_store
    from soundtransfer.features.options import BuildOptions
    from soundtransfer.features.store import FeatureStore, open_features
else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
