"""How a feature store is computed (:class:`BuildOptions`): the one place its defaults live.

The command line (``features --batch-size``, ``--workers``, ``--device``), :func:`~soundtransfer.
features.dataset_store`, :func:`~soundtransfer.features.build_features` and the build itself
(:mod:`soundtransfer.features.sharded`) all take these options; none of them repeats a default.
This module imports no torch, so the command line reads the defaults for its help.
"""

from __future__ import annotations

from dataclasses import dataclass

from soundtransfer.errors import ConfigError

__all__ = ["BuildOptions"]


@dataclass(frozen=True)
class BuildOptions:
    """How to compute the rows of a store (none of them changes its contents or key).

    Attributes:
        batch_size: clips per batch, the unit of progress and of device work (memory is
            bounded by two batches per process).
        device: where the front end runs (``cpu``, ``cuda``, ``cuda:1``).
        workers: threads; on CPU each decodes and computes whole clips, on a GPU they decode
            the next batch while the device computes this one (0: everything inline).
        skip_bad: leave undecodable clips out and list them in ``bad.json``; otherwise the
            first bad clip raises :class:`~soundtransfer.errors.AudioError` naming the file.
        progress: show a progress bar (on rank 0).
    """

    batch_size: int = 32
    device: str = "cpu"
    workers: int = 2
    skip_bad: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
