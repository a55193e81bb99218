"""Distributed helpers: process group from torchrun's variables, rank-0 checks, gathers.

DDP runs only under ``torchrun`` (nanoGPT style): when ``WORLD_SIZE`` is not in the
environment, :func:`init_distributed` returns a single-process :class:`DistInfo` and creates no
process group, so one process runs on CPU or one GPU without any set-up (DINO's always-on group
forces one, its issue #3). Used by ``pretrain`` (negatives gathered across ranks) and ``train``.

All gathers assume every rank holds a tensor of the same shape; this is what ``drop_last``
batching gives and is checked (a mismatch would silently mis-assign gradients).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from soundtransfer.errors import RunError

__all__ = [
    "DistInfo",
    "all_gather_with_grad",
    "all_reduce_mean",
    "barrier",
    "cleanup",
    "distributed_session",
    "gather_objects",
    "get_rank",
    "get_world_size",
    "independent_process",
    "init_distributed",
    "is_main",
    "resolve_device",
    "torchrun_slot",
]

_ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global rank, 0 .. world_size - 1.
        world_size: number of processes (1 without torchrun).
        local_rank: rank on this machine; picks the GPU.
        device: the device this process computes on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        """True when a process group is in use (``world_size > 1``)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes files and prints."""
        return self.rank == 0


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise RunError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch device of a setting: ``auto`` (CUDA when present), ``cuda`` (GPU
    ``local_rank``), ``cpu``, ``cuda:N`` or any torch device name.

    Raises:
        RunError: CUDA asked for but absent, or not a device name.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RunError("device='cuda' was asked for but no CUDA device is available")
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise RunError(f"device={device!r} is not a torch device name") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device={device!r} was asked for but no CUDA device is available")
    return dev


def torchrun_slot() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's variables, ``(0, 1, 0)`` without them
    (no process group is created or needed)."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    return tuple(_env_int(n) if n in os.environ else 0 for n in _ENV_VARS)  # type: ignore[return-value]


@contextmanager
def independent_process() -> Iterator[tuple[int, int, int]]:
    """Inside the block this process is a job of its own (``reproduce --spread``): torchrun's
    variables are hidden, so each process trains its runs alone and is the main rank of them.
    Yields the ``(rank, world_size, local_rank)`` it had; the variables come back afterwards."""
    slot = torchrun_slot()
    saved = {name: os.environ.pop(name) for name in _ENV_VARS if name in os.environ}
    try:
        yield slot
    finally:
        os.environ.update(saved)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun job if there is one; otherwise describe a single process.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by ``torchrun``) and, when
    ``WORLD_SIZE > 1``, initialises the default process group from ``MASTER_ADDR`` /
    ``MASTER_PORT`` with NCCL on CUDA and Gloo on CPU. Calling it again reuses the group.

    Args:
        device: ``"auto"`` (CUDA when present), ``"cuda"``, ``"cpu"`` or a torch device name. On
            CUDA each process takes GPU ``local_rank``.

    Returns:
        The rank, world size, local rank and device of this process.

    Raises:
        RunError: malformed torchrun variables, or CUDA asked for but absent.
    """
    if "WORLD_SIZE" not in os.environ or _env_int("WORLD_SIZE") <= 1:
        return DistInfo(0, 1, 0, resolve_device(device, 0))
    missing = [name for name in _ENV_VARS if name not in os.environ]
    if missing:
        raise RunError(f"WORLD_SIZE is set but {', '.join(missing)} is not: start with torchrun")
    rank, world_size, local_rank = (_env_int(name) for name in _ENV_VARS)
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, dev)


def get_rank() -> int:
    """Global rank: the process group's, else torchrun's ``RANK`` (before the group is made
    or after it is destroyed), else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    rank = os.environ.get("RANK", "0")
    return int(rank) if rank.isdigit() else 0


def get_world_size() -> int:
    """Number of processes, 1 without a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes files and prints."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op in a single process."""
    if get_world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    """Destroy the process group if one exists (call once at the end of a run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_session(device: str = "auto") -> Iterator[DistInfo]:
    """:func:`init_distributed` for a ``with`` block; destroys the process group at the end
    only if this call created it (a caller's own group is left alone).

    On a normal exit the ranks meet at a barrier first, so that no rank tears down its
    connections while a peer still uses them (a gloo rank whose peer had already exited
    could abort with "terminate called without an active exception"); after an exception
    there is no barrier, since the other ranks may never reach it.
    """
    created = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(device)
    try:
        yield info
    except BaseException:
        if created:
            cleanup()
        raise
    if created:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.barrier()
        cleanup()


class _AllGatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward returns each rank the summed gradient of its own slice.

    Every rank's loss depends on every rank's embeddings, so the gradient for the slice this
    rank contributed is the sum over ranks of their losses' gradients for it: an all-reduce
    (sum) of the full gradient, then this rank's slice. Returning only the local gradient
    (lightly's #1528) drops the cross-rank terms. All-reduce rather than reduce-scatter works
    on every backend (Gloo has no reduce-scatter); the tensors are embeddings, so it is cheap.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        world_size = dist.get_world_size()
        ctx.rank = dist.get_rank()
        ctx.rows = tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> torch.Tensor:
        grad = grads[0].contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.rows
        return grad[start : start + ctx.rows]


def _check_same_shape(tensor: torch.Tensor) -> None:
    shapes: list[Any] = [None] * get_world_size()
    dist.all_gather_object(shapes, tuple(tensor.shape))
    if len(set(shapes)) != 1:
        raise RunError(f"all_gather needs the same shape on every rank, got {shapes}")


def all_gather_with_grad(tensor: torch.Tensor, check_shapes: bool = False) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, keeping the autograd graph.

    Args:
        tensor: ``(n, ...)`` on this rank; the same shape on every rank.
        check_shapes: verify the shapes first (one extra object all-gather).

    Returns:
        ``(world_size * n, ...)``: rank 0's rows first. In a single process, ``tensor`` itself.
        Its backward sums the incoming gradients over ranks and returns this rank's rows.
    """
    if get_world_size() == 1:
        return tensor
    if check_shapes:
        _check_same_shape(tensor)
    out: torch.Tensor = _AllGatherWithGrad.apply(tensor)
    return out


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of a (detached) tensor over ranks, for logging; ``tensor`` in a single process."""
    if get_world_size() == 1:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / get_world_size()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order (``[obj]`` in a single process)."""
    if get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out
