"""Building a feature store: alone, or sharing the rows with the other ranks of a torchrun job.

One process (``world_size`` 1) and ``W`` ranks run the same steps; the ranks meet at three
points (object all-gathers, which also act as barriers):

1. Plan (rank 0, holding ``build.lock`` until the end): open the finished store if there is
   one; otherwise merge the progress logs of every earlier run (whatever its number of ranks,
   see :mod:`soundtransfer.features.progress`), create ``images.f16`` at its final size if it
   is new or damaged, and share the rows still to do.
2. Compute (every rank): the unfinished rows in batches, batch ``k`` to rank ``k mod W``
   (every rank gets a share within one batch of the others', and consecutive rows form a
   batch, so each batch is one contiguous write). A rank writes only its rows into the shared
   ``images.f16`` (``pwrite`` at the row's offset, then ``fsync``) and then appends them to
   its own ``progress.r<rank>.log``; no two processes write the same bytes or file.
3. Finish (rank 0): merge the logs, check that every row is done, write ``index.json`` (or copy
   the good rows to the good table's store with ``skip_bad``, ``bad.json`` listing the bad
   clips of all ranks in row order), then every rank opens the finished store.

A bad clip (without ``skip_bad``) stops the rank that meets it, which says so to the others
(``build.stop``, checked before each batch, so no rank waits long at the next meeting point);
every rank then raises the error of the lowest bad row found, naming the file, and the rows
finished so far are kept, as in a one-process build.
Rows finished by any rank of any earlier run are kept as written (never recomputed), so a
build killed with 2 ranks resumes with 1, 2 or 3. Rows computed by other ranks, worker or
thread counts equal a single process's within :data:`~soundtransfer.features.store.ROW_ATOL`
and :data:`~soundtransfer.features.store.ROW_RTOL`, not bitwise (MKL's kernels sum in an
order that depends on the CPU, the thread split and alignment); the index and ``bad.json``
are the same files.

Processes not in the group (another job, ``reproduce --spread``, ``finetune`` under torchrun)
wait on ``build.lock`` held by rank 0 and then open the finished store. Across machines the
cache must be on a file system every node sees (NFS, Lustre, ...).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from soundtransfer import distributed as D
from soundtransfer.audio.frontend import LogMel3, torch_threads
from soundtransfer.audio.presets import FrontEnd
from soundtransfer.config import save_json
from soundtransfer.datasets.clips import ClipTable
from soundtransfer.errors import AudioError, DatasetError, RunError, SoundTransferError
from soundtransfer.features import progress as P
from soundtransfer.features.store import (
    IMAGES,
    INDEX,
    LOCK,
    SKIP_HINT,
    FeatureStore,
    _batch_images,
    _clip_image,
    _decode,
    _index_payload,
    _move_good_rows,
    _open_complete,
    _pipelined,
    open_features,
)
from soundtransfer.locking import file_lock
from soundtransfer.runs.files import reporting_disk_full

T = TypeVar("T")
STOP = "build.stop"


@dataclass(frozen=True)
class Ranks:
    """The processes building one store together.

    Attributes:
        rank: this process, 0 .. world_size - 1.
        world_size: how many processes share the rows (1: this one builds alone).
    """

    rank: int = 0
    world_size: int = 1

    @classmethod
    def of_group(cls) -> Ranks:
        """The initialised process group (``torchrun``), or this process alone."""
        return cls(D.get_rank(), D.get_world_size())

    def share(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (an all-gather, so also a barrier)."""
        return D.gather_objects(obj) if self.world_size > 1 else [obj]


@dataclass(frozen=True)
class BuildOptions:
    """How to compute the rows (see :func:`soundtransfer.features.build_features`)."""

    batch_size: int = 32
    device: str = "cpu"
    workers: int = 2
    skip_bad: bool = False
    progress: bool = True


@dataclass(frozen=True)
class _Plan:
    """Rank 0's decision: a finished store's directory, or the rows still to compute."""

    finished: str | None = None
    todo_bits: bytes = b""  # np.packbits of the rows not done
    resumed: int = 0


