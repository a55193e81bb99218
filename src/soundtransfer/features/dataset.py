"""A dataset name or own-data path -> its feature store, in steps (:func:`dataset_store`).

The one path from a dataset on disk to features, used by every command, the grid, the figures
and the demo. Its steps, each a function a caller may also use alone:

1. :func:`prepare`: :func:`soundtransfer.datasets.open_dataset` (official layout, or a folder
   of class folders / a CSV with its folds given, read from the names or made by a seeded
   grouped stratified k-fold, as ``ReadOptions`` say), the front end with the overrides on
   top, and the table in canonical order (:meth:`ClipTable.canonical`, so the same clips give
   the same numbers through any layout);
2. :func:`check_groups`: the group check of the leakage report (a group in two folds is an
   error, before anything is computed);
3. :func:`soundtransfer.features.build_features` with one :class:`BuildOptions`;
4. :func:`check_audio`: for own data, exact and near duplicates across folds (an error unless
   ``allow_duplicates``), before any training;
5. :func:`origin`: what the store's ``.origin`` records for every run's ``config.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from soundtransfer.audio.presets import FrontEnd, with_overrides
from soundtransfer.config import config_hash, save_json, to_dict
from soundtransfer.datasets import DATASETS, open_dataset
from soundtransfer.datasets.clips import ClipTable
from soundtransfer.datasets.leakage import LeakageReport, leakage_report
from soundtransfer.datasets.own import OpenedDataset, ReadOptions, split_frontend_overrides
from soundtransfer.features.build import build_features
from soundtransfer.features.options import BuildOptions
from soundtransfer.features.store import BAD, FeatureStore

__all__ = [
    "Prepared",
    "check_audio",
    "check_groups",
    "dataset_store",
    "origin",
    "prepare",
]

Say = Callable[[str], None]


def _silent(line: str) -> None:
    """A ``report`` / ``warn`` that drops its line (the caller asked for none)."""


@dataclass(frozen=True)
class Prepared:
    """A dataset opened for its store: what step 1 found.

    Attributes:
        opened: what :func:`~soundtransfer.datasets.open_dataset` returned.
        table: its table in canonical order.
        frontend: the front end to compute with (overrides applied).
        reasons: one line per front-end setting saying why (the overrides last).
        official: an official dataset (its published folds are checked by recording and
            class, its audio is not fingerprinted).
    """

    opened: OpenedDataset
    table: ClipTable
    frontend: FrontEnd
    reasons: tuple[str, ...]
    official: bool


def prepare(
    name: str | Path,
    root: Path | None = None,
    read: ReadOptions | None = None,
    frontend_overrides: Sequence[str] | dict[str, Any] = (),
    missing: str = "error",
    report: Say = _silent,
) -> Prepared:
    """Step 1: open the dataset, choose the front end, order the table canonically.

    ``frontend_overrides`` apply to the dataset's front-end preset, or for own data on top of
    the front end inferred from the files (``sample_rate``, ``clip_seconds`` and ``crop`` go
    into ``read`` instead, replacing the inference, so ``n_fft`` and the image width follow).
    ``report`` receives what was read, the folds and the front end.
    """
    official = str(name) in DATASETS
    read = read or ReadOptions()
    rest: Sequence[str] | dict[str, Any] = frontend_overrides
    if not official:
        given, rest = split_frontend_overrides(frontend_overrides)
        read = replace(read, **given)
    opened = open_dataset(name, root, missing=missing, options=read)
    frontend = with_overrides(opened.frontend.frontend, rest)
    reasons = list(opened.frontend.reasons)
    for line in opened.describe(notes=False):
        report(line)
    if rest:
        changed = sorted(rest) if isinstance(rest, dict) else [str(r) for r in rest]
        reasons.append(f"overridden by --frontend: {', '.join(changed)}")
        report(f"front end: {reasons[-1]}")
    table = opened.table.canonical()
    absent = [c for c in opened.table.classes if c not in set(table.classes)]
    if absent:
        shown = ", ".join(absent[:10]) + (", ..." if len(absent) > 10 else "")
        report(f"classes: {len(table.classes)} with clips; {len(absent)} without left out: {shown}")
    return Prepared(opened, table, frontend, tuple(reasons), official)


def check_groups(prepared: Prepared, report: Say = _silent) -> LeakageReport:
    """Step 2: no group (source recording) in two folds, before anything is computed.

    Raises:
        DatasetError: a group in two folds (the report's lines go to ``report`` first).
    """
    leaks = leakage_report(prepared.table, audio=False, by_label=prepared.official)
    if not leaks.ok:
        for line in leaks.lines():
            report(line)
        leaks.raise_for_leaks()
    return leaks


def check_audio(
    store: FeatureStore,
    prepared: Prepared,
    groups: LeakageReport,
    *,
    workers: int,
    cache_dir: Path | None = None,
    allow_duplicates: bool = False,
    warn: Say = _silent,
    report: Say = _silent,
) -> LeakageReport:
    """Step 4: own data's audio fingerprinted for duplicates across folds (official data:
    its published folds, ``groups`` as checked in step 2).

    Raises:
        DatasetError: duplicate audio across folds, without ``allow_duplicates``.
    """
    if prepared.official:
        report(f"leakage: official folds as published; {groups.lines()[1].strip()}")
        return groups
    leaks = _audio_leakage(store, workers, cache_dir)
    for line in leaks.lines():
        report(line)
    if leaks.duplicates and allow_duplicates:
        warn(
            f"warning: {len(leaks.duplicates)} duplicate pair(s) across folds kept "
            "(--allow-duplicates): the accuracy may be inflated"
        )
    elif leaks.duplicates:
        leaks.raise_for_duplicates()
    return leaks


def origin(prepared: Prepared, leaks: LeakageReport, allow_duplicates: bool) -> dict[str, Any]:
    """Step 5: the store's ``.origin`` (source, layout, folds, front-end reasons, leakage
    counts), recorded in every run's ``config.json`` as ``dataset_origin``."""
    opened = prepared.opened
    return {
        "source": str(opened.source),
        "layout": opened.layout,
        "name": prepared.table.name,
        "folds": opened.folds.to_dict(),
        "frontend": list(prepared.reasons),
        "leakage": {
            "groups_in_two_folds": len(leaks.group_leaks),
            "fingerprinted": leaks.fingerprinted,
            "duplicate_pairs": [
                [d.file_a, d.fold_a, d.file_b, d.fold_b, round(d.similarity, 4)]
                for d in leaks.duplicates
            ],
            "allow_duplicates": allow_duplicates,
        },
    }


