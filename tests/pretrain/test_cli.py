"""``soundtransfer pretrain`` in one process and under torchrun (2 processes, Gloo, CPU)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from soundtransfer.cli.main import main

ARGS = ["--preset", "cpu", "--set", "batch_size=8", "--set", "input_size=32", "--quiet"]


@pytest.mark.usefixtures("encoder")
def test_cli_runs_on_real_images(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"

    def run(*extra: str) -> int:
        args = ["pretrain", "--images", str(image_folder), "--out", str(out), *ARGS]
        return main([*args, "--set", "max_steps=2", *extra])

    assert run() == 0
    assert capsys.readouterr().out.strip() == str(out / "encoder.safetensors")
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    # resume of a finished run: nothing left to do, the same file again
    assert run("--resume") == 0


def test_cli_errors_are_one_line(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "pretrain",
            "--images",
            str(image_folder),
            "--out",
            str(tmp_path),
            *ARGS,
            "--set",
            "batchsize=8",
        ]
    )
    assert code == 2
    assert "unknown setting 'batchsize'" in capsys.readouterr().err
    code = main(["pretrain", "--images", str(tmp_path / "none"), "--out", str(tmp_path), *ARGS])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(
    image_folder: Path, tmp_path: Path, torchrun: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    out = tmp_path / "ddp"
    done = torchrun(
        "pretrain", "--images", str(image_folder), "--out", str(out), *ARGS,
        "--set", "max_steps=2", "--set", "device=cpu",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.stdout.strip().splitlines() == [str(out / "encoder.safetensors")]  # rank 0 only
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    sidecar = json.loads((out / "encoder.json").read_text())
    assert sidecar["world_size"] == 2 and sidecar["steps"] == 2
