"""Run files read back (issue 23, defect 6): a damaged final.json, metrics.jsonl, config.json or
cached array is a RunError naming the file, never a traceback from deep inside a reader."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soundtransfer.errors import RunError
from soundtransfer.runs import MetricsLog, load_array, open_run, read_final, read_metrics
from soundtransfer.runs.records import read_config, read_jsonl

GOOD_FINAL = {"test_acc": 50.0, "labels": [0, 1], "predictions": [0, 0], "classes": ["a", "b"]}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"test_acc": 7', r"not valid JSON \(.* line 1, column 15\)"),
        ("{}", r"incomplete final\.json \(no test_acc, labels, predictions, classes\)"),
        ("[1, 2]", r"not a run's final\.json \(a JSON list\)"),
        (json.dumps({k: v for k, v in GOOD_FINAL.items() if k != "labels"}), r"\(no labels\)"),
        (json.dumps({**GOOD_FINAL, "test_acc": "high"}), r"test_acc must be a percentage"),
        (json.dumps({**GOOD_FINAL, "test_acc": 700.0}), r"test_acc must be a percentage"),
        (json.dumps({**GOOD_FINAL, "labels": [0, 5]}), r"labels must be a list of class indices"),
        (json.dumps({**GOOD_FINAL, "predictions": [0]}), r"2 labels but 1 predictions"),
        (json.dumps({**GOOD_FINAL, "classes": []}), r"classes must be a non-empty list"),
        ("\xff\xfe", r"not valid JSON"),
        ("[" * 100_000, r"not valid JSON"),
    ],
)
def test_damaged_final_json_names_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path / "fold1" / "final.json", text)
    with pytest.raises(RunError, match=rf"^{re.escape(str(path))}: .*{match}") as info:
        read_final(path)
    assert "\n" not in str(info.value)


def test_good_final_json_reads_back(tmp_path: Path) -> None:
    path = _write(tmp_path / "final.json", json.dumps(GOOD_FINAL))
    assert read_final(path) == GOOD_FINAL


def _lines(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_lines({"epoch": 1, "train_loss": 1.0}) + '{"epoch": 2, "tra', r"line 2 is not JSON"),
        ('{"epo\n' + _lines({"epoch": 2, "train_loss": 1.0}), r"line 1 is not JSON"),
        (_lines({"epoch": 1, "train_loss": 1.0}) + "[1]\n", r"line 2 is not a record"),
        (_lines({"epoch": 2, "train_loss": 1.0}, {"epoch": 1, "train_loss": 1.0}), r"comes after"),
        (_lines({"epoch": 1, "train_loss": 1.0}, {"epoch": 3, "train_loss": 1.0}), r"epoch 2 is"),
        (_lines({"epoch": 1}), r"epoch 1 has no train_loss"),
        (_lines({"epoch": 1, "train_loss": "x"}), r"epoch 1: train_loss is not a number"),
        (_lines({"epoch": True, "train_loss": 1.0}), r"line 1 is not a record with an integer"),
    ],
)
def test_damaged_metrics_jsonl_names_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path / "metrics.jsonl", text)
    with pytest.raises(RunError, match=rf"^{re.escape(str(path))}: .*{match}"):
        read_metrics(path)


def test_metrics_with_nan_test_loss_and_absent_file_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "metrics.jsonl", '{"epoch": 1, "train_loss": 1.0, "test_loss": NaN}\n')
    assert len(read_metrics(path)) == 1
    assert read_metrics(tmp_path / "absent.jsonl") == []


def test_resume_drops_a_torn_last_line_but_refuses_other_damage(tmp_path: Path) -> None:
    """A kill during an append leaves half a last line after the checkpoint's records: dropped.
    A damaged line among the checkpoint's records, or a missing record, is an error."""
    path = tmp_path / "metrics.jsonl"
    records = [{"epoch": e, "train_loss": 1.0 / e} for e in (1, 2)]
    _write(path, _lines(*records) + '{"epoch": 3, "train_lo')
    log = MetricsLog(path, "epoch", dense=True)
    log.start(2)
    assert read_jsonl(path) == records
    _write(path, _lines(records[0]) + '{"epoch": 2, "train_lo')  # the checkpoint is at 2
    with pytest.raises(RunError, match=r"records of epochs 1-2 .* missing or damaged"):
        log.start(2)
    _write(path, '{"epoch": 1, "tr\n' + _lines(records[1]))
    with pytest.raises(RunError, match=r"line 1 is not JSON"):
        log.start(2)


def test_garbage_config_json_beside_results_is_named(tmp_path: Path) -> None:
    run = tmp_path / "fold1"
    ident = {"settings": {"lr": 1e-4}}
    open_run(run, ident, {})
    (run / "last.pt").write_bytes(b"")
    for text, match in (("garbage", "not valid JSON"), ("[1]", "not a run's config.json")):
        _write(run / "config.json", text)
        with pytest.raises(RunError, match=rf"{run}/config\.json: {match}.*delete the run"):
            open_run(run, ident, {})
    with pytest.raises(RunError, match=r"not a run's config\.json"):
        read_config(_write(tmp_path / "c.json", '{"identity": 3}'))


def test_cut_or_foreign_cached_array_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "emb.npy"
    np.save(path, np.ones((10, 4), np.float32))
    assert load_array(path, 10).shape == (10, 4)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(RunError, match=rf"{path}: damaged array .*delete it and run again"):
        load_array(path, 10)
    for bad in (np.ones((9, 4), np.float32), np.ones(10, np.float32), np.full((10, 4), np.nan)):
        np.save(path, bad)
        with pytest.raises(RunError, match=rf"{path}: damaged array"):
            load_array(path, 10)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # never unpickled
    with pytest.raises(RunError, match=rf"{path}: damaged array"):
        load_array(path, 1)
