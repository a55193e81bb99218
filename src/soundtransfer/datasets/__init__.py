"""Datasets in their official layouts, with their official folds and splits.

``open_dataset(name_or_path, root)`` is the one entry point for any dataset: an official name
(read by ``load_dataset``) or a path to the user's own data, a folder of class folders or a
CSV / TSV (:mod:`soundtransfer.datasets.own`); it returns the clip table, the front end to use
and how the folds were made. :func:`~soundtransfer.datasets.leakage.leakage_report` checks the
folds before training (:mod:`soundtransfer.datasets.leakage`).

``load_dataset(name, root)`` reads a dataset as released (see each module for its layout) into
a :class:`ClipTable`; ``download(name, root)`` (:mod:`soundtransfer.datasets.download`) fetches
the official archive when ``root`` does not already hold a readable copy.

Official protocols, which we follow:

=========  ==========================================  =======  =========  ==================
name       dataset                                     classes  clips      protocol
=========  ==========================================  =======  =========  ==================
esc50      ESC-50 (Piczak 2015), 5 s clips, 44.1 kHz   50       2,000      5 folds (kfold)
esc10      ESC-10, the ``esc10`` rows of ESC-50        10       400        5 folds (kfold)
us8k       UrbanSound8K (Salamon et al. 2014), <= 4 s  10       8,732      10 folds (kfold)
gtzan      GTZAN (Tzanetakis & Cook 2002), 30 s        10       930 used   fixed train / valid
                                                                           / test (443/197/290)
=========  ==========================================  =======  =========  ==================

``kfold``: every official fold is held out once, training on the others; the accuracy is the
mean over folds. Clips of one source recording (ESC ``src_file``, UrbanSound8K ``fsID``) are
in one fold, and :func:`load_dataset` checks it. ``fixed`` (GTZAN): the artist-disjoint,
fault-filtered split of Kereliuk, Sturm & Larsen (2015), vendored with the package.

The paper's text swaps the fold counts of ESC-50 and UrbanSound8K (it says 10 folds for
ESC-50 and 5 for UrbanSound8K); we use each dataset's own folds, 5 for ESC-50/ESC-10 and 10 for
UrbanSound8K, as their authors prescribe and as comparable published numbers do.

File names come from the metadata; when the named file is absent the same stem with another
audio extension is used, so FLAC or OGG copies of the WAV releases load unchanged. Metadata
rows whose audio is absent raise :class:`~soundtransfer.errors.DatasetError` (count and first
names) unless ``missing="skip"``, which leaves them out and records them in
``ClipTable.notes``. Bad metadata (missing columns, folds or labels out of range, class ids
and names not one-to-one, duplicate rows, a recording in two folds) raises
:class:`~soundtransfer.errors.DatasetError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from soundtransfer.datasets.clips import Clip, ClipTable, Split
from soundtransfer.datasets.esc50 import load_esc10, load_esc50
from soundtransfer.datasets.gtzan import load_gtzan
from soundtransfer.datasets.metadata import MISSING_POLICIES
from soundtransfer.datasets.urbansound8k import load_us8k
from soundtransfer.errors import DatasetError
from soundtransfer.lazy import lazy_exports

if TYPE_CHECKING:
    from soundtransfer.datasets.folds import FoldAssignment
    from soundtransfer.datasets.leakage import LeakageReport, leakage_report
    from soundtransfer.datasets.own import FrontEndChoice, OpenedDataset, ReadOptions

# The official readers above import nothing heavy; own data and the leakage report (numpy,
# soundfile, the front end) load on first use (:mod:`soundtransfer.lazy`).
if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "soundtransfer.datasets.folds": ("FoldAssignment",),
            "soundtransfer.datasets.leakage": ("LeakageReport", "leakage_report"),
            "soundtransfer.datasets.own": ("FrontEndChoice", "OpenedDataset", "ReadOptions"),
        },
    )

LOADERS: dict[str, Callable[[Path, str], ClipTable]] = {
    "esc50": load_esc50,
    "esc10": load_esc10,
    "us8k": load_us8k,
    "gtzan": load_gtzan,
}
DATASETS = tuple(LOADERS)


def load_dataset(name: str, root: str | Path, missing: str = "error") -> ClipTable:
    """Read a dataset in its official layout.

    Args:
        name: ``esc50``, ``esc10``, ``us8k`` or ``gtzan``.
        root: dataset root folder.
        missing: ``"error"`` (default) raises when metadata names absent audio files;
            ``"skip"`` leaves them out and records them in ``ClipTable.notes``.

    Returns:
        The clip table (``protocol`` ``kfold`` or, for GTZAN, ``fixed``).

    Raises:
        DatasetError: an unknown name or policy, a missing root, or any fault of the layout or
            metadata (the message names the file and line).
    """
    if name not in LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    if missing not in MISSING_POLICIES:
        raise DatasetError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{path}: dataset root not found")
    return LOADERS[name](path, missing)


TABLE_SUFFIXES = (".csv", ".tsv")


def open_dataset(
    name_or_path: str | Path,
    root: str | Path | None = None,
    *,
    missing: str = "error",
    n_folds: int = 5,
    seed: int = 0,
    split: tuple[float, float, float] | None = None,
    use_name_folds: bool = True,
    preset: str | None = None,
    sample_rate: int | None = None,
    clip_seconds: float | None = None,
    crop: str | None = None,
) -> OpenedDataset:
    """Open an official dataset by name or the user's own data by path.

    Args:
        name_or_path: ``esc50``, ``esc10``, ``us8k``, ``gtzan`` (read from ``root`` by
            :func:`load_dataset`, unchanged), or a folder ``ROOT/<class>/**/<audio>`` or a
            ``.csv`` / ``.tsv`` file (see :mod:`soundtransfer.datasets.own`).
        root: the official dataset's root folder (official names only; ignored for paths).
        missing: official datasets: ``error`` or ``skip`` for rows whose audio is absent.
        n_folds, seed, split, use_name_folds: own data without given folds: a seeded
            stratified group k-fold with ``n_folds`` folds, or with ``split`` (train, valid,
            test fractions) one fixed split; ESC-50-style names keep their folds unless
            ``use_name_folds`` is False.
        preset, sample_rate, clip_seconds, crop: the front end; official datasets default to
            their preset, own data to settings inferred from the file headers.

    Returns:
        The table, the front end with the reason for each setting, and the fold assignment.

    Raises:
        DatasetError: an unknown name that is no existing folder or CSV/TSV, or any fault of
            the data (named in the message).
    """
    from soundtransfer.datasets.folds import FoldAssignment
    from soundtransfer.datasets.own import OpenedDataset, ReadOptions, read_folder, read_table_file

    options = ReadOptions(
        n_folds, seed, split, use_name_folds, preset, sample_rate, clip_seconds, crop
    )

    key = str(name_or_path)
    if key in LOADERS:
        if root is None:
            raise DatasetError(f"dataset {key!r} needs its root folder (root=... / --root)")
        table = load_dataset(key, root, missing)
        fe = replace(options, preset=preset or key).frontend([])
        folds = FoldAssignment(
            tuple(c.fold for c in table.clips),
            "given",
            len(table.folds),
            None,
            "official metadata",
        )
        return OpenedDataset(table, fe, folds, table.root, "official")
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix.lower() not in TABLE_SUFFIXES:
        raise DatasetError(f"{path}: not a dataset list; give a .csv or .tsv file or a folder")
    if path.exists():
        reader = read_folder if path.is_dir() else read_table_file
        return reader(path, options)
    raise DatasetError(
        f"{name_or_path}: neither a dataset name ({', '.join(DATASETS)}) nor an existing "
        "folder or CSV/TSV file"
    )


__all__ = [
    "DATASETS",
    "LOADERS",
    "Clip",
    "ClipTable",
    "FoldAssignment",
    "FrontEndChoice",
    "LeakageReport",
    "OpenedDataset",
    "ReadOptions",
    "Split",
    "leakage_report",
    "load_dataset",
    "open_dataset",
]
