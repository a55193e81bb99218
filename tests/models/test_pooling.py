"""The embedding options (issue 22 point 2): the poolings' exact maths on hand-made maps,
the per-stage maps of the ResNets and EfficientNet-Lites, the default unchanged, the checks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from soundtransfer.errors import ConfigError, WeightsError
from soundtransfer.models import Classifier, InputNorm, build_encoder
from soundtransfer.models.embedding import POOLS, EmbeddingSpec
from soundtransfer.models.pooling import POOL_FUNCTIONS, STD_FLOOR, embed, mean_pool, meanstd_pool
from soundtransfer.models.registry import check_embedding, encoder_spec


def hand_map() -> torch.Tensor:
    """(1, 2, 2, 3): channel 0 varies over time, channel 1 is constant."""
    c0 = [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]  # frequency average over time: 2, 3, 4
    c1 = [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]
    return torch.tensor([[c0, c1]])


def test_mean_pool_is_the_global_average() -> None:
    assert mean_pool(hand_map()).tolist() == [[3.0, 5.0]]


def test_meanstd_pool_exact() -> None:
    got = meanstd_pool(hand_map())
    # Columns 2, 3, 4: mean 3, population std sqrt(2/3); a constant channel: the floor.
    want = torch.tensor([[3.0, 5.0, math.sqrt(2.0 / 3.0), math.sqrt(STD_FLOOR)]])
    assert got.shape == (1, 4)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_meanstd_averages_frequency_before_time() -> None:
    """Time std of the frequency average, not of every pixel: two bands in opposite phase
    average to a constant, so their std is the floor."""
    fmap = torch.tensor([[[[0.0, 2.0], [2.0, 0.0]]]])  # (1, 1, 2, 2)
    assert meanstd_pool(fmap).tolist() == [[1.0, pytest.approx(math.sqrt(STD_FLOOR))]]


def test_every_pooling_has_its_function_and_width() -> None:
    assert set(POOLS) == set(POOL_FUNCTIONS)
    fmap = torch.randn(2, 5, 3, 4)
    for name, factor in POOLS.items():
        assert POOL_FUNCTIONS[name](fmap).shape == (2, 5 * factor)


def test_meanstd_gradient_is_finite_on_one_column() -> None:
    fmap = torch.randn(1, 3, 2, 1, requires_grad=True)  # one time column: variance 0
    meanstd_pool(fmap).sum().backward()
    assert fmap.grad is not None and bool(torch.isfinite(fmap.grad).all())


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0"])
def test_default_embedding_is_the_encoders_global_average_bit_for_bit(arch: str) -> None:
    torch.manual_seed(0)
    encoder = build_encoder(arch).eval()
    model = Classifier(encoder, 3, InputNorm([1.0] * 3, [2.0] * 3)).eval()
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        before = torch.flatten(F.adaptive_avg_pool2d(encoder.forward_features(model.norm(x)), 1), 1)
        assert torch.equal(model.embed(x), before)
    assert model.embed_dim == encoder.feature_dim == model.head.in_features


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0"])
def test_block_maps_are_the_last_stages_last_first(arch: str) -> None:
    torch.manual_seed(0)
    encoder = build_encoder(arch).eval()
    dims = encoder.block_dims
    assert dims == encoder_spec(arch).block_dims()  # the registry's cheap answer agrees
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        maps = encoder.forward_blocks(x, len(dims))
        assert torch.equal(maps[0], encoder.forward_features(x))
    assert tuple(m.shape[1] for m in maps) == dims
    # Each earlier stage is at least as fine in time as the one after it.
    assert all(a.shape[-1] <= b.shape[-1] for a, b in itertools.pairwise(maps))


def test_resnet_blocks_are_layer4_then_layer3() -> None:
    torch.manual_seed(0)
    enc = build_encoder("resnet18").eval()
    assert enc.block_dims == (512, 256, 128, 64)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        l3 = enc.layer3(enc.layer2(enc.layer1(enc.stem(x))))
        want = torch.cat([meanstd_pool(enc.layer4(l3)), meanstd_pool(l3)], dim=1)
        got = embed(enc, x, EmbeddingSpec("meanstd", 2))
    assert got.shape == (2, 2 * (512 + 256))
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("spec", "width"),
    [(EmbeddingSpec("meanstd"), 1024), (EmbeddingSpec("mean", 3), 896),
     (EmbeddingSpec("meanstd", 2), 1536)],
)  # fmt: skip
def test_classifier_head_takes_the_embedding_width(spec: EmbeddingSpec, width: int) -> None:
    model = Classifier(build_encoder("resnet18"), 4, InputNorm([0.0] * 3, [1.0] * 3), spec)
    assert model.embed_dim == width and model.head.in_features == width
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 64)).shape == (2, 4)


def test_spec_checks_are_one_line() -> None:
    with pytest.raises(ConfigError, match=r"pool: 'max' is not one of \['mean', 'meanstd'\]"):
        EmbeddingSpec("max")
    for bad in (0, 9, True):
        with pytest.raises(ConfigError, match="blocks must be an integer in"):
            EmbeddingSpec(blocks=bad)
    assert EmbeddingSpec.from_record(None) == EmbeddingSpec()
    record = {"pool": "meanstd", "blocks": 2}
    assert EmbeddingSpec.from_record(record) == EmbeddingSpec("meanstd", 2)
    for bad_record in ("meanstd", {"pool": "max"}, {"pool": "mean", "size": 3}, {"blocks": "2"}):
        with pytest.raises(WeightsError, match="embedding"):
            EmbeddingSpec.from_record(bad_record)


def test_encoders_without_stage_maps_are_refused_in_one_line() -> None:
    check_embedding("mobilenet_v3_small", EmbeddingSpec())  # the default: any encoder
    with pytest.raises(WeightsError, match=r"^mobilenet_v3_small takes only pool=mean blocks=1;"):
        check_embedding("mobilenet_v3_small", EmbeddingSpec("meanstd"))
    with pytest.raises(WeightsError, match=r"^resnet18 has 4 blocks to pool, not 5$"):
        check_embedding("resnet18", EmbeddingSpec(blocks=5))
    norm = InputNorm([0.0] * 3, [1.0] * 3)
    with pytest.raises(WeightsError, match="takes only pool=mean"):
        Classifier(build_encoder("mobilenet_v3_small"), 3, norm, EmbeddingSpec("meanstd"))


def test_meanstd_of_a_bf16_map_is_computed_in_float32() -> None:
    """Under CUDA autocast the maps are bf16: the statistics still come out in float32."""
    fmap = torch.randn(2, 4, 3, 8) * 3 + 100  # a large mean: bf16 would lose the spread
    half = fmap.bfloat16()
    got = meanstd_pool(half)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, meanstd_pool(half.float()), rtol=0, atol=0)
