"""``predict`` over a folder of recordings: the mirrored tree of Raven tables, resuming, bad
recordings, the combined table, outputs that are inputs, an interrupted run, thresholds."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import soundfile as sf

from soundtransfer.cli.main import main
from soundtransfer.inference.bundle import load_bundle
from soundtransfer.inference.predict import Predictor

from ..inference.conftest import make_bundle
from .conftest import LAYOUT

# Raven Pro's selection-table columns, as the issue lists them (written out here, not taken
# from the code, so a renamed or reordered column fails).
RAVEN = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
         "High Freq (Hz)", "Class", "Score", "Begin Path", "File Offset (s)"]  # fmt: skip
# Every window is a hit of its top class, and no event is too short: every table has rows.
ALL_EVENTS = ["--min-score", "0", "--min-event", "0"]
OLD = 1_000_000_000  # a modification time (2001) no write during a test can produce


def _predict(bundle: Path, src: Path, out: Path, *extra: str) -> int:
    argv = ["predict", str(bundle), str(src), "--format", "raven", "--out", str(out), "--quiet"]
    return main([*argv, *ALL_EVENTS, *extra])


def _table(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == RAVEN, lines[0]
    return [dict(zip(RAVEN, line.split("\t"), strict=True)) for line in lines[1:]]


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _age(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            os.utime(p, (OLD, OLD))


def _times(folder: Path) -> dict[str, int]:
    """Each file's modification time, ns (and, by its keys, that no file came or went)."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file()
    }


def _tables(rels: tuple[str, ...]) -> set[str]:
    return {rel.rsplit(".", 1)[0] + ".selections.txt" for rel in rels}


