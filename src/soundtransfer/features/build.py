"""A clip table -> its feature store (:func:`build_features`): computed, resumed or opened.

The store's format and the helpers of one build step are :mod:`soundtransfer.features.store`;
the build, for one process or the ranks of a torchrun job, is
:mod:`soundtransfer.features.sharded`. This module joins the two (so neither imports the
other's caller: no import cycle).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from soundtransfer.audio.presets import FrontEnd, get_preset
from soundtransfer.datasets.clips import ClipTable
from soundtransfer.errors import DatasetError
from soundtransfer.features.options import BuildOptions
from soundtransfer.features.sharded import Ranks, build_store
from soundtransfer.features.store import FeatureStore, store_dir

__all__ = ["BuildOptions", "build_features"]


def build_features(
    table: ClipTable,
    frontend: FrontEnd | None = None,
    cache_dir: Path | None = None,
    options: BuildOptions | None = None,
    *,
    distributed: bool = False,
    **changes: Any,
) -> FeatureStore:
    """Compute, resume or just open the feature store of ``table``.

    Args:
        table: the clips.
        frontend: front-end settings (default: the preset named like the dataset).
        cache_dir: cache root (see :mod:`soundtransfer.cache`); the store goes in
            ``<cache_dir>/features/<dataset>-<key>/``.
        options: how to compute the rows (:class:`BuildOptions`, its defaults if None).
        distributed: share the rows with the other ranks of the initialised process group
            (``torchrun``; every rank calls this with the same arguments, each computing on
            its own ``device``); see :mod:`soundtransfer.features.sharded`. Without it, or
            without a group, processes sharing the cache wait for one builder.
        **changes: fields of ``options`` to replace (``progress=False``, ``batch_size=8``).

    Returns:
        The finished :class:`FeatureStore`; ``computed`` counts the rows this call (all its
        ranks) computed, ``resumed`` the rows of an unfinished earlier build it kept
        (callers should say so).

    Raises:
        AudioError: a clip cannot be decoded (without ``skip_bad``), or a log-mel value is
            not finite in float16.
        DatasetError: no clips, or every clip is bad.
        ConfigError: an option out of range.
    """
    opts = replace(options or BuildOptions(), **changes)
    fe = frontend if frontend is not None else get_preset(table.name)
    if len(table) == 0:
        raise DatasetError(f"{table.name}: no clips to compute features for")
    root = store_dir(table, fe, cache_dir)
    return build_store(root, table, fe, opts, Ranks.of_group() if distributed else Ranks())
