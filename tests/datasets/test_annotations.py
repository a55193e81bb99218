"""Raven selection tables and Audacity label tracks over long recordings made of real clips.

The recordings join ESC-10 clips at known places (some overlapping), so the true label of
every window is known from the construction; the tables say where the clips are.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.audio.io import load_clip
from soundtransfer.datasets import load_dataset
from soundtransfer.datasets.annotations import (
    MinOverlap,
    WindowOptions,
    infer_window,
    read_annotations,
    read_audacity,
    read_raven,
    sniff_format,
    window_starts,
)
from soundtransfer.errors import ConfigError, DatasetError

RATE = 44100
CLIP_S = 5
HEADER = [
    "Selection", "View", "Channel", "Begin Time (s)", "End Time (s)",
    "Low Freq (Hz)", "High Freq (Hz)", "Species",
]  # fmt: skip
# recA.flac, 20 s: dog 0-5, silence 5-10, rooster 10-15 under rain 12.5-17.5, silence to 20.
REC_A = [("dog", 0.0), ("rooster", 10.0), ("rain", 12.5)]
# recB.wav, 10 s: crying baby 0-5, sea waves 5-10.
REC_B = [("crying_baby", 0.0), ("sea_waves", 5.0)]


def raven_table(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    lines = ["\t".join(header)] + ["\t".join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def raven_rows(events: list[tuple[str, float]], views: bool = True) -> list[list[object]]:
    """One Spectrogram row per event, and the Waveform copy Raven writes beside it."""
    rows: list[list[object]] = []
    for k, (label, start) in enumerate(events, start=1):
        box = [f"{start:.6f}", f"{start + CLIP_S:.6f}", 150.0, 9000.0, label]
        if views:
            rows.append([k, "Waveform 1", 1, *box])
        rows.append([k, "Spectrogram 1", 1, *box])
    return rows


@pytest.fixture(scope="module")
def clips(esc10_root: Path) -> dict[str, np.ndarray]:
    """The first fold-1 clip of each class used, 5 s at 44.1 kHz."""
    table = load_dataset("esc10", esc10_root)
    out: dict[str, np.ndarray] = {}
    for i, c in enumerate(table.clips):
        name = table.classes[c.label]
        if c.fold == 1 and name not in out:
            out[name] = load_clip(table.path(i), RATE, CLIP_S * RATE)
    return out


def join(
    clips: dict[str, np.ndarray], events: list[tuple[str, float]], seconds: float
) -> np.ndarray:
    wave = np.zeros(int(seconds * RATE), dtype=np.float64)
    for label, start in events:
        at = round(start * RATE)
        wave[at : at + CLIP_S * RATE] += clips[label]
    return (0.5 * wave / max(1.0, np.abs(wave).max())).astype(np.float32)


@pytest.fixture(scope="module")
def recordings(clips: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder: recA.flac + its Raven table (two views), recB.wav + its Audacity track (a
    spectral line on one label), an audio file without annotations and a README."""
    root = tmp_path_factory.mktemp("annotated")
    sf.write(root / "recA.flac", join(clips, REC_A, 20.0), RATE, subtype="PCM_16")
    raven_table(root / "recA.Table.1.selections.txt", raven_rows(REC_A))
    sub = root / "site2"
    sub.mkdir()
    sf.write(sub / "recB.wav", join(clips, REC_B, 10.0), RATE, subtype="PCM_16")
    (sub / "recB.txt").write_text(
        "0.000000\t5.000000\tcrying_baby\n5.000000\t10.000000\tsea_waves\n\\\t100.0\t8000.0\n"
    )
    sf.write(root / "loose.flac", clips["dog"], RATE, subtype="PCM_16")
    (root / "README.txt").write_text("Recorded at two sites in May.\n")
    return root


def _by_file(windows: object) -> dict[str, list[tuple[float, tuple[str, ...]]]]:
    out: dict[str, list[tuple[float, tuple[str, ...]]]] = {}
    for w in windows:  # type: ignore[attr-defined]
        out.setdefault(w.file, []).append((w.start_s, w.labels))
    return out


