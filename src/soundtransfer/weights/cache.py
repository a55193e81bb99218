"""The weights cache and the weight-file readers.

Every downloaded or converted file is cached as safetensors under ``<cache>/weights/`` with
its sha256 recorded beside it (written before the weights appear, so no crash leaves an
unchecked file) and checked on every load; a cached file without its digest is refused.
Files are read with ``weights_only=True`` (``.pt``/``.pth``) or as safetensors: no file we read
can run code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from soundtransfer.cache import weights_dir
from soundtransfer.errors import WeightsError
from soundtransfer.fetch import file_digest
from soundtransfer.runs.files import atomic_write, atomic_write_text

__all__ = [
    "cache_status",
    "cached_path",
    "digest_path",
    "load_cached",
    "read_safetensors",
    "read_state",
    "read_state_dict",
    "store_cached",
]


def cached_path(name: str, cache_dir: Path | None = None) -> Path:
    """``<cache>/weights/<name>.safetensors`` (``cache_dir``: the cache root)."""
    return weights_dir(cache_dir) / f"{name}.safetensors"


def digest_path(path: Path) -> Path:
    """Where the sha256 of a cached file is recorded (``<name>.sha256``)."""
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
        atomic_write_text(digest_path(path), file_digest(tmp) + "\n")

    return atomic_write(path, write)


def cache_status(path: Path) -> str:
    """``cached``, ``not cached``, ``unverified`` (no recorded digest) or ``corrupt``."""
    if not path.exists():
        return "not cached"
    digest = digest_path(path)
    if not digest.exists():
        return "unverified"
    return "cached" if file_digest(path) == digest.read_text().strip() else "corrupt"


def load_cached(path: Path) -> dict[str, torch.Tensor]:
    """Load a cached safetensors file after checking its recorded sha256.

    Raises:
        WeightsError: no recorded digest, a digest that differs, an unreadable file.
    """
    digest_file = digest_path(path)
    if not digest_file.exists():
        raise WeightsError(
            f"{path}: no recorded sha256 ({digest_file.name}), so it cannot be checked; "
            "delete it and fetch it again"
        )
    want = digest_file.read_text().strip()
    got = file_digest(path)
    if got != want:
        raise WeightsError(f"{path}: sha256 {got} differs from the recorded {want}; delete it")
    return read_safetensors(path)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors (a bad header is a :class:`WeightsError`)."""
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
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


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A user's weight file: safetensors (checked against its digest when one is recorded
    beside it) or a ``.pt``/``.pth`` state dict."""
    if path.suffix == ".safetensors":
        return load_cached(path) if digest_path(path).exists() else read_safetensors(path)
    return read_state_dict(path)
