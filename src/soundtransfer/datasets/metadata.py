"""Shared checks of the dataset readers: CSV columns, integers, audio files, folds and leakage.

Every reader turns official metadata rows into :class:`Clip` records through these helpers, so
each fault is reported the same way: a :class:`DatasetError` naming the metadata file and the
row (its 1-based line number in the file, the header being line 1, blank lines counted).
Spreadsheet exports are read as they come: a UTF-8 byte-order mark, UTF-16, or a Windows-1252 /
Latin-1 file (read with a note in the table's notes, never an error).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from soundtransfer.datasets.clips import Clip, ClipTable
from soundtransfer.errors import DatasetError

# Tried in this order when the file named by the metadata is absent (a FLAC / OGG copy of a
# WAV release, or GTZAN's original .au).
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".au", ".mp3", ".aiff", ".aif")
MISSING_POLICIES = ("error", "skip")


class Row(dict[str, str]):
    """One metadata row, column -> value, with ``line``: its first line in the file (1-based;
    blank lines and line breaks inside quoted fields are counted, as an editor shows them)."""

    line: int

    def __init__(self, line: int, items: Iterable[tuple[str, str]]) -> None:
        super().__init__(items)
        self.line = line


class Rows(list[Row]):
    """The rows of a metadata file, with ``notes`` on how it was read (e.g. its encoding)."""

    notes: tuple[str, ...] = ()


def decode_text(path: Path) -> tuple[str, str | None]:
    """A text file's contents and a note when it was not UTF-8.

    UTF-8 with or without the byte-order mark Excel's "CSV UTF-8" writes; UTF-16 with its
    mark (Excel's "Unicode text"); otherwise the file is read as Windows-1252 (Excel's "CSV"
    on Western Windows; a superset of Latin-1's printable characters), or Latin-1 for the
    five bytes Windows-1252 leaves undefined, and the note says so: a wrong guess shows as
    odd characters in names, which the file checks then report.
    """
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), None
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{path}: not valid UTF-16 ({exc.reason} at byte {exc.start})"
            ) from None
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        where = f"byte 0x{raw[exc.start]:02x} on line {line}"
    for encoding, label in (("cp1252", "Windows-1252"), ("latin-1", "Latin-1")):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text, f"{path}: not UTF-8 ({where}); read as {label}"
    raise AssertionError("Latin-1 decodes any bytes")  # pragma: no cover


def read_csv(path: Path, required: tuple[str, ...], *, path_columns: tuple[str, ...] = ()) -> Rows:
    """Rows of a metadata CSV, with the required columns checked.

    The encoding is found by :func:`decode_text` (a note says when it was not UTF-8); column
    names are stripped of spaces; blank lines and rows whose fields are all empty (the
    ``,,,,`` lines spreadsheets leave) are skipped; each row keeps its line number.

    Args:
        path: the CSV file.
        required: columns that must be present.
        path_columns: columns holding file names, which must be relative paths that stay in
            their folder (no absolute path, drive or ``..``).

    Raises:
        DatasetError: the file is absent or unreadable as CSV, lacks a required column, has
            a row with more or fewer fields than the header, a path column leaving its
            folder, or no rows.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: metadata file not found")
    text, note = decode_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = Rows()
    rows.notes = (note,) if note else ()
    header: list[str] | None = None
    start = 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip() for f in fields]
                missing = [c for c in required if c not in header]
                if missing:
                    raise DatasetError(f"{path}: missing column(s) {missing} (found {header})")
                continue
            if len(fields) != len(header):
                raise DatasetError(
                    f"{path}: line {line}: {len(fields)} fields, the header has {len(header)}"
                )
            row = Row(line, zip(header, fields, strict=True))
            for column in path_columns:
                check_relative(row[column], column, path, line)
            rows.append(row)
    except csv.Error as exc:
        raise DatasetError(f"{path}: line {reader.line_num}: not readable as CSV ({exc})") from None
    if header is None:
        raise DatasetError(f"{path}: empty file (no header)")
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def leaves_folder(name: str) -> bool:
    """True if a metadata file name is absolute (POSIX or Windows) or climbs out with ``..``."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    return (
        posix.is_absolute()
        or bool(windows.drive or windows.root)
        or ".." in posix.parts
        or ".." in windows.parts
    )


def check_relative(name: str, column: str, meta: Path, line: int) -> None:
    """A file name from the metadata is a relative path inside its folder."""
    if leaves_folder(name):
        raise DatasetError(
            f"{meta}: line {line}: {column} {name!r} is not a file name inside the dataset's "
            "audio folder (absolute paths and '..' are not allowed)"
        )


def parse_int(value: str | None, column: str, meta: Path, line: int) -> int:
    """``int(value)`` or a DatasetError naming the file, line and column."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise DatasetError(f"{meta}: line {line}: {column} {value!r} is not an integer") from None


