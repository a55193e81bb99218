"""Sharded feature store builds: ranks of a torchrun job (gloo, CPU) share the rows of one store,
which comes out as a one-process build (the same index; rows within the store's tolerance),
resumes after a kill with any number of ranks without touching a finished row's bytes, and
merges the bad clips of every rank."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch.multiprocessing as mp

from soundtransfer.datasets import load_dataset
from soundtransfer.features import FeatureStore, build_features
from soundtransfer.features.progress import read_progress
from soundtransfer.features.store import ROW_ATOL, ROW_RTOL

pytestmark = pytest.mark.slow  # several torchrun jobs, each a few seconds of start-up

Torchrun = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parents[2]
BATCH = 2


def _copy_root(esc10_root: Path, dest: Path, n: int) -> Path:
    """``dest``: n real ESC-10 clips of folds 1 and 2, copied so a test may damage them."""
    (dest / "audio").mkdir(parents=True)
    (dest / "meta").mkdir()
    lines = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()
    rows = [r for r in lines[1:] if r.startswith(("1-", "2-"))][::3][:n]
    (dest / "meta" / "esc50.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    for r in rows:
        shutil.copy(esc10_root / "audio" / r.split(",")[0], dest / "audio")
    return dest


@pytest.fixture
def root16(esc10_root: Path, tmp_path: Path) -> Path:
    return _copy_root(esc10_root, tmp_path / "esc", 16)


def _cli(root: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "features", "esc10", "--root", str(root), "--cache", str(cache), "--quiet",
        "--batch-size", str(BATCH), "--workers", "1", *extra,
    ]  # fmt: skip


def _reference(root: Path, cache: Path, skip_bad: bool = False) -> FeatureStore:
    """The one-process build (same batch size and workers as the CLI runs)."""
    table = load_dataset("esc10", root).canonical()  # the order dataset_store stores
    return build_features(
        table, cache_dir=cache, batch_size=BATCH, workers=1, skip_bad=skip_bad, progress=False
    )


def _images(store_dir: Path, n: int) -> np.ndarray:
    """The store's rows ``(n, C * n_mels * out_frames)`` float16, read from ``images.f16``."""
    return np.fromfile(store_dir / "images.f16", dtype=np.float16).reshape(n, -1)


def _assert_same_store(store_dir: Path, reference: FeatureStore) -> None:
    """The same index (rows, key, shape, front end) and the same images within the store's
    promise (``ROW_ATOL``, ``ROW_RTOL``): the ranks run the front end on one thread each, the
    reference on the tests' threads, and MKL's sums depend on the thread split (seen on an
    AVX-512 Xeon: one value in ~10^6 one float16 step apart)."""
    n = len(reference)
    ours = _images(store_dir, n).astype(np.float32)
    want = np.asarray(reference.images, dtype=np.float32).reshape(n, -1)
    np.testing.assert_allclose(ours, want, atol=ROW_ATOL, rtol=ROW_RTOL)
    index = json.loads((store_dir / "index.json").read_text())
    assert index == json.loads((reference.dir / "index.json").read_text())
    assert not list(store_dir.glob("progress*"))  # complete: no progress logs left


def _only_store(cache: Path) -> Path:
    (store_dir,) = (cache / "features").iterdir()
    return store_dir


def test_two_ranks_build_the_one_process_store(
    root16: Path, tmp_path: Path, torchrun: Torchrun
) -> None:
    reference = _reference(root16, tmp_path / "one")
    done = torchrun(*_cli(root16, tmp_path / "two"), cwd=REPO)
    _assert_same_store(_only_store(tmp_path / "two"), reference)
    assert done.stdout.count("store: ") == 1  # rank 0 prints
    assert "computed 16 clips" in done.stdout  # the rows of both ranks
    again = torchrun(*_cli(root16, tmp_path / "two"), cwd=REPO)
    assert "up to date" in again.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spawned_rank(rank: int, port: int, root: str, cache: str, out: str) -> None:
    """One rank: records the batches it computes, then builds with the group."""
    import soundtransfer.features.sharded as sharded
    from soundtransfer import distributed as D

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
        LOCAL_RANK=str(rank), OMP_NUM_THREADS="1",
    )  # fmt: skip
    original = sharded._compute_share

    def recording(*args: Any, **kwargs: Any) -> Any:
        batches = args[4]
        Path(out, f"rank{rank}.json").write_text(json.dumps(batches))
        return original(*args, **kwargs)

    sharded._compute_share = recording  # type: ignore[assignment]
    with D.distributed_session("cpu"):
        table = load_dataset("esc10", Path(root)).canonical()
        store = build_features(
            table, cache_dir=Path(cache), batch_size=BATCH, workers=1, progress=False,
            distributed=True,
        )  # fmt: skip
        Path(out, f"store{rank}.json").write_text(
            json.dumps({"dir": str(store.dir), "computed": store.computed, "n": len(store)})
        )