EXPECTED_A = [
    (0.0, ("dog",)), (2.5, ("dog",)), (5.0, ()), (7.5, ("rooster",)),
    (10.0, ("rain", "rooster")), (12.5, ("rain", "rooster")), (15.0, ("rain",)),
]  # fmt: skip
EXPECTED_B = [(0.0, ("crying_baby",)), (2.5, ("crying_baby", "sea_waves")), (5.0, ("sea_waves",))]


def test_folder_of_raven_and_audacity_annotations(recordings: Path) -> None:
    got = read_annotations(recordings, WindowOptions(window_s=5, hop_s=2.5))
    assert got.classes == ("crying_baby", "dog", "rain", "rooster", "sea_waves")
    assert _by_file(got.windows) == {"recA.flac": EXPECTED_A, "site2/recB.wav": EXPECTED_B}
    assert all(w.group == w.file and w.end_s == w.start_s + 5 for w in got.windows)
    text = "\n".join(got.reasons)
    assert "2 annotated recording(s), 5 boxes (1 audacity, 1 raven file(s))" in text
    assert "labels from column 'Species'" in text
    assert "each selection read once, from 'Spectrogram 1'" in text
    assert "window 5 s: given" in text and "hop 2.5 s: given" in text
    assert "windows: 10 (9 with labels, 1 negatives) [1 unannotated]" in text
    assert "1 audio file(s) without an annotation file, not used: loose.flac" in text
    assert "README.txt: not an annotation table, not read" in text
    boxes = {b.label: b for r in got.recordings for b in r.boxes}
    assert (boxes["sea_waves"].low_hz, boxes["sea_waves"].high_hz) == (100.0, 8000.0)
    assert boxes["dog"].line == 3  # the Spectrogram row, after the header and the Waveform row


def test_window_times_index_the_audio(recordings: Path, clips: dict[str, np.ndarray]) -> None:
    got = read_annotations(recordings, WindowOptions(window_s=5, hop_s=2.5))
    first = got.windows[0]
    data, rate = sf.read(got.root / first.file, dtype="float32")
    a, b = round(first.start_s * rate), round(first.end_s * rate)
    scale = 0.5 / max(1.0, float(np.abs(clips["dog"]).max()))
    # The file holds the dog clip there, scaled, in 16-bit samples: within one step of 2^-15.
    assert np.abs(data[a:b] - scale * clips["dog"]).max() <= 1.5 / 32768


def test_unannotated_stretches_can_be_ignored(recordings: Path) -> None:
    got = read_annotations(recordings, WindowOptions(window_s=5, hop_s=2.5, unannotated="ignore"))
    assert all(w.labels for w in got.windows) and len(got.windows) == 9
    assert any("1 unannotated window(s) ignored (by option)" in r for r in got.reasons)


def test_min_overlap_in_seconds_leaves_grazing_windows_out(recordings: Path) -> None:
    opts = WindowOptions(window_s=5, hop_s=2.5, min_overlap=MinOverlap(seconds=3))
    got = _by_file(read_annotations(recordings, opts).windows)
    # Each window holding 2.5 s of a clip now only grazes it.
    assert got["recA.flac"] == [(0.0, ("dog",)), (5.0, ()), (10.0, ("rooster",)), (12.5, ("rain",))]


def test_window_and_hop_inferred_from_the_boxes(recordings: Path) -> None:
    got = read_annotations(recordings)
    assert (got.window_s, got.hop_s) == (5.0, 2.5)  # every box lasts 5 s
    assert any(
        r.startswith("window 5 s: the median box duration (5.00 s over 5") for r in got.reasons
    )
    assert "hop 2.5 s: half the window" in got.reasons


@pytest.mark.parametrize(
    ("durations", "window", "phrase"),
    [
        ([2.2, 2.4, 2.3], 2.5, "rounded up"),
        ([3.0, 3.0], 3.0, "rounded up"),
        ([0.2, 0.3], 1.0, "under the shortest"),
        ([30.0, 60.0], 10.0, "over the longest"),
    ],
)
def test_infer_window(durations: list[float], window: float, phrase: str) -> None:
    got, why = infer_window(durations)
    assert got == window and phrase in why


