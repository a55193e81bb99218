"""Detections written as the tools practitioners use read them, and read back for the review.

Per recording (``render``) and over many (``Combiner``: one header, Raven selections numbered
on, and for Raven and Audacity the times of each recording shifted by the lengths of the
recordings before it, so the table lines up with the recordings opened as one sequence, as
BirdNET-Analyzer's combined tables do):

* ``raven``: a Raven Pro selection table, tab-separated, one header line, one row per event:
  ``Selection`` (1, 2, ...), ``View`` (``Spectrogram 1``), ``Channel`` (1), ``Begin Time (s)``,
  ``End Time (s)`` (the event's span; in a combined table, in the sequence of recordings),
  ``Low Freq (Hz)``, ``High Freq (Hz)`` (the model's mel range: it hears nothing outside),
  ``Class``, ``Score`` (the event's highest window score), ``Begin Path`` (the recording,
  absolute), ``File Offset (s)`` (the event's start within that recording).
* ``audacity``: a label track, ``start<TAB>end<TAB>class score`` per event.
* ``csv``: one long table: ``file, kind, start_s, end_s, rank, class, score, mean_score,
  windows``; ``kind`` is ``mean`` (the top-k of the mean score over the recording's windows),
  ``event`` or, with ``--timeline``, ``window``.
* ``json``: one object per recording (``file, seconds, windows, hop_s, mean_top, events`` and
  with ``--timeline`` ``timeline``); a combined file holds one object per line (JSON lines).
* ``text``: for reading.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundtransfer.errors import DatasetError
from soundtransfer.numbers import finite_float
from soundtransfer.runs.files import read_text_checked

if TYPE_CHECKING:
    from soundtransfer.inference.predict import Prediction
    from soundtransfer.inference.timeline import Event

FORMATS = ("text", "csv", "json", "raven", "audacity")
SUFFIXES = {
    "raven": ".selections.txt",
    "audacity": ".labels.txt",
    "csv": ".csv",
    "json": ".json",
    "text": ".txt",
}
#: The name of the combined table in the output folder, per format.
COMBINED = {
    "raven": "combined.selections.txt",
    "audacity": "combined.labels.txt",
    "csv": "combined.csv",
    "json": "combined.jsonl",
    "text": "combined.txt",
}
RAVEN_COLUMNS = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Class",
    "Score",
    "Begin Path",
    "File Offset (s)",
)
CSV_COLUMNS = (
    "file",
    "kind",
    "start_s",
    "end_s",
    "rank",
    "class",
    "score",
    "mean_score",
    "windows",
)


@dataclass(frozen=True)
class Source:
    """What a table says about the recording besides its prediction.

    Attributes:
        path: the recording, as written in ``Begin Path`` (absolute).
        low_hz: lowest frequency the model hears (its mel range), Hz.
        high_hz: highest, Hz.
        timeline: include each window (csv, json, text).
    """

    path: str
    low_hz: float
    high_hz: float
    timeline: bool = False


def _t(seconds: float) -> str:
    return f"{seconds:.3f}"


def _s(score: float) -> str:
    return f"{score:.4f}"


def _csv_text(rows: list[list[Any]], header: bool) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue()


def _raven(pred: Prediction, src: Source) -> str:
    lines = ["\t".join(RAVEN_COLUMNS)]
    for n, e in enumerate(pred.events, 1):
        cells = [n, "Spectrogram 1", 1, _t(e.start_s), _t(e.end_s), f"{src.low_hz:.1f}",
                 f"{src.high_hz:.1f}", e.label, _s(e.score), src.path, _t(e.start_s)]  # fmt: skip
        lines.append("\t".join(map(str, cells)))
    return "\n".join(lines) + "\n"


def _audacity(pred: Prediction) -> str:
    return "".join(
        f"{_t(e.start_s)}\t{_t(e.end_s)}\t{e.label} {_s(e.score)}\n" for e in pred.events
    )


def _csv(pred: Prediction, src: Source) -> str:
    f = src.path
    rows: list[list[Any]] = [
        [f, "mean", _t(0), _t(pred.seconds), r, c, _s(p), "", pred.windows]
        for r, (c, p) in enumerate(pred.top, 1)
    ]
    rows += [
        [f, "event", _t(e.start_s), _t(e.end_s), "", e.label, _s(e.score), _s(e.mean), e.windows]
        for e in pred.events
    ]
    if src.timeline:
        for w in pred.timeline:
            span = [_t(w.start_s), _t(w.end_s)]
            rows += [[f, "window", *span, r, c, _s(p), "", 1] for r, (c, p) in enumerate(w.top, 1)]
    return _csv_text(rows, header=True)


def _event_json(e: Event) -> dict[str, Any]:
    return {
        "start_s": round(e.start_s, 3),
        "end_s": round(e.end_s, 3),
        "class": e.label,
        "score": e.score,
        "mean_score": e.mean,
        "windows": e.windows,
    }


def _json(pred: Prediction, src: Source) -> str:
    obj: dict[str, Any] = {
        "file": src.path,
        "seconds": round(pred.seconds, 3),
        "windows": pred.windows,
        "hop_s": pred.hop_s,
        "mean_top": [{"class": c, "score": p} for c, p in pred.top],
        "events": [_event_json(e) for e in pred.events],
    }
    if src.timeline:
        obj["timeline"] = [
            {
                "start_s": round(w.start_s, 3),
                "end_s": round(w.end_s, 3),
                "top": [{"class": c, "score": p} for c, p in w.top],
            }
            for w in pred.timeline
        ]
    return json.dumps(obj) + "\n"


def _text(pred: Prediction, src: Source) -> str:
    lines = [
        f"{pred.file}  ({pred.seconds:.1f} s, {pred.windows} window(s), hop {pred.hop_s:g} s)",
        f"  mean score over its {pred.windows} window(s):",
        *(f"    {p:6.1%}  {c}" for c, p in pred.top),
        f"  events ({len(pred.events)}):",
        *(
            f"    {e.start_s:8.2f} - {e.end_s:8.2f} s  {e.label}  (best {e.score:.1%}, "
            f"mean {e.mean:.1%}, {e.windows} window(s))"
            for e in pred.events
        ),
    ]
    if src.timeline:
        lines.append("  timeline:")
        for w in pred.timeline:
            tops = "  ".join(f"{c} {p:.1%}" for c, p in w.top)
            lines.append(f"    {w.start_s:8.2f} - {w.end_s:8.2f} s  {tops}")
    return "\n".join(lines) + "\n"


def render(fmt: str, pred: Prediction, src: Source) -> str:
    """One recording's table in format ``fmt`` (see the module docstring)."""
    if fmt == "raven":
        return _raven(pred, src)
    if fmt == "audacity":
        return _audacity(pred)
    if fmt == "csv":
        return _csv(pred, src)
    if fmt == "json":
        return _json(pred, src)
    if fmt == "text":
        return _text(pred, src)
    raise ValueError(f"unknown format {fmt!r}")