def test_ranks_compute_disjoint_shares_of_every_row(
    root16: Path, tmp_path: Path, run_as_script: Callable[..., object]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args = (str(_free_port()), str(root16), str(tmp_path / "two"), str(out))
    run_as_script(Path(__file__), *args)  # the __main__ block: two spawned ranks
    batches = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    shares = [[row for batch in b for row in batch] for b in batches]
    assert shares[0] and shares[1] and not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == list(range(16))
    results = [json.loads((out / f"store{r}.json").read_text()) for r in (0, 1)]
    assert results[0] == results[1] == {"dir": results[0]["dir"], "computed": 16, "n": 16}
    _assert_same_store(Path(results[0]["dir"]), _reference(root16, tmp_path / "one"))


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux ``/proc``): torchrun starts its workers in their own
    sessions, so killing its process group would leave them running."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        found += kids
        todo += kids
    return found


def _kill_midway(cmd: list[str], cache: Path, n: int, min_rows: int) -> np.ndarray:
    """Run ``cmd``, SIGKILL it and its workers once ``min_rows`` rows are recorded; ``(n,)``
    bool, the rows recorded then (the build must not have finished)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            dirs = list((cache / "features").glob("esc10-*"))
            if dirs:
                state = read_progress(dirs[0], dirs[0].name.rsplit("-", 1)[1], n)
                if state is not None and state.done.sum() >= min_rows:
                    break
            time.sleep(0.05)
    finally:
        for pid in [*_children(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    (store_dir,) = (cache / "features").glob("esc10-*")
    assert not (store_dir / "index.json").exists(), "finished before it could be killed"
    state = read_progress(store_dir, store_dir.name.rsplit("-", 1)[1], n)
    assert state is not None
    return state.done


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds workers in /proc")
@pytest.mark.parametrize(("killed", "resumed_with"), [(1, 2), (2, 3)])
def test_killed_build_resumes_with_other_rank_counts(
    esc10_root: Path, tmp_path: Path, torchrun: Torchrun, killed: int, resumed_with: int
) -> None:
    n = 24
    root = _copy_root(esc10_root, tmp_path / "esc", n)
    cache = tmp_path / "cache"
    args = _cli(root, cache)
    if killed == 1:
        cmd = [sys.executable, "-m", "soundtransfer.cli.main", *args]
    else:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2", "-m", "soundtransfer.cli.main", *args,
        ]  # fmt: skip
    finished = _kill_midway(cmd, cache, n, min_rows=2 * BATCH)
    kept = int(finished.sum())
    assert 0 < kept < n
    before = _images(_only_store(cache), n)[finished].tobytes()
    done = torchrun(*args, cwd=REPO, nproc=resumed_with)
    assert f"resumed an unfinished feature store: {kept} of {n}" in done.stderr
    assert f"computed {n - kept} clips" in done.stdout  # rows of the killed run not redone
    # Bitwise where it is promised: a finished row keeps its bytes across the kill and the
    # resume, whatever the new rank count (it is never recomputed, nor overwritten).
    assert _images(_only_store(cache), n)[finished].tobytes() == before
    _assert_same_store(_only_store(cache), _reference(root, tmp_path / "one"))


def test_bad_clips_of_every_rank_are_merged(
    root16: Path, tmp_path: Path, torchrun: Torchrun
) -> None:
    table = load_dataset("esc10", root16).canonical()
    # Batches of 2 dealt in turn: rows 3 and 11 fall to rank 1, row 8 to rank 0.
    bad_rows = [3, 8, 11]
    for r in bad_rows:
        table.path(r).write_bytes(b"garbage" * 100)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "soundtransfer.cli.main", *_cli(root16, tmp_path / "two"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    failed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert failed.returncode != 0
    assert f"error: {table.path(3)}" in failed.stderr  # the lowest bad row, as one process
    assert table.path(8).name not in failed.stderr.replace(table.path(3).name, "")
    reference = _reference(root16, tmp_path / "one", skip_bad=True)
    done = torchrun(*_cli(root16, tmp_path / "two", "--skip-bad"), cwd=REPO)
    assert "bad clips left out: 3" in done.stdout
    two = [d for d in (tmp_path / "two" / "features").iterdir() if (d / "bad.json").exists()]
    assert len(two) == 1
    _assert_same_store(two[0], reference)
    assert (two[0] / "bad.json").read_text() == (reference.dir / "bad.json").read_text()  # text
    assert [b["file"] for b in reference.bad] == [table.clips[r].file for r in bad_rows]


if __name__ == "__main__":  # the ranks of test_ranks_compute_disjoint_shares_of_every_row
    port, *paths = sys.argv[1:]
    mp.spawn(_spawned_rank, args=(int(port), *paths), nprocs=2, join=True)
