"""Input normalisation, encoder f(.) and linear head g(.) as one classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from soundtransfer.models.backbones import Encoder
from soundtransfer.models.heads import linear_head


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
    """``g(f(norm(x)))``: logits of a 3-channel log-mel image batch."""

    def __init__(self, encoder: Encoder, num_classes: int, norm: InputNorm) -> None:
        super().__init__()
        self.norm = norm
        self.encoder = encoder
        # One nn.Linear (the paper's g); a fitted probe's head may replace it
        # (soundtransfer.models.heads: the one definition of every head kind).
        self.head: nn.Module = linear_head(encoder.feature_dim, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        z: Tensor = self.encoder(self.norm(x))  # (B, D)
        return z

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.embed(x))  # (B, classes)
        return logits
