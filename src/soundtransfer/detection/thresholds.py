"""Per-class thresholds files: what ``predict --thresholds`` reads and ``review`` writes.

Two forms (the agreed interface): a CSV with a header holding ``class`` and ``threshold``
(more columns allowed, e.g. ``precision``, ``n``), one row per class; or JSON
``{"thresholds": {"class": value, ...}}``. Values are on the model's output score scale
(softmax probability for a single-label bundle, sigmoid for a multi-label one); ``inf``
means the class is never reported (no score reaches the review's target precision).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from soundtransfer.errors import ConfigError
from soundtransfer.runs.files import read_text_checked

__all__ = ["read_thresholds"]


def _value(where: str, text: Any) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: threshold {text!r} is not a number") from None
    if isinstance(text, bool) or math.isnan(value) or value < 0:
        raise ConfigError(f"{where}: threshold {text!r} must be a score >= 0 (or inf)")
    if 1 < value < math.inf:  # no score reaches it: the class would vanish without a word
        raise ConfigError(
            f"{where}: threshold {text!r} is above 1, the highest score (inf: never report it)"
        )
    return value


def _read_csv(path: Path, text: str) -> dict[str, tuple[float, str]]:
    rows = csv.reader(text.splitlines())
    header = [h.strip() for h in next(rows, [])]
    missing = [c for c in ("class", "threshold") if c not in header]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing} (a header 'class,threshold')")
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:  # which copy holds the threshold is a guess: refuse rather than pick one
        raise ConfigError(f"{path}: column(s) {twice} appear twice in the header")
    ci, ti = header.index("class"), header.index("threshold")
    out: dict[str, tuple[float, str]] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}: line {line}"
        if len(row) != len(header):
            raise ConfigError(f"{where}: {len(row)} fields, the header has {len(header)}")
        name = row[ci].strip()
        if name in out:
            raise ConfigError(f"{where}: class {name!r} is listed twice (also {out[name][1]})")
        out[name] = (_value(where, row[ti].strip()), f"line {line}")
    return out


def _unique_keys(path: Path, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is an error (``json`` keeps the last
    silently, so a class listed twice would lose one of its thresholds without a word)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(f"{path}: key {key!r} is given twice")
        seen[key] = value
    return seen


def _read_json(path: Path, text: str) -> dict[str, tuple[float, str]]:
    try:
        obj = json.loads(text, object_pairs_hook=lambda pairs: _unique_keys(path, pairs))
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    table = obj.get("thresholds") if isinstance(obj, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(f'{path}: expected {{"thresholds": {{"class": value, ...}}}}')
    return {str(k): (_value(f"{path}: class {k!r}", v), f"class {k!r}") for k, v in table.items()}


def read_thresholds(path: Path, classes: Sequence[str] | None = None) -> dict[str, float]:
    """The thresholds of a CSV or JSON file (see the module docstring).

    Args:
        path: the file (``.json`` is read as JSON, anything else as CSV).
        classes: the bundle's classes; a threshold for another name is an error.

    Raises:
        ConfigError: unreadable, missing columns, a column or JSON key given twice, a bad
            number, a class listed twice or not a class of the bundle (the message names the
            file and line).
    """
    path = Path(path)
    text = read_text_checked(path, ConfigError, "thresholds file", encoding="utf-8-sig")
    table = _read_json(path, text) if path.suffix.lower() == ".json" else _read_csv(path, text)
    if not table:
        raise ConfigError(f"{path}: no thresholds in the file")
    if classes is not None:
        for name, (_v, where) in table.items():
            if name not in classes:
                raise ConfigError(
                    f"{path}: {where}: {name!r} is not a class of the bundle ({', '.join(classes)})"
                )
    return {name: value for name, (value, _w) in table.items()}
