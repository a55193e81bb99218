"""UrbanSound8K (Salamon, Jacoby & Bello, "A Dataset and Taxonomy for Urban Sound Research",
ACM MM 2014).

Layout: ``root/audio/fold<k>/<slice_file_name>`` and ``root/metadata/UrbanSound8K.csv`` with
the official columns ``slice_file_name, fsID, start, end, salience, fold, classID, class``.
8,732 slices of up to 4 s (mixed rates and channel counts), 10 classes (``classID`` 0..9),
10 official folds; slices of one Freesound recording (``fsID``) share a fold, and the
dataset's authors ask for results over the 10 folds, never a random split.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from soundtransfer.datasets.clips import Clip, ClipTable
from soundtransfer.datasets.metadata import (
    check_fold,
    check_no_leakage,
    check_unique,
    finish,
    parse_int,
    read_csv,
    resolve_audio,
)
from soundtransfer.errors import DatasetError

N_FOLDS = 10
# Class names by classID, as in the official metadata.
CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)
N_CLASSES = len(CLASSES)
COLUMNS = ("slice_file_name", "fsID", "fold", "classID", "class")
# Official names: <fsID>-<classID>-<occurrenceID>-<sliceID>.wav
_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)-(\d+)\.\w+$")


def load_us8k(root: Path, missing: str = "error") -> ClipTable:
    """UrbanSound8K from ``root/audio/fold<k>`` and ``root/metadata/UrbanSound8K.csv``.

    File names come from the metadata; when a named file is absent, the same stem with another
    audio extension is used (``100032-3-0-0.wav`` -> ``100032-3-0-0.flac``).

    Args:
        root: dataset root (the folder holding ``audio/`` and ``metadata/``).
        missing: ``"error"`` or ``"skip"`` for metadata rows whose audio is absent.

    Returns:
        A ``kfold`` table named ``us8k``: label = classID, classes = the 10 official ``class``
        names by classID (even when the metadata lists fewer), group = ``fs<fsID>``.

    Raises:
        DatasetError: missing metadata or columns, a fold outside 1..10, a classID outside
            0..9 or whose ``class`` is not its official name, a file name whose
            fsID or classID disagrees with its row, duplicate rows, an fsID in two folds
            (checked on every row, present or not), or missing audio (with
            ``missing="error"``).
    """
    meta = root / "metadata" / "UrbanSound8K.csv"
    rows = read_csv(meta, COLUMNS, path_columns=("slice_file_name",))
    check_unique([f"fold{r['fold']}/{r['slice_file_name']}" for r in rows], meta)
    parsed = []
    for r in rows:
        line = r.line
        file = r["slice_file_name"]
        cid = parse_int(r["classID"], "classID", meta, line)
        if not 0 <= cid < N_CLASSES:
            raise DatasetError(f"{meta}: line {line}: classID {cid} outside 0..9 ({file})")
        fold = parse_int(r["fold"], "fold", meta, line)
        check_fold(fold, N_FOLDS, meta, line, file)
        if r["class"].strip() != CLASSES[cid]:
            raise DatasetError(
                f"{meta}: line {line}: class {r['class']!r} does not match classID {cid} "
                f"(UrbanSound8K classID {cid} is {CLASSES[cid]!r})"
            )
        fs_id = r["fsID"].strip()
        m = _NAME.match(file)
        if m is not None and (m.group(1) != fs_id or int(m.group(2)) != cid):
            raise DatasetError(
                f"{meta}: line {line}: file name {file!r} disagrees with fsID {fs_id} / "
                f"classID {cid}"
            )
        parsed.append((r, cid, fold, fs_id))

    rows_as_clips = [
        Clip(r["slice_file_name"], cid, fold, f"fs{fs_id}") for r, cid, fold, fs_id in parsed
    ]
    check_no_leakage("us8k", rows_as_clips)
    clips: list[Clip] = []
    absent: list[str] = []
    for c in rows_as_clips:
        path = resolve_audio(root / "audio" / f"fold{c.fold}", c.file)
        if path is None:
            absent.append(f"fold{c.fold}/{c.file}")
            continue
        clips.append(replace(c, file=path.relative_to(root).as_posix()))
    return finish("us8k", root, CLASSES, clips, absent, missing, notes=rows.notes)
