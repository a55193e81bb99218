"""Annotated recordings: Raven selection tables and Audacity label tracks cut into windows.

People who record long files annotate them with boxes (a start, an end, a class, maybe a
frequency band), not clips. This module reads those boxes and cuts each recording into
fixed-length windows, each labelled with every class whose box it overlaps enough:

- **Raven selection tables** (Raven Pro, BirdNET-Analyzer's ``--rtype table``): tab-separated
  text, one header line, one row per box, with ``Begin Time (s)``, ``End Time (s)``,
  optional ``Low Freq (Hz)`` / ``High Freq (Hz)`` and annotation columns. The label column is
  the caller's choice, else the first of :data:`LABEL_COLUMNS` present (case-insensitive). A
  selection Raven lists once per view (``View``: ``Waveform 1``, ``Spectrogram 1``) is read
  once, from the first spectrogram view. A table either names its audio in a ``Begin File``
  column (or, lacking that, the file name of ``Begin Path``, found in the table's folder),
  with times in the file from ``File Offset (s)`` when present (else ``Begin Time (s)``,
  with a note when the table names several files), or belongs to the recording
  beside it whose name starts its own: ``rec.Table.1.selections.txt`` and
  ``rec.BirdNET.selection.table.txt`` annotate ``rec.wav``.
- **Audacity label tracks** (File > Export > Labels): ``start<TAB>end<TAB>label`` per line,
  seconds with a decimal point; a spectral label's second line ``\\<TAB>low<TAB>high`` gives
  its band. A track annotates the recording beside it whose name starts its own
  (``rec.txt``, ``rec.labels.txt``).

Windows (:func:`cut_windows`): length and hop given, or inferred from the boxes
(:func:`infer_window`: the median box duration rounded up to one of
:data:`WINDOW_CHOICES_S`, hop half the window), with the reason. Windows start every hop;
when the last one stops short of the end, one more ends at the end of the recording, so no
stretch (and no box) is left uncovered; a recording shorter than the window is one window
(the front end pads it). A window gets a class when a box of it overlaps the window by at
least :class:`MinOverlap` (seconds, or a fraction of the box), the requirement capped by the
box's and the window's lengths (a box the window holds whole, or a window inside a box,
always counts). Windows overlapping no box at all are **negatives** (all-zero targets) or
**ignored** (``unannotated``); a window that only grazes a box (less than the minimum) is
neither a clean negative nor a positive and is left out, counted in the reasons. Boxes whose
label is in ``background`` mark annotated noise: windows they cover are negatives either way.
A recording whose table holds no box is an error unless ``empty_tables="negative"`` asks for
it to be all negatives; an audio file with no table at all is not used (listed in a note).
Every window of a recording has the recording (its relative path) as its group, so no
recording is split across folds.

Faults are :class:`~soundtransfer.errors.DatasetError` naming the file and line: missing
columns, empty, non-numeric, non-finite, negative, reversed or zero-length times, a band
with low above high, a box past the end of its audio (the length read from the file header)
or running into another file, a table naming absent audio, two annotation files for one
recording, a table with no audio beside it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from numpy.typing import ArrayLike, NDArray

from soundtransfer.errors import ConfigError, DatasetError
from soundtransfer.numbers import finite_float

__all__ = [
    "LABEL_COLUMNS",
    "WINDOW_CHOICES_S",
    "AnnotatedWindows",
    "AnnotationTable",
    "Box",
    "MinOverlap",
    "Recording",
    "Window",
    "WindowOptions",
    "cut_windows",
    "infer_window",
    "read_annotations",
    "read_audacity",
    "read_raven",
    "refuse_case_clash",
    "scan_annotations",
    "sniff_format",
    "window_starts",
]

BEGIN, END = "Begin Time (s)", "End Time (s)"
LOW, HIGH = "Low Freq (Hz)", "High Freq (Hz)"
BEGIN_FILE, BEGIN_PATH, END_FILE, OFFSET = "Begin File", "Begin Path", "End File", "File Offset (s)"
# Searched in this order (case-insensitive) when the caller names no label column.
LABEL_COLUMNS = ("Species", "Annotation", "Label", "Common Name")
# Columns only Raven writes: a tab-separated header holding one is a Raven table.
RAVEN_MARKERS = (BEGIN, END, LOW, HIGH, "Selection", "View", "Channel", BEGIN_FILE)
ANNOTATION_SUFFIXES = (".txt",)
# Inferred window lengths: the median box duration rounded up to the next of these.
WINDOW_CHOICES_S = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
# Tables print times rounded (Audacity 6 decimals, Raven's own choice): a box may end this
# much past the audio's end without being an error.
END_TOLERANCE_S = 1e-3
_EPS = 1e-6  # sub-sample slack when comparing times computed two ways
UNANNOTATED = ("negative", "ignore")
EMPTY_TABLES = ("error", "negative")


# --- boxes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One annotated box.

    Attributes:
        label: class name (stripped).
        start_s, end_s: seconds from the start of the audio file, ``0 <= start < end``.
        low_hz, high_hz: the band, when the table gives one.
        table: the annotation file.
        line: its 1-based line in the file (the header is line 1 of a Raven table).
        audio: the audio file the row names (Raven ``Begin File``), relative to the table's
            folder; None when the table belongs to the recording beside it.
        table_times: True when a ``Begin File`` table gave no ``File Offset (s)``, so the
            times are its ``Begin Time (s)`` (the file's own time only when the table covers
            one file): said in the error when such a box runs past its file's end.
    """

    label: str
    start_s: float
    end_s: float
    low_hz: float | None
    high_hz: float | None
    table: Path
    line: int
    audio: str | None = None
    table_times: bool = False

    @property
    def where(self) -> str:
        """``<table>: line <n>`` for messages."""
        return f"{self.table}: line {self.line}"


