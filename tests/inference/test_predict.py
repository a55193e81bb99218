"""Predict: streamed, sliced path vs the per-window reference, hop checks, the command line."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from soundtransfer.audio import get_preset, load_clip
from soundtransfer.cli.main import main
from soundtransfer.config import ConfigError
from soundtransfer.inference import predict as predict_mod
from soundtransfer.inference.bundle import load_bundle
from soundtransfer.inference.predict import (
    PredictConfig,
    Predictor,
    plan_hop,
    reference_window_probs,
)
from soundtransfer.inference.timeline import EventRule

from .conftest import make_bundle

# Window probabilities from two code paths (sliced front end + traced NHWC network vs LogMel3
# per window + the eager network): float32 sums in another order, which also depends on the
# CPU's kernels (4e-7 apart here). 1e-4 is far below what a wrong window or frame changes:
# neighbouring windows' probabilities differ by up to 0.19 with these bundles.
PROB_TOL = 1e-4


@pytest.mark.parametrize(("preset", "hop_s"), [("esc10", 1.0), ("esc10", 2.5), ("us8k", 0.7)])
def test_streamed_matches_per_window_reference(
    preset: str, hop_s: float, long_wav: Callable[..., Path], tmp_path: Path
) -> None:
    """Real audio at the model's rate: the same windows and probabilities as the plain path."""
    bundle = make_bundle(tmp_path / f"{preset}.pt", preset)
    fe = get_preset(preset)
    path = long_wav(13.3, fe.sample_rate)
    predictor = Predictor(bundle, PredictConfig(hop_s=hop_s, batch_size=3))
    got = list(predictor.iter_windows(path))
    model, meta = load_bundle(bundle)
    want = reference_window_probs(
        model, meta, load_clip(path, fe.sample_rate), predictor.hop.samples
    )
    assert [w.start for w in got] == [k * predictor.hop.samples for k in range(len(want))]
    assert np.abs(np.stack([w.probs for w in got]) - want).max() < PROB_TOL
    assert got[-1].end == round(13.3 * fe.sample_rate)  # the last window ends with the file


def test_predict_file_timeline(bundle: Path, long_wav: Callable[..., Path]) -> None:
    every_window = EventRule(min_score=0.0, min_event_s=0.0)  # each window a hit of its top
    config = PredictConfig(hop_s=1.0, top_k=2, events=every_window)
    pred = Predictor(bundle, config).predict_file(long_wav(9.5))
    assert pred.windows == len(pred.timeline) == 6 and pred.seconds == pytest.approx(9.5)
    assert [w.start_s for w in pred.timeline] == [0, 1, 2, 3, 4, 5]
    assert pred.timeline[-1].end_s == pytest.approx(9.5)
    assert sum(e.windows for e in pred.events) == pred.windows
    mean = {c: np.mean([dict(w.top).get(c, 0) for w in pred.timeline]) for c, _ in pred.top}
    assert pred.top[0][1] >= pred.top[1][1] and pred.top[0][1] >= mean[pred.top[0][0]] - 1e-6


def test_plan_hop() -> None:
    fe = get_preset("esc10")
    assert plan_hop(fe).seconds == 2.5 and not plan_hop(fe).rounded
    hop = plan_hop(fe, 1.03)
    assert hop.samples == 2205 * 21 and hop.rounded  # 1.05 s: a multiple of 50 ms
    assert plan_hop(fe, 1.03, align=False).samples == round(1.03 * 44100)
    assert plan_hop(fe, 0.001).samples == 2205  # at least one frame quantum
    for bad in (-1.0, 0.0, float("nan"), float("inf"), 5.01):
        with pytest.raises(ConfigError, match="hop"):
            plan_hop(fe, bad)
    with pytest.raises(ConfigError, match="shorter than one sample"):
        plan_hop(fe, 1e-7, align=False)
    with pytest.raises(ConfigError, match="hop"):
        PredictConfig(hop_s=-1)


