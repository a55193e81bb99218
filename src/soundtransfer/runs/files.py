"""Atomic writes: a temp file in the same folder, then a rename, so a kill never leaves half a
file and readers see the old or the new content, never a mix.

The temp name carries the process id, so processes sharing a folder (``reproduce --spread``)
never write each other's temp files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from soundtransfer.errors import OutputError

__all__ = [
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_text",
    "refuse_input_as_output",
    "save_json",
]


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp path beside ``path``, then rename it to ``path``.

    Args:
        path: the destination (its folder is created).
        write: writes the whole file at the path it is given.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (a dataclass as its fields, tuples as lists,
    paths and other objects as strings), so a kill never leaves half a file."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (plain tensors and containers only, so the
    file loads with ``weights_only=True``)."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def refuse_input_as_output(out: Path, inputs: Iterable[Path], option: str = "--out") -> None:
    """Raise :class:`~soundtransfer.errors.OutputError` when ``out`` is one of ``inputs``
    (the same file, however spelt: relative, through ``..`` or a link, a hard link).

    Every command that writes a file the user named calls this before writing anything, so
    no output can overwrite an input.
    """
    out = Path(out)
    for src in inputs:
        if _same_file(out, Path(src)):
            raise OutputError(f"{option} {out} is an input ({src}); choose another path")
