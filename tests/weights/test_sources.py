"""Weight sources: registry, cache with checksums, file:// fetch, local files, lite0."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
import torchvision

from soundtransfer.errors import DownloadError, WeightsError
from soundtransfer.weights import SOURCES, fetch_weights, list_sources, load_encoder, resolve
from soundtransfer.weights.sources import IMAGENET_MEAN, cached_path, store_cached


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_registry_input_statistics() -> None:
    assert SOURCES["supervised"].input_mean == (0.0, 0.0, 0.0)
    assert SOURCES["simclr-v1"].input_mean == IMAGENET_MEAN  # [0, 1] RGB, no mean/std
    assert SOURCES["simclr-v1"].tf_same_pool and not SOURCES["supervised"].tf_same_pool
    assert {r["name"] for r in list_sources(Path("/nonexistent"))} == set(SOURCES)


def test_fetch_torchvision_file_url_and_cache(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    pth = tmp_path / "resnet50-test.pth"
    torch.save(net.state_dict(), pth)
    cache = tmp_path / "cache"
    # A mirror serving another file than the official one needs its digest said explicitly.
    path = fetch_weights("supervised", cache, url=pth.as_uri(), sha256=_sha256(pth), progress=False)
    assert path == cached_path("supervised", cache) and path.suffix == ".safetensors"
    enc, src = load_encoder("supervised", cache_dir=cache)
    torch.testing.assert_close(  # a copy through safetensors: exact
        enc.state_dict()["layer4.2.conv3.weight"], net.state_dict()["layer4.2.conv3.weight"]
    )
    assert src.name == "supervised"
    # A cached file that changed on disk is refused.
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_encoder("supervised", cache_dir=cache)


def test_official_checksum_prefix_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pth = tmp_path / "resnet50-0676ba61.pth"
    torch.save({"x": torch.zeros(1)}, pth)
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    assert not digest.startswith("0676ba61")
    # The official record, with its address served locally.
    local = dataclasses.replace(SOURCES["supervised"], url=pth.as_uri())
    monkeypatch.setitem(SOURCES, "supervised", local)
    with pytest.raises((WeightsError, DownloadError), match="0676ba61"):
        fetch_weights("supervised", tmp_path / "cache", progress=False)


def test_mirror_gets_the_official_checks(tmp_path: Path) -> None:
    """Issue 11.3: ``weights fetch --url`` verified nothing: a random ResNet-50 was cached as
    ``supervised``."""
    torch.manual_seed(0)
    pth = tmp_path / "mirror" / "resnet50-0676ba61.pth"  # the official name, other content
    pth.parent.mkdir()
    torch.save(torchvision.models.resnet50().state_dict(), pth)
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="does not start with 0676ba61"):
        fetch_weights("supervised", cache, url=pth.as_uri(), progress=False)
    assert not cached_path("supervised", cache).exists()
    with pytest.raises((WeightsError, DownloadError), match="sha256"):
        fetch_weights("supervised", cache, url=pth.as_uri(), sha256="0" * 64, progress=False)
    assert not cached_path("supervised", cache).exists()


def test_mirror_of_another_architecture_is_refused(tmp_path: Path) -> None:
    pth = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), pth)
    with pytest.raises(WeightsError, match="resnet50"):
        fetch_weights("supervised", tmp_path / "c", url=pth.as_uri(), sha256=_sha256(pth),
                      progress=False)  # fmt: skip
    assert not cached_path("supervised", tmp_path / "c").exists()


def test_cached_file_without_digest_is_refused_and_listed(tmp_path: Path) -> None:
    """Issue 11.4: a cached file whose .sha256 is missing loaded unchecked."""
    state = {k: v for k, v in torchvision.models.resnet50().state_dict().items()
             if not k.startswith("fc.")}  # fmt: skip
    path = store_cached("supervised", state, tmp_path)
    assert path.with_suffix(".sha256").read_text().strip() == _sha256(path)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp
    status = {r["name"]: r["status"] for r in list_sources(tmp_path)}
    assert status["supervised"].startswith("cached")
    path.with_suffix(".sha256").unlink()
    with pytest.raises(WeightsError, match="no recorded sha256"):
        load_encoder("supervised", cache_dir=tmp_path)
    status = {r["name"]: r["status"] for r in list_sources(tmp_path)}
    assert status["supervised"].startswith("unverified")
    path.with_suffix(".sha256").write_text("0" * 64 + "\n")
    status = {r["name"]: r["status"] for r in list_sources(tmp_path)}
    assert status["supervised"].startswith("corrupt")


def test_digest_is_written_before_the_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the two files leaves no weights file without its digest."""
    import soundtransfer.runs.files as files

    def crash(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store_cached("supervised", {"x": torch.zeros(2)}, tmp_path)
    assert not cached_path("supervised", tmp_path).exists()


def test_not_a_state_dict_is_one_line(tmp_path: Path) -> None:
    """Issue 11.11: a .pt that is not a state dict gave a raw UnpicklingError traceback."""
    import pickle

    junk = tmp_path / "junk.pt"
    junk.write_bytes(pickle.dumps({"a": object()}))
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    for bad in (junk, text):
        with pytest.raises(WeightsError, match="not a state dict") as info:
            load_encoder(str(bad), arch="resnet18")
        assert "\n" not in str(info.value)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="not a state dict"):
        load_encoder(str(tmp_path / "list.pt"), arch="resnet18")


def test_resolve_decides_file_or_source_and_arch(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    assert resolve("random").arch == "resnet50" and resolve("random", "resnet18").arch == "resnet18"
    assert resolve("lite0").label == "efficientnet_lite0.lite0"
    path = tmp_path / "enc.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"arch": "resnet18"})
    r = resolve(str(path))
    assert (r.arch, r.label, r.path) == ("resnet18", "resnet18.enc", path)
    with pytest.raises(WeightsError, match="records arch"):
        resolve(str(path), "resnet50")
    with pytest.raises(WeightsError, match="not found"):
        resolve(str(tmp_path / "nope.pt"))
    bare = tmp_path / "bare.pt"
    torch.save({"x": torch.zeros(1)}, bare)
    with pytest.raises(WeightsError, match="pass --arch"):
        resolve(str(bare))
    assert resolve(str(bare), "resnet34").arch == "resnet34"


def test_not_cached_and_unknown(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="weights fetch simclr-v1"):
        load_encoder("simclr-v1", cache_dir=tmp_path)
    with pytest.raises(WeightsError, match="unknown weight source"):
        load_encoder("imagenet")
    with pytest.raises(WeightsError, match="are for resnet50"):
        load_encoder("supervised", arch="resnet18", cache_dir=tmp_path)


def test_lite0_package_weights_load_strictly() -> None:
    enc, src = load_encoder("lite0")
    assert src.arch == "efficientnet_lite0" and enc.feature_dim == 1280
    # Real weights, not an initialisation: the stem's BN statistics were learnt.
    assert not torch.allclose(enc.net._bn0.running_var, torch.ones_like(enc.net._bn0.running_var))


def test_local_file_with_sidecar(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(1)
    net = torchvision.models.resnet18()
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "encoder.safetensors"
    save_file(state, str(path), metadata={"arch": "resnet18"})
    enc, src = load_encoder(str(path))
    assert src.arch == "resnet18" and src.kind == "file"
    torch.testing.assert_close(enc.state_dict()["conv1.weight"], state["conv1.weight"])  # a copy
    bad = tmp_path / "bad.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsError, match="do not fit resnet18"):
        load_encoder(str(bad), arch="resnet18")
