"""Progress of an unfinished feature store: append-only logs, one per writing process.

Each process building rows of a store appends one JSON line per finished batch to its own file
(``progress.r<rank>.log``): ``{"done": [rows...], "bad": [{"row", "file", "reason"}...]}``,
after a header line ``{"key": ..., "rows": N}``. A batch therefore costs a write of its own
size, whatever the store's size (rewriting one flag per row after every batch would write
``N / batch_size * N`` bytes: 31 GB for a million clips in batches of 32). No two processes
write the same file, so ranks on several machines can share a store directory.

Reading merges every ``progress*.log`` of the directory (the union of their rows; a row in
several files counts once). A kill can cut only a file's last line short (no newline yet): that
line is ignored. Anything else that does not parse (a garbled line, another key or row count)
makes the whole progress unusable, and the build starts over rather than trust rows of a
damaged file. At the start of a build, the merged progress is written to ``progress.log``
(atomically) and the per-rank logs are removed, so a store never has more log files than
ranks, and each rank starts a fresh log.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundtransfer.runs.files import reporting_disk_full

MERGED = "progress.log"
PATTERN = "progress*.log"


def rank_log(root: Path, rank: int) -> Path:
    """The log rank ``rank`` appends to while building the store at ``root``."""
    return root / f"progress.r{rank}.log"


@dataclass(frozen=True)
class Progress:
    """What earlier runs finished.

    Attributes:
        done: ``(N,)`` bool, True where the row's image is written (or the clip is bad).
        bad: bad clips found, ``{"row", "file", "reason"}`` each, in row order.
    """

    done: np.ndarray
    bad: tuple[dict[str, Any], ...]

    @classmethod
    def fresh(cls, n: int) -> Progress:
        """Nothing done."""
        return cls(np.zeros(n, dtype=bool), ())


def has_logs(root: Path) -> bool:
    """True when ``root`` holds progress logs (an unfinished build)."""
    return any(root.glob(PATTERN))


def read_progress(root: Path, key: str, n: int) -> Progress | None:
    """The merged progress of every log in ``root``; None if any log is damaged.

    Args:
        root: the store directory.
        key: the store's key; a log of another key is damaged.
        n: the store's row count.
    """
    done = np.zeros(n, dtype=bool)
    bad: dict[int, dict[str, Any]] = {}
    for path in sorted(root.glob(PATTERN)):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return None
        lines = text.split("\n")[:-1]  # the part after the last newline is a torn write
        for k, line in enumerate(lines):
            record = _parse(line)
            if record is None:
                return None
            if k == 0:
                if record != {"key": key, "rows": n}:
                    return None
                continue
            rows, found = record.get("done"), record.get("bad")
            if not _valid_rows(rows, n) or not isinstance(found, list) or not _valid_bad(found, n):
                return None
            done[np.asarray(rows, dtype=np.int64)] = True
            for b in found:
                bad[int(b["row"])] = b
    return Progress(done, tuple(bad[r] for r in sorted(bad)))


def write_merged(root: Path, key: str, progress: Progress) -> None:
    """Replace every log of ``root`` by one ``progress.log`` holding ``progress``.

    Crash-safe: the merged file is complete (temp file + rename) before any other log is
    removed, and reading a row twice is harmless.
    """
    tmp = root / (MERGED + ".tmp")
    rows = np.flatnonzero(progress.done).tolist()
    with reporting_disk_full(root / MERGED), open(tmp, "w") as f:
        f.write(_line({"key": key, "rows": len(progress.done)}))
        f.write(_line({"done": rows, "bad": list(progress.bad)}))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(root / MERGED)
    for path in root.glob(PATTERN):
        if path.name != MERGED:
            path.unlink(missing_ok=True)


def remove_logs(root: Path) -> None:
    """Delete every progress log of ``root`` (the store is complete)."""
    for path in root.glob(PATTERN):
        path.unlink(missing_ok=True)


class ProgressWriter:
    """Appends one line per finished batch to this rank's log (created empty, header first)."""

    def __init__(self, root: Path, rank: int, key: str, n: int) -> None:
        self._fd = os.open(rank_log(root, rank), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._append({"key": key, "rows": n})

    def add(self, rows: list[int], bad: list[dict[str, Any]]) -> None:
        """Record ``rows`` as finished (their images already written) and their bad clips."""
        self._append({"done": rows, "bad": bad})

    def close(self) -> None:
        os.close(self._fd)

    def _append(self, record: dict[str, Any]) -> None:
        data = _line(record).encode()
        written = os.write(self._fd, data)  # one call: a kill leaves at most a torn last line
        while written < len(data):  # pragma: no cover - short writes are rare on files
            written += os.write(self._fd, data[written:])


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"


def _parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _valid_rows(rows: Any, n: int) -> bool:
    return isinstance(rows, list) and all(
        isinstance(r, int) and not isinstance(r, bool) and 0 <= r < n for r in rows
    )


def _valid_bad(bad: list[Any], n: int) -> bool:
    return all(
        isinstance(b, dict)
        and {"row", "file", "reason"} <= set(b)
        and isinstance(b["row"], int)
        and 0 <= b["row"] < n
        for b in bad
    )
