"""Annotated recordings as own data at the command line (issue 20): long recordings built from
real ESC-10 clips with silent gaps and one overlapping pair, Raven tables beside them;
``linear-eval`` and ``finetune`` on the folder print mAP and store thresholds in the bundle."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.cli.main import main
from soundtransfer.inference.bundle import load_bundle

CLASSES = ("chainsaw", "dog", "rain")
RATE = 16000
GAP_S = 3.0  # longer than a window: some windows hold no box (negatives)
RAVEN_HEADER = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tAnnotation"


def _clip(esc10_root: Path, filename: str) -> np.ndarray:
    """An ESC-10 clip as mono float at :data:`RATE`, 5 s (plain decimation by index: test audio)."""
    x, sr = sf.read(esc10_root / "audio" / filename, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    idx = np.arange(0, len(x), sr / RATE).astype(int)
    y = x[idx[idx < len(x)]][: 5 * RATE]
    return np.pad(y, (0, 5 * RATE - len(y)))  # exactly 5 s, as the boxes say


def build_recordings(esc10_root: Path, dst: Path, n: int = 6) -> list[tuple[str, float, float]]:
    """``dst/rec<i>.wav`` with ``rec<i>.Table.1.selections.txt``: per recording one clip of each
    class separated by silence, the last (rain) overlapped by 3 s of the dog clip, so
    some windows hold two labels. Returns every box (label, begin, end) written."""
    rows = list(csv.DictReader((esc10_root / "meta" / "esc50.csv").open()))
    by_class = {c: [r["filename"] for r in rows if r["category"] == c] for c in CLASSES}
    boxes = []
    for i in range(n):
        parts, table, t = [], [RAVEN_HEADER], 0.0
        clips = {c: _clip(esc10_root, by_class[c][i]) for c in CLASSES}
        for c in ("chainsaw", "dog"):
            parts += [clips[c], np.zeros(int(GAP_S * RATE), np.float32)]
            table.append(f"{len(table)}\tSpectrogram 1\t1\t{t:.3f}\t{t + 5.0:.3f}\t{c}")
            boxes.append((c, t, t + 5.0))
            t += 5.0 + GAP_S
        audio = np.concatenate([*parts, clips["rain"]])
        start = int((t + 1.0) * RATE)  # the dog clip's first 3 s over the rain clip
        audio[start : start + 3 * RATE] += clips["dog"][: 3 * RATE]
        table.append(f"{len(table)}\tSpectrogram 1\t1\t{t:.3f}\t{t + 5.0:.3f}\train")
        table.append(f"{len(table)}\tSpectrogram 1\t1\t{t + 1:.3f}\t{t + 4.0:.3f}\tdog")
        boxes += [("rain", t, t + 5.0), ("dog", t + 1.0, t + 4.0)]
        sf.write(dst / f"rec{i}.wav", audio, RATE)
        (dst / f"rec{i}.Table.1.selections.txt").write_text("\n".join(table) + "\n")
    return boxes


@pytest.mark.parametrize("command", ["linear-eval", "finetune"])
def test_recordings_folder_prints_map_and_stores_thresholds(
    esc10_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    data = tmp_path / "recordings"
    data.mkdir()
    build_recordings(esc10_root, data)
    runs = tmp_path / "runs"
    argv = [command, str(data), "--weights", "random", "--arch", "efficientnet_lite0",
            "--preset", "cpu", "--set", "epochs=1", "--set", "batch_size=8",
            "--split", "0.5,0.25,0.25", "--window", "2", "--hop", "2",
            "--out", str(runs), "--cache", str(tmp_path / "cache"), "--quiet"]  # fmt: skip
    if command == "linear-eval":
        argv += ["--set", "probe=logistic", "--set", "probe_inner_folds=2"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "(recordings)" in out and "groups = the recording" in out, out
    assert re.search(r"^\s+test\s+mAP \d\.\d{3}$", out, re.MULTILINE), out
    finals = list(runs.rglob("final.json"))
    assert len(finals) == 1, finals
    final = json.loads(finals[0].read_text())
    assert final["task"] == "multi_label" and 0.0 <= final["test_mAP"] <= 1.0
    assert final["classes"] == list(CLASSES)
    assert set(final["thresholds"]) == set(CLASSES)
    if command == "linear-eval":  # C chosen on the inner log-loss: said, no inner_acc of 0
        probe = json.dumps(final)
        assert '"inner_metric": "nll"' in probe and '"inner_acc"' not in probe
    _, meta = load_bundle(finals[0].parent / "model.pt")
    assert meta.task == "multi_label" and meta.thresholds == final["thresholds"]


def test_recordings_windows_have_two_labels_and_negatives_and_stay_in_one_fold(
    esc10_root: Path, tmp_path: Path
) -> None:
    from soundtransfer.datasets import open_dataset
    from soundtransfer.datasets.annotations import WindowOptions
    from soundtransfer.datasets.own import ReadOptions

    build_recordings(esc10_root, tmp_path, n=4)
    opened = open_dataset(
        tmp_path, options=ReadOptions(n_folds=2, windows=WindowOptions(window_s=2.0, hop_s=1.0))
    )
    clips = opened.table.clips
    assert opened.layout == "recordings" and opened.table.classes == CLASSES
    assert any(c.labels is not None and len(c.labels) == 2 for c in clips)
    assert any(c.labels == () for c in clips)  # windows in the silent gaps: negatives
    assert {c.start_s for c in clips} >= {0.0, 1.0, 2.0}
    folds_of = {}
    for c in clips:
        folds_of.setdefault(c.group, set()).add(c.fold)
    assert len(folds_of) == 4 and all(len(f) == 1 for f in folds_of.values())