@dataclass(frozen=True)
class AnnotationTable:
    """The boxes of one annotation file.

    Attributes:
        path: the file.
        format: ``raven``, ``audacity`` or ``empty`` (a blank file beside its audio).
        boxes: its boxes, in file order.
        reasons: how it was read (label column, views, encoding), without the file name, so
            equal lines of many tables can be counted once.
        names_audio: the rows name their audio (``Begin File`` / ``Begin Path``).
    """

    path: Path
    format: str
    boxes: tuple[Box, ...]
    reasons: tuple[str, ...] = ()
    names_audio: bool = False


def _number(value: str, column: str, where: str) -> float:
    text = value.strip()
    if not text:
        raise DatasetError(f"{where}: empty {column}")
    hint = {"a number": " (seconds / Hz with a decimal point)"}

    def fail(want: str) -> DatasetError:
        return DatasetError(f"{where}: {column} {value!r} is not {want}{hint.get(want, '')}")

    return finite_float(text, fail)


def _span(begin: float, end: float, where: str) -> None:
    if begin < 0 or end < 0:
        raise DatasetError(f"{where}: negative time ({begin:g} s to {end:g} s)")
    if end < begin:
        raise DatasetError(
            f"{where}: reversed times: ends at {end:g} s before it begins ({begin:g} s)"
        )
    if end == begin:
        raise DatasetError(
            f"{where}: zero-length box at {begin:g} s (a point label): give it an extent"
        )


def _band(low: float | None, high: float | None, where: str) -> None:
    if (low is not None and low < 0) or (high is not None and high < 0):
        raise DatasetError(f"{where}: negative frequency ({low} Hz to {high} Hz)")
    if low is not None and high is not None and high < low:
        raise DatasetError(f"{where}: band from {low:g} Hz down to {high:g} Hz (low above high)")


def _read_text(path: Path) -> tuple[list[str], str | None]:
    from soundtransfer.datasets.metadata import decode_text

    if not path.is_file():
        raise DatasetError(f"{path}: annotation file not found")
    text, note = decode_text(path)
    return text.splitlines(), note


# --- Raven -------------------------------------------------------------------------------


def _label_column(header: Sequence[str], wanted: str | None, path: Path) -> tuple[int, str]:
    lower = [h.lower() for h in header]
    if wanted is not None:
        if wanted.strip().lower() not in lower:
            raise DatasetError(f"{path}: no label column {wanted!r} (columns: {list(header)})")
        i = lower.index(wanted.strip().lower())
        return i, f"labels from column {header[i]!r} (chosen)"
    for name in LABEL_COLUMNS:
        if name.lower() in lower:
            i = lower.index(name.lower())
            return i, (
                f"labels from column {header[i]!r}: the first of {', '.join(LABEL_COLUMNS)} "
                "present (choose another with the label column option)"
            )
    raise DatasetError(
        f"{path}: no label column: none of {list(LABEL_COLUMNS)} among {list(header)}; "
        "name the column holding the classes"
    )


def _one_view(
    rows: list[tuple[int, list[str]]], col: dict[str, int]
) -> tuple[list[tuple[int, list[str]]], str]:
    """Each selection once: the rows of the first spectrogram view (else the first view),
    plus rows of selections that view lacks."""
    v = col.get("view")
    if v is None:
        return rows, ""
    views = list(dict.fromkeys(r[v] for _, r in rows))
    if len(views) < 2:
        return rows, ""
    keep = next((x for x in views if x.lower().startswith("spectrogram")), views[0])
    s = col.get("selection")
    picked = [(n, r) for n, r in rows if r[v] == keep]
    if s is not None:
        # Selections the kept view lacks are read once from the first other view listing them.
        chosen = {r[s] for _, r in picked}
        for n, r in rows:
            if r[v] != keep and r[s] not in chosen:
                chosen.add(r[s])
                picked.append((n, r))
        picked.sort(key=lambda item: item[0])
    why = f"Raven views {', '.join(views)}: each selection read once, from {keep!r}"
    return picked, why


