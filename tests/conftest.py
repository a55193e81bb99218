"""Shared fixtures: the real audio in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def _test_threads() -> int:
    """torch's intra-op threads for the tests: ``OMP_NUM_THREADS`` when set (its first entry),
    so ``make test-matrix`` runs the thread counts it names; else 2 (the CI machine's cores).

    A fixed default rather than torch's own (every core): the same count on any machine, and
    tests that start several processes do not oversubscribe a large one.
    """
    given = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(given) if given.isdigit() and int(given) > 0 else 2


TEST_THREADS = _test_threads()
torch.set_num_threads(TEST_THREADS)


@pytest.fixture(scope="session")
def torch_test_threads() -> int:
    """The intra-op thread count the tests run with (see :func:`_test_threads`)."""
    return TEST_THREADS


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    """Every test starts with ``TEST_THREADS``: one that changes the count (a fixture, the
    code under test) does not change the thread count of the tests after it."""
    yield
    if torch.get_num_threads() != TEST_THREADS:
        torch.set_num_threads(TEST_THREADS)


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


def _run_as_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python SCRIPT ARGS`` (a test file's ``__main__`` block, which ``mp.spawn``s its ranks);
    fails the test with its stderr if it fails.

    Run as a script rather than spawned from the test process: ``mp.spawn`` pickles its
    target by module name, and a spawned child imports a test module's name
    (``tests.test_x``) from whatever ``tests`` package comes first on its path (a
    dependency's stray top-level ``tests`` package breaks it); a script's own functions are
    found by file path.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(script), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="session")
def run_as_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_as_script(__file__, *args)``: the test file's ``__main__`` block in a fresh
    process (see :func:`_run_as_script`)."""
    return _run_as_script


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
