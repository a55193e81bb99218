"""An exclusive lock between processes sharing a cache (``torchrun``, ``reproduce --spread``).

Several processes may ask for the same feature store, weight file or embedding cache at the
same moment; the first computes it while the others wait on the lock, then find it done.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; single-process use only
    fcntl = None  # type: ignore[assignment]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block.

    The kernel releases the lock when the process dies, so a killed run never leaves a
    stale lock behind. Without ``fcntl`` (Windows) this is a no-op.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