def test_window_starts_cover_the_whole_recording() -> None:
    assert window_starts(20.0, 5.0, 2.5) == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0]
    assert window_starts(21.0, 5.0, 2.5) == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 16.0]
    assert window_starts(3.0, 5.0, 2.5) == [0.0]


def test_begin_file_table_names_its_audio(recordings: Path, tmp_path: Path) -> None:
    shutil.copy(recordings / "recA.flac", tmp_path / "recA.flac")
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "recB.wav")
    header = [
        "Selection",
        "View",
        "Begin Time (s)",
        "End Time (s)",
        "Begin File",
        "File Offset (s)",
        "Annotation",
    ]
    rows: list[list[object]] = []
    offset = 0.0  # Begin Time counts along the file sequence; File Offset within each file
    for name, events, length in (("recA.flac", REC_A, 20.0), ("recB.wav", REC_B, 10.0)):
        for label, start in events:
            rows.append(
                [
                    len(rows) + 1,
                    "Spectrogram 1",
                    offset + start,
                    offset + start + 5,
                    name,
                    start,
                    label,
                ]
            )
        offset += length
    table = raven_table(tmp_path / "season.selections.txt", rows, header)
    got = read_annotations(table, WindowOptions(window_s=5, hop_s=2.5))
    assert _by_file(got.windows) == {"recA.flac": EXPECTED_A, "recB.wav": EXPECTED_B}
    assert any("labels from column 'Annotation'" in r for r in got.reasons)


def test_begin_file_table_without_offsets_says_why_a_box_is_past_the_end(
    recordings: Path, tmp_path: Path
) -> None:
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "recB.wav")
    header = ["Selection", "Begin Time (s)", "End Time (s)", "Begin File", "Species"]
    raven_table(tmp_path / "t.txt", [[1, 20.0, 25.0, "recB.wav", "dog"]], header)
    with pytest.raises(
        DatasetError,
        match=r"t\.txt: line 2: .*ends after the end of recB\.wav "
        r"\(10\.000 s\); this table gives no 'File Offset \(s\)'",
    ):
        read_annotations(tmp_path)


def test_empty_table_is_an_error_unless_asked_for(recordings: Path, tmp_path: Path) -> None:
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "recB.wav")
    shutil.copy(recordings / "recA.flac", tmp_path / "recA.flac")
    raven_table(tmp_path / "recA.Table.1.selections.txt", raven_rows(REC_A))
    raven_table(tmp_path / "recB.Table.1.selections.txt", [])
    with pytest.raises(DatasetError, match=r"recB\.Table\.1\.selections\.txt: an empty table"):
        read_annotations(tmp_path, WindowOptions(window_s=5, hop_s=2.5))
    opts = WindowOptions(window_s=5, hop_s=2.5, empty_tables="negative")
    got = _by_file(read_annotations(tmp_path, opts).windows)
    assert got["recB.wav"] == [(0.0, ()), (2.5, ()), (5.0, ())]


def test_background_boxes_are_negatives(recordings: Path, tmp_path: Path) -> None:
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "recB.wav")
    (tmp_path / "recB.labels.txt").write_text("0\t5\tcrying_baby\n5\t10\tnoise\n")
    opts = WindowOptions(window_s=5, hop_s=5, unannotated="ignore", background=("noise",))
    got = read_annotations(tmp_path, opts)
    assert got.classes == ("crying_baby",)
    assert [(w.start_s, w.labels) for w in got.windows] == [(0.0, ("crying_baby",)), (5.0, ())]


def test_a_box_no_window_holds_enough_of_is_reported(recordings: Path, tmp_path: Path) -> None:
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "recB.wav")
    (tmp_path / "recB.txt").write_text("0\t5\tcrying_baby\n4\t6.5\tsea_waves\n")
    opts = WindowOptions(window_s=5, hop_s=5, min_overlap=MinOverlap(seconds=2))
    got = read_annotations(tmp_path, opts)
    assert any(
        r.startswith("1 box(es) label no window") and "recB.txt: line 2" in r for r in got.reasons
    )


