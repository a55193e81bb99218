"""Fine-tuning and linear evaluation with fold cross-validation, resumable.

- :mod:`~soundtransfer.train.config`: :class:`TrainConfig`, presets, :func:`get_preset`.
- :mod:`~soundtransfer.train.loop`: the one epoch skeleton (:class:`RunContext`, :func:`fit`).
- :mod:`~soundtransfer.train.modes`: the context of each mode (fine-tuning, linear evaluation).
- :mod:`~soundtransfer.train.run`: one split (identity, result files); ``crossval``: the folds.

Public names load on first use (:mod:`soundtransfer.lazy`): the settings
(:mod:`~soundtransfer.train.config`) import no torch, so the command line reads them at once.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.train.config import PRESETS, TrainConfig, get_preset
    from soundtransfer.train.crossval import CVResult, fold_mean_std, run_crossval
    from soundtransfer.train.loop import RunContext, evaluate, fit
    from soundtransfer.train.run import run_split
else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