class Combiner:
    """Recordings' tables (as :func:`render` wrote them) joined into one, written as they come.

    Args:
        fmt: the format of the tables.
        write: receives the combined text piece by piece.
    """

    def __init__(self, fmt: str, write: Callable[[str], object]) -> None:
        self.fmt, self.write = fmt, write
        self.parts = self.selections = 0

    def add(self, text: str, offset_s: float) -> None:
        """The next recording's table; its times shifted by ``offset_s`` (Raven, Audacity)."""
        lines = text.splitlines()
        if self.fmt in ("raven", "csv") and self.parts and lines:
            lines = lines[1:]  # one header
        if self.fmt == "raven":
            lines = [self._raven_row(line, offset_s) if k or self.parts else line
                     for k, line in enumerate(lines)]  # fmt: skip
        elif self.fmt == "audacity":
            lines = [self._shift(line.split("\t"), (0, 1), offset_s) for line in lines]
        elif self.fmt == "text" and self.parts:
            lines = ["", *lines]
        self.parts += 1
        if lines:
            self.write("\n".join(lines) + "\n")

    def _raven_row(self, line: str, offset_s: float) -> str:
        if line == "\t".join(RAVEN_COLUMNS):
            return line
        self.selections += 1
        cells = line.split("\t")
        cells[0] = str(self.selections)
        return self._shift(cells, (3, 4), offset_s)

    @staticmethod
    def _shift(cells: list[str], columns: tuple[int, ...], offset_s: float) -> str:
        for c in columns:
            cells[c] = _t(float(cells[c]) + offset_s)
        return "\t".join(cells)