def build_store(
    root: Path, table: ClipTable, fe: FrontEnd, opts: BuildOptions, ranks: Ranks
) -> FeatureStore:
    """Open, resume or compute the store of ``table`` at ``root`` with ``ranks``.

    Every rank must call this with the same arguments (it checks the key, batch size and
    ``skip_bad``).

    Returns:
        The finished store on every rank; ``computed`` counts the rows all ranks computed in
        this call, ``resumed`` the rows earlier runs had done.

    Raises:
        AudioError: a bad clip (without ``skip_bad``), on every rank.
        DatasetError: every clip is bad.
        RunError: the ranks were given different stores or settings.
    """
    n, key = len(table), root.name.rsplit("-", 1)[1]
    shape = (n, *fe.image_shape)
    settings = ranks.share((key, opts.batch_size, opts.skip_bad))
    if len(set(settings)) > 1:
        raise RunError(
            f"{table.name}: the ranks were asked for different feature stores "
            f"(key, batch size, skip_bad per rank: {settings}); give every rank the same inputs"
        )
    with ExitStack() as held:
        plan: _Plan = _on_main(ranks, lambda: _plan(root, key, shape, opts.skip_bad, held))
        if plan.finished is not None:
            return open_features(Path(plan.finished))
        todo = np.flatnonzero(np.unpackbits(np.frombuffer(plan.todo_bits, np.uint8))[:n])
        size = opts.batch_size
        batches = [todo[s : s + size].tolist() for s in range(0, len(todo), size)]
        mine = batches[ranks.rank :: ranks.world_size]
        outcome = _compute_share(root, table, fe, key, mine, opts, ranks, plan.resumed)
        outcomes = ranks.share(outcome)
        errors = [(row, err) for _, row, err in outcomes if err is not None]
        if errors:
            raise min(errors, key=lambda e: e[0])[1]
        final: str = _on_main(ranks, lambda: _finish(root, table, fe, key, shape))
    computed = sum(c for c, _, _ in outcomes)
    return dataclasses.replace(open_features(Path(final)), computed=computed, resumed=plan.resumed)


