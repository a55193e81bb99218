"""Checkpoints: resume state with every rank's RNG, written atomically by rank 0, loaded with
``weights_only=True`` (plain tensors and containers: a checkpoint cannot run code).

:func:`save_checkpoint` is collective under torchrun (every rank calls it: the RNG states are
gathered), :func:`load_checkpoint` restores this rank's RNG state.
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from soundtransfer import distributed as D
from soundtransfer.errors import RunError, brief
from soundtransfer.runs.files import atomic_torch_save

__all__ = [
    "check_finite",
    "load_checkpoint",
    "load_error_reason",
    "load_tensors",
    "non_finite_tensor",
    "quiet_load",
    "rng_state",
    "save_checkpoint",
    "state_dict_mismatch",
]


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's torch RNG state (CPU, and the device's on CUDA)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def load_error_reason(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in a few words.

    torch's own text runs over several lines and advises ``weights_only=False`` (which would
    let the file run code: we never do that); this keeps the line that says what the file
    holds, e.g. ``it holds Python objects, which are never loaded: ... unsupported GLOBAL
    posix.system ...`` or ``not a torch file, or cut short: ... failed finding central
    directory``.
    """
    text = str(exc)
    if "Weights only load failed" in text:
        detail = next(
            (
                line.split("WeightsUnpickler error:")[-1].strip()
                for line in text.splitlines()[1:]
                if line.strip()
                and not line.startswith("Check the documentation")
                and line.split("WeightsUnpickler error:")[-1].strip()
            ),
            "",
        )
        if "GLOBAL" in detail:
            return f"it holds Python objects, which are never loaded: {brief(detail)}"
        return f"not a torch file, or damaged: {brief(detail) or 'unpickling failed'}"
    if "PytorchStreamReader" in text or isinstance(exc, (EOFError, pickle.UnpicklingError)):
        return f"not a torch file, or cut short: {brief(text) or type(exc).__name__}"
    if isinstance(exc, (KeyError, ValueError, UnicodeDecodeError)):
        # torch's legacy reader on bytes that are no torch file: e.g. KeyError('101') for text
        return f"not a torch file ({type(exc).__name__}: {brief(text)})"
    return brief(text) or type(exc).__name__


def quiet_load(path: Path, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` without torch's warnings on stderr (e.g. "Detected
    pickle protocol 4", printed for a plain pickle before it is refused); errors pass
    unchanged (:func:`load_error_reason` says why in a few words)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location=map_location, weights_only=True)


def load_tensors(path: Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; an unreadable file is a :class:`RunError`
    naming it (never a pickle that could run code)."""
    try:
        return quiet_load(path)
    except Exception as exc:  # unpickling, zip or format errors all mean "not usable"
        raise RunError(f"{path}: not a readable {what} ({load_error_reason(exc)})") from None


def _shape(t: Any) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def state_dict_mismatch(expected: Mapping[str, Any], got: Mapping[str, Any]) -> str:
    """How ``got`` does not fit a module whose state dict is ``expected`` ('' when it fits):
    the count of each kind of difference and its first key, in one line (torch's own message
    lists every key, hundreds of lines for another architecture)."""
    other = [
        k
        for k in expected
        if k in got and not (isinstance(got[k], torch.Tensor) and got[k].shape == expected[k].shape)
    ]
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    parts = []
    if other:
        k = other[0]
        parts.append(
            f"{len(other)} tensor(s) of another shape (first {k}: {_shape(got[k])} in the file, "
            f"{_shape(expected[k])} in the model)"
        )
    if missing:
        parts.append(f"{len(missing)} missing (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
    return ", ".join(parts)


def non_finite_tensor(state: Mapping[str, Any]) -> str | None:
    """The first floating-point tensor of ``state`` holding NaN or inf, or None."""
    floats = (
        (k, v) for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
    )
    return next((k for k, v in floats if not bool(torch.isfinite(v).all())), None)


def save_checkpoint(path: Path, state: dict[str, Any], device: torch.device) -> None:
    """Write ``state`` plus every rank's RNG state to ``path`` (rank 0, atomically); collective.

    Args:
        path: the checkpoint file.
        state: plain tensors, numbers, strings and containers of them.
        device: this rank's device (its CUDA RNG is saved too).
    """
    rng = D.gather_objects(rng_state(device))  # collective: every rank calls it
    if D.is_main():
        atomic_torch_save({**state, "rng": rng}, path)
    D.barrier()


def load_checkpoint(
    path: Path, device: torch.device, identity: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Read a checkpoint of :func:`save_checkpoint` and restore this rank's RNG state.

    Args:
        path: the checkpoint.
        device: this rank's device.
        identity: when given, the checkpoint's ``identity`` entry must equal it.

    Raises:
        RunError: an unreadable file, another identity (the differences named), or one
            written by another number of processes.
    """
    from soundtransfer.runs.rundir import describe_changes

    state: Any = load_tensors(path)
    if not isinstance(state, dict) or "rng" not in state:
        raise RunError(f"{path}: not a soundtransfer checkpoint (no RNG state)")
    if identity is not None:
        changes = describe_changes(state.get("identity", {}), identity)
        if changes:
            raise RunError(f"cannot resume from {path}: settings or data changed ({changes})")
    rng = state["rng"]
    if len(rng) != D.get_world_size():
        raise RunError(
            f"{path}: written by {len(rng)} process(es), now {D.get_world_size()}; "
            "resume with the same number"
        )
    set_rng_state(rng[D.get_rank()], device)
    return state


def check_finite(value: float, where: str) -> None:
    """Stop the run on a NaN or infinite loss.

    Raises:
        RunError: ``"non-finite loss <value> <where>"``, e.g. ``... at step 3 (lr 0.3)``.
    """
    if not math.isfinite(value):
        raise RunError(f"non-finite loss {value} {where}")