def test_readers_and_sniffing(recordings: Path) -> None:
    table = read_raven(recordings / "recA.Table.1.selections.txt")
    assert [b.label for b in table.boxes] == ["dog", "rooster", "rain"]
    assert [b.line for b in table.boxes] == [3, 5, 7]
    track = read_audacity(recordings / "site2" / "recB.txt")
    assert [(b.start_s, b.end_s, b.label) for b in track.boxes] == [
        (0.0, 5.0, "crying_baby"), (5.0, 10.0, "sea_waves"),
    ]  # fmt: skip
    assert sniff_format(recordings / "recA.Table.1.selections.txt") == "raven"
    assert sniff_format(recordings / "site2" / "recB.txt") == "audacity"
    assert sniff_format(recordings / "README.txt") is None


# --- bad input: one DatasetError naming the file and line ------------------------------------

Writer = Callable[[Path], None]


def _raven(rows: list[list[object]], header: list[str] = HEADER, name: str = "rec") -> Writer:
    return lambda d: (raven_table(d / f"{name}.Table.1.selections.txt", rows, header), None)[1]


def _text(name: str, body: str) -> Writer:
    return lambda d: (d / name).write_text(body) and None


def _box(
    begin: object = 0.0,
    end: object = 5.0,
    low: object = 100,
    high: object = 9000,
    label: object = "dog",
) -> list[object]:
    return [1, "Spectrogram 1", 1, begin, end, low, high, label]


def _two_tables(d: Path) -> None:
    raven_table(d / "rec.Table.1.selections.txt", [_box()])
    (d / "rec.txt").write_text("0\t5\tdog\n")


def _two_audio(d: Path) -> None:
    shutil.copy(d / "rec.wav", d / "rec.flac")
    (d / "rec.txt").write_text("0\t5\tdog\n")


BEGIN_FILE_HEADER = ["Selection", "Begin Time (s)", "End Time (s)", "Begin File", "Species"]
NO_BEGIN = ["Selection", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)", "Species"]
END_FILE_HEADER = [*BEGIN_FILE_HEADER[:4], "End File", "Species"]
TXT = r"selections\.txt: line 2: "
AUD = r"rec\.txt: line "

