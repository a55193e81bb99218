"""Reading run files back, with one validation for every reader.

A run's files are ours, but they sit on the user's disk: a copy cut short, an editor's slip or
a full disk can leave a ``final.json`` that is not JSON, a ``metrics.jsonl`` with half a line,
a ``config.json`` of garbage or a cached embeddings ``.npy`` cut short. Every reader goes
through these functions, so each such file is a :class:`~soundtransfer.errors.RunError` whose
one line names the file (and the line, for JSON lines) and what is wrong, never a traceback
from deep inside a table or a plot. Callers decide what a damaged file means: training refuses
it; ``figures`` leaves the run out with a warning (:func:`soundtransfer.analysis.tables.
run_cells`).

Imports no torch (numpy only inside :func:`load_array`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from soundtransfer.errors import RunError
from soundtransfer.runs.files import read_text_checked

__all__ = ["load_array", "read_config", "read_final", "read_json", "read_jsonl", "read_metrics"]

# Fields of a finished run's final.json that the tables and figures read.
FINAL_FIELDS = ("test_acc", "labels", "predictions", "classes")
# Metrics fields that are numbers when present (NaN allowed: a split without test rows).
_NUMERIC = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr")


def read_json(path: Path) -> Any:
    """The JSON value in ``path``.

    Raises:
        RunError: the file is missing, unreadable, not UTF-8 or not JSON (position named).
    """
    path = Path(path)
    text = read_text_checked(path, RunError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise RunError(f"{path}: not valid JSON (nested too deeply)") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_index_list(value: Any, n: int) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n for v in value
    )


def read_final(path: Path) -> dict[str, Any]:
    """A finished run's ``final.json``, checked: ``classes`` a non-empty list of names;
    single-label: ``test_acc`` a finite percentage, ``labels`` and ``predictions`` lists of the
    same length of class indices; multi-label (``"task": "multi_label"``): ``test_mAP`` in
    [0, 1] (NaN: no test row has a label), ``labels`` a list of class-index sets and
    ``predictions`` one score row per label set.

    Raises:
        RunError: naming the file and the first field at fault.
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a run's final.json (a JSON {type(data).__name__})")
    multi = data.get("task") == "multi_label"
    fields = ("test_mAP", "labels", "predictions", "classes") if multi else FINAL_FIELDS
    missing = [k for k in fields if k not in data]
    if missing:
        raise RunError(f"{path}: incomplete final.json (no {', '.join(missing)})")
    classes = data["classes"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise RunError(f"{path}: classes must be a non-empty list of names")
    check = _check_multi_label if multi else _check_single_label
    check(path, data, len(classes))
    if len(data["labels"]) != len(data["predictions"]):
        raise RunError(
            f"{path}: {len(data['labels'])} labels but {len(data['predictions'])} predictions"
        )
    return data


def _check_single_label(path: Path, data: dict[str, Any], n: int) -> None:
    acc = data["test_acc"]
    if not (_is_number(acc) and math.isfinite(acc) and 0 <= acc <= 100):
        raise RunError(f"{path}: test_acc must be a percentage in [0, 100], got {acc!r:.40}")
    for key in ("labels", "predictions"):
        if not _is_index_list(data[key], n):
            raise RunError(f"{path}: {key} must be a list of class indices 0..{n - 1}")


def _check_multi_label(path: Path, data: dict[str, Any], n: int) -> None:
    score = data["test_mAP"]
    if not (_is_number(score) and (math.isnan(score) or 0 <= score <= 1)):
        raise RunError(f"{path}: test_mAP must be in [0, 1], got {score!r:.40}")
    labels, scores = data["labels"], data["predictions"]
    if not (isinstance(labels, list) and all(_is_index_list(s, n) for s in labels)):
        raise RunError(f"{path}: labels must be a list of class-index lists 0..{n - 1}")
    if not (
        isinstance(scores, list)
        and all(isinstance(r, list) and len(r) == n and all(map(_is_number, r)) for r in scores)
    ):
        raise RunError(f"{path}: predictions must be one row of {n} scores per clip")


def read_jsonl(path: Path, key: str | None = None, *, torn_tail: bool = False) -> list[Any]:
    """The records of a JSON-lines file (``[]`` when absent).

    Args:
        path: the file.
        key: when given, every record is an object with this integer field (``epoch``,
            ``step``), never smaller than the one before.
        torn_tail: drop a last line that the file ends inside (no newline after it) and that
            does not parse: what a kill during its append leaves. Otherwise it is an error.

    Raises:
        RunError: a line that is not a JSON object (or lacks ``key``), naming file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = read_text_checked(path, RunError).split("\n")
    records: list[Any] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if torn_tail and n == len(lines):  # the file ends inside this line
                break
            raise RunError(f"{path}: line {n} is not JSON (cut short or edited?)") from None
        if key is not None:
            value = rec.get(key) if isinstance(rec, dict) else None
            if not isinstance(value, int) or isinstance(value, bool):
                raise RunError(f"{path}: line {n} is not a record with an integer {key!r}")
            if records and value < records[-1][key]:
                raise RunError(f"{path}: line {n}: {key} {value} comes after {records[-1][key]}")
        records.append(rec)
    return records


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """A training run's ``metrics.jsonl``: one record per epoch ``1, 2, ..., n`` with a
    numeric ``train_loss`` (the other known fields numbers when present).

    Raises:
        RunError: naming the file, the line and what is wrong.
    """
    records: list[dict[str, Any]] = read_jsonl(path, "epoch")
    for n, rec in enumerate(records, start=1):
        if rec["epoch"] != n:
            raise RunError(f"{path}: epoch {n} is missing (the records jump to {rec['epoch']})")
        if "train_loss" not in rec:
            raise RunError(f"{path}: epoch {n} has no train_loss")
        bad = [k for k in _NUMERIC if k in rec and not _is_number(rec[k])]
        if bad:
            raise RunError(f"{path}: epoch {n}: {bad[0]} is not a number ({rec[bad[0]]!r:.40})")
    return records


def read_config(path: Path) -> dict[str, Any]:
    """A run's ``config.json``: an object (its ``identity``, if any, an object).

    Raises:
        RunError: not JSON, or not an object.
    """
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("identity", {}), dict):
        raise RunError(f"{path}: not a run's config.json (an object with its identity)")
    return data


def load_array(path: Path, rows: int | None = None, what: str = "array") -> Any:
    """A cached ``.npy`` array of ours (no pickles), checked to be a finite 2-D float array
    with ``rows`` rows.

    Raises:
        RunError: unreadable (cut short, not ``.npy``), or another shape, naming the file and
            saying it may be deleted (it is recomputed).
    """
    import numpy as np

    hint = "delete it and run again to recompute it"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunError(f"{path}: damaged {what} ({first}); {hint}") from None
    if array.ndim != 2 or array.dtype.kind != "f" or (rows is not None and len(array) != rows):
        raise RunError(
            f"{path}: damaged {what} (shape {array.shape}, {array.dtype}; expected {rows} rows "
            f"of floats); {hint}"
        )
    if not np.isfinite(array).all():
        raise RunError(f"{path}: damaged {what} (non-finite values); {hint}")
    return array
