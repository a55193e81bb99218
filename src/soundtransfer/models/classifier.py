"""Input normalisation, encoder f(.) and linear head g(.) as one classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from soundtransfer.models.backbones import Encoder
from soundtransfer.models.embedding import EmbeddingSpec
from soundtransfer.models.heads import linear_head
from soundtransfer.models.pooling import embed


class InputNorm(nn.Module):
    """Standardise each channel with training-fold statistics, then map to the weights' space.

    ``y = (x - train_mean) / train_std * target_std + target_mean``, per channel. The target
    statistics are those of the natural images the weights were trained on, in the network's
    input space (torchvision ImageNet: mean 0, std 1 after its normalisation; SimCLR TF:
    ImageNet pixel statistics in [0, 1]), so a log-mel image reaches the encoder with the same
    first and second moments as the pictures it learnt from.
    """

    scale: Tensor
    shift: Tensor

    def __init__(
        self,
        train_mean: Sequence[float],
        train_std: Sequence[float],
        target_mean: Sequence[float] = (0.0, 0.0, 0.0),
        target_std: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> None:
        super().__init__()
        tm = torch.tensor(train_mean, dtype=torch.float32).view(1, -1, 1, 1)
        ts = torch.tensor(train_std, dtype=torch.float32).view(1, -1, 1, 1)
        gm = torch.tensor(target_mean, dtype=torch.float32).view(1, -1, 1, 1)
        gs = torch.tensor(target_std, dtype=torch.float32).view(1, -1, 1, 1)
        if (ts <= 0).any():
            raise ValueError("training std must be positive")
        # Folded into one affine map: y = x * scale + shift.
        self.register_buffer("scale", gs / ts)
        self.register_buffer("shift", gm - tm * gs / ts)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift  # (B, C, H, W)


class Classifier(nn.Module):
    """``g(f(norm(x)))``: logits of a 3-channel log-mel image batch.

    ``embedding`` says how f's maps become the head's input (:mod:`soundtransfer.models.embedding`;
    default the encoder's own pooled features); ``embed_dim`` is that width, the head's input.

    Raises:
        WeightsError: an embedding the encoder cannot give (one line).
    """

    def __init__(
        self,
        encoder: Encoder,
        num_classes: int,
        norm: InputNorm,
        embedding: EmbeddingSpec | None = None,
    ) -> None:
        super().__init__()
        self.norm = norm
        self.encoder = encoder
        self.embedding = embedding or EmbeddingSpec()
        blocks: tuple[int, ...] = ()
        if not self.embedding.is_default:  # the default asks nothing of the encoder
            blocks = encoder.block_dims
            self.embedding.check(encoder.arch, blocks)
        self.embed_dim = self.embedding.width(encoder.feature_dim, blocks)
        # One nn.Linear (the paper's g); a fitted probe's head may replace it
        # (soundtransfer.models.heads: the one definition of every head kind).
        self.head: nn.Module = linear_head(self.embed_dim, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return embed(self.encoder, self.norm(x), self.embedding)  # (B, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.embed(x))  # (B, classes)
        return logits