BAD = {
    "missing time column": (
        _raven([[1, 0.0, 100, 9000, "dog"]], NO_BEGIN),
        r"selections\.txt: missing column\(s\) \['Begin Time \(s\)'\]",
    ),
    "no label column": (
        _raven([[1, "Spectrogram 1", 1, 0, 5, 1, 2]], HEADER[:-1]),
        r"selections\.txt: no label column: none of",
    ),
    "non-numeric time": (_raven([_box(begin="1,5")]), TXT + r"Begin Time \(s\) '1,5' is not a n"),
    "empty time": (_raven([_box(end="")]), TXT + r"empty End Time \(s\)"),
    "non-finite time": (_raven([_box(end="nan")]), TXT + r"End Time \(s\) 'nan' is not a finite"),
    "negative time": (_raven([_box(begin=-1.0)]), TXT + "negative time"),
    "reversed times": (_raven([_box(begin=4.0, end=2.0)]), TXT + "reversed times"),
    "zero-length box": (_raven([_box(begin=2.0, end=2.0)]), TXT + "zero-length box"),
    "past the end": (
        _raven([_box(begin=8.0, end=12.0)]),
        TXT + r"box 8-12 s ends after the end of rec\.wav \(10\.000 s\)$",
    ),
    "band upside down": (_raven([_box(low=9000, high=100)]), TXT + "band from 9000 Hz down to 100"),
    "non-numeric band": (_raven([_box(low="low")]), TXT + r"Low Freq \(Hz\) 'low' is not a number"),
    "empty label": (_raven([_box(label="")]), TXT + "empty label"),
    "too many cells": (_raven([[*_box(), "extra"]]), TXT + "9 cells, the header has 8"),
    "empty table": (_raven([]), r"selections\.txt: an empty table \(no box\) for rec\.wav"),
    "begin file absent": (
        _raven([[1, 0.0, 5.0, "nope.wav", "dog"]], BEGIN_FILE_HEADER, name="all"),
        r"all\.Table\.1\.selections\.txt: line 2: audio file 'nope\.wav' not found",
    ),
    "box into another file": (
        _raven([[1, 0.0, 5.0, "rec.wav", "rec2.wav", "dog"]], END_FILE_HEADER, name="all"),
        TXT + r"the box runs from rec\.wav into rec2\.wav",
    ),
    "table without audio": (
        _raven([_box()], name="other"),
        r"other\.Table\.1\.selections\.txt: a raven annotation file but no audio beside it",
    ),
    "two tables for one recording": (_two_tables, r"rec\.wav: 2 annotation files"),
    "two audio files of one name": (_two_audio, r"rec\.txt: annotates rec\.\w+, rec\.\w+ alike"),
    "audacity non-numeric": (_text("rec.txt", "0\t5\tdog\nx\t6\tdog\n"), AUD + "2: start 'x' is"),
    "audacity one field": (_text("rec.txt", "0\t5\tdog\n\n7.5\n"), AUD + "3: expected start<TAB>"),
    "audacity empty label": (_text("rec.txt", "0\t5\t  \n"), AUD + "1: empty label"),
    "audacity spectral first": (
        _text("rec.txt", "\\\t1\t2\n0\t5\tdog\n"),
        AUD + "1: a spectral line",
    ),
    "audacity spectral not a number": (
        _text("rec.txt", "0\t5\tdog\n\\\tlow\t200\n"),
        AUD + "2: frequency 1 'low' is not a number",
    ),
    "audacity past the end": (
        _text("rec.txt", "0\t5\tdog\n9\t10.5\tdog\n"),
        AUD + r"2: box 9-10\.5 s ends after the end",
    ),
    "audacity reversed": (_text("rec.txt", "5\t1\tdog\n"), AUD + "1: reversed times"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_annotations_name_file_and_line(case: str, recordings: Path, tmp_path: Path) -> None:
    write, match = BAD[case]
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "rec.wav")  # 10 s of real audio
    write(tmp_path)
    with pytest.raises(DatasetError, match=match) as err:
        read_annotations(tmp_path, WindowOptions(window_s=5))
    assert "\n" not in str(err.value)


def test_chosen_label_column_must_exist(recordings: Path, tmp_path: Path) -> None:
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "rec.wav")
    _raven([_box()])(tmp_path)
    with pytest.raises(DatasetError, match=r"no label column 'Call' \(columns: \["):
        read_annotations(tmp_path, WindowOptions(label_column="Call"))
    got = read_annotations(tmp_path, WindowOptions(label_column="species"))  # case-insensitive
    assert got.classes == ("dog",)


