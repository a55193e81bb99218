"""Weight-source kinds: each source's fetch, load and fingerprint through one interface; the
architectures' own ImageNet weights (torchvision's enums, timm); names checked before use."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from soundtransfer.errors import DownloadError, WeightsError
from soundtransfer.weights import (
    SOURCES,
    fetch_weights,
    fingerprint,
    list_sources,
    load_encoder,
    resolve,
)
from soundtransfer.weights.kinds import KINDS
from soundtransfer.weights.sources import cached_path

SRC = Path(__file__).resolve().parents[2] / "src" / "soundtransfer"
X = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_source_has_a_kind_and_no_code_branches_on_kind_names() -> None:
    assert {s.kind for s in SOURCES.values()} <= set(KINDS)
    chain = re.compile(r"\.kind\s*(==|!=|in\b)")
    for path in (SRC / "weights").glob("*.py"):
        assert not chain.search(path.read_text()), f"{path.name} branches on a kind's name"


def test_no_isinstance_on_concrete_encoders_outside_models() -> None:
    concrete = re.compile(r"isinstance\([^)]*(ResNetEncoder|LiteEncoder|TorchvisionEncoder|Timm)")
    for path in SRC.rglob("*.py"):
        if path.parent.name != "models":
            assert not concrete.search(path.read_text()), path


def test_imagenet_source_follows_torchvision_enum() -> None:
    res = resolve("imagenet", "mobilenet_v3_small")
    enum = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT
    assert res.source.url == enum.url and res.label == "mobilenet_v3_small.imagenet"
    assert res.source.sha256_prefix == "047dcff4"  # from the file name, as torch.hub checks
    assert res.source.input_mean == pytest.approx((0.0,) * 3)  # ImageNet-standardised input


def test_imagenet_fetch_from_a_file_url_is_checked_and_cached(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small().eval()
    mirror = tmp_path / "mirror" / "mobilenet_v3_small-047dcff4.pth"  # the official name
    mirror.parent.mkdir()
    torch.save(net.state_dict(), mirror)
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="does not start with 047dcff4"):
        fetch_weights("imagenet", cache, url=mirror.as_uri(), arch="mobilenet_v3_small",
                      progress=False)  # fmt: skip
    with pytest.raises((WeightsError, DownloadError), match="sha256"):
        fetch_weights("imagenet", cache, url=mirror.as_uri(), sha256="0" * 64,
                      arch="mobilenet_v3_small", progress=False)  # fmt: skip
    res = resolve("imagenet", "mobilenet_v3_small")
    assert fingerprint(res, cache) == "not cached"
    with pytest.raises(WeightsError, match="weights fetch imagenet --arch mobilenet_v3_small"):
        load_encoder(res, cache_dir=cache)
    path = fetch_weights("imagenet", cache, url=mirror.as_uri(), sha256=_sha256(mirror),
                         arch="mobilenet_v3_small", progress=False)  # fmt: skip
    assert path == cached_path("mobilenet_v3_small.imagenet", cache)
    assert fingerprint(res, cache) == "sha256:" + _sha256(path)
    enc, _src = load_encoder(res, cache_dir=cache)
    net.classifier[3] = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(X), net(X))  # same computation, same process
    status = {r["name"]: r["status"] for r in list_sources(cache)}
    assert "cached: mobilenet_v3_small" in status["imagenet"]


def test_timm_imagenet_weights_from_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timm = pytest.importorskip("timm", reason="timm is an optional extra (pip install timm)")
    torch.manual_seed(0)
    reference = timm.create_model("resnet18", pretrained=False, num_classes=0).eval()
    create = timm.create_model
    asked = []

    def offline_hub(name: str, pretrained: bool = False, **kw: object) -> torch.nn.Module:
        asked.append((name, pretrained))  # no internet here: the "download" is a local model
        return reference if pretrained else create(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", offline_hub)
    path = fetch_weights("imagenet", tmp_path, arch="timm:resnet18", progress=False)
    assert ("resnet18", True) in asked and path.name == "timm-resnet18.imagenet.safetensors"
    enc, _ = load_encoder("imagenet", "timm:resnet18", cache_dir=tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(X), reference(X))


@pytest.mark.parametrize("where", ["sidecar", "metadata"])
def test_a_weight_file_recording_a_path_as_arch_is_refused(where: str, tmp_path: Path) -> None:
    """Issue 23, defect 2: ``{"arch": "../../../../x"}`` became part of the run directory."""
    path = tmp_path / "w.safetensors"
    state = {k: v for k, v in torchvision.models.resnet18().state_dict().items()
             if not k.startswith("fc.")}  # fmt: skip
    meta = {"arch": "../../../../x"} if where == "metadata" else None
    save_file(state, str(path), metadata=meta)
    if where == "sidecar":
        path.with_suffix(".json").write_text(json.dumps({"arch": "../../../../x"}))
    with pytest.raises(WeightsError, match=r"w\.safetensors: recorded arch refused"):
        resolve(str(path))


def test_bad_sidecar_statistics_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"x": torch.zeros(1)}, path)
    for stats in ({"input_std": [1, 0, 1]}, {"input_mean": "abc"}, {"input_mean": [1, 2]}):
        path.with_suffix(".json").write_text(json.dumps({"arch": "resnet18", **stats}))
        with pytest.raises(WeightsError, match="input_"):
            resolve(str(path))
    path.with_suffix(".json").write_text(json.dumps(["resnet18"]))
    with pytest.raises(WeightsError, match="not a JSON object"):
        resolve(str(path))