def _raven_audio(row: list[str], col: dict[str, int], where: str) -> str | None:
    from soundtransfer.datasets.metadata import leaves_folder

    if BEGIN_FILE.lower() in col:
        name = row[col[BEGIN_FILE.lower()]]
        if not name:
            raise DatasetError(f"{where}: empty {BEGIN_FILE}")
    elif BEGIN_PATH.lower() in col:
        full = row[col[BEGIN_PATH.lower()]]
        if not full:
            raise DatasetError(f"{where}: empty {BEGIN_PATH}")
        name = PureWindowsPath(full).name if "\\" in full else PurePosixPath(full).name
    else:
        return None
    if leaves_folder(name):
        raise DatasetError(f"{where}: audio {name!r} is not a file name in the table's folder")
    end_i = col.get(END_FILE.lower())
    if end_i is not None and row[end_i] and row[end_i] != name:
        raise DatasetError(f"{where}: the box runs from {name} into {row[end_i]}: cut it in two")
    return name


def _raven_box(n: int, row: list[str], col: dict[str, int], label_i: int, path: Path) -> Box:
    where = f"{path}: line {n}"
    begin = _number(row[col[BEGIN.lower()]], BEGIN, where)
    end = _number(row[col[END.lower()]], END, where)
    _span(begin, end, where)
    low = _number(row[col[LOW.lower()]], LOW, where) if _has(row, col, LOW) else None
    high = _number(row[col[HIGH.lower()]], HIGH, where) if _has(row, col, HIGH) else None
    _band(low, high, where)
    label = row[label_i]
    if not label:
        raise DatasetError(f"{where}: empty label (column {label_i + 1})")
    audio = _raven_audio(row, col, where)
    table_times = False
    if audio is not None and OFFSET.lower() in col:
        offset = _number(row[col[OFFSET.lower()]], OFFSET, where)
        if offset < 0:
            raise DatasetError(f"{where}: negative {OFFSET} ({offset:g})")
        begin, end = offset, offset + (end - begin)
    elif audio is not None:
        table_times = True
    return Box(label, begin, end, low, high, path, n, audio, table_times)


def _has(row: list[str], col: dict[str, int], column: str) -> bool:
    """The row has a non-empty cell in ``column`` (case-insensitive name)."""
    i = col.get(column.lower())
    return i is not None and bool(row[i])


def read_raven(path: str | Path, label_column: str | None = None) -> AnnotationTable:
    """Read a Raven selection table (module docstring).

    Args:
        path: the tab-separated table (UTF-8, UTF-16 or Windows-1252, as
            :func:`~soundtransfer.datasets.metadata.decode_text`).
        label_column: the column holding the classes; default the first of
            :data:`LABEL_COLUMNS` present.

    Returns:
        The table's boxes (no box: the table is empty; the caller decides what that means).

    Raises:
        DatasetError: naming the file (and line): no header, a missing time or label column,
            a row with more cells than the header, a bad time, band or audio name.
    """
    path = Path(path)
    lines, note = _read_text(path)
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise DatasetError(f"{path}: empty file (no header)")
    header = [h.strip() for h in numbered[0][1].split("\t")]
    lowered = [h.lower() for h in header]
    twice = sorted({h for h in lowered if h and lowered.count(h) > 1})
    if twice:  # which of the two would be read is a guess: refuse
        raise DatasetError(
            f"{path}: line {numbered[0][0]}: column {twice[0]!r} given twice (columns: {header})"
        )
    col = {h.lower(): i for i, h in enumerate(header)}
    missing = [c for c in (BEGIN, END) if c.lower() not in col]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing} (columns: {header})")
    label_i, label_why = _label_column(header, label_column, path)
    rows: list[tuple[int, list[str]]] = []
    for n, line in numbered[1:]:
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) > len(header):
            raise DatasetError(
                f"{path}: line {n}: {len(cells)} cells, the header has {len(header)}"
            )
        rows.append((n, cells + [""] * (len(header) - len(cells))))
    rows, view_why = _one_view(rows, col)
    boxes = tuple(_raven_box(n, r, col, label_i, path) for n, r in rows)
    reasons = [label_why] + ([view_why] if view_why else []) + ([note] if note else [])
    names_audio = BEGIN_FILE.lower() in col or BEGIN_PATH.lower() in col
    return AnnotationTable(path, "raven", boxes, tuple(reasons), names_audio)


# --- Audacity ----------------------------------------------------------------------------


