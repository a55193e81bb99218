"""Progress logs: one append per batch, torn last lines ignored, merged across ranks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soundtransfer.features import progress as P

KEY, N = "0123456789abcdef", 10


def _write(root: Path, rank: int, batches: list[tuple[list[int], list[dict[str, object]]]]) -> Path:
    log = P.ProgressWriter(root, rank, KEY, N)
    for rows, bad in batches:
        log.add(rows, bad)  # type: ignore[arg-type]
    log.close()
    return P.rank_log(root, rank)


def test_logs_of_several_ranks_merge(tmp_path: Path) -> None:
    bad = {"row": 4, "file": "b.wav", "reason": "b.wav: truncated"}
    _write(tmp_path, 0, [([0, 1], []), ([6, 7], [])])
    _write(tmp_path, 1, [([3, 4], [bad]), ([0], [])])  # a row twice counts once
    state = P.read_progress(tmp_path, KEY, N)
    assert state is not None
    assert np.flatnonzero(state.done).tolist() == [0, 1, 3, 4, 6, 7]
    assert state.bad == (bad,)
    assert P.has_logs(tmp_path)


def test_a_batch_appends_only_its_own_line(tmp_path: Path) -> None:
    """No rewrite of all rows per batch: the log grows by one short line."""
    log = P.ProgressWriter(tmp_path, 0, KEY, N)
    sizes = []
    for start in range(0, N, 2):
        log.add([start, start + 1], [])
        sizes.append(P.rank_log(tmp_path, 0).stat().st_size)
    log.close()
    growth = np.diff(sizes)
    assert growth.max() < 40 and growth.max() - growth.min() <= 2


def test_torn_last_line_is_ignored_and_garbage_is_damage(tmp_path: Path) -> None:
    path = _write(tmp_path, 0, [([0, 1], []), ([2, 3], [])])
    whole = path.read_text()
    path.write_text(whole + '{"bad":[],"done":[4,')  # killed while appending
    state = P.read_progress(tmp_path, KEY, N)
    assert state is not None and int(state.done.sum()) == 4
    path.write_text(whole.replace('"done":[2,3]', '"done":[2,99]'))  # row out of range
    assert P.read_progress(tmp_path, KEY, N) is None
    path.write_text(whole.replace("[2,3]", "[2,3"))  # a garbled complete line
    assert P.read_progress(tmp_path, KEY, N) is None
    path.write_text(whole)
    assert P.read_progress(tmp_path, "another-key", N) is None
    assert P.read_progress(tmp_path, KEY, N + 1) is None


def test_merge_replaces_rank_logs(tmp_path: Path) -> None:
    _write(tmp_path, 0, [([0, 1], [])])
    _write(tmp_path, 2, [([5], [{"row": 5, "file": "x", "reason": "x: bad"}])])
    state = P.read_progress(tmp_path, KEY, N)
    assert state is not None
    P.write_merged(tmp_path, KEY, state)
    assert [p.name for p in tmp_path.iterdir()] == [P.MERGED]
    again = P.read_progress(tmp_path, KEY, N)
    assert again is not None
    assert again.done.tolist() == state.done.tolist() and again.bad == state.bad
    P.remove_logs(tmp_path)
    assert not P.has_logs(tmp_path)
    fresh = P.read_progress(tmp_path, KEY, N)
    assert fresh is not None and not fresh.done.any()
