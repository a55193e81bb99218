"""The encoder registry: any torchvision classifier and timm models by name, one interface."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from soundtransfer.errors import WeightsError
from soundtransfer.models import build_encoder, check_arch, encoder_spec, list_encoders
from soundtransfer.weights import load_encoder

X = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("arch", "dim", "has_map"),
    [
        ("mobilenet_v3_small", 1024, True),  # the hidden classifier layer is kept: 1024-d
        ("efficientnet_b0", 1280, True),
        ("regnet_y_400mf", 440, True),
        ("squeezenet1_1", 512, True),  # its logits come from a 1x1 convolution
        ("resnext50_32x4d", 2048, True),
        ("swin_t", 768, True),
    ],
)
def test_torchvision_models_by_name(arch: str, dim: int, has_map: bool) -> None:
    enc = build_encoder(arch).eval()
    spec = encoder_spec(arch)
    assert spec.family == "torchvision" and enc.arch == arch
    assert enc.feature_dim == dim == spec.feature_dim()
    with torch.no_grad():
        assert enc(X).shape == (2, dim)
        if has_map:
            fmap = enc.forward_features(X)
            assert fmap.dim() == 4 and fmap.shape[0] == 2
    # The weights expect torchvision's ImageNet-standardised input: statistics 0 / 1.
    assert spec.input_mean == pytest.approx((0.0,) * 3) and spec.input_std == pytest.approx(
        (1,) * 3
    )


def test_fixed_size_models_resize_and_have_no_map() -> None:
    enc = build_encoder("vit_b_16").eval()
    with torch.no_grad():
        assert enc(X).shape == (2, 768)  # 64 x 96 resized to the 224 x 224 ViT-B/16 takes
    assert not enc.has_feature_map
    with pytest.raises(WeightsError, match="no convolutional feature map"):
        enc.forward_features(X)


def test_published_weights_load_and_give_the_penultimate_features() -> None:
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small().eval()
    enc = build_encoder("mobilenet_v3_small").eval()
    enc.load_weights(net.state_dict(), "test")  # torchvision's keys, logit layer included
    net.classifier[3] = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(enc(X), net(X))  # the same computation, same process
    assert set(enc.portable_state()) == set(net.state_dict())
    with pytest.raises(WeightsError, match="do not fit mobilenet_v3_small"):
        enc.load_weights({**net.state_dict(), "features.0.0.weight": torch.zeros(1)}, "bad.pt")
    with pytest.raises(WeightsError, match="keys do not match"):
        enc.load_weights({"x": torch.zeros(1)}, "bad.pt")


def test_googlenet_drops_its_auxiliary_heads() -> None:
    net = torchvision.models.googlenet(aux_logits=True, init_weights=True)
    enc = build_encoder("googlenet")
    enc.load_weights(net.state_dict(), "test")  # aux1.*, aux2.* and fc.* are not the encoder
    assert enc.feature_dim == 1024


@pytest.mark.parametrize("arch", ["../../../../x", "resnet51", "timm:../x", "", "conv next"])
def test_unknown_or_path_like_names_are_refused(arch: str) -> None:
    with pytest.raises(WeightsError, match=r"unknown arch|not a timm model|unknown timm"):
        check_arch(arch)


def test_listing_names_every_family() -> None:
    names = list_encoders()
    assert set(names) == {"resnet", "lite", "torchvision", "timm"}
    assert "resnet50" in names["resnet"] and "convnext_tiny" in names["torchvision"]
    assert "resnet50" not in names["torchvision"]  # each name in one family
    assert encoder_spec("resnet50").imagenet is not None
    assert encoder_spec("efficientnet_lite0").imagenet is None  # its weights: the lite0 source


@pytest.fixture
def timm() -> object:
    return pytest.importorskip("timm", reason="timm is an optional extra (pip install timm)")


def test_timm_model_from_a_local_file(timm: object, tmp_path: Path) -> None:
    import timm as timm_module
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = timm_module.create_model("resnet18", pretrained=False).eval()
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps({"arch": "timm:resnet18"}))
    enc, src = load_encoder(str(path))
    enc.eval()
    assert src.arch == "timm:resnet18" and enc.feature_dim == 512 == net.num_features
    net.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(enc(X), net(X))  # the same computation, same process
        assert enc.forward_features(X).shape[:2] == (2, 512)
    # timm's resnet18 weights take ImageNet-standardised input: statistics 0 / 1.
    assert src.input_mean == pytest.approx((0.0,) * 3)


def test_timm_names_are_checked(timm: object) -> None:
    assert check_arch("timm:resnet18") == "timm:resnet18"
    with pytest.raises(WeightsError, match="unknown timm model"):
        check_arch("timm:no_such_net")
