"""Shared fixtures: the real audio in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "esc10" / "meta" / "esc50.csv").exists():
        pytest.skip(f"real audio not found at {SHARED_DATA} (see the README's data section)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def esc10_root(shared_data: Path) -> Path:
    return shared_data / "esc10"


@pytest.fixture(scope="session")
def demo_root() -> Path:
    return REPO / "demo" / "esc10-sample"


def _run_torchrun(*args: str, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc-per-node N -m soundtransfer.cli.main ARGS`` on CPU
    (gloo, one OpenMP thread per process); fails the test with its stderr if it fails."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(nproc), "-m", "soundtransfer.cli.main", *args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="session")
def torchrun() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``torchrun(*cli_args, cwd=DIR)``: the soundtransfer CLI in 2 torchrun processes."""
    return _run_torchrun


FullDisk = Callable[[Callable[[Path], bool]], None]


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    """``full_disk(match)``: from then on, every file written through
    ``soundtransfer.runs.files`` (atomic writes, atomic_open) whose target ``match``es is
    written to ``/dev/full``, so the kernel itself answers ``ENOSPC`` to the real writers
    (torch, numpy, matplotlib, plain text) without root or a small file system. The temp
    file beside the target becomes a link to ``/dev/full``; the writer's own cleanup removes
    it. Linux only (skipped elsewhere)."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux) to fake a full disk")
    from soundtransfer.runs import files

    real = files._temp_path

    def fill(match: Callable[[Path], bool]) -> None:
        def temp(path: Path) -> Path:
            tmp = real(path)
            if match(path):
                tmp.parent.mkdir(parents=True, exist_ok=True)
                tmp.unlink(missing_ok=True)
                tmp.symlink_to("/dev/full")
            return tmp

        monkeypatch.setattr(files, "_temp_path", temp)

    return fill