def _on_main(ranks: Ranks, fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0, its result (or its :class:`SoundTransferError`) on every rank."""
    payload: tuple[T | None, SoundTransferError | None] = (None, None)
    if ranks.rank == 0:
        try:
            payload = (fn(), None)
        except SoundTransferError as exc:
            payload = (None, exc)
    result, error = ranks.share(payload)[0]
    if error is not None:
        raise error
    return result  # type: ignore[no-any-return]


def _plan(root: Path, key: str, shape: tuple[int, ...], skip_bad: bool, held: ExitStack) -> _Plan:
    """Rank 0: take the lock, then the finished store or what is left to do.

    An earlier run's progress is used only when every log is whole (see
    :func:`~soundtransfer.features.progress.read_progress`) and the images file has exactly
    the store's size; otherwise the build starts over, so rows never come from a damaged file.
    """
    finished = _open_complete(root, skip_bad)
    if finished is None:
        root.mkdir(parents=True, exist_ok=True)
        held.enter_context(file_lock(root / LOCK))  # until the build is finished
        finished = _open_complete(root, skip_bad)
    if finished is not None:
        return _Plan(finished=str(finished.dir))
    (root / STOP).unlink(missing_ok=True)  # left by a run a bad clip stopped
    n, size = shape[0], int(np.prod(shape)) * 2
    images = root / IMAGES
    state = P.read_progress(root, key, n) if _size(images) == size else None
    if state is None:
        state = P.Progress.fresh(n)
        with open(images, "wb") as f:  # zeros, sparse: no disk used until rows are written
            f.truncate(size)
    if state.bad and not skip_bad:
        # An unfinished --skip-bad run found these: finishing now would leave them out.
        raise AudioError(state.bad[0]["reason"] + SKIP_HINT)
    P.write_merged(root, key, state)
    return _Plan(todo_bits=np.packbits(~state.done).tobytes(), resumed=int(state.done.sum()))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _compute_share(
    root: Path,
    table: ClipTable,
    fe: FrontEnd,
    key: str,
    batches: list[list[int]],
    opts: BuildOptions,
    ranks: Ranks,
    resumed: int,
) -> tuple[int, int, SoundTransferError | None]:
    """This rank's batches: rows computed, and the first row and error of a bad clip."""
    if not batches:
        return 0, 0, None
    model = LogMel3(fe).to(opts.device).eval()
    note = f" (resuming, {resumed} done)" if resumed else ""
    if ranks.world_size > 1:
        note += f" (rank {ranks.rank} of {ranks.world_size})"
    bar = tqdm(
        total=sum(len(b) for b in batches),
        desc=f"features {table.name}{note}",
        unit="clip",
        disable=not opts.progress or ranks.rank != 0,
    )
    # CPU: each worker decodes a clip and computes its image (clip-level parallelism beats
    # torch's intra-op threads on these small per-clip ops, measured); GPU: workers decode,
    # the main thread computes whole batches on the device.
    on_cpu = torch.device(opts.device).type == "cpu"

    def work(i: int) -> np.ndarray | str:
        return _clip_image(model, table, i, fe) if on_cpu else _decode(table, i, fe)

    # Flush-to-zero in our own workers only: the FFTs of zero-padded, windowed frames
    # produce subnormal floats that make them up to 1.5x slower (measured); values below
    # 1e-38 vanish next to log_eps either way. With several CPU workers, torch's
    # intra-op threads are set to 1 for the duration of the build (restored after):
    # one clip per core beats splitting each small op over the cores (measured ~10%).
    threads = 1 if on_cpu and opts.workers > 1 else torch.get_num_threads()
    computed, rows = 0, batches[0]
    log = P.ProgressWriter(root, ranks.rank, key, len(table))
    row_bytes = int(np.prod(fe.image_shape)) * 2
    try:
        with (
            torch_threads(threads),
            open(root / IMAGES, "r+b") as images,
            ThreadPoolExecutor(
                max(1, opts.workers), initializer=torch.set_flush_denormal, initargs=(True,)
            ) as pool,
        ):
            for rows, results in _pipelined(pool if opts.workers > 0 else None, batches, work):
                if ranks.world_size > 1 and (root / STOP).exists():
                    break  # another rank met a bad clip: all stop and raise it
                bad: list[dict[str, Any]] = []
                good, img16 = _batch_images(
                    table, rows, results, None if on_cpu else model, opts.device, opts.skip_bad, bad
                )
                if good:
                    with reporting_disk_full(root / IMAGES):  # one line naming the store
                        _write_rows(images, good, img16, row_bytes)
                    computed += len(good)
                with reporting_disk_full(P.rank_log(root, ranks.rank)):
                    log.add(rows, bad)  # after the images are on disk
                bar.update(len(rows))
    except SoundTransferError as exc:
        if ranks.world_size > 1:
            (root / STOP).touch()
        return computed, rows[0], exc  # every rank raises it after the next meeting point
    finally:
        log.close()
        bar.close()
    return computed, 0, None


def _write_rows(images: Any, rows: list[int], img16: np.ndarray, row_bytes: int) -> None:
    """Write images to their rows (one write per run of consecutive rows), then ``fsync``.

    Plain writes at offsets rather than a shared memory map: ranks on other machines may
    write the neighbouring rows, and a row (192,000 bytes for 128 x 250) does not end on a
    page boundary; a file system merges byte ranges written, not pages mapped.
    """
    start = 0
    for k in range(1, len(rows) + 1):
        if k == len(rows) or rows[k] != rows[k - 1] + 1:
            images.seek(rows[start] * row_bytes)
            images.write(np.ascontiguousarray(img16[start:k]).data)
            start = k
    images.flush()
    os.fsync(images.fileno())


def _finish(root: Path, table: ClipTable, fe: FrontEnd, key: str, shape: tuple[int, ...]) -> str:
    """Rank 0: merge every rank's progress, check it, and make the store; its directory."""
    n = shape[0]
    state = P.read_progress(root, key, n)
    if state is None or not state.done.all():
        missing = n if state is None else int((~state.done).sum())
        raise RunError(
            f"{root}: {missing} of {n} rows have no progress record after every rank finished "
            "(was the store directory shared by every node?); run the build again"
        )
    bad = list(state.bad)
    if not bad:
        save_json(root / INDEX, _index_payload(key, table, fe, shape))
        P.remove_logs(root)
        return str(root)
    if len(bad) == n:
        raise DatasetError(f"{table.name}: every clip is bad, e.g. {bad[0]['reason']}")
    return str(_move_good_rows(root, table, fe, bad).dir)
