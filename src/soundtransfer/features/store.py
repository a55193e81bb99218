"""The feature store: every clip's 3-channel log-mel image computed once, memory-mapped.

Layout of a store directory ``<cache>/features/<dataset>-<key>/``:

- ``images.f16``: float16 ``np.memmap`` of shape ``(N, C, n_mels, out_frames)``, row ``i`` the
  image of ``table.clips[i]``.
- ``index.json``: the key, the front-end settings, the rows (file, label, fold, group), the
  shape and the done count, written atomically once the store is complete (only a directory
  with a complete ``index.json`` is a store).
- ``progress.log``, ``progress.r<rank>.log``: while building, the rows finished and the bad
  clips found, one line appended per batch by each building process (see
  :mod:`soundtransfer.features.progress`); a run interrupted at any point (Ctrl-C, kill) or
  stopped by a bad clip resumes with the unfinished rows, whatever its number of ranks, and
  finished rows are never recomputed (their bytes stay as written). The resuming run says so
  (``FeatureStore.resumed``, a note from the CLI); an unfinished store whose files are
  damaged (images cut short or gone, garbled progress) is rebuilt from scratch; bad clips
  recorded by an unfinished ``skip_bad`` run stop a run without ``skip_bad`` as they would
  have. Rows computed by another run (other workers, ranks, threads, CPU) are equal within
  ``ROW_ATOL`` / ``ROW_RTOL``, not bitwise.
- ``bad.json``: clips that could not be decoded and were left out (``skip_bad`` only).
- ``build.lock``: held (``flock``) by the process building the store (rank 0 when the ranks of
  a ``torchrun`` job share the rows, :mod:`soundtransfer.features.sharded`); other processes
  sharing the cache wait on it and then open the finished store.

The key hashes the front-end settings, the dataset name and classes and, per clip, its path,
size, modification time (ns), label and fold. A changed preset, file list, file or label gives
a new key and so a new directory; stores of old keys are left in place (delete them by hand or
the whole ``features/`` folder). Re-running with the same inputs opens the store without
decoding anything.

Bad clips: by default the first undecodable clip raises :class:`AudioError` naming the file
(the rows finished before it are kept). With ``skip_bad``, bad clips are recorded with their
reasons and the good rows are copied, once complete, into the store of the table without the
bad clips (its own key, ``bad.json`` beside it); the directory of the full table keeps only an
``index.json`` pointing there, so the next run neither decodes nor copies again.

Memory is bounded by two batches per process (the one being written and the one being worked
on) besides the clip table, whatever the dataset size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from soundtransfer.audio.frontend import LogMel3
from soundtransfer.audio.io import load_clip
from soundtransfer.audio.presets import FrontEnd
from soundtransfer.cache import features_dir
from soundtransfer.config import config_hash, from_dict, save_json, to_dict
from soundtransfer.datasets.clips import Clip, ClipTable
from soundtransfer.errors import AudioError, DatasetError
from soundtransfer.features.progress import has_logs, remove_logs

IMAGES = "images.f16"
INDEX = "index.json"
BAD = "bad.json"
LOCK = "build.lock"
T = TypeVar("T")
SKIP_HINT = " (use --skip-bad / skip_bad=True to leave bad clips out with a report)"


@dataclass(frozen=True)
class FeatureStore:
    """A finished feature store (read-only).

    Attributes:
        dir: the store directory.
        key: hash of the inputs and settings.
        table: the clips of the rows, in row order.
        frontend: the front-end settings used.
        images: read-only float16 memmap ``(N, C, n_mels, out_frames)``.
        bad: clips left out, ``{"file", "reason"}`` each (``skip_bad`` only).
        computed: rows computed by the call that returned this store (0: it was up to date).
        resumed: rows an earlier, unfinished build had done, which the call that returned
            this store kept (0: built from scratch, or it was complete already).
        origin: how :func:`dataset_store` opened the dataset (source, layout, folds, front
            end and why, leakage check), recorded in every run's ``config.json``; empty for
            a store built from a table directly.
    """

    dir: Path
    key: str
    table: ClipTable
    frontend: FrontEnd
    images: np.ndarray
    bad: tuple[dict[str, str], ...] = ()
    computed: int = 0
    resumed: int = 0
    origin: dict[str, Any] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.table)

    def batch(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Rows as a float32 tensor ``(B, C, n_mels, out_frames)`` (one fancy-index read)."""
        idx = np.asarray(indices, dtype=np.int64)
        order = np.argsort(idx)  # sorted reads are sequential on disk
        out = np.empty((len(idx), *self.images.shape[1:]), dtype=np.float16)
        out[order] = self.images[idx[order]]
        return torch.from_numpy(out).float()


