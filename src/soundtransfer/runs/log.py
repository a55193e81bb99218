"""The metrics log: one JSON object per line (``metrics.jsonl`` / ``log.jsonl``), the run's record,
and optionally the same scalars in TensorBoard.

Only the main rank writes (other ranks' calls do nothing). On resume the log is cut back to the
records of the checkpoint, so a kill between a log line and its checkpoint never leaves a
duplicate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from soundtransfer import distributed as D
from soundtransfer.errors import ConfigError
from soundtransfer.runs.files import atomic_write_text

__all__ = ["MetricsLog", "read_jsonl"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (``[]`` when absent)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class MetricsLog:
    """Append-only JSON-lines log keyed by a step field (``epoch`` or ``step``).

    Args:
        path: the ``.jsonl`` file.
        key: the field that orders the records (used by :meth:`keep_until` and TensorBoard).
        tensorboard: also write numeric fields as TensorBoard scalars under
            ``path.parent / "tensorboard"`` (needs the ``tensorboard`` package).
    """

    def __init__(self, path: Path, key: str, tensorboard: bool = False) -> None:
        self.path = Path(path)
        self.key = key
        self._writer: Any = None
        if tensorboard and D.is_main():
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "tensorboard=true needs the tensorboard package (pip install tensorboard)"
                ) from None
            self._writer = SummaryWriter(str(self.path.parent / "tensorboard"))

    def start(self, resume_at: int) -> None:
        """Begin a run: keep the records with ``key <= resume_at`` (0: start afresh)."""
        if not D.is_main() or not self.path.exists():
            return
        if resume_at <= 0:
            self.path.unlink()
            return
        kept = [r for r in read_jsonl(self.path) if r[self.key] <= resume_at]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (main rank only)."""
        if not D.is_main():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._writer is not None:
            step = int(record[self.key])
            for name, value in record.items():
                if name != self.key and isinstance(value, (int, float)):
                    self._writer.add_scalar(name, value, step)
            self._writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
