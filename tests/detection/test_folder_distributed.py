"""``predict`` over a folder under torchrun: 2 CPU ranks (gloo) share the recordings, each
recording's table written exactly once by one rank, the combined table by rank 0, and the
result equal to the one-process run.

The ranks are spawned by this file's ``__main__`` block (the project's spawn-a-script pattern,
see ``tests/test_distributed.py``): each records every file the run writes, then runs the CLI.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow  # two spawned ranks, a few seconds of start-up each

WORLD = 2
# Every window is a hit of its top class, no event too short: every table has rows.
ARGS = ["--format", "raven", "--combine", "--quiet", "--min-score", "0", "--min-event", "0"]
SCORE = "Score"


def _spawned_rank(
    rank: int, port: int, bundle: str, src: str, out: str, log: str, extra: str
) -> None:
    """One rank: ``predict BUNDLE SRC --out OUT EXTRA...`` (``extra``: JSON list) with every
    file it writes recorded."""
    import soundtransfer.detection.folder as folder
    from soundtransfer.cli.main import main

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank), OMP_NUM_THREADS="1",
    )  # fmt: skip
    written: list[str] = []
    real_text, real_write = folder.atomic_write_text, folder.atomic_write

    def text(path: Path, data: str) -> Path:
        written.append(str(path))
        return real_text(path, data)

    def write(path: Path, fn: Callable[[Path], Any]) -> Path:
        written.append(str(path))
        return real_write(path, fn)

    folder.atomic_write_text = text  # type: ignore[assignment]
    folder.atomic_write = write  # type: ignore[assignment]
    code = main(["predict", bundle, src, "--out", out, *ARGS, *json.loads(extra)])
    Path(log, f"rank{rank}.json").write_text(json.dumps({"code": code, "written": written}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rows(path: Path) -> list[dict[str, str]]:
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    names = header.split("\t")
    return [dict(zip(names, line.split("\t"), strict=True)) for line in lines]


def _assert_same_table(got: Path, want: Path) -> None:
    """The same rows, every column equal but the score, which may differ by one step of its
    4 decimals: each rank runs the network on one thread, the one-process run on the tests'
    threads, and MKL/oneDNN sums in another order (float32 softmax scores ~1e-6 apart), which
    can move a rounding boundary. A wrong share (a window or a recording missing, doubled or
    classified by another rank's state) changes rows, times or classes."""
    a, b = _rows(got), _rows(want)
    assert len(a) == len(b) > 0, got
    for x, y in zip(a, b, strict=True):
        assert {k: v for k, v in x.items() if k != SCORE} == {
            k: v for k, v in y.items() if k != SCORE
        }
        assert float(x[SCORE]) == pytest.approx(float(y[SCORE]), abs=1.5e-4)


@pytest.mark.parametrize("bad", [False, True], ids=["all-good", "skip-bad"])
def test_two_ranks_write_each_recording_once_and_match_one_process(
    bad: bool, recordings: Path, tmp_path: Path, run_as_script: Callable[..., object]
) -> None:
    from soundtransfer.cli.main import main

    from ..inference.conftest import make_bundle

    extra = ["--skip-bad"] if bad else []
    if bad:  # an unreadable recording, in whichever rank's share it falls
        (recordings / "site1" / "broken.wav").write_bytes(b"RIFF" + b"garbage" * 50)
    bundle = make_bundle(tmp_path / "model.pt")
    one, two, log = tmp_path / "one", tmp_path / "two", tmp_path / "log"
    log.mkdir()
    code = 3 if bad else 0  # 3: finished, some recordings failed (listed in failed.csv)
    assert main(["predict", str(bundle), str(recordings), "--out", str(one), *ARGS, *extra]) == code
    args = (str(_free_port()), str(bundle), str(recordings), str(two), str(log), json.dumps(extra))
    run_as_script(Path(__file__), *args)  # the __main__ block: two spawned ranks
    ranks = [json.loads((log / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [r["code"] for r in ranks] == [code, code]
    outputs = {p.relative_to(one) for p in one.rglob("*") if p.is_file()}
    combined, failed = Path("combined.selections.txt"), Path("failed.csv")
    assert combined in outputs and (failed in outputs) == bad
    assert len(outputs) == 5 + bad  # 4 recordings' tables + the combined one (+ failed.csv)
    shares = [[Path(p).relative_to(two) for p in r["written"]] for r in ranks]
    assert all(shares[r] for r in range(WORLD))  # both ranks worked
    every = [p for s in shares for p in s]
    assert sorted(every) == sorted(outputs)  # each file written exactly once, nothing else
    assert combined in shares[0] and (failed in shares[0]) == bad  # by rank 0
    assert {p.relative_to(two) for p in two.rglob("*") if p.is_file()} == outputs
    for rel in outputs - {failed}:
        _assert_same_table(two / rel, one / rel)
    if bad:  # the same row, naming the broken file (its path and reason: the same text)
        assert (two / failed).read_text() == (one / failed).read_text()
        assert "broken.wav" in (two / failed).read_text()


if __name__ == "__main__":  # the ranks of test_two_ranks_write_each_recording_once_...
    port, *paths = sys.argv[1:]
    mp.spawn(_spawned_rank, args=(int(port), *paths), nprocs=WORLD, join=True)