def test_a_folder_without_annotations(recordings: Path, tmp_path: Path) -> None:
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "rec.wav")
    with pytest.raises(DatasetError, match="no annotated recording"):
        read_annotations(tmp_path)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: WindowOptions(window_s=5, hop_s=6), "gaps between windows would drop boxes"),
        (lambda: WindowOptions(window_s=-1), "window_s -1"),
        (lambda: WindowOptions(unannotated="drop"), "unannotated 'drop'"),
        (lambda: WindowOptions(empty_tables="skip"), "empty_tables 'skip'"),
        (lambda: MinOverlap.parse("0.5"), "give seconds"),
        (lambda: MinOverlap.parse("150%"), r"must be in \(0, 1\]"),
        (lambda: MinOverlap.parse("-1s"), "positive number of seconds"),
        (lambda: MinOverlap(), "one of them"),
    ],
)
def test_bad_settings_are_config_errors(make: Callable[[], object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()


def test_min_overlap_parsing() -> None:
    assert MinOverlap.parse("0.25s") == MinOverlap(seconds=0.25)
    assert MinOverlap.parse(" 50 % ") == MinOverlap(fraction=0.5)
    # Capped by the box and the window: a short box held whole, a window inside a long box.
    assert MinOverlap(seconds=1).required(box_s=0.3, window_s=5) == 0.3
    assert MinOverlap(fraction=0.5).required(box_s=60, window_s=3) == 1.5


def test_birdnet_table_beside_its_audio(recordings: Path, tmp_path: Path) -> None:
    # BirdNET-Analyzer's --rtype table: the annotator's absolute Begin Path (a Windows one
    # here) is only used for its file name, looked for beside the table.
    shutil.copy(recordings / "recA.flac", tmp_path / "recA.flac")
    header = [
        "Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
        "High Freq (Hz)", "Common Name", "Species Code", "Confidence", "Begin Path",
        "File Offset (s)",
    ]  # fmt: skip
    rows = [
        [k, "Spectrogram 1", 1, start, start + 5, 0, 15000, label, label[:4], 0.9,
         r"C:\Users\me\field\recA.flac", start]
        for k, (label, start) in enumerate(REC_A, start=1)
    ]  # fmt: skip
    raven_table(tmp_path / "recA.BirdNET.selection.table.txt", rows, header)
    got = read_annotations(tmp_path, WindowOptions(window_s=5, hop_s=2.5))
    assert _by_file(got.windows) == {"recA.flac": EXPECTED_A}
    assert any("labels from column 'Common Name'" in r for r in got.reasons)


def test_one_table_read_alone(recordings: Path) -> None:
    got = read_annotations(
        recordings / "recA.Table.1.selections.txt", WindowOptions(window_s=5, hop_s=2.5)
    )
    assert _by_file(got.windows) == {"recA.flac": EXPECTED_A}
    assert not any("without an annotation file" in r for r in got.reasons)  # only this table


def test_hop_longer_than_the_inferred_window(recordings: Path) -> None:
    with pytest.raises(ConfigError, match=r"hop_s 6 is longer than the window \(5 s\)"):
        read_annotations(recordings, WindowOptions(hop_s=6))


def test_table_saved_as_utf16_reads_the_same(recordings: Path, tmp_path: Path) -> None:
    shutil.copy(recordings / "recA.flac", tmp_path / "recA.flac")
    text = (recordings / "recA.Table.1.selections.txt").read_text(encoding="utf-8")
    (tmp_path / "recA.Table.1.selections.txt").write_text(text, encoding="utf-16")
    got = read_annotations(tmp_path, WindowOptions(window_s=5, hop_s=2.5))
    assert _by_file(got.windows) == {"recA.flac": EXPECTED_A}


def test_a_multi_file_table_without_offsets_says_how_its_times_are_read(
    recordings: Path, tmp_path: Path
) -> None:
    shutil.copy(recordings / "recA.flac", tmp_path / "recA.flac")
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "recB.wav")
    header = ["Selection", "Begin Time (s)", "End Time (s)", "Begin File", "Species"]
    rows = [[1, 0.0, 5.0, "recA.flac", "dog"], [2, 0.0, 5.0, "recB.wav", "crying_baby"]]
    raven_table(tmp_path / "merged.txt", rows, header)
    got = read_annotations(tmp_path, WindowOptions(window_s=5, hop_s=5))
    assert any(
        r.startswith("note: ") and "names 2 audio files without 'File Offset (s)'" in r
        for r in got.reasons
    )
    assert _by_file(got.windows)["recB.wav"][0] == (0.0, ("crying_baby",))


def test_default_background_names_reach_a_raven_table(recordings: Path, tmp_path: Path) -> None:
    """Through read_recordings the default background names (background, noise, other) mark
    boxes as negatives, ignoring case: a Raven box labelled ``Noise`` is not a class."""
    from soundtransfer.datasets.own import ReadOptions
    from soundtransfer.datasets.recordings import read_recordings

    shutil.copy(recordings / "recA.flac", tmp_path / "recA.flac")
    rows = raven_rows([*REC_A, ("Noise", 5.0)])
    raven_table(tmp_path / "recA.Table.1.selections.txt", rows)
    shutil.copy(recordings / "site2" / "recB.wav", tmp_path / "recB.wav")
    raven_table(tmp_path / "recB.Table.1.selections.txt", raven_rows(REC_B))
    windows = WindowOptions(window_s=5, hop_s=5, unannotated="ignore")
    got = read_recordings(tmp_path, ReadOptions(n_folds=2, windows=windows))
    assert got.table.classes == ("crying_baby", "dog", "rain", "rooster", "sea_waves")
    assert any("background labels" in n and "noise" in n for n in got.table.notes)