# --- reading detections back (for the review) -----------------------------------------------


@dataclass(frozen=True)
class Detection:
    """One event of a detections table.

    Attributes:
        file: the recording, as the table names it.
        start_s: start within the recording, s.
        end_s: end within the recording, s.
        label: the class.
        score: its score.
        where: the table and line it came from (for messages).
    """

    file: str
    start_s: float
    end_s: float
    label: str
    score: float
    where: str


def _number(where: str, name: str, text: Any) -> float:
    return finite_float(text, lambda want: DatasetError(f"{where}: {name} {text!r} is not {want}"))


def _check(d: Detection) -> Detection:
    if not (0 <= d.start_s <= d.end_s):
        raise DatasetError(f"{d.where}: span {d.start_s:g} - {d.end_s:g} s is not a span")
    return d


def _read_raven(path: Path, text: str) -> Iterator[Detection]:
    rows = text.splitlines()
    header = rows[0].split("\t") if rows else []
    need = ("Begin Time (s)", "End Time (s)", "Class", "Score", "Begin Path", "File Offset (s)")
    missing = [c for c in need if c not in header]
    if missing:
        raise DatasetError(f"{path}: not a detections table of predict (no {missing} column)")
    col = {c: header.index(c) for c in need}
    for line, row in enumerate(rows[1:], start=2):
        cells = row.split("\t")
        if not row.strip():
            continue
        where = f"{path}: line {line}"
        if len(cells) != len(header):
            raise DatasetError(f"{where}: {len(cells)} fields, the header has {len(header)}")
        begin, end = (_number(where, c, cells[col[c]]) for c in need[:2])
        offset = _number(where, "File Offset (s)", cells[col["File Offset (s)"]])
        score = _number(where, "Score", cells[col["Score"]])
        yield _check(Detection(cells[col["Begin Path"]], offset, offset + end - begin,
                               cells[col["Class"]], score, where))  # fmt: skip


def _read_csv(path: Path, text: str) -> Iterator[Detection]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(f"{path}: not a detections table of predict (no {missing} column)")
    for line, row in enumerate(reader, start=2):
        if row["kind"] != "event":
            continue
        where = f"{path}: line {line}"
        start, end, score = (_number(where, c, row[c]) for c in ("start_s", "end_s", "score"))
        yield _check(Detection(row["file"], start, end, row["class"], score, where))


def _read_json(path: Path, text: str) -> Iterator[Detection]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}: line {line}"
        try:
            obj = json.loads(raw)
            file, events = obj["file"], obj["events"]
            for k, e in enumerate(events):
                at = f"{where}: event {k}"
                start, end = _number(at, "start_s", e["start_s"]), _number(at, "end_s", e["end_s"])
                score = _number(at, "score", e["score"])
                yield _check(Detection(str(file), start, end, str(e["class"]), score, at))
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"{where}: not a recording's detections of predict") from None


def _tables_in(folder: Path) -> list[Path]:
    """The per-recording tables of a predict output folder (combined tables left out)."""
    for suffix in (".selections.txt", ".json", ".csv"):
        found = sorted(
            p
            for p in folder.rglob(f"*{suffix}")
            if p.is_file() and p.name not in (*COMBINED.values(), "failed.csv")
        )
        if found:
            return found
    raise DatasetError(f"{folder}: no detections tables (*.selections.txt, *.json, *.csv)")


def read_detections(path: Path) -> list[Detection]:
    """Every event of a detections table of ``predict`` (Raven, CSV, JSON or JSON lines), or of
    every per-recording table in a folder of them.

    Raises:
        DatasetError: not found, not one of our tables (an Audacity label track does not
            name its recording), or a bad row (the message names the file and line).
    """
    path = Path(path)
    if path.is_dir():
        return [d for table in _tables_in(path) for d in read_detections(table)]
    text = read_text_checked(path, DatasetError, "detections table", encoding="utf-8-sig")
    first = text.split("\n", 1)[0]
    if path.name.endswith((".json", ".jsonl")):
        return list(_read_json(path, text))
    if "\t" in first and "Begin Time (s)" in first:
        return list(_read_raven(path, text))
    if first.startswith("file,"):
        return list(_read_csv(path, text))
    raise DatasetError(
        f"{path}: not a detections table of predict (Raven selection table, CSV or JSON; an "
        "Audacity label track does not name its recording)"
    )