def read_audacity(path: str | Path) -> AnnotationTable:
    """Read an Audacity label track: ``start<TAB>end<TAB>label`` lines, each optionally
    followed by a spectral ``\\<TAB>low<TAB>high`` line.

    Raises:
        DatasetError: naming the file and line: fewer than 2 fields, a bad time, an empty
            label, a spectral line with no label before it, a bad band.
    """
    path = Path(path)
    lines, note = _read_text(path)
    boxes: list[Box] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}: line {n}"
        fields = line.split("\t")
        if fields[0].strip() == "\\":
            if not boxes or boxes[-1].line != n - 1:
                raise DatasetError(f"{where}: a spectral line (\\) with no label line before it")
            if len(fields) < 3:
                raise DatasetError(f"{where}: a spectral line needs \\<TAB>low<TAB>high")
            low, high = (_number(fields[i], f"frequency {i}", where) for i in (1, 2))
            _band(low, high, where)
            boxes[-1] = replace(boxes[-1], low_hz=low, high_hz=high)
            continue
        if len(fields) < 2:
            raise DatasetError(f"{where}: expected start<TAB>end<TAB>label, got {line!r}")
        start, end = _number(fields[0], "start", where), _number(fields[1], "end", where)
        _span(start, end, where)
        label = "\t".join(fields[2:]).strip()
        if not label:
            raise DatasetError(f"{where}: empty label")
        boxes.append(Box(label, start, end, None, None, path, n))
    return AnnotationTable(path, "audacity", tuple(boxes), (note,) if note else ())


