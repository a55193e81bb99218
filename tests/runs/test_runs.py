"""The run toolkit: atomic writes, metrics log, run identity, checkpoints, precision policy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from soundtransfer.errors import RunError
from soundtransfer.runs import (
    MetricsLog,
    Precision,
    atomic_write_text,
    check_finite,
    describe_changes,
    list_runs,
    load_checkpoint,
    load_tensors,
    open_run,
    read_jsonl,
    run_dir,
    save_checkpoint,
)

CPU = torch.device("cpu")


def test_atomic_write_leaves_old_content_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "a" / "x.txt"
    atomic_write_text(path, "old")
    from soundtransfer.runs.files import atomic_write

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, fail)
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["x.txt"]


def test_metrics_log_resume_cuts_back_to_the_checkpoint(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl", "epoch")
    for e in (1, 2, 3):
        log.write({"epoch": e, "loss": 1.0 / e})
    log.start(2)
    assert [r["epoch"] for r in read_jsonl(tmp_path / "m.jsonl")] == [1, 2]
    log.start(0)
    assert not (tmp_path / "m.jsonl").exists()


def test_open_run_new_resume_done_and_other_identity(tmp_path: Path) -> None:
    d = run_dir(tmp_path, "esc10", "resnet18.random", "finetune", "fold1")
    ident: dict[str, Any] = {"settings": {"lr": 1e-4, "epochs": 2}, "store": "abc"}
    assert open_run(d, ident, {"device": "cpu"}).state == "new"
    assert json.loads((d / "config.json").read_text())["identity"] == ident
    (d / "last.pt").write_bytes(b"")
    assert open_run(d, ident, {"device": "cuda"}).state == "resume"
    final = {"test_acc": 50.0, "labels": [0, 1], "predictions": [0, 0], "classes": ["a", "b"]}
    (d / "final.json").write_text(json.dumps(final))
    status = open_run(d, ident, {})
    assert status.state == "done" and status.final()["test_acc"] == 50.0
    other = {"settings": {"lr": 0.01, "epochs": 2}, "store": "xyz"}
    with pytest.raises(RunError, match=r"settings\.lr: 0\.0001 -> 0\.01, store: 'abc' -> 'xyz'"):
        open_run(d, other, {})
    (d / "config.json").unlink()
    with pytest.raises(RunError, match=r"no config\.json"):
        open_run(d, ident, {})
    (d / "config.json").write_text("{}")
    with pytest.raises(RunError, match="without a recorded identity"):
        open_run(d, ident, {})


def test_list_runs_parses_the_layout_in_fold_order(tmp_path: Path) -> None:
    for split in ("fold10", "fold2", "fold1"):
        d = run_dir(tmp_path, "us8k", "resnet50.supervised", "linear", split)
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
    (tmp_path / "results.md").write_text("not a run")
    refs = list_runs(tmp_path)
    assert [r.split for r in refs] == ["fold1", "fold2", "fold10"]
    assert {(r.dataset, r.weights, r.mode) for r in refs} == {
        ("us8k", "resnet50.supervised", "linear")
    }
    assert list_runs(tmp_path, done_only=True) == []


def test_describe_changes_names_nested_keys() -> None:
    assert describe_changes({"a": {"b": 1}}, {"a": {"b": 1}}) == ""
    assert describe_changes({"a": {"b": 1}}, {"a": {"b": 2}, "c": 3}) == (
        "a.b: 1 -> 2, c: '(none)' -> 3"
    )


def test_checkpoint_round_trip_restores_rng(tmp_path: Path) -> None:
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ck.pt", {"w": torch.ones(2), "epoch": 3}, CPU)
    expected = torch.rand(3)
    torch.manual_seed(123)
    state = load_checkpoint(tmp_path / "ck.pt", CPU, identity=None)
    assert state["epoch"] == 3 and torch.equal(torch.rand(3), expected)  # the same RNG state
    save_checkpoint(tmp_path / "ck.pt", {"identity": {"lr": 1}}, CPU)
    with pytest.raises(RunError, match="lr: 1 -> 2"):
        load_checkpoint(tmp_path / "ck.pt", CPU, identity={"lr": 2})


class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"x": _Planted(marker)}, tmp_path / "evil.pt")
    with pytest.raises(RunError, match=r"evil\.pt: not a readable checkpoint"):
        load_tensors(tmp_path / "evil.pt")
    assert not marker.exists()


def test_non_finite_guard() -> None:
    check_finite(1.0, "at step 1")
    with pytest.raises(RunError, match="non-finite loss nan at step 3"):
        check_finite(float("nan"), "at step 3")


def test_precision_policy_on_cpu_is_float32() -> None:
    p = Precision.resolve(CPU, "auto", "auto")
    assert p.dtype is None and p.channels_last and not p.scaler().is_enabled()
    assert not Precision.resolve(CPU, "auto", "off").channels_last
    assert Precision.resolve(CPU, "bf16", "on").channels_last
    x = torch.zeros(2, 3, 4, 5)
    assert (
        Precision.resolve(CPU, "off", "on")
        .inputs(x)
        .is_contiguous(memory_format=torch.channels_last)
    )


def test_tensorboard_is_off_by_default_and_optional(tmp_path: Path) -> None:
    MetricsLog(tmp_path / "m.jsonl", "epoch").write({"epoch": 1, "loss": 0.5})
    assert not (tmp_path / "tensorboard").exists()
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        from soundtransfer.errors import ConfigError

        with pytest.raises(ConfigError, match="tensorboard package"):
            MetricsLog(tmp_path / "m.jsonl", "epoch", tensorboard=True)
        return
    log = MetricsLog(tmp_path / "t.jsonl", "epoch", tensorboard=True)
    log.write({"epoch": 1, "loss": 0.5})
    log.close()
    assert list((tmp_path / "tensorboard").iterdir())


def test_an_output_that_is_an_input_is_refused(tmp_path: Path) -> None:
    from soundtransfer.errors import OutputError
    from soundtransfer.runs.files import refuse_input_as_output

    clip = tmp_path / "in" / "clip.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"RIFF")
    (tmp_path / "link.wav").symlink_to(clip)
    for spelt in (clip, tmp_path / "in" / ".." / "in" / "clip.wav", tmp_path / "link.wav"):
        with pytest.raises(OutputError, match="is an input"):
            refuse_input_as_output(spelt, [clip])
    refuse_input_as_output(tmp_path / "out.csv", [clip])  # another path: fine
    assert clip.read_bytes() == b"RIFF"


def test_a_run_without_results_is_not_bound_to_its_identity(tmp_path: Path) -> None:
    """Issue 23, defect 4: a run that stopped after writing config.json (weights not cached, a
    bad file found late, a kill in the first epoch) blocked the fixed rerun as "a run of other
    settings". Until a result exists, the next start records its own identity."""
    d = run_dir(tmp_path, "esc10", "resnet18.w", "linear", "fold1")
    before = {"weights": {"fingerprint": "not cached"}}
    after = {"weights": {"fingerprint": "sha256:abc"}}
    assert open_run(d, before, {}).state == "new"
    assert open_run(d, after, {}).state == "new"  # nothing produced yet: no conflict
    assert json.loads((d / "config.json").read_text())["identity"] == after
    (d / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1.0}\n')  # a first result
    with pytest.raises(RunError, match=r"weights\.fingerprint: 'sha256:abc' -> 'not cached'"):
        open_run(d, before, {})


