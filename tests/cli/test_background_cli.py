"""A single-label folder tree with a ``noise/`` folder, end to end at the command line:
``linear-eval`` records the background class in the bundle, and ``predict`` never reports it
as an event (issue 20), on real ESC-10 clips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from soundtransfer.cli.main import main
from soundtransfer.datasets import load_dataset
from soundtransfer.inference.bundle import load_bundle

FOLDERS = {"dog": "dog", "rain": "rain", "noise": "sea_waves"}


def test_noise_folder_is_never_an_event(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    esc10 = load_dataset("esc10", esc10_root)
    data = tmp_path / "data"
    for folder, name in FOLDERS.items():
        (data / folder).mkdir(parents=True)
        k = esc10.classes.index(name)
        for i in [i for i, c in enumerate(esc10.clips) if c.label == k][:8]:
            os.symlink(esc10.path(i), data / folder / Path(esc10.clips[i].file).name)
    runs = tmp_path / "runs"
    argv = ["linear-eval", str(data), "--weights", "random", "--arch", "resnet18",
            "--preset", "cpu", "--set", "epochs=2", "--set", "batch_size=8",
            "--set", "probe=logistic", "--set", "probe_inner_folds=2", "--split",
            "0.5,0.25,0.25", "--out", str(runs), "--cache", str(tmp_path / "cache"),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "background class(es) ['noise']" in err, err
    bundle = next(runs.rglob("model.pt"))
    _, meta = load_bundle(bundle)
    assert meta.task == "single_label" and meta.background == ("noise",)
    # --min-score 0 and no shortest event: every window whose top class is not background is
    # an event, so an event-free window is one the background rule removed.
    argv = ["predict", str(bundle), str(data), "--format", "json", "--timeline",
            "--min-score", "0", "--min-event", "0", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(results) == 24
    noise_top = 0
    for r in results:
        assert all(e["class"] != "noise" for e in r["events"]), r
        tops = [w["top"][0]["class"] for w in r["timeline"]]
        noise_top += tops.count("noise")
        if set(tops) == {"noise"}:  # a clip the model hears as noise only: no event at all
            assert r["events"] == [], r
    assert noise_top > 0  # the rule was exercised: some window's top class is noise