def sniff_format(path: Path) -> str | None:
    """``raven``, ``audacity``, ``empty`` (no non-blank line) or None (neither) from a text
    file's first non-blank line; unreadable files are None."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    text = head.decode("utf-16" if utf16 else "utf-8", errors="replace")  # a guess, not a read
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        return "empty"
    fields = [f.strip().lstrip("\ufeff") for f in first.split("\t")]
    if len(fields) > 1 and any(f.lower() == m.lower() for f in fields for m in RAVEN_MARKERS):
        return "raven"
    if fields[0] == "\\" or re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", fields[0]):
        return "audacity"
    return None


# --- windows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MinOverlap:
    """How much of a box a window must hold to get its class: ``seconds`` or ``fraction``.

    The requirement is capped by the box's and the window's lengths: a box the window holds
    whole, or a window lying inside a box, always counts.
    """

    seconds: float | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        s, f = self.seconds, self.fraction
        if (s is None) == (f is None):
            raise ConfigError("min_overlap: give seconds or a fraction of the box (one of them)")
        if s is not None and not (math.isfinite(s) and s > 0):
            raise ConfigError(f"min_overlap {s!r} s: must be a positive number of seconds")
        if f is not None and not (math.isfinite(f) and 0 < f <= 1):
            raise ConfigError(f"min_overlap fraction {f!r}: must be in (0, 1] (0-100 %)")

    @classmethod
    def parse(cls, text: str) -> MinOverlap:
        """``"0.25s"`` (seconds) or ``"50%"`` (of the box).

        Raises:
            ConfigError: anything else (a bare number is refused: its unit would be a guess).
        """
        t = text.strip().lower().replace(" ", "")
        try:
            value = float(t[:-1]) if t[-1:] in ("%", "s") else None
        except ValueError:
            value = None
        if value is not None:  # built outside the try: ConfigError is a ValueError too
            return cls(fraction=value / 100) if t.endswith("%") else cls(seconds=value)
        raise ConfigError(
            f"min_overlap {text!r}: give seconds ('0.25s') or a percentage of the box ('50%')"
        )

    def required(self, box_s: ArrayLike, window_s: float) -> NDArray[np.float64]:
        """Seconds of overlap a window of ``window_s`` needs with boxes of ``box_s`` (a
        duration or an array of them)."""
        cap = np.minimum(np.asarray(box_s, dtype=np.float64), window_s)
        if self.seconds is not None:
            return np.minimum(cap, self.seconds)
        return cap * float(self.fraction or 0.0)

    def describe(self) -> str:
        """One line for the user."""
        what = (
            f"{self.seconds:g} s of the box"
            if self.seconds is not None
            else f"{100 * float(self.fraction or 0):g} % of the box"
        )
        return (
            f"min overlap: a window gets a class when it holds {what} (or the whole box, or "
            "lies inside it)"
        )


@dataclass(frozen=True)
class WindowOptions:
    """How recordings are cut and labelled (module docstring).

    Attributes:
        window_s: window length in seconds; None: inferred (:func:`infer_window`).
        hop_s: seconds between window starts, at most the window; None: half the window.
        min_overlap: see :class:`MinOverlap` (default half the box).
        unannotated: ``negative`` (windows overlapping no box are all-zero targets) or
            ``ignore`` (left out).
        empty_tables: ``error`` (a recording whose table has no box) or ``negative`` (such a
            recording is all negatives).
        label_column: Raven column holding the classes (default: :data:`LABEL_COLUMNS`).
        background: labels meaning "no event" (``noise``): their boxes are negatives.
    """

    window_s: float | None = None
    hop_s: float | None = None
    min_overlap: MinOverlap = MinOverlap(fraction=0.5)
    unannotated: str = "negative"
    empty_tables: str = "error"
    label_column: str | None = None
    background: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("window_s", "hop_s"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} {v!r}: must be a positive number of seconds")
        if self.window_s is not None and self.hop_s is not None and self.hop_s > self.window_s:
            raise ConfigError(
                f"hop_s {self.hop_s:g} is longer than window_s {self.window_s:g}: the gaps "
                "between windows would drop boxes"
            )
        if self.unannotated not in UNANNOTATED:
            raise ConfigError(f"unannotated {self.unannotated!r}: choose {list(UNANNOTATED)}")
        if self.empty_tables not in EMPTY_TABLES:
            raise ConfigError(f"empty_tables {self.empty_tables!r}: choose {list(EMPTY_TABLES)}")


@dataclass(frozen=True)
class Recording:
    """One annotated audio file.

    Attributes:
        file: path relative to the root read (POSIX separators).
        duration_s: its length from the file header.
        boxes: its boxes (may be empty).
        tables: the annotation file(s) its boxes came from.
    """

    file: str
    duration_s: float
    boxes: tuple[Box, ...]
    tables: tuple[Path, ...]


@dataclass(frozen=True)
class Window:
    """One labelled window of a recording.

    Attributes:
        file: the recording, relative to ``AnnotatedWindows.root``.
        start_s, end_s: the window in the recording (``end_s`` is the recording's end for a
            recording shorter than the window).
        labels: the classes present, sorted (empty: a negative).
        group: the recording (``file``): every window of one recording in one fold.
    """

    file: str
    start_s: float
    end_s: float
    labels: tuple[str, ...]
    group: str


@dataclass(frozen=True)
class AnnotatedWindows:
    """Windows cut from annotated recordings, with the classes and the reasons.

    Attributes:
        root: the folder the files are relative to.
        windows: every window kept, by recording then start.
        classes: class names, sorted (background labels excluded).
        window_s, hop_s: the window length and hop used.
        reasons: lines for the user: what was read, the window and why, the counts, notes.
        recordings: the recordings read, with their boxes.
    """

    root: Path
    windows: tuple[Window, ...]
    classes: tuple[str, ...]
    window_s: float
    hop_s: float
    reasons: tuple[str, ...]
    recordings: tuple[Recording, ...]


def infer_window(durations_s: Sequence[float]) -> tuple[float, str]:
    """A window length from the boxes' durations, and the reason.

    The median box duration rounded up to the next of :data:`WINDOW_CHOICES_S` (so a
    typical event fits whole in a window), at least the first and at most the last of them
    (longer events label every window inside them).

    Raises:
        DatasetError: no box to infer from.
    """
    if not durations_s:
        raise DatasetError("no box to infer the window length from: give the window length")
    med = float(np.median(np.asarray(durations_s, dtype=np.float64)))
    lo, hi = WINDOW_CHOICES_S[0], WINDOW_CHOICES_S[-1]
    what = f"the median box duration ({med:.2f} s over {len(durations_s)} boxes)"
    if med > hi:
        return hi, f"window {hi:g} s: {what} is over the longest inferred, {hi:g} s"
    window = next(w for w in WINDOW_CHOICES_S if w >= med - _EPS)
    if window == lo and med < lo - _EPS:
        return lo, f"window {lo:g} s: {what} is under the shortest inferred; give a shorter one"
    steps = ", ".join(f"{w:g}" for w in WINDOW_CHOICES_S)
    return window, f"window {window:g} s: {what} rounded up to the next of {steps} s"


def window_starts(duration_s: float, window_s: float, hop_s: float) -> list[float]:
    """Start times (s) of the windows of a recording (module docstring), rounded to 1 us."""
    if duration_s <= window_s + _EPS:
        return [0.0]
    n = math.floor((duration_s - window_s) / hop_s + 1e-9)
    starts = [round(k * hop_s, 6) for k in range(n + 1)]
    if duration_s - (starts[-1] + window_s) > _EPS:
        starts.append(round(duration_s - window_s, 6))
    return starts


def _check_ends(rec: Recording) -> None:
    for b in rec.boxes:
        if b.end_s > rec.duration_s + END_TOLERANCE_S:
            hint = (
                f"; this table gives no {OFFSET!r}: if it covers several files, its "
                f"{BEGIN!r} counts from the first"
                if b.table_times
                else ""
            )
            raise DatasetError(
                f"{b.where}: box {b.start_s:g}-{b.end_s:g} s ends after the end of {rec.file} "
                f"({rec.duration_s:.3f} s){hint}"
            )


def casefold_set(names: Sequence[str]) -> frozenset[str]:
    """Names as labels are compared with them: ignoring case (the background names)."""
    return frozenset(n.casefold() for n in names)


def refuse_case_clash(named: Iterable[tuple[str, str]]) -> None:
    """Refuse two spellings of one label that differ only by case (``Dog`` and ``dog``): two
    classes of one sound, split silently. ``named``: ``(label, where it is read)`` pairs in
    reading order (a table's line, a class folder); the error names both places.

    Raises:
        DatasetError: at the second spelling.
    """
    seen: dict[str, tuple[str, str]] = {}
    for name, where in named:
        first = seen.setdefault(name.casefold(), (name, where))
        if first[0] != name:
            raise DatasetError(
                f"{where}: label {name!r} differs only by case from {first[0]!r} ({first[1]}); "
                "spell one class one way"
            )


def is_background(label: str, keys: frozenset[str]) -> bool:
    """Whether a box label is one of the background names (``keys``: :func:`casefold_set`)."""
    return label.casefold() in keys


@dataclass(frozen=True)
class _Boxes:
    """A recording's boxes as arrays (one window's overlaps in a few numpy operations)."""

    start: NDArray[np.float64]
    end: NDArray[np.float64]
    labels: tuple[str, ...]
    background: NDArray[np.bool_]

    @classmethod
    def of(cls, boxes: Sequence[Box], background: frozenset[str]) -> _Boxes:
        """``background``: the background names' :func:`casefold_set`."""
        return cls(
            np.asarray([b.start_s for b in boxes], dtype=np.float64),
            np.asarray([b.end_s for b in boxes], dtype=np.float64),
            tuple(b.label for b in boxes),
            np.asarray([is_background(b.label, background) for b in boxes], dtype=bool),
        )