def test_discard_unstarted_takes_back_only_runs_without_results(tmp_path: Path) -> None:
    from soundtransfer.runs import rundir

    rundir.discard_unstarted()  # nothing left over from other tests in this process
    (tmp_path / "runs").mkdir()
    idle = run_dir(tmp_path / "runs", "esc10", "resnet18.random", "linear", "fold1")
    busy = run_dir(tmp_path / "runs", "esc10", "resnet18.random", "linear", "fold2")
    other = tmp_path / "runs" / "esc10" / "notes.txt"
    open_run(idle, {"a": 1}, {})
    open_run(busy, {"a": 1}, {})
    (busy / "last.pt").write_bytes(b"")
    other.write_text("mine")  # a file of the user's in a folder open_run created
    assert rundir.discard_unstarted() == [idle]
    assert not idle.exists() and idle.parent.exists()  # linear/ still holds fold2
    assert sorted(p.name for p in busy.iterdir()) == ["config.json", "last.pt"]
    assert other.read_text() == "mine"
    assert rundir.discard_unstarted() == []  # each run is taken back once
    lone = run_dir(tmp_path / "runs", "us8k", "resnet18.random", "finetune", "fold1")
    open_run(lone, {"a": 1}, {})
    assert rundir.discard_unstarted() == [lone]
    assert not (tmp_path / "runs" / "us8k").exists()  # every folder made for it, up to runs/
    assert (tmp_path / "runs").is_dir()  # which the user's command had