def resolve_audio(folder: Path, name: str) -> Path | None:
    """The audio file for a metadata file name, or None when there is none.

    ``folder / name`` if it exists, else the same stem with another audio extension from
    :data:`AUDIO_EXTS` (so metadata naming ``x.wav`` works with a FLAC or OGG copy).

    Raises:
        DatasetError: ``name`` is absolute or leaves ``folder`` (``..``).
    """
    if leaves_folder(name):
        raise DatasetError(
            f"{folder}: the metadata names {name!r}, not a file name inside this folder "
            "(absolute paths and '..' are not allowed)"
        )
    path = folder / name
    if path.is_file():
        return path
    stem = Path(name).stem
    for ext in AUDIO_EXTS:
        alt = folder / f"{stem}{ext}"
        if alt.is_file():
            return alt
    return None


def check_fold(fold: int, n_folds: int, meta: Path, line: int, file: str) -> None:
    """Official folds are 1..n_folds."""
    if not 1 <= fold <= n_folds:
        raise DatasetError(f"{meta}: line {line}: fold {fold} outside 1..{n_folds} ({file})")


def check_no_leakage(name: str, clips: list[Clip]) -> None:
    """A source recording with one class in two folds would leak between train and test.

    The official folds keep each (source recording, class) pair in one fold, not each
    recording: a few recordings were cut into clips of two classes that sit in two folds (in the
    official metadata, 4 ``src_file`` of ESC-50, e.g. 131943 as clock_tick in fold 2 and
    clock_alarm in fold 3, and 5 ``fsID`` of UrbanSound8K). So the check is on the pair.
    Readers call it on every metadata row, present on disk or not.

    Raises:
        DatasetError: naming the group, its class, both folds and one of its files.
    """
    seen: dict[tuple[str, int], int] = {}
    for c in clips:
        if not c.group:
            continue
        first = seen.setdefault((c.group, c.label), c.fold)
        if first != c.fold:
            raise DatasetError(
                f"{name}: source {c.group!r} with label {c.label} appears in folds {first} and "
                f"{c.fold} (e.g. {c.file}): train and test would share a recording"
            )


def check_unique(names: list[str], meta: Path) -> None:
    """Each file is named once in the metadata."""
    counts = Counter(names)
    dup = sorted(n for n, k in counts.items() if k > 1)
    if dup:
        raise DatasetError(f"{meta}: {len(dup)} file name(s) listed more than once: {dup[:5]}")


def finish(
    name: str,
    root: Path,
    classes: tuple[str, ...],
    clips: list[Clip],
    missing: list[str],
    on_missing: str,
    *,
    protocol: str = "kfold",
    notes: tuple[str, ...] = (),
) -> ClipTable:
    """Apply the missing-file policy and the table-wide checks, and build the table.

    Args:
        name: dataset name.
        root: dataset root.
        classes: class names, index = label.
        clips: clips whose audio was found (paths relative to ``root``).
        missing: metadata file names whose audio was not found.
        on_missing: ``"error"`` (raise, listing the first few) or ``"skip"`` (a note).
        protocol: ``kfold`` or ``fixed``.
        notes: notes to carry into the table.

    Raises:
        DatasetError: missing audio (with ``"error"``), no clip at all, or two metadata rows
            resolving to one file.
    """
    if missing and on_missing == "error":
        raise DatasetError(
            f"{name}: {len(missing)} audio file(s) named in the metadata are missing under "
            f"{root} (first: {', '.join(missing[:5])}); pass missing='skip' (--missing skip) "
            "to leave them out with a note"
        )
    if missing:
        shown = ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else "")
        notes = (*notes, f"{len(missing)} clip(s) missing on disk were left out: {shown}")
    if not clips:
        raise DatasetError(f"{name}: no audio found under {root}")
    files = Counter(c.file for c in clips)
    dup = sorted(f for f, k in files.items() if k > 1)
    if dup:
        raise DatasetError(f"{name}: several metadata rows resolve to the same file: {dup[:5]}")
    return ClipTable(name, root, classes, tuple(clips), protocol, notes)