@pytest.mark.parametrize("hop", ["-1", "0", "nan", "6"])
def test_cli_bad_hop_is_one_line_exit_2(
    hop: str, bundle: Path, esc10_clips: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["predict", str(bundle), str(esc10_clips[0]), f"--hop={hop}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "hop" in err


def test_cli_bad_file_stops_the_run_in_one_line(
    bundle: Path, esc10_clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.ogg"
    code = main(["predict", str(bundle), str(esc10_clips[0]), str(missing), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "missing.ogg" in err


def test_cli_skip_bad_classifies_the_others_model_loaded_once(
    bundle: Path,
    esc10_clips: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    loads = []

    def counting_load(*args: object, **kw: object) -> object:
        loads.append(args)
        return load_bundle(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(predict_mod, "load_bundle", counting_load)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.ogg"
    files = [esc10_clips[0], missing, empty, esc10_clips[1]]
    code = main(["predict", str(bundle), *map(str, files), "--json", "--skip-bad"])
    out, err = capsys.readouterr()
    assert code == 3 and len(loads) == 1
    assert [json.loads(line)["file"] for line in out.splitlines()] == [
        str(esc10_clips[0].absolute()),
        str(esc10_clips[1].absolute()),
    ]
    errors = err.splitlines()
    assert len(errors) == 3 and "missing.ogg: file not found" in errors[0]
    assert "empty.wav: empty file" in errors[1] and "2 failed" in errors[-1]


def test_cli_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", str(tmp_path / "nope.pt"), str(tmp_path / "x.wav")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nope.pt" in err


def test_cli_timeline_formats(
    bundle: Path, long_wav: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = long_wav(8.0)
    out = tmp_path / "out"
    base = ["predict", str(bundle), str(path), "--timeline", "--hop", "1.02", "--top-k", "2",
            "--min-score", "0", "--min-event", "0"]  # fmt: skip
    assert main([*base, "--format", "csv", "--out", str(out)]) == 0
    assert "rounded to 1 s" in capsys.readouterr().err  # 1.02 s -> 20 x 50 ms
    rows = list(csv.DictReader((out / "long.csv").open()))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("mean") == 2 and kinds.count("window") == 4 * 2
    window_starts = [
        float(r["start_s"]) for r in rows if r["kind"] == "window" and r["rank"] == "1"
    ]
    assert window_starts == [0.0, 1.0, 2.0, 3.0]
    events = [r for r in rows if r["kind"] == "event"]
    # With no threshold every window is a hit of its top class: the events cover the file.
    assert sum(int(e["windows"]) for e in events) == 4 and float(events[-1]["end_s"]) == 8.0
    assert float(events[0]["start_s"]) == 0.0

    assert main([*base, "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["hop_s"] == 1.0 and obj["windows"] == 4 == len(obj["timeline"])
    assert [e["class"] for e in obj["events"]] == [r["class"] for r in events]

    assert main([*base]) == 0
    text = capsys.readouterr().out
    assert "timeline:" in text and "events (" in text and text.count(" s  ") >= 4
    assert "mean score over its 4 window(s)" in text


def test_one_ahead_keeps_order_and_raises_at_the_failing_item() -> None:
    from soundtransfer.errors import AudioError

    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise AudioError("x.wav: truncated file")

    it = predict_mod.one_ahead(items())
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(AudioError, match="truncated"):
        next(it)
    assert list(predict_mod.one_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]


def test_prefetch_gives_the_same_windows(bundle: Path, long_wav: Callable[..., Path]) -> None:
    wav = long_wav(11.0)
    plain = Predictor(bundle, PredictConfig(hop_s=1.0, batch_size=2)).iter_windows(wav)
    ahead = Predictor(bundle, PredictConfig(hop_s=1.0, batch_size=2, prefetch=True))
    got, want = list(ahead.iter_windows(wav)), list(plain)
    assert [w.start for w in got] == [w.start for w in want] and len(got) == 7
    # The images computed in another thread (another intra-op split of MKL's sums).
    diff = np.abs(np.stack([w.probs for w in got]) - np.stack([w.probs for w in want])).max()
    assert diff < PROB_TOL
