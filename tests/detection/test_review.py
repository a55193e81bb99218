"""Review: picking detections, cutting clips, the page's files, the precision fit, and the
round trip through the command line (predict -> review -> marks -> thresholds -> predict)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.cli.main import main
from soundtransfer.detection.calibrate import fit_class, fit_thresholds
from soundtransfer.detection.review import ReviewConfig, pick
from soundtransfer.detection.tables import Detection
from soundtransfer.detection.thresholds import read_thresholds

from .test_folder import RAVEN as RAVEN_HEADER
from .test_folder import _predict, _table


def _det(label: str, score: float) -> Detection:
    return Detection("x.wav", 0.0, 1.0, label, score, "here")


def test_pick_takes_the_top_then_every_score_bin_seeded() -> None:
    rng = np.random.default_rng(1)
    dets = [_det(c, float(s)) for c in "ab" for s in rng.uniform(0, 1, 50)]
    config = ReviewConfig(per_class=10, top=3, bins=5, seed=7)
    chosen = pick(dets, config)
    assert chosen == pick(dets, config)  # seeded
    assert chosen != pick(dets, ReviewConfig(per_class=10, top=3, bins=5, seed=8))
    for label in "ab":
        mine = [d for d in chosen if d.label == label]
        best = sorted((d.score for d in dets if d.label == label), reverse=True)
        assert len(mine) == 10 and len(set(map(id, mine))) == 10
        assert [d.score for d in mine[:3]] == best[:3]
        rest = best[3:]
        lo, hi = min(rest), max(rest)
        bins = {min(4, int((d.score - lo) / ((hi - lo) / 5))) for d in mine[3:]}
        assert bins == set(range(5))  # 7 random picks over 5 bins reach every bin
    assert len(pick(dets[:4], config)) == 4  # fewer than per_class: all of them


def test_fit_reaches_the_target_at_the_score_the_marks_turn_right() -> None:
    scores = np.linspace(0.05, 1.0, 20)
    cut = scores[12]
    marks = [(float(s), int(s >= cut)) for s in scores]
    curve = fit_class("dog", marks, None, 0.9)
    assert curve.threshold == pytest.approx(cut) and curve.at == pytest.approx(1.0)
    assert curve.n == 8
    # Every detection's scores (the population) weigh the marked sample: many more low ones
    # push the precision of a low threshold down, never that of the chosen one.
    population = np.concatenate([np.full(100, 0.1), scores])
    assert fit_class("dog", marks, population, 0.9).threshold == pytest.approx(cut)
    never = fit_class("cat", [(float(s), 0) for s in scores], None, 0.5)
    assert math.isinf(never.threshold) and never.at == 0.0


def test_fit_reports_unreachable_and_unmarked_classes(tmp_path: Path) -> None:
    marked = tmp_path / "marked.csv"
    marked.write_text(
        "id,class,score,mark\n1,dog,0.9,yes\n2,dog,0.4,no\n3,cat,0.8,no\n4,owl,0.7,\n"
    )
    fit = fit_thresholds(marked, 0.9)
    assert [c.label for c in fit.curves] == ["dog", "cat"]
    assert fit.unreachable == ["cat"] and fit.unmarked == ["owl"]
    assert fit.curves[0].threshold == pytest.approx(0.9)


def _mark(review_csv: Path, marked: Path) -> list[dict[str, str]]:
    """Marks as a reviewer would: here, right when the score is at or above its class's
    median among the clips (so every class has both marks)."""
    with review_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for label in {r["class"] for r in rows}:
        mine = [r for r in rows if r["class"] == label]
        median = float(np.median([float(r["score"]) for r in mine]))
        for r in mine:
            r["mark"] = "yes" if float(r["score"]) >= median else "no"
    with marked.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_round_trip_through_the_cli_on_real_clips(
    bundle: Path, recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = tmp_path / "detections"
    assert _predict(bundle, recordings, det, "--hop", "1") == 0
    review = tmp_path / "review"
    argv = ["review", str(det), "--audio", str(recordings), "--out", str(review),
            "--per-class", "4", "--top", "1", "--pad", "0.5"]  # fmt: skip
    assert main(argv) == 0
    assert "clip(s)" in capsys.readouterr().out
    with (review / "review.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["mark"] for r in rows} == {""}
    for r in rows:  # each clip: the detection and 0.5 s either side, within the recording
        info = sf.info(str(review / r["clip"]))
        rec = Path(r["file"])
        total = sf.info(str(rec)).duration
        want = min(total, float(r["end_s"]) + 0.5) - max(0.0, float(r["start_s"]) - 0.5)
        assert info.duration == pytest.approx(want, abs=2 / info.samplerate)
    page = (review / "review.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(rows)
    assert page.count('<audio controls preload="none" src="clips/') == len(rows)
    assert main(argv) == 2  # a second review into the same folder would lose the marks
    assert "already holds a review" in capsys.readouterr().err

    marked = review / "review-marked.csv"
    _mark(review / "review.csv", marked)
    thresholds = tmp_path / "thresholds.csv"
    assert main(["review", "--marked", str(marked), "--precision", "0.9",
                 "--out", str(thresholds)]) == 0  # fmt: skip
    assert thresholds.with_suffix(".png").stat().st_size > 0
    table = read_thresholds(thresholds, ["a", "b", "c"])
    assert table and set(table) <= {r["class"] for r in rows}
    again = tmp_path / "again"
    assert _predict(bundle, recordings, again, "--hop", "1", "--thresholds", str(thresholds)) == 0
    events = [r for t in again.rglob("*.selections.txt") for r in _table(t)]
    for e in events:
        assert float(e["Score"]) >= table.get(e["Class"], 0.0) - 5e-5  # 4 decimals written
    before = [r for t in det.rglob("*.selections.txt") for r in _table(t)]
    assert len(events) < len(before)  # the thresholds (above 0 for a class) removed some


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("id,class,score,mark\n1,a,0.5,maybe\n", r"line 2: mark 'maybe' is not yes, no"),
        ("id,class,score,mark\n1,a,high,yes\n", r"line 2: score 'high' is not a number"),
        ("id,class,score\n1,a,0.5\n", r"missing column\(s\) \['mark'\]"),
        ("id,class,score,mark\n1,a,0.5,\n", r"no row is marked yes or no"),
    ],
)
def test_bad_marked_csv_is_one_line_exit_2(
    text: str, culprit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    marked = tmp_path / "marked.csv"
    marked.write_text(text)
    out = tmp_path / "t.csv"
    assert main(["review", "--marked", str(marked), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(marked) in err and re.search(culprit, err), err
    assert not out.exists() and marked.read_text() == text


def test_review_refuses_its_inputs_as_outputs_and_bad_values(
    bundle: Path, recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marked = tmp_path / "marked.csv"
    marked.write_text("id,class,score,mark\n1,a,0.5,yes\n")
    cases = [
        (["--marked", str(marked), "--out", str(marked)], "is an input"),
        (
            ["--marked", str(marked), "--precision", "1.5", "--out", str(tmp_path / "t.csv")],
            "--precision must be in",
        ),
        ([str(marked), "--marked", str(marked), "--out", str(tmp_path / "r")], "DETECTIONS"),
        ([str(tmp_path / "none"), "--out", str(tmp_path / "r")], "not found"),
        ([str(recordings), "--out", str(recordings)], "is an input"),
        ([str(marked), "--per-class", "0", "--out", str(tmp_path / "r")], "per_class"),
    ]
    for extra, culprit in cases:
        assert main(["review", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and culprit in err, (extra, err)
    assert marked.read_text() == "id,class,score,mark\n1,a,0.5,yes\n"
    assert not (tmp_path / "r").exists() and not (tmp_path / "t.csv").exists()


def test_recordings_moved_are_found_under_audio_and_missing_ones_named(
    recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table made on another machine names paths that are not here: the recording is looked
    for under --audio by its name; one that is nowhere is one line naming it, exit 2."""
    header = "\t".join(RAVEN_HEADER)
    row = ["1", "Spectrogram 1", "1", "0.500", "2.000", "0.0", "22050.0", "a", "0.9000",
           "/elsewhere/site1/a.ogg", "0.500"]  # fmt: skip
    table = tmp_path / "moved.selections.txt"
    table.write_text(header + "\n" + "\t".join(row) + "\n")
    out = tmp_path / "review"
    assert main(["review", str(table), "--audio", str(recordings), "--out", str(out),
                 "--pad", "0"]) == 0  # found as recordings/site1/a.ogg  # fmt: skip
    assert sf.info(str(out / "clips" / "0001.wav")).duration == pytest.approx(1.5, abs=1e-3)
    row[9] = "/elsewhere/nowhere.ogg"
    table.write_text(header + "\n" + "\t".join(row) + "\n")
    argv = ["review", str(table), "--audio", str(recordings), "--out", str(tmp_path / "r2")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere.ogg: recording not found" in err
    assert not (tmp_path / "r2" / "review.csv").exists()
