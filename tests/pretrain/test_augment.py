"""SimCLR view augmentation: both paths, knobs, per-sample randomness, real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images

from soundtransfer.pretrain.augment import SimCLRTransform, blur_kernel_size

OFF = {"hf_prob": 0.0, "cj_prob": 0.0, "random_gray_scale": 0.0, "gaussian_blur": 0.0}


@pytest.fixture(scope="module")
def china() -> Image.Image:
    return Image.fromarray(load_sample_images().images[0])  # 427 x 640 RGB photo


def test_blur_kernel_is_ten_percent_and_odd() -> None:
    assert blur_kernel_size(224) == 23  # TF SimCLR: radius 224 // 10 // 2 = 11
    assert blur_kernel_size(64) == 7
    assert SimCLRTransform(input_size=96).kernel_size == 9


def test_paper_defaults() -> None:
    t = SimCLRTransform()
    assert t.input_size == 224 and (t.min_scale, t.max_scale) == (0.08, 1.0)
    assert t.jitter == pytest.approx((0.8, 0.8, 0.8, 0.2))
    assert SimCLRTransform(cj_strength=0.5).jitter == pytest.approx((0.4, 0.4, 0.4, 0.1))
    assert (t.cj_prob, t.random_gray_scale, t.gaussian_blur, t.hf_prob) == (0.8, 0.2, 0.5, 0.5)
    assert (t.sigma_min, t.sigma_max) == (0.1, 2.0)


@pytest.mark.parametrize(
    "bad", [{"min_scale": 0.0}, {"hf_prob": 1.5}, {"sigma_min": 3.0}, {"input_size": 4}]
)
def test_rejects_bad_knobs(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimCLRTransform(**bad)  # type: ignore[arg-type]


def test_two_views_of_a_real_photo(china: Image.Image) -> None:
    torch.manual_seed(0)
    v0, v1 = SimCLRTransform(input_size=64)(china)
    for v in (v0, v1):
        assert v.shape == (3, 64, 64) and v.dtype == torch.float32
        assert type(v) is torch.Tensor
        assert v.min().item() >= 0.0 and v.max().item() <= 1.0
    assert not torch.allclose(v0, v1)
    torch.manual_seed(0)
    again = SimCLRTransform(input_size=64)(china)
    assert torch.equal(again[0], v0) and torch.equal(again[1], v1)  # bitwise: the same draws


def test_all_off_full_crop_is_a_resize(china: Image.Image) -> None:
    square = china.crop((0, 0, 427, 427))
    t = SimCLRTransform(input_size=32, min_scale=1.0, min_ratio=1.0, max_ratio=1.0, **OFF)
    v0, _ = t(square)
    expected = np.asarray(square.resize((32, 32), Image.Resampling.BILINEAR), np.float32) / 255
    # torchvision's resize vs PIL's (other filters at the edges): 2 % of the range on average.
    assert np.abs(v0.permute(1, 2, 0).numpy() - expected).mean() < 0.02


def test_grayscale_makes_equal_channels_on_both_paths(china: Image.Image) -> None:
    t = SimCLRTransform(input_size=32, **{**OFF, "random_gray_scale": 1.0})
    v0, _ = t(china)
    # Gray: one weighted sum copied to the 3 channels; the batch path computes it per channel
    # in float32 (values in [0, 1]): 1e-5.
    assert torch.allclose(v0[0], v0[1]) and torch.allclose(v0[1], v0[2])
    crops = torch.stack(t.crop_pair(china))  # (2, 3, 32, 32) uint8
    out = t.batch_module()(crops)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5)


def test_flip_on_both_paths(china: Image.Image) -> None:
    t = SimCLRTransform(input_size=32, min_scale=1.0, **{**OFF, "hf_prob": 1.0})
    crops = torch.stack(t.crop_pair(china))
    out = t.batch_module()(crops)
    # uint8 / 255 then flipped (copies): float32 rounding of the division only.
    assert torch.allclose(out, crops.float().div(255).flip(-1), atol=1e-6)
    torch.manual_seed(1)
    flipped, _ = t(china)
    torch.manual_seed(1)
    plain, _ = SimCLRTransform(input_size=32, min_scale=1.0, **OFF)(china)
    assert torch.allclose(flipped, plain.flip(-1))  # the same crop, resized, then mirrored


def test_batch_path_draws_parameters_per_sample(china: Image.Image) -> None:
    t = SimCLRTransform(input_size=32, **{**OFF, "cj_prob": 1.0, "gaussian_blur": 1.0})
    crop, _ = t.crop_pair(china)
    batch = crop.expand(16, -1, -1, -1)  # the same crop 16 times
    torch.manual_seed(2)
    out = t.batch_module()(batch)
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.float32
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    means = out.mean(dim=(1, 2, 3))
    assert len(torch.unique(means)) == 16  # every sample got its own jitter
    assert means.std() > 0.01


def test_batch_path_statistics_follow_the_probabilities() -> None:
    t = SimCLRTransform(input_size=16, **{**OFF, "random_gray_scale": 0.2})
    torch.manual_seed(3)
    crops = torch.rand(2000, 3, 16, 16)
    out = t.batch_module()(crops)
    gray = (out[:, 0] - out[:, 1]).abs().amax(dim=(1, 2)) < 1e-6
    assert 0.15 < gray.float().mean().item() < 0.25
