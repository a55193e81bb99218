"""Audio front end: decoding, resampling, crop/pad, and the 3-channel log-mel module.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, ``LogMel3`` imports torch, ``read_audio`` soundfile.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.audio.frontend import LogMel3, mel_filterbank
    from soundtransfer.audio.io import load_clip, read_audio
    from soundtransfer.audio.presets import PRESETS, FrontEnd, get_preset
else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
