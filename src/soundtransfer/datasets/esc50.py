"""ESC-50 and its ESC-10 subset (Piczak, "ESC: Dataset for Environmental Sound Classification",
ACM MM 2015).

Layout: ``root/audio/<filename>`` and ``root/meta/esc50.csv`` with the official columns
``filename, fold, target, category, esc10, src_file, take``. 2,000 clips of 5 s at 44.1 kHz,
50 classes (``target`` 0..49), 5 official folds; clips cut from one Freesound recording
(``src_file``) share a fold. ESC-10 is the 400 rows with ``esc10 == True``: 10 classes, the
same 5 folds, relabelled 0..9 in the order of their ESC-50 targets (dog 0, rooster 1, rain 2,
sea_waves 3, crackling_fire 4, crying_baby 5, sneezing 6, clock_tick 7, helicopter 8,
chainsaw 9).
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

N_FOLDS = 5
# ESC-50 class names by target (the official meta/esc50.csv) and the ten ESC-10 targets.
CLASSES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm", "crying_baby", "sneezing", "clapping",
    "breathing", "coughing", "footsteps", "laughing", "brushing_teeth", "snoring",
    "drinking_sipping", "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks",
    "can_opening", "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick",
    "glass_breaking", "helicopter", "chainsaw", "siren", "car_horn", "engine", "train",
    "church_bells", "airplane", "fireworks", "hand_saw",
)  # fmt: skip
N_CLASSES = len(CLASSES)
ESC10_TARGETS = (0, 1, 10, 11, 12, 20, 21, 38, 40, 41)
COLUMNS = ("filename", "fold", "target", "category")
# Official names: <fold>-<src_file>-<take>-<target>.wav (the ESC-10 repository omits -<target>).
_NAME = re.compile(r"^(\d+)-([^-]+)-([A-Za-z]+)(?:-(\d+))?\.\w+$")


def _check_name(row: dict[str, str], fold: int, target: int, meta: Path, line: int) -> None:
    """The fold, source and target encoded in an official file name agree with the columns."""
    m = _NAME.match(row["filename"])
    if m is None:
        return  # a user's own naming: nothing to cross-check
    name_fold, src, _, name_target = m.groups()
    problems = []
    if int(name_fold) != fold:
        problems.append(f"fold {fold}")
    if name_target is not None and int(name_target) != target:
        problems.append(f"target {target}")
    if row.get("src_file") and row["src_file"].strip() != src:
        problems.append(f"src_file {row['src_file']}")
    if problems:
        raise DatasetError(
            f"{meta}: line {line}: file name {row['filename']!r} disagrees with "
            f"{', '.join(problems)}"
        )


def load_esc(root: Path, *, esc10: bool = False, missing: str = "error") -> ClipTable:
    """ESC-50 (``esc10=False``) or ESC-10 from ``root/audio`` and ``root/meta/esc50.csv``.

    File names come from the metadata; when a named file is absent, the same stem with another
    audio extension is used (``1-100032-A-0.wav`` -> ``1-100032-A-0.flac``).

    Args:
        root: dataset root (the folder holding ``audio/`` and ``meta/``).
        esc10: select the ESC-10 rows (``esc10 == True``) and relabel them 0..9.
        missing: ``"error"`` or ``"skip"`` for metadata rows whose audio is absent.

    Returns:
        A ``kfold`` table named ``esc50`` or ``esc10``; labels = ESC-50 targets (ESC-50) or
        0..9 in the order of the ESC-50 targets (ESC-10); classes = the ``category`` names
        ordered by target, all 50 (10) of them even when the metadata lists fewer, so labels
        mean the same in every copy; group = ``src<src_file>``.

    Raises:
        DatasetError: missing metadata or columns, a fold outside 1..5, a non-integer or
            out-of-range target, a category that is not the official name of its target (an
            inconsistent target/category mapping), an ``esc10`` row outside the ESC-10 classes,
            a file name disagreeing with its row, duplicate rows, a source recording in two
            folds (checked on every row, present or not), or missing audio (with
            ``missing="error"``).
    """
    name = "esc10" if esc10 else "esc50"
    meta = root / "meta" / "esc50.csv"
    rows = read_csv(meta, COLUMNS + (("esc10",) if esc10 else ()), path_columns=("filename",))
    numbered = [(r.line, r) for r in rows]
    if esc10:
        numbered = [(i, r) for i, r in numbered if r["esc10"].strip().lower() == "true"]
        if not numbered:
            raise DatasetError(f"{meta}: no row has esc10 == True")
    check_unique([r["filename"] for _, r in numbered], meta)

    parsed = []
    for line, r in numbered:
        target = parse_int(r["target"], "target", meta, line)
        if not 0 <= target < N_CLASSES:
            raise DatasetError(
                f"{meta}: line {line}: target {target} outside 0..{N_CLASSES - 1} ({r['filename']})"
            )
        fold = parse_int(r["fold"], "fold", meta, line)
        check_fold(fold, N_FOLDS, meta, line, r["filename"])
        _check_name(r, fold, target, meta, line)
        category = r["category"].strip()
        if category != CLASSES[target]:
            raise DatasetError(
                f"{meta}: line {line}: category {category!r} does not match target {target} "
                f"(ESC-50 target {target} is {CLASSES[target]!r})"
            )
        if esc10 and target not in ESC10_TARGETS:
            raise DatasetError(
                f"{meta}: line {line}: esc10 row with target {target} ({category}), not one of "
                f"the ESC-10 targets {list(ESC10_TARGETS)}"
            )
        parsed.append((r, target, fold))

    label_of = {t: k for k, t in enumerate(ESC10_TARGETS)} if esc10 else {}
    classes = tuple(CLASSES[t] for t in ESC10_TARGETS) if esc10 else CLASSES
    rows_as_clips = [
        Clip(
            file=r["filename"],
            label=label_of[target] if esc10 else target,
            fold=fold,
            group=f"src{r['src_file'].strip()}" if (r.get("src_file") or "").strip() else "",
        )
        for r, target, fold in parsed
    ]
    check_no_leakage(name, rows_as_clips)
    clips: list[Clip] = []
    absent_files: list[str] = []
    for c in rows_as_clips:
        path = resolve_audio(root / "audio", c.file)
        if path is None:
            absent_files.append(c.file)
            continue
        clips.append(replace(c, file=path.relative_to(root).as_posix()))
    return finish(name, root, classes, clips, absent_files, missing, notes=rows.notes)


def load_esc50(root: Path, missing: str = "error") -> ClipTable:
    """ESC-50: 50 classes, labels = targets; see :func:`load_esc`."""
    return load_esc(root, esc10=False, missing=missing)


def load_esc10(root: Path, missing: str = "error") -> ClipTable:
    """ESC-10: the ``esc10 == True`` rows, relabelled 0..9; see :func:`load_esc`."""
    return load_esc(root, esc10=True, missing=missing)
