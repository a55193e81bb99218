"""Datasets in their official layouts, with their official folds and splits.

``open_dataset(name_or_path, root)`` is the one entry point for any dataset: an official name
(:data:`READERS`: its reader, front-end preset and archive) or a path to the user's own data,
a folder of class folders or a CSV / TSV (:data:`OWN_READERS`, in
:mod:`soundtransfer.datasets.own`); it returns the clip table, the front end to use and how
the folds were made. :func:`~soundtransfer.datasets.leakage.leakage_report` checks the
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

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundtransfer.datasets.clips import Clip, ClipTable, Split
from soundtransfer.datasets.esc50 import load_esc10, load_esc50
from soundtransfer.datasets.gtzan import load_gtzan
from soundtransfer.datasets.metadata import MISSING_POLICIES
from soundtransfer.datasets.urbansound8k import load_us8k
from soundtransfer.errors import DatasetError
from soundtransfer.lazy import lazy_exports, type_checking_imports

# The official readers above import nothing heavy; own data and the leakage report (numpy,
# soundfile, the front end) load on first use (:mod:`soundtransfer.lazy`).
if TYPE_CHECKING:
    from soundtransfer.datasets.folds import FoldAssignment
    from soundtransfer.datasets.leakage import LeakageReport, leakage_report
    from soundtransfer.datasets.own import FrontEndChoice, OpenedDataset, ReadOptions
else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))


@dataclass(frozen=True)
class DatasetReader:
    """An official dataset: how it is read, the front end it is computed with, and the
    archive that brings it.

    Attributes:
        read: ``(root, missing) -> ClipTable`` of the official layout under ``root``.
        preset: its front-end preset (:data:`soundtransfer.audio.presets.PRESETS`).
        archive: its official archive (:data:`soundtransfer.datasets.download.ARCHIVES`).
    """

    read: Callable[[Path, str], ClipTable]
    preset: str
    archive: str


#: Every official dataset: its name (``--dataset``, ``ClipTable.name``) -> its reader. To add
#: one: a module ``datasets/<name>.py`` with its loader, its front-end preset in
#: ``audio/presets.py``, its archive in ``datasets/download.py``, one entry here, and a test
#: ``tests/datasets/test_<name>.py``.
READERS: dict[str, DatasetReader] = {
    "esc50": DatasetReader(load_esc50, "esc50", "esc50"),
    "esc10": DatasetReader(load_esc10, "esc10", "esc10"),
    "us8k": DatasetReader(load_us8k, "us8k", "us8k"),
    "gtzan": DatasetReader(load_gtzan, "gtzan", "gtzan"),
}
LOADERS: dict[str, Callable[[Path, str], ClipTable]] = {n: r.read for n, r in READERS.items()}
DATASETS = tuple(READERS)

#: The user's own data: ``FOLDER`` (a folder of class folders) or a file suffix -> the reader
#: (``(path, ReadOptions) -> OpenedDataset`` in :mod:`soundtransfer.datasets.own`, loaded on
#: first use). To add a layout: its reader in ``own.py`` (or its own module), one entry here,
#: its cases in ``tests/datasets/test_own.py``.
FOLDER = "/"
OWN_READERS: dict[str, tuple[str, str]] = {
    FOLDER: ("soundtransfer.datasets.recordings", "read_folder_any"),
    ".txt": ("soundtransfer.datasets.recordings", "read_recordings"),
    ".csv": ("soundtransfer.datasets.own", "read_table_file"),
    ".tsv": ("soundtransfer.datasets.own", "read_table_file"),
}
TABLE_SUFFIXES = tuple(k for k in OWN_READERS if k != FOLDER)


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
    if name not in READERS:
        raise DatasetError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    if missing not in MISSING_POLICIES:
        raise DatasetError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{path}: dataset root not found")
    return READERS[name].read(path, missing)


def open_dataset(
    name_or_path: str | Path,
    root: str | Path | None = None,
    *,
    missing: str = "error",
    options: ReadOptions | None = None,
    **fields: Any,
) -> OpenedDataset:
    """Open an official dataset by name or the user's own data by path.

    Args:
        name_or_path: a name of :data:`READERS` (read from ``root`` by :func:`load_dataset`,
            unchanged), or a folder ``ROOT/<class>/**/<audio>`` or a file of
            :data:`OWN_READERS` (``.csv`` / ``.tsv``, see :mod:`soundtransfer.datasets.own`).
        root: the official dataset's root folder (official names only; ignored for paths).
        missing: official datasets: ``error`` or ``skip`` for rows whose audio is absent.
        options: how own data is read (:class:`~soundtransfer.datasets.own.ReadOptions`:
            folds when none are given, the front end); official datasets take only its
            front-end settings, defaulting to their preset.
        **fields: fields of ``options`` to replace (``n_folds=3, seed=1``).

    Returns:
        The table, the front end with the reason for each setting, and the fold assignment.

    Raises:
        DatasetError: an unknown name that is no existing folder or CSV/TSV, an unknown
            option, or any fault of the data (named in the message).
    """
    from soundtransfer.datasets.own import ReadOptions

    try:
        opts = replace(options or ReadOptions(), **fields)
    except TypeError:
        known = ", ".join(f.name for f in dataclasses.fields(ReadOptions))
        raise DatasetError(f"unknown read option in {sorted(fields)} (known: {known})") from None
    key = str(name_or_path)
    if key in READERS:
        return _open_official(key, root, missing, opts)
    path = Path(name_or_path).expanduser()
    if path.exists():
        kind = FOLDER if path.is_dir() else path.suffix.lower()
        if kind not in OWN_READERS:
            raise DatasetError(
                f"{path}: not a dataset list; give a folder or a {' or '.join(TABLE_SUFFIXES)} file"
            )
        module, function = OWN_READERS[kind]
        reader: Callable[[Path, ReadOptions], OpenedDataset]
        reader = getattr(importlib.import_module(module), function)
        return reader(path, opts)
    raise DatasetError(
        f"{name_or_path}: neither a dataset name ({', '.join(DATASETS)}) nor an existing "
        "folder or CSV/TSV file"
    )


def _open_official(
    name: str, root: str | Path | None, missing: str, options: ReadOptions
) -> OpenedDataset:
    """An official dataset with its published folds and (unless ``options`` name another)
    its front-end preset."""
    from soundtransfer.datasets.folds import FoldAssignment
    from soundtransfer.datasets.own import OpenedDataset

    if root is None:
        raise DatasetError(f"dataset {name!r} needs its root folder (root=... / --root)")
    table = load_dataset(name, root, missing)
    fe = replace(options, preset=options.preset or READERS[name].preset).frontend([])
    folds = FoldAssignment(
        tuple(c.fold for c in table.clips), "given", len(table.folds), None, "official metadata"
    )
    return OpenedDataset(table, fe, folds, table.root, "official")