def _window_labels(
    start: float, end: float, boxes: _Boxes, min_overlap: MinOverlap, used: NDArray[np.bool_]
) -> tuple[tuple[str, ...], str]:
    """A window's classes and its kind: ``labelled``, ``background``, ``unannotated`` or
    ``grazing`` (only touches boxes, by less than the minimum); marks the boxes it uses."""
    overlap = np.minimum(end, boxes.end) - np.maximum(start, boxes.start)
    touch = overlap > _EPS
    if not touch.any():
        return (), "unannotated"
    need = min_overlap.required(boxes.end - boxes.start, end - start)
    reached = touch & (overlap >= need - _EPS)
    events = reached & ~boxes.background
    if events.any():
        used |= events
        return tuple(sorted({boxes.labels[i] for i in np.flatnonzero(events)})), "labelled"
    if (reached & boxes.background).any():
        return (), "background"
    return (), "grazing" if (touch & ~boxes.background).any() else "unannotated"


def _recording_windows(
    rec: Recording,
    window_s: float,
    hop_s: float,
    options: WindowOptions,
    counts: Counter[str],
    background: frozenset[str],
) -> tuple[list[Window], NDArray[np.bool_]]:
    """The kept windows of one recording, and which of its boxes label one (``background``:
    the background names' :func:`casefold_set`)."""
    out: list[Window] = []
    arrays = _Boxes.of(rec.boxes, background)
    used = np.zeros(len(rec.boxes), dtype=bool)
    for start in window_starts(rec.duration_s, window_s, hop_s):
        end = round(min(start + window_s, rec.duration_s), 6)
        labels: tuple[str, ...] = ()
        if not rec.boxes:
            kind = "empty table"
        else:
            labels, kind = _window_labels(start, end, arrays, options.min_overlap, used)
        counts[kind] += 1
        keep = kind in ("labelled", "background", "empty table") or (
            kind == "unannotated" and options.unannotated == "negative"
        )
        if keep:
            out.append(Window(rec.file, start, end, labels, rec.file))
    return out, used


def _count_line(counts: Counter[str], options: WindowOptions) -> str:
    kept_negative = counts["background"] + counts["empty table"]
    if options.unannotated == "negative":
        kept_negative += counts["unannotated"]
    parts = [f"{counts['labelled']} with labels", f"{kept_negative} negatives"]
    detail = [f"{counts[k]} {k}" for k in ("unannotated", "background", "empty table") if counts[k]]
    line = f"windows: {counts['labelled'] + kept_negative} ({', '.join(parts)})"
    line += f" [{', '.join(detail)}]" if detail else ""
    if options.unannotated == "ignore" and counts["unannotated"]:
        line += f"; {counts['unannotated']} unannotated window(s) ignored (by option)"
    if counts["grazing"]:
        line += (
            f"; {counts['grazing']} window(s) left out: they touch a box by less than the min "
            "overlap, so are neither positive nor a clean negative"
        )
    return line


def _window_and_hop(
    recordings: Sequence[Recording], options: WindowOptions
) -> tuple[float, float, list[str]]:
    if options.window_s is not None:
        window, why = options.window_s, f"window {options.window_s:g} s: given"
    else:
        window, why = infer_window([b.end_s - b.start_s for r in recordings for b in r.boxes])
    if options.hop_s is None:
        return window, window / 2, [why, f"hop {window / 2:g} s: half the window"]
    if options.hop_s > window + _EPS:
        raise ConfigError(
            f"hop_s {options.hop_s:g} is longer than the window ({window:g} s): the gaps "
            "between windows would drop boxes"
        )
    return window, options.hop_s, [why, f"hop {options.hop_s:g} s: given"]


