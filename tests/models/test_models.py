"""Encoders, input normalisation and the classifier."""

from __future__ import annotations

import pytest
import torch

from soundtransfer.errors import WeightsError
from soundtransfer.models import Classifier, InputNorm, build_encoder


def test_resnet50_head_size_and_block4() -> None:
    enc = build_encoder("resnet50")
    assert enc.feature_dim == 2048
    model = Classifier(enc, 50, InputNorm([0.0] * 3, [1.0] * 3))
    assert sum(p.numel() for p in model.head.parameters()) == 2048 * 50 + 50 == 102_450
    x = torch.randn(2, 3, 128, 250)
    fmap = enc.forward_features(x)
    assert fmap.shape == (2, 2048, 4, 8)
    torch.testing.assert_close(enc(x), fmap.mean((2, 3)))  # the same forward, then the mean
    assert model(x).shape == (2, 50)
    assert not any(k.startswith("fc.") for k in enc.state_dict())


def test_input_norm_maps_training_stats_to_target() -> None:
    x = torch.randn(64, 3, 8, 8) * torch.tensor([2.0, 3.0, 4.0]).view(1, 3, 1, 1) - 5
    mean = x.mean((0, 2, 3)).tolist()
    std = x.std((0, 2, 3), unbiased=False).tolist()
    norm = InputNorm(mean, std, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    y = norm(x)
    # float32 means of 4,096 values of order 5 (vectorised sums, their order set by the CPU):
    # errors ~1e-6, inside the float32 default tolerance (1e-5 absolute).
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.tensor([0.485, 0.456, 0.406]))
    torch.testing.assert_close(
        y.std((0, 2, 3), unbiased=False), torch.tensor([0.229, 0.224, 0.225])
    )


def test_lite0_and_unknown_arch() -> None:
    enc = build_encoder("efficientnet_lite0")
    assert enc.feature_dim == 1280
    assert enc(torch.randn(1, 3, 128, 250)).shape == (1, 1280)
    with pytest.raises(WeightsError, match="unknown arch"):
        build_encoder("resnet51")


def test_tf_same_pool_shifts_the_grid() -> None:
    torch.manual_seed(0)
    a = build_encoder("resnet18")
    b = build_encoder("resnet18", tf_same_pool=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64)
    a.eval()
    b.eval()
    assert a.stem(x).shape == b.stem(x).shape
    assert not torch.allclose(a.stem(x), b.stem(x))