def dataset_store(
    name: str | Path,
    root: Path | None = None,
    *,
    read: ReadOptions | None = None,
    build: BuildOptions | None = None,
    frontend_overrides: Sequence[str] | dict[str, Any] = (),
    missing: str = "error",
    cache_dir: Path | None = None,
    allow_duplicates: bool = False,
    distributed: bool = False,
    warn: Say | None = None,
    report: Say | None = None,
) -> FeatureStore:
    """Dataset name or own-data path -> its feature store (built, resumed or opened): the
    steps of this module in order.

    Args:
        name: a dataset of :data:`soundtransfer.datasets.DATASETS`, or a folder
            ``ROOT/<class>/**/<audio>`` or a ``.csv`` / ``.tsv`` (``file, label`` and
            optional ``fold``, ``group``, ``split``).
        root: the official dataset's root folder (official names only).
        read: how own data is read (folds when none are given, front-end settings):
            :class:`soundtransfer.datasets.own.ReadOptions`, its defaults if None.
        build: how the rows are computed (:class:`BuildOptions`, its defaults if None).
        frontend_overrides: ``key=value`` strings or a mapping (see :func:`prepare`).
        missing: ``error`` or ``skip`` audio files named in the metadata but absent.
        cache_dir: cache root (see :mod:`soundtransfer.cache`).
        allow_duplicates: own data: list duplicate audio across folds as a warning instead
            of stopping.
        distributed: share the rows with the other ranks of the process group (see
            :func:`~soundtransfer.features.build_features`).
        warn: called with each note of the dataset, a line about an unfinished store resumed
            and a line about bad clips left out.
        report: called with each line of what was read, how the folds and the front end were
            chosen, and the leakage report (class balance per fold included).

    Raises:
        DatasetError: any fault of the data, a group in two folds, duplicates across folds
            (without ``allow_duplicates``).
        ConfigError: a bad front-end override or option.
        AudioError: an undecodable clip (without ``skip_bad``).
    """
    say, note = report or _silent, warn or _silent
    build = build or BuildOptions()
    prepared = prepare(name, root, read, frontend_overrides, missing, say)
    for line in prepared.table.notes:
        note(f"note: {line}")
    groups = check_groups(prepared, say)
    store = build_features(
        prepared.table, prepared.frontend, cache_dir, build, distributed=distributed
    )
    if store.resumed:
        note(
            f"note: resumed an unfinished feature store: {store.resumed} of "
            f"{len(prepared.table)} clips were computed by an earlier run"
        )
    if store.bad:
        note(f"warning: {len(store.bad)} bad clip(s) left out, listed in {store.dir / BAD}")
    leaks = check_audio(
        store, prepared, groups, workers=build.workers, cache_dir=cache_dir,
        allow_duplicates=allow_duplicates, warn=note, report=say,
    )  # fmt: skip
    return replace(store, origin=origin(prepared, leaks, allow_duplicates))


def _audio_leakage(store: FeatureStore, workers: int, cache_dir: Path | None) -> LeakageReport:
    """The leakage report of the store's clips with their audio fingerprinted. The duplicate
    pairs are cached in ``<cache>/leakage/<hash of the store key>.json`` (the key covers every
    file's size and mtime, the folds and the fingerprint's version), so a rerun on the same
    data decodes nothing."""
    from soundtransfer.cache import cache_root
    from soundtransfer.datasets.leakage import FINGERPRINT_VERSION, NEAR_THRESHOLD, DuplicatePair

    key = config_hash(store.key, NEAR_THRESHOLD, FINGERPRINT_VERSION)
    path = cache_root(cache_dir) / "leakage" / f"{key}.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            pairs = tuple(DuplicatePair(**d) for d in saved["duplicates"])
            fresh = leakage_report(store.table, audio=False)
            silent = tuple(str(f) for f in saved["silent"])
            return replace(fresh, duplicates=pairs, fingerprinted=int(saved["n"]), silent=silent)
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable cache entry is recomputed and rewritten
    report = leakage_report(store.table, audio=True, workers=max(1, workers))
    pairs_json = [to_dict(d) for d in report.duplicates]
    save_json(
        path,
        {"n": report.fingerprinted, "duplicates": pairs_json, "silent": list(report.silent)},
    )
    return report