def cut_windows(
    recordings: Sequence[Recording],
    options: WindowOptions | None = None,
    root: Path | None = None,
) -> AnnotatedWindows:
    """Cut annotated recordings into labelled windows (module docstring). Pure: no file read.

    Args:
        recordings: the recordings with their boxes and durations.
        options: window length, hop, min overlap, unannotated / empty-table policy.
        root: recorded in the result (the folder the files are relative to).

    Returns:
        The windows, the classes (sorted, background labels out) and the reasons.

    Raises:
        DatasetError: a box past the end of its audio, an empty table without
            ``empty_tables="negative"``, no class at all, or no window kept.
        ConfigError: a hop longer than the (inferred) window.
    """
    options = options or WindowOptions()
    for rec in recordings:
        if not rec.boxes and options.empty_tables == "error":
            tables = ", ".join(str(t) for t in rec.tables) or "its table"
            raise DatasetError(
                f"{tables}: an empty table (no box) for {rec.file}; to use the recording as "
                "all negatives, ask for empty tables to count as negatives"
            )
        _check_ends(rec)
    back = casefold_set(options.background)
    labelled = [b for r in recordings for b in r.boxes if not is_background(b.label, back)]
    refuse_case_clash((b.label, b.where) for b in labelled)
    classes = tuple(sorted({b.label for b in labelled}))
    if not classes:
        raise DatasetError("no class: every box is background (or there is no box)")
    window, hop, reasons = _window_and_hop(recordings, options)
    counts: Counter[str] = Counter()
    windows: list[Window] = []
    unused: list[Box] = []
    for rec in recordings:
        got, used = _recording_windows(rec, window, hop, options, counts, back)
        windows += got
        unused += [
            b
            for b, u in zip(rec.boxes, used, strict=True)
            if not u and not is_background(b.label, back)
        ]
    reasons += [options.min_overlap.describe(), _count_line(counts, options)]
    if unused:
        reasons.append(
            f"{len(unused)} box(es) label no window (no window holds enough of them), first: "
            f"{unused[0].where} ({unused[0].label}, {unused[0].start_s:g}-{unused[0].end_s:g} s)"
        )
    if not windows:
        raise DatasetError("no window kept: every window was unannotated (ignored) or grazing")
    return AnnotatedWindows(
        root or Path("."), tuple(windows), classes, window, hop, tuple(reasons), tuple(recordings)
    )


# --- folders -----------------------------------------------------------------------------


def _visible_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _match_audio(text: Path, audio: Sequence[Path]) -> Path | None:
    """The audio beside ``text`` whose stem starts its name (``rec`` for ``rec.txt``,
    ``rec.Table.1.selections.txt``); the longest such stem wins.

    Raises:
        DatasetError: two audio files of that stem (``rec.wav`` and ``rec.flac``).
    """
    fits = [a for a in audio if a.parent == text.parent and text.name.startswith(a.stem + ".")]
    if not fits:
        return None
    longest = max(len(a.stem) for a in fits)
    best = [a for a in fits if len(a.stem) == longest]
    if len(best) > 1:
        raise DatasetError(
            f"{text}: annotates {', '.join(a.name for a in best)} alike: keep one audio file "
            "per name"
        )
    return best[0]


def _rows_audio(table: AnnotationTable) -> dict[Path, list[Box]]:
    """Boxes of a ``Begin File`` table per audio file (found in the table's folder)."""
    from soundtransfer.datasets.metadata import resolve_audio

    by: dict[Path, list[Box]] = {}
    for b in table.boxes:
        found = resolve_audio(table.path.parent, str(b.audio))
        if found is None:
            raise DatasetError(
                f"{b.where}: audio file {b.audio!r} not found in {table.path.parent}"
            )
        by.setdefault(found, []).append(b)
    return by


def _read_matched(text: Path, fmt: str | None, label_column: str | None) -> AnnotationTable:
    if fmt == "raven":
        return read_raven(text, label_column)
    if fmt == "empty":
        return AnnotationTable(text, "empty", ())
    return read_audacity(text)  # an Audacity track, or a file that must be one (strict)


