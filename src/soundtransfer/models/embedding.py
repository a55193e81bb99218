"""What the frozen-feature embedding of a classifier is: the :class:`EmbeddingSpec` option
(``--set pool=... blocks=...``), checked here; the maths is :mod:`soundtransfer.models.pooling`.

``pool`` says how each feature map ``(B, C, h, w)`` (h: frequency, w: time) becomes a vector:

- ``mean``: the global average, ``(B, C)`` (the encoder's own ``forward``: the default);
- ``meanstd``: the average over frequency, then the mean and the standard deviation over
  time, concatenated: ``(B, 2C)``.

``blocks=K`` concatenates the pooled maps of the encoder's last K stages, the last first
(a ResNet's layer4, layer3 ...; an EfficientNet-Lite's head convolution, then the ends of its
last stages): the encoders whose ``Encoder.block_dims`` lists them (the ``resnet`` and
``lite`` families; torchvision and timm zoo encoders take only the default). The default,
``mean`` over the last block, is the encoder's ``forward`` unchanged, and leaves no trace in
a run's identity, its embeddings cache key or its bundle, so older ones are recognised.

To add a pooling: its width factor in :data:`POOLS` here, its function in
:data:`soundtransfer.models.pooling.POOL_FUNCTIONS`, and its test in
``tests/models/test_pooling.py``. This module imports no torch (the settings check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soundtransfer.errors import ConfigError, WeightsError

__all__ = ["MAX_BLOCKS", "POOLS", "EmbeddingSpec"]

#: Every pooling: its name (``--set pool=NAME``) -> its output width per map channel.
POOLS: dict[str, int] = {"mean": 1, "meanstd": 2}

#: The most blocks an embedding may concatenate (an EfficientNet-Lite has 8 to offer).
MAX_BLOCKS = 8


@dataclass(frozen=True)
class EmbeddingSpec:
    """The embedding option (see the module docstring).

    Attributes:
        pool: a pooling of :data:`POOLS`.
        blocks: how many of the encoder's last stages are pooled and concatenated (1..8).
    """

    pool: str = "mean"
    blocks: int = 1

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ConfigError(f"pool: {self.pool!r} is not one of {list(POOLS)}")
        ok = isinstance(self.blocks, int) and not isinstance(self.blocks, bool)
        if not ok or not 1 <= self.blocks <= MAX_BLOCKS:
            raise ConfigError(
                f"blocks must be an integer in [1, {MAX_BLOCKS}], got {self.blocks!r}"
            )

    @property
    def is_default(self) -> bool:
        """Whether this is the encoder's own pooling (``mean`` of the last block)."""
        return self == EmbeddingSpec()

    def record(self) -> dict[str, Any]:
        """JSON-ready, for a bundle and a cache key."""
        return {"pool": self.pool, "blocks": self.blocks}

    @classmethod
    def from_record(cls, value: Any) -> EmbeddingSpec:
        """The spec a bundle records (None: a bundle from before the option, ``mean``).

        Raises:
            WeightsError: not a record of this form (one line).
        """
        if value is None:
            return cls()
        if not isinstance(value, dict) or set(value) - {"pool", "blocks"}:
            raise WeightsError(
                f"embedding must be {{'pool': ..., 'blocks': ...}}, got {value!r:.60}"
            )
        try:
            return cls(**value)
        except (ConfigError, TypeError) as exc:
            raise WeightsError(f"embedding {value!r:.60}: {exc}") from None

    def width(self, feature_dim: int, block_dims: tuple[int, ...]) -> int:
        """The embedding's width for an encoder of ``feature_dim`` whose last stages have
        ``block_dims`` channels (last first); see :meth:`check`."""
        if self.is_default:
            return feature_dim
        return POOLS[self.pool] * sum(block_dims[: self.blocks])

    def check(self, arch: str, block_dims: tuple[int, ...]) -> None:
        """Raises :class:`WeightsError` (one line) when the encoder cannot give this embedding."""
        if self.is_default or self.blocks <= len(block_dims):
            return
        if not block_dims:
            raise WeightsError(
                f"{arch} takes only pool=mean blocks=1; pool={self.pool} blocks={self.blocks} "
                "needs a resnet or efficientnet_lite encoder"
            )
        raise WeightsError(f"{arch} has {len(block_dims)} blocks to pool, not {self.blocks}")
