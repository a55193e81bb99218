"""The same commands under torchrun (gloo, CPU): DDP fine-tuning, the grid spread over processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from soundtransfer.datasets import load_dataset

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.slow
def test_finetune_under_torchrun_uses_ddp_with_the_global_batch_split(
    demo_root: Path, tmp_path: Path, torchrun: Run
) -> None:
    torchrun(
        "finetune", "esc10", "--root", str(demo_root), "--weights", "random",
        "--arch", "resnet18", "--preset", "demo", "--folds", "1", "--quiet",
        "--out", str(tmp_path / "runs"), "--cache", str(tmp_path / "cache"),
        "--set", "epochs=2", "--set", "batch_size=16", "--device", "cpu",
        cwd=tmp_path,
    )  # fmt: skip
    run = tmp_path / "runs" / "esc10" / "resnet18.random" / "finetune" / "fold1"
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2
    assert config["effective_batch_size"] == 16  # batch_size is global, as in pre-training
    assert config["batch_size_per_process"] == 8
    assert config["train"]["optimiser"]["lr"] == 1e-4
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]  # rank 0 logs once per epoch
    final = json.loads((run / "final.json").read_text())
    n_fold1 = sum(c.fold == 1 for c in load_dataset("esc10", demo_root).clips)
    assert len(final["predictions"]) == final["n_test"] == n_fold1
    assert (run / "model.pt").exists()


@pytest.mark.slow
def test_reproduce_spread_deals_runs_to_processes(
    demo_root: Path, tmp_path: Path, torchrun: Run
) -> None:
    out = tmp_path / "runs"
    torchrun(
        "reproduce", "--preset", "cpu", "--root", f"esc10={demo_root}", "--folds", "1,2",
        "--spread", "--quiet", "--out", str(out), "--cache", str(tmp_path / "cache"),
        "--set", "epochs=1", "--set", "batch_size=8", "--device", "cpu",
        cwd=tmp_path,
    )  # fmt: skip
    finals = sorted(out.glob("esc10/*/*/fold*/final.json"))
    assert len(finals) == 8  # 2 weight sources x 2 modes x 2 folds, each run exactly once
    worlds = {json.loads((f.parent / "config.json").read_text())["world_size"] for f in finals}
    assert worlds == {1}  # spread runs train alone, no gradient sync
    stores = list((tmp_path / "cache" / "features").glob("esc10-*/index.json"))
    assert len(stores) == 1  # the features were built once, under the lock
    table = (out / "results.md").read_text()
    for row in ("lite0 | finetune", "lite0 | linear", "random | finetune", "random | linear"):
        assert f"efficientnet_lite0.{row}" in table
    assert table.count("fold1") == 4 and table.count("fold2") == 4