def store_key(table: ClipTable, frontend: FrontEnd) -> str:
    """Hash of the front end, the dataset name and classes, and each clip's path, size,
    mtime, label and fold (16 hex characters)."""
    rows = []
    for i, c in enumerate(table.clips):
        try:
            st = table.path(i).stat()
        except OSError:
            raise AudioError(f"{table.path(i)}: file not found") from None
        row: list[Any] = [c.file, st.st_size, st.st_mtime_ns, c.label, c.fold]
        if c.labels is not None or c.start_s:  # multi-label rows and windows (old keys kept)
            row += [None if c.labels is None else list(c.labels), c.start_s]
        rows.append(row)
    return config_hash(frontend, table.name, list(table.classes), rows)


def store_dir(table: ClipTable, frontend: FrontEnd, cache_dir: Path | None = None) -> Path:
    """Where the store of ``table`` under ``frontend`` lives (it may not exist yet)."""
    return features_dir(cache_dir) / f"{table.name}-{store_key(table, frontend)}"


def _open_complete(root: Path, skip_bad: bool) -> FeatureStore | None:
    """The finished store at ``root`` (or where its good rows moved), None if unfinished."""
    meta = _read_json(root / INDEX)
    if not meta.get("complete"):
        return None
    if "moved_to" not in meta:
        return open_features(root)
    if not skip_bad:
        first = meta["bad"][0]
        raise AudioError(first["reason"] + SKIP_HINT)
    return open_features(root.parent / meta["moved_to"])


def _batch_images(
    table: ClipTable,
    rows: list[int],
    results: list[np.ndarray | str],
    model: LogMel3 | None,
    device: str,
    skip_bad: bool,
    bad: list[dict[str, Any]],
) -> tuple[list[int], np.ndarray]:
    """One batch's good rows and their float16 images ``(G, C, n_mels, out_frames)``.

    ``results`` holds, per row, the float16 image (``model`` None: the workers computed and
    checked it, :func:`_clip_image`), the waveform (``model`` computes the batch on ``device``)
    or the reason the clip is bad. A clip whose image is not finite in float16 (finite samples
    far outside [-1, 1] overflow the power spectrum) is bad too. A bad clip is raised, or
    appended to ``bad`` with ``skip_bad`` (kept in row order).
    """

    def refuse(r: int, reason: str) -> None:
        if not skip_bad:
            raise AudioError(reason + SKIP_HINT)
        bad.append({"row": r, "file": table.clips[r].file, "reason": reason})

    for r, res in zip(rows, results, strict=True):
        if isinstance(res, str):
            refuse(r, res)
    good = [r for r, res in zip(rows, results, strict=True) if not isinstance(res, str)]
    arrays = [res for res in results if not isinstance(res, str)]
    if not good:
        return good, np.empty(0, dtype=np.float16)
    if model is None:
        return good, np.stack(arrays)  # (G, C, n_mels, out_frames), float16
    with torch.inference_mode():
        x = torch.from_numpy(np.stack(arrays)).to(device)  # (G, T)
        img16, finite = float16_images(model(x))  # on the device, then copied
    if not finite.all():
        for k in np.flatnonzero(~finite):
            refuse(good[k], _not_finite(table, good[k]))
        bad.sort(key=lambda b: int(b["row"]))
        good = [good[k] for k in np.flatnonzero(finite)]
        img16 = img16[finite]
    return good, img16


