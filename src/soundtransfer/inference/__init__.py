"""Model bundles, prediction on audio files of any length, ONNX export.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the bundle imports torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports

if TYPE_CHECKING:
    from soundtransfer.inference.bundle import AudioClassifier, BundleMeta, load_bundle, save_bundle

__all__ = ["AudioClassifier", "BundleMeta", "load_bundle", "save_bundle"]

if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
    __getattr__, __dir__ = lazy_exports(__name__, {"soundtransfer.inference.bundle": __all__})
