"""Where cached files live: the one owner of cache paths.

Everything computed once and reused (feature stores, weight files, frozen-encoder embeddings)
goes under one cache root, ``$SOUNDTRANSFER_CACHE`` or ``~/.cache/soundtransfer``, or the
``cache_dir`` a caller passes (the CLI's ``--cache``, which means this root in every command)::

    <root>/features/<dataset>-<key>/   feature stores (features.store)
    <root>/weights/<name>.safetensors  fetched / converted weights + <name>.sha256 (weights)
    <root>/embeddings/<key>.npy        frozen-encoder embeddings of linear evaluation (train)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "default_cache_dir", "embeddings_dir", "features_dir", "weights_dir"]


def default_cache_dir() -> Path:
    """``$SOUNDTRANSFER_CACHE`` or ``~/.cache/soundtransfer``."""
    return Path(os.environ.get("SOUNDTRANSFER_CACHE", "~/.cache/soundtransfer")).expanduser()


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir`` if given, else :func:`default_cache_dir`."""
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def features_dir(cache_dir: Path | None = None) -> Path:
    """Folder of the feature stores."""
    return cache_root(cache_dir) / "features"


def weights_dir(cache_dir: Path | None = None) -> Path:
    """Folder of fetched and converted weight files."""
    return cache_root(cache_dir) / "weights"


def embeddings_dir(cache_dir: Path | None = None) -> Path:
    """Folder of cached frozen-encoder embeddings."""
    return cache_root(cache_dir) / "embeddings"
