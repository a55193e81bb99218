"""The metrics log: one JSON object per line (``metrics.jsonl`` / ``log.jsonl``), the run's record,
and optionally the same scalars in TensorBoard.

Only the main rank writes (other ranks' calls do nothing). A record is appended before the
checkpoint that covers it, so on resume the log is cut back to the records of the checkpoint:
a kill between a log line and its checkpoint never leaves a duplicate, and a last line the
kill cut in half (a record after the checkpoint) is dropped. Any other damage is a
:class:`~soundtransfer.errors.RunError` naming the file and line
(:func:`~soundtransfer.runs.records.read_jsonl`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from soundtransfer import distributed as D
from soundtransfer.errors import ConfigError, RunError
from soundtransfer.runs.files import atomic_write_text, reporting_disk_full
from soundtransfer.runs.records import read_jsonl

__all__ = ["MetricsLog", "read_jsonl"]


class MetricsLog:
    """Append-only JSON-lines log keyed by a step field (``epoch`` or ``step``).

    Args:
        path: the ``.jsonl`` file.
        key: the field that orders the records (used by :meth:`keep_until` and TensorBoard).
        tensorboard: also write numeric fields as TensorBoard scalars under
            ``path.parent / "tensorboard"`` (needs the ``tensorboard`` package).
        dense: one record per step ``1, 2, ...`` (an epoch log), so a resume checks that the
            records up to the checkpoint are all there.
    """

    def __init__(
        self, path: Path, key: str, tensorboard: bool = False, *, dense: bool = False
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.dense = dense
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
        """Begin a run: keep the records with ``key <= resume_at`` (0: start afresh).

        Raises:
            RunError: a damaged line other than a torn last one, or (``dense``) records of
                steps the checkpoint holds are missing.
        """
        if not D.is_main() or not self.path.exists():
            return
        if resume_at <= 0:
            self.path.unlink()
            return
        records = read_jsonl(self.path, self.key, torn_tail=True)
        kept = [r for r in records if r[self.key] <= resume_at]
        if self.dense and [r[self.key] for r in kept] != list(range(1, resume_at + 1)):
            # Each record is on disk before the checkpoint that covers it, so this is
            # damage (a copy cut short, an edit), not a kill; the run's record cannot be
            # completed, so resuming would leave it with holes.
            raise RunError(
                f"{self.path}: records of {self.key}s 1-{resume_at} (the checkpoint's) are "
                "missing or damaged; delete the run directory to start again"
            )
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (main rank only)."""
        if not D.is_main():
            return
        with reporting_disk_full(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
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
