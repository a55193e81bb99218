"""Fine-tuning and linear evaluation with fold cross-validation, resumable.

- :mod:`~soundtransfer.train.config`: :class:`TrainConfig`, presets, :func:`get_preset`.
- :mod:`~soundtransfer.train.loop`: the one epoch skeleton (:class:`RunContext`, :func:`fit`).
- :mod:`~soundtransfer.train.modes`: the context of each mode (fine-tuning, linear evaluation).
- :mod:`~soundtransfer.train.run`: one split (identity, result files); ``crossval``: the folds.
"""

from soundtransfer.train.config import PRESETS, TrainConfig, get_preset
from soundtransfer.train.crossval import CVResult, fold_mean_std, run_crossval
from soundtransfer.train.loop import RunContext, evaluate, fit
from soundtransfer.train.run import run_split

__all__ = [
    "PRESETS",
    "CVResult",
    "RunContext",
    "TrainConfig",
    "evaluate",
    "fit",
    "fold_mean_std",
    "get_preset",
    "run_crossval",
    "run_split",
]
