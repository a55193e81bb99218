"""Annotated recordings as own data: windows cut from long audio become multi-label clips.

A folder of long recordings with Raven selection tables or Audacity label tracks beside them
(or one Raven table naming its audio) is read by
:func:`~soundtransfer.datasets.annotations.read_annotations` into labelled windows; each
window becomes a :class:`~soundtransfer.datasets.clips.Clip` of the recording with
``start_s`` where it starts and ``labels`` the classes present (``()``: a negative window,
kept as a label-free row). The group of every window is its recording, so the windows of
one file never straddle folds (iterative stratification with groups,
:func:`~soundtransfer.datasets.own.multilabel_assignment`). The front end's clip length is the
window length; the reasons of the cut (window, counts, notes) go into the table's notes.

:func:`read_folder_any` is the folder reader: a folder holding any annotation table
(:func:`~soundtransfer.datasets.annotations.sniff_format`) is read as recordings, any other
as class folders (:func:`~soundtransfer.datasets.own.read_folder`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from soundtransfer.datasets.annotations import WindowOptions, read_annotations, sniff_format
from soundtransfer.datasets.clips import Clip, ClipTable
from soundtransfer.datasets.own import (
    OpenedDataset,
    ReadOptions,
    multilabel_assignment,
    read_folder,
    table_name,
)
from soundtransfer.errors import DatasetError

__all__ = ["has_annotations", "read_folder_any", "read_recordings"]

ANNOTATION_FORMATS = ("raven", "audacity")


def has_annotations(root: Path) -> bool:
    """Whether a folder holds (at any depth) a visible ``*.txt`` read as a Raven table or an
    Audacity label track."""
    for p in sorted(root.rglob("*.txt")):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel):
            continue
        if sniff_format(p) in ANNOTATION_FORMATS:
            return True
    return False


def read_recordings(path: str | Path, options: ReadOptions | None = None) -> OpenedDataset:
    """Read annotated recordings (module docstring) into a multi-label clip table.

    Args:
        path: a folder of recordings and their annotation files, or one Raven table.
        options: folds and front end (:class:`~soundtransfer.datasets.own.ReadOptions`);
            ``options.windows`` how recordings are cut (default: window inferred from the
            boxes, or ``clip_seconds`` when given).

    Returns:
        The opened dataset, layout ``recordings``.

    Raises:
        DatasetError: any fault of the tables or audio (file and line named), no class, or
            too few recordings for the folds.
    """
    options = options or ReadOptions()
    path = Path(path).expanduser()
    wopts = options.windows or WindowOptions()
    if not wopts.background:
        wopts = replace(wopts, background=tuple(options.background))
    if wopts.window_s is None and options.clip_seconds is not None:
        wopts = replace(wopts, window_s=options.clip_seconds)
    cut = read_annotations(path, wopts)
    if not cut.classes:
        raise DatasetError(f"{path}: no annotated box names a class: nothing to learn")
    if not cut.windows:
        raise DatasetError(f"{path}: no window was kept from the recordings")
    index = {c: k for k, c in enumerate(cut.classes)}
    sets = [tuple(sorted(index[n] for n in w.labels)) for w in cut.windows]
    groups = [w.group for w in cut.windows]
    assignment = multilabel_assignment(
        sets, cut.classes, groups, "groups = the recording", options, path
    )
    clips = tuple(
        Clip(w.file, s[0] if s else 0, k, w.group, s, w.start_s)
        for w, s, k in zip(cut.windows, sets, assignment.folds, strict=True)
    )
    protocol = "fixed" if assignment.method == "split" else "kfold"
    notes = tuple(r.removeprefix("note: ") for r in cut.reasons)
    if wopts.background:
        notes += (
            f"background labels {list(wopts.background)} (ignoring case, --background-folders): "
            "their boxes are negatives, not classes",
        )
    table = ClipTable(table_name(path), cut.root, cut.classes, clips, protocol, notes)
    recordings = [cut.root / r.file for r in cut.recordings]
    fe = replace(options, clip_seconds=cut.window_s).frontend(recordings)
    return OpenedDataset(table, fe, assignment, path, "recordings")


def read_folder_any(root: str | Path, options: ReadOptions | None = None) -> OpenedDataset:
    """A folder of annotated recordings (:func:`read_recordings`) when it holds an annotation
    table, else class folders (:func:`~soundtransfer.datasets.own.read_folder`)."""
    root = Path(root).expanduser()
    if root.is_dir() and has_annotations(root):
        return read_recordings(root, options)
    return read_folder(root, options)