# The promise for a row computed with another worker, thread or rank count or another CPU
# (a GPU's float32 FFT is expected within it; untested): |a - b| <= ROW_ATOL + ROW_RTOL * |b|
# elementwise (natural-log units). Not bitwise: MKL's FFT and GEMM kernels (and ATen's
# vectorised ones) sum in an order that depends on the instruction set, the thread split and
# the buffers' alignment. ROW_ATOL: each float32
# image lies within 5e-4 of the float64 computation (4.6e-4 measured over 70 ESC-10 and
# UrbanSound8K clips, near-silent bands; 3.5e-5 between two kernel sets), so two lie within
# twice that. ROW_RTOL: rounding to float16 then moves two values a hair apart to neighbouring
# float16 numbers, one float16 step apart (2**-10 of the value's magnitude at most).
# Bitwise is what a resume promises: a finished row is never recomputed.
ROW_ATOL = 1e-3
ROW_RTOL = 2.0**-10

# float32 values of this magnitude or more round to inf in float16 (65504 is its largest
# finite value; 65520 is the midpoint to the next power of two, and rounds to even: inf).
FLOAT16_OVERFLOW = 65520.0


def float16_images(img: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(G, ...) float32 images -> their float16 copy (NumPy) and, per image, whether every
    value is finite in float16 (no NaN, no infinity, nothing that rounds to one).

    One reduction and one conversion, on the images' device: about 10x cheaper on CPU than
    NumPy's ``astype(float16)`` followed by ``isfinite`` (measured, 32 images of 3 x 128 x 250).
    """
    peak = img.flatten(1).abs().amax(dim=1)  # (G,); NaN propagates and fails the test below
    finite = (peak < FLOAT16_OVERFLOW).cpu().numpy()
    return img.half().cpu().numpy(), finite


def _not_finite(table: ClipTable, row: int) -> str:
    return f"{table.path(row)}: log-mel values not finite in float16 (samples far outside [-1, 1]?)"


def _move_good_rows(
    root: Path, table: ClipTable, fe: FrontEnd, bad: list[dict[str, Any]]
) -> FeatureStore:
    """Copy the good rows of a complete full-table build into the store of the good table.

    Crash-safe: the full table's ``index.json`` (the redirect) is written only after the good
    store is complete; a rerun before that copies again.
    """
    bad_rows = {b["row"] for b in bad}
    good = [i for i in range(len(table)) if i not in bad_rows]
    good_table = table.subset(good)
    target = store_dir(good_table, fe, root.parent.parent)
    target.mkdir(parents=True, exist_ok=True)
    shape = (len(good), *fe.image_shape)
    src = np.memmap(root / IMAGES, dtype=np.float16, mode="r", shape=(len(table), *shape[1:]))
    dst = np.memmap(target / IMAGES, dtype=np.float16, mode="w+", shape=shape)
    for s in range(0, len(good), 256):  # bounded memory
        dst[s : s + 256] = src[good[s : s + 256]]
    dst.flush()
    del src, dst
    reports = [{"file": b["file"], "reason": b["reason"]} for b in bad]
    save_json(target / BAD, reports)
    target_key = target.name.rsplit("-", 1)[1]
    save_json(target / INDEX, _index_payload(target_key, good_table, fe, shape))
    redirect = {"key": root.name.rsplit("-", 1)[1], "complete": True, "moved_to": target.name}
    save_json(root / INDEX, {**redirect, "bad": reports})
    (root / IMAGES).unlink(missing_ok=True)
    remove_logs(root)
    return open_features(target)


def _decode(table: ClipTable, i: int, fe: FrontEnd) -> np.ndarray | str:
    """Clip ``i``'s waveform (T,) float32, or the reason it is bad (naming the file)."""
    try:
        clip = table.clips[i]
        return load_clip(
            table.path(i), fe.sample_rate, fe.clip_samples, fe.crop, offset_s=clip.start_s
        )
    except AudioError as exc:
        return str(exc)


def _clip_image(model: LogMel3, table: ClipTable, i: int, fe: FrontEnd) -> np.ndarray | str:
    """Clip ``i``'s float16 image (C, n_mels, out_frames), or the reason it is bad (it cannot
    be decoded, or its image is not finite in float16)."""
    wave = _decode(table, i, fe)
    if isinstance(wave, str):
        return wave
    with torch.inference_mode():
        img16, finite = float16_images(model(torch.from_numpy(wave)[None]))
    return img16[0] if finite[0] else _not_finite(table, i)


def _pipelined(
    pool: ThreadPoolExecutor | None, batches: list[list[int]], work: Callable[[int], T]
) -> Iterator[tuple[list[int], list[T]]]:
    """``work(row)`` for every row, batch by batch and in order.

    With a pool, the next batch is submitted before the current one is collected, so the
    workers never wait for the caller and at most two batches of results exist at a time.
    """
    if pool is None:
        for rows in batches:
            yield rows, [work(i) for i in rows]
        return
    pending = [pool.submit(work, i) for i in batches[0]]
    try:
        for k, rows in enumerate(batches):
            current = pending
            if k + 1 < len(batches):
                pending = [pool.submit(work, i) for i in batches[k + 1]]
            yield rows, [f.result() for f in current]
    finally:
        for f in pending:  # stop working ahead after an error or interrupt
            f.cancel()


def _index_payload(
    key: str, table: ClipTable, fe: FrontEnd, shape: tuple[int, ...]
) -> dict[str, Any]:
    return {
        "key": key,
        "complete": True,
        "dataset": table.name,
        "root": str(table.root),
        "classes": list(table.classes),
        "protocol": table.protocol,
        "notes": list(table.notes),
        "frontend": to_dict(fe),
        "rows": [_row(c) for c in table.clips],
        "background": list(table.background),
        "shape": list(shape),
        "done": shape[0],
    }


def _row(c: Clip) -> list[Any]:
    """A clip as ``index.json`` keeps it: file, label, fold, group (+ labels, start)."""
    row: list[Any] = [c.file, c.label, c.fold, c.group]
    if c.labels is not None or c.start_s:
        row += [None if c.labels is None else list(c.labels), c.start_s]
    return row


def _clip(row: list[Any]) -> Clip:
    """The inverse of :func:`_row`."""
    f, lab, fold, g = row[:4]
    labels = None if len(row) < 6 or row[4] is None else tuple(int(k) for k in row[4])
    start = float(row[5]) if len(row) >= 6 else 0.0
    return Clip(f, int(lab), int(fold), g, labels, start)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object, or {} if the file is absent or unreadable (a partial write)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def open_features(store_dir: Path) -> FeatureStore:
    """Open a finished store directory.

    Raises:
        DatasetError: not a store, unfinished, or its images file does not match the index.
    """
    meta = _read_json(store_dir / INDEX)
    if not meta:
        if has_logs(store_dir):
            raise DatasetError(f"{store_dir}: unfinished feature store; run build_features again")
        raise DatasetError(f"{store_dir}: not a feature store (no readable {INDEX})")
    if "moved_to" in meta:
        return open_features(store_dir.parent / meta["moved_to"])
    fe = from_dict(FrontEnd, meta["frontend"])
    clips = tuple(_clip(row) for row in meta["rows"])
    table = ClipTable(
        meta["dataset"],
        Path(meta["root"]),
        tuple(meta["classes"]),
        clips,
        meta["protocol"],
        tuple(meta.get("notes", ())),
        tuple(meta.get("background", ())),
    )
    shape = tuple(meta["shape"])
    path = store_dir / IMAGES
    expected = int(np.prod(shape)) * 2
    if not path.exists() or path.stat().st_size != expected:
        raise DatasetError(f"{path}: missing or not {expected} bytes; delete {store_dir}")
    images = np.memmap(path, dtype=np.float16, mode="r", shape=shape)
    bad = tuple(json.loads((store_dir / BAD).read_text())) if (store_dir / BAD).exists() else ()
    return FeatureStore(store_dir, meta["key"], table, fe, images, bad)