def _gather(
    texts: Iterable[Path], audio: Sequence[Path], label_column: str | None, notes: list[str]
) -> tuple[dict[Path, list[AnnotationTable]], list[AnnotationTable]]:
    """Annotation tables per audio file, and every table read."""
    sources: dict[Path, list[AnnotationTable]] = {}
    tables: list[AnnotationTable] = []
    for text in texts:
        fmt = sniff_format(text)
        table = read_raven(text, label_column) if fmt == "raven" else None
        if table is not None and table.names_audio:
            by_audio = _rows_audio(table)
            for path, boxes in by_audio.items():
                sources.setdefault(path, []).append(replace(table, boxes=tuple(boxes)))
            if len(by_audio) > 1 and any(b.table_times for b in table.boxes):
                notes.append(
                    f"{text}: names {len(by_audio)} audio files without {OFFSET!r}: its "
                    f"{BEGIN!r} is taken as the time in each file (add {OFFSET!r} in Raven if "
                    "it counts along the file sequence)"
                )
            tables.append(table)
            continue
        match = _match_audio(text, audio)
        if match is None:
            if fmt in ("raven", "audacity"):
                raise DatasetError(
                    f"{text}: a {fmt} annotation file but no audio beside it whose name starts "
                    f"its name (e.g. {text.name.split('.')[0]}.wav)"
                )
            notes.append(f"{text}: not an annotation table, not read")
            continue
        table = table if table is not None else _read_matched(text, fmt, label_column)
        sources.setdefault(match, []).append(table)
        tables.append(table)
    return sources, tables


def _recordings(
    root: Path, audio: Sequence[Path], sources: dict[Path, list[AnnotationTable]]
) -> list[Recording]:
    from soundtransfer.datasets.own import audio_info

    out = []
    for path in audio:
        found = sources.get(path, [])
        if not found:
            continue
        if len(found) > 1:
            raise DatasetError(
                f"{path}: {len(found)} annotation files ({', '.join(str(t.path) for t in found)}): "
                "keep one, or its boxes would be read twice"
            )
        _, duration = audio_info(path)
        rel = path.relative_to(root).as_posix()
        out.append(Recording(rel, duration, found[0].boxes, (found[0].path,)))
    return out


def _summary(
    root: Path, recordings: Sequence[Recording], tables: Sequence[AnnotationTable]
) -> list[str]:
    kinds = Counter(t.format for t in tables)
    n_boxes = sum(len(r.boxes) for r in recordings)
    what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    lines = [f"{root}: {len(recordings)} annotated recording(s), {n_boxes} boxes ({what} file(s))"]
    told = Counter(r for t in tables for r in t.reasons)
    lines += [r + (f" ({n} tables)" if n > 1 else "") for r, n in told.items()]
    return lines


def scan_annotations(
    path: str | Path, label_column: str | None = None
) -> tuple[Path, list[Recording], list[str]]:
    """Find the annotated recordings of a folder (or of one Raven table) and their boxes.

    Args:
        path: a folder (searched at any depth: audio of :data:`~soundtransfer.datasets.own.
            AUDIO_EXTENSIONS`, annotation files ``*.txt``), or one Raven table naming its
            audio (``Begin File``) or annotating the recording beside it.
        label_column: Raven column holding the classes.

    Returns:
        The root (the folder, or the table's folder), the recordings, and lines for the user
        (what was read, how each table was read, notes on unused files).

    Raises:
        DatasetError: see the module docstring; also no annotation file at all.
    """
    from soundtransfer.datasets.own import AUDIO_EXTENSIONS

    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: not found")
    root = path if path.is_dir() else path.parent
    files = (
        _visible_files(root) if path.is_dir() else sorted(p for p in root.iterdir() if p.is_file())
    )
    audio = [f for f in files if f.suffix.lower() in AUDIO_EXTENSIONS]
    texts = (
        [f for f in files if f.suffix.lower() in ANNOTATION_SUFFIXES] if path.is_dir() else [path]
    )
    notes: list[str] = []
    sources, tables = _gather(texts, audio, label_column, notes)
    recordings = _recordings(root, audio, sources)
    if not recordings:
        raise DatasetError(
            f"{path}: no annotated recording (audio with a Raven table or Audacity labels)"
        )
    lines = _summary(root, recordings, tables)
    if path.is_dir():
        bare = [a.relative_to(root).as_posix() for a in audio if a not in sources]
        if bare:
            shown = ", ".join(bare[:5]) + (", ..." if len(bare) > 5 else "")
            notes.append(f"{len(bare)} audio file(s) without an annotation file, not used: {shown}")
    return root, recordings, lines + [f"note: {n}" for n in notes]


def read_annotations(path: str | Path, options: WindowOptions | None = None) -> AnnotatedWindows:
    """Read annotated recordings and cut them into labelled windows: :func:`scan_annotations`
    then :func:`cut_windows`; the reasons hold both's lines.

    Raises:
        DatasetError: any fault of the tables or audio (file and line named).
        ConfigError: a hop longer than the inferred window.
    """
    options = options or WindowOptions()
    root, recordings, lines = scan_annotations(path, options.label_column)
    cut = cut_windows(recordings, options, root)
    read = [x for x in lines if not x.startswith("note: ")]
    notes = [x for x in lines if x.startswith("note: ")]
    return replace(cut, reasons=(*read, *cut.reasons, *notes))
