"""Model bundles, prediction on audio files of any length, ONNX export.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, the bundle imports torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.inference.bundle import AudioClassifier, BundleMeta, load_bundle, save_bundle

else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