def test_raven_tables_mirror_the_input_tree(
    bundle: Path, recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "detections"
    assert _predict(bundle, recordings, out) == 0
    assert "4 recording(s)" in capsys.readouterr().err.splitlines()[-1]
    assert _files(out) == _tables(LAYOUT)
    fe = load_bundle(bundle)[1].frontend
    for rel in LAYOUT:
        rows = _table(out / (rel.rsplit(".", 1)[0] + ".selections.txt"))
        seconds = sf.info(str(recordings / rel)).duration
        assert [int(r["Selection"]) for r in rows] == list(range(1, len(rows) + 1))
        assert {(r["View"], r["Channel"]) for r in rows} == {("Spectrogram 1", "1")}
        assert {r["Begin Path"] for r in rows} == {os.path.abspath(recordings / rel)}
        assert all(r["File Offset (s)"] == r["Begin Time (s)"] for r in rows)
        assert float(rows[0]["Begin Time (s)"]) == 0.0
        # The events tile the file (every window a hit), to the table's 1 ms.
        assert float(rows[-1]["End Time (s)"]) == pytest.approx(seconds, abs=1e-3)
        for r in rows:
            assert float(r["Begin Time (s)"]) < float(r["End Time (s)"])
            assert float(r["Low Freq (Hz)"]) == fe.f_min
            assert float(r["High Freq (Hz)"]) == (fe.f_max or fe.sample_rate / 2)
            assert r["Class"] in ("a", "b", "c") and 0 <= float(r["Score"]) <= 1


def test_rerun_with_skip_existing_touches_nothing(
    bundle: Path, recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "detections"
    assert _predict(bundle, recordings, out) == 0
    _age(out)
    before = _times(out)
    assert _predict(bundle, recordings, out, "--skip-existing") == 0
    assert "0 done, 4 skipped" in capsys.readouterr().err.splitlines()[-1]
    assert _times(out) == before
    # One result lost: only it is made again.
    lost = out / "site2" / "night1" / "c.selections.txt"
    lost.unlink()
    assert _predict(bundle, recordings, out, "--skip-existing") == 0
    assert "1 done, 3 skipped" in capsys.readouterr().err.splitlines()[-1]
    after = _times(out)
    assert after.pop(lost.relative_to(out).as_posix()) != OLD * 10**9
    before.pop(lost.relative_to(out).as_posix())
    assert after == before


def test_skip_bad_lists_failed_recordings_and_exits_3(
    bundle: Path, recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (recordings / "site1" / "broken.wav").write_bytes(b"RIFF this is not audio")
    (recordings / "site2" / "empty.flac").write_bytes(b"")
    out = tmp_path / "detections"
    assert _predict(bundle, recordings, out) == 2  # without --skip-bad: the first bad one
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.wav" in err and not out.exists()

    assert _predict(bundle, recordings, out, "--skip-bad") == 3
    last = capsys.readouterr().err.splitlines()[-1]
    assert "4 done" in last and "2 failed" in last and str(out / "failed.csv") in last
    assert _files(out) == _tables(LAYOUT) | {"failed.csv"}
    with (out / "failed.csv").open(newline="") as f:
        failed = list(csv.DictReader(f))
    assert [Path(r["file"]).name for r in failed] == ["broken.wav", "empty.flac"]
    assert "cannot read the audio header" in failed[0]["reason"]
    assert "empty file" in failed[1]["reason"]


def test_combined_table_numbers_on_and_shifts_times(
    bundle: Path, recordings: Path, tmp_path: Path
) -> None:
    out = tmp_path / "detections"
    assert _predict(bundle, recordings, out, "--combine") == 0
    combined = _table(out / "combined.selections.txt")
    parts = [_table(out / t) for t in sorted(_tables(LAYOUT))]
    assert [int(r["Selection"]) for r in combined] == list(range(1, 1 + sum(map(len, parts))))
    offset, k = 0.0, 0
    for rel, rows in zip(sorted(LAYOUT), parts, strict=True):
        for row in rows:
            got = combined[k]
            k += 1
            assert got["Begin Path"] == row["Begin Path"]
            assert got["File Offset (s)"] == row["File Offset (s)"]
            # Times in the sequence of recordings; both sides rounded to 1 ms in the tables.
            begin = float(row["Begin Time (s)"]) + offset
            assert float(got["Begin Time (s)"]) == pytest.approx(begin, abs=1.5e-3)
        offset += sf.info(str(recordings / rel)).duration


@pytest.mark.parametrize("which", ["recording", "bundle", "input folder"])
def test_output_that_is_an_input_is_refused(
    which: str, bundle: Path, recordings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = {"recording": recordings / LAYOUT[0], "bundle": bundle}.get(which, recordings)
    src = recordings if which != "recording" else target  # a file given alone, or the folder
    before = {p: p.stat().st_size for p in [bundle, *recordings.rglob("*")]}
    assert _predict(bundle, src, target) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is an input" in err and str(target) in err
    assert {p: p.stat().st_size for p in [bundle, *recordings.rglob("*")]} == before


def test_interrupted_run_loses_only_the_recording_in_flight(
    bundle: Path,
    recordings: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean = tmp_path / "clean"
    assert _predict(bundle, recordings, clean) == 0
    real = Predictor.predict_file
    calls: list[Path] = []

    def interrupted_at_the_third(self: Predictor, path: Path, **kw: object) -> object:
        calls.append(Path(path))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C (or a kill) while the third is being classified
        return real(self, path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Predictor, "predict_file", interrupted_at_the_third)
    out = tmp_path / "detections"
    assert _predict(bundle, recordings, out) == 130
    assert "finished work is kept" in capsys.readouterr().err
    done = sorted(_tables(LAYOUT))[:2]
    assert _files(out) == set(done)  # no temp file, nothing half written
    for rel in done:
        assert (out / rel).read_bytes() == (clean / rel).read_bytes()
    monkeypatch.setattr(Predictor, "predict_file", real)
    _age(out)
    assert _predict(bundle, recordings, out, "--skip-existing") == 0
    assert all((out / rel).stat().st_mtime_ns == OLD * 10**9 for rel in done)
    for rel in _tables(LAYOUT):
        assert (out / rel).read_bytes() == (clean / rel).read_bytes()


def _classes(out: Path) -> set[str]:
    return {r["Class"] for t in out.rglob("*.selections.txt") for r in _table(t)}


def test_bundle_thresholds_are_the_default_and_a_file_replaces_them(
    recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = make_bundle(tmp_path / "plain.pt")
    assert _predict(plain, recordings, tmp_path / "plain") == 0
    heard = sorted(_classes(tmp_path / "plain"))
    assert "bundle's own thresholds" not in capsys.readouterr().err
    silenced = heard[0]
    tuned = make_bundle(tmp_path / "tuned.pt", thresholds={silenced: 1.01})  # > any score
    assert _predict(tuned, recordings, tmp_path / "tuned") == 0
    assert "using the bundle's own thresholds for 1 class(es)" in capsys.readouterr().err
    assert _classes(tmp_path / "tuned") == set(heard) - {silenced}
    file = tmp_path / "thresholds.csv"
    file.write_text("class,threshold\n" + "".join(f"{c},0\n" for c in heard))
    assert _predict(tuned, recordings, tmp_path / "file", "--thresholds", str(file)) == 0
    assert "bundle's own thresholds" not in capsys.readouterr().err
    assert _classes(tmp_path / "file") == set(heard)


@pytest.mark.parametrize("cut", ["mid_row", "mid_header"])
def test_hostile5_combine_refuses_a_damaged_result_it_skipped(
    cut: str, bundle: Path, recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--skip-existing --combine`` over a result cut short (not by predict, which writes
    atomically): a part cut mid-row died with an IndexError traceback and one cut in its header
    went into the combined table as it was, exit 0. Now one line naming the part, exit 2, and
    no combined table."""
    out = tmp_path / "out"
    assert _predict(bundle, recordings, out) == 0
    part = out / "site2" / "night1" / "c.selections.txt"
    text = part.read_text(encoding="utf-8")
    assert text.count("\n") >= 2  # ALL_EVENTS: a row to cut
    at = text.index("\n") + 6 if cut == "mid_row" else 9
    part.write_text(text[:at], encoding="utf-8")
    capsys.readouterr()
    assert _predict(bundle, recordings, out, "--skip-existing", "--combine") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(part) in err and "Traceback" not in err, err
    assert not (out / "combined.selections.txt").exists()
    assert part.read_text(encoding="utf-8") == text[:at]  # left for the user to look at


def test_hostile5_skip_bad_combine_of_only_bad_files_writes_no_empty_table(
    bundle: Path, tmp_path: Path
) -> None:
    """Every recording bad: the combined table was a 0-byte file (not even a header) beside
    ``failed.csv``. Now there is no combined table, since no recording has a result."""
    src = tmp_path / "bad"
    src.mkdir()
    (src / "zero.wav").write_bytes(b"")
    (src / "text.flac").write_text("not audio\n")
    out = tmp_path / "out"
    assert _predict(bundle, src, out, "--skip-bad", "--combine") == 3
    assert _files(out) == {"failed.csv"}
