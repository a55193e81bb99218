"""Writing files: a temp file in the same folder, then a rename, so a kill never leaves half a
file and readers see the old or the new content, never a mix; a full disk is one error naming
the file.

The temp name carries the process id, so processes sharing a folder (``reproduce --spread``)
never write each other's temp files.

A full disk (``ENOSPC``, or ``EDQUOT`` for a quota) while writing is an
:class:`~soundtransfer.errors.OutputError` naming the file that could not be written and the
space left, the temp file removed and the old file (if any) untouched: a checkpoint, a log or
a store row that was finished before stays finished, so a rerun after freeing space resumes
from it. torch's own zip writer reports a failed write as ``RuntimeError: ... unexpected
pos``, without the cause; :func:`atomic_torch_save` therefore hands torch a Python file
object, whose writes raise the real ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from soundtransfer.errors import OutputError

__all__ = [
    "atomic_open",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_text",
    "is_disk_full",
    "no_space_message",
    "refuse_input_as_output",
    "reporting_disk_full",
]

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# What writers that do not raise an OSError (safetensors' Rust writer) put in their message.
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded", "os error 28")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return True
    return not isinstance(exc, OSError) and any(t in str(exc) for t in _DISK_FULL_TEXT)


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        with contextlib.suppress(OSError):
            if folder.is_dir():
                return shutil.disk_usage(folder).free
    return None


def no_space_message(path: Path) -> str:
    """``"<path>: no space left on device (12.0 MB free) ..."``: the one line of a full disk."""
    free = _free_bytes(Path(path))
    room = "" if free is None else f" ({free / 1e6:.1f} MB free)"
    return (
        f"{path}: no space left on device{room}; free some space and run again "
        "(finished work is kept)"
    )


@contextlib.contextmanager
def reporting_disk_full(path: Path) -> Iterator[None]:
    """Raise a full disk met inside the block as an :class:`OutputError` naming ``path``
    (the file being written); other errors pass unchanged."""
    try:
        yield
    except OutputError:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise OutputError(no_space_message(path)) from None
        raise


def _temp_path(path: Path) -> Path:
    """The temp file beside ``path`` (one name per process)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp path beside ``path``, then rename it to ``path``.

    Args:
        path: the destination (its folder is created).
        write: writes the whole file at the path it is given.

    Returns:
        ``path``.

    Raises:
        OutputError: the disk is full (the message names ``path``); the temp file is removed
            and an existing ``path`` is left as it was.
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        with reporting_disk_full(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            write(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open`` for writing a file that appears whole or not at all: the block writes a temp
    file beside ``path``, renamed to ``path`` when the block ends without an error.

    Args:
        path: the destination (its folder is created).
        mode: ``"w"`` or ``"wb"``.
        **kwargs: passed to :func:`open` (``encoding``, ``newline``).

    Raises:
        OutputError: the disk is full (the message names ``path``).
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        with reporting_disk_full(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, mode, **kwargs) as fh:
                yield fh
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (plain tensors and containers only, so the
    file loads with ``weights_only=True``); a full disk is an :class:`OutputError`."""
    import torch

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: a failed write raises the real OSError
            torch.save(obj, fh)

    return atomic_write(path, write)


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
