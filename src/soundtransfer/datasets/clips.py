"""The clip table: every clip of a dataset with its label and fold, and the evaluation splits.

A :class:`ClipTable` is what the dataset readers return and what the feature store, the
training loops and the experiment grid consume. Splits are explicit index lists, so a loop
never re-derives folds and cannot leak a test clip into training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from soundtransfer.errors import DatasetError

#: Class folders (compared ignoring case) whose clips mean "no event", BirdNET's convention:
#: the default of ``ReadOptions.background`` and of ``--background-folders``.
BACKGROUND_FOLDERS = ("background", "noise", "other")


@dataclass(frozen=True)
class Clip:
    """One labelled clip.

    Attributes:
        file: path relative to the table's root (as in the official metadata).
        label: class index in ``ClipTable.classes``.
        fold: official fold (1-based); for a fixed split (GTZAN): 1 train, 2 valid, 3 test.
        group: recording / source id (ESC-50 ``src_file``, UrbanSound8K ``fsID``, GTZAN clip
            id); used by leakage checks and validation carving. The official folds keep each
            (group, label) pair in one fold; a handful of recordings cut into clips of two
            classes sit in two folds (see ``datasets.metadata.check_no_leakage``).
        labels: multi-label tables only: the class indices present (``()``: a negative, no
            sound of interest); None in single-label tables. ``label`` is then the clip's
            stratum for tools that take one class (the smallest index present, 0 for a
            negative), never a training target.
        start_s: where the clip starts in its file, seconds (windows cut from annotated
            recordings); 0 for a whole file.
    """

    file: str
    label: int
    fold: int
    group: str = ""
    labels: tuple[int, ...] | None = None
    start_s: float = 0.0


#: The name of the one train / valid / test split (``ClipTable.splits`` of a ``fixed``
#: protocol) and of its run folder, kept so that earlier runs resume.
FIXED_SPLIT = "fixed"


def split_label(name: str, whole: bool = False) -> str:
    """A split's name for people. The one train / valid / test split (:data:`FIXED_SPLIT`) is
    ``test`` in a score line, the part its accuracy is measured on, and ``train/valid/test``
    in a line about the whole split (``whole``: how it was trained, what it kept)."""
    if name != FIXED_SPLIT:
        return name
    return "train/valid/test" if whole else "test"


@dataclass(frozen=True)
class Split:
    """One evaluation split: indices into the table's clips.

    ``valid`` is empty unless the dataset defines a validation set (GTZAN) or one was carved
    from the training folds; the test indices are never used for model selection.
    """

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    valid: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        tr, te, va = set(self.train), set(self.test), set(self.valid)
        if tr & te or tr & va or te & va:
            raise DatasetError(f"split {self.name}: train, valid and test overlap")


@dataclass(frozen=True)
class ClipTable:
    """All clips of one dataset, its classes and its official evaluation protocol.

    Attributes:
        name: dataset name (``esc50``, ``esc10``, ``us8k``, ``gtzan``); also the front-end preset.
        root: dataset root; clip paths are ``root / clip.file``.
        classes: class names, index = label.
        clips: the clips, in a stable order (the feature store's row order).
        protocol: ``"kfold"`` (each official fold held out in turn) or ``"fixed"`` (one
            train / valid / test split, GTZAN).
        notes: remarks of the reader for the user.
        background: class names that mean "no event" (single-label tables: a class read from
            a ``background`` / ``noise`` / ``other`` folder, which bundles record and
            ``predict`` never reports); empty in multi-label tables, whose negatives have no
            label at all.
    """

    name: str
    root: Path
    classes: tuple[str, ...]
    clips: tuple[Clip, ...]
    protocol: str = "kfold"
    notes: tuple[str, ...] = field(default=())
    background: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.classes)
        multi = self.multi_label
        for c in self.clips:
            if not 0 <= c.label < n:
                raise DatasetError(f"{self.name}: {c.file} has label {c.label}, outside 0..{n - 1}")
            if multi and (c.labels is None or any(not 0 <= k < n for k in c.labels)):
                raise DatasetError(f"{self.name}: {c.file} has labels {c.labels} for {n} classes")
        if self.protocol not in ("kfold", "fixed"):
            raise DatasetError(f"{self.name}: unknown protocol {self.protocol!r}")

    @property
    def multi_label(self) -> bool:
        """Whether the clips carry multi-hot labels (``Clip.labels``) rather than one class."""
        return any(c.labels is not None for c in self.clips)

    @property
    def task(self) -> str:
        """The task the data call for (:data:`soundtransfer.tasks.TASKS`): ``multi_label``
        for multi-hot labels, else ``single_label``."""
        return "multi_label" if self.multi_label else "single_label"

    def label_sets(self) -> list[tuple[int, ...]]:
        """The classes present in each clip: ``Clip.labels``, or ``(label,)`` single-label."""
        return [c.labels if c.labels is not None else (c.label,) for c in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def path(self, i: int) -> Path:
        return self.root / self.clips[i].file

    @property
    def folds(self) -> tuple[int, ...]:
        """Folds present, sorted."""
        return tuple(sorted({c.fold for c in self.clips}))

    @property
    def labels(self) -> list[int]:
        return [c.label for c in self.clips]

    def splits(self, folds: Sequence[int] | None = None) -> list[Split]:
        """The evaluation splits of the official protocol.

        Args:
            folds: with ``kfold``, only hold out these folds (default: every fold present).

        Returns:
            ``kfold``: one split per held-out fold, named ``fold<k>``, training on all other
            folds. ``fixed``: one split ``fixed`` with train (fold 1), valid (2), test (3).
        """
        if self.protocol == "fixed":
            by = {k: tuple(i for i, c in enumerate(self.clips) if c.fold == k) for k in (1, 2, 3)}
            return [Split(FIXED_SPLIT, train=by[1], test=by[3], valid=by[2])]
        present = self.folds
        chosen = present if folds is None else tuple(folds)
        missing = [k for k in chosen if k not in present]
        if missing:
            raise DatasetError(f"{self.name}: fold(s) {missing} not present (have {list(present)})")
        if len(present) < 2:
            raise DatasetError(
                f"{self.name}: cross-validation needs at least 2 folds, found {list(present)}"
            )
        out = []
        for k in chosen:
            test = tuple(i for i, c in enumerate(self.clips) if c.fold == k)
            train = tuple(i for i, c in enumerate(self.clips) if c.fold != k)
            out.append(Split(f"fold{k}", train=train, test=test))
        return out

    def subset(self, indices: Sequence[int]) -> ClipTable:
        """A table of the given clips (same classes, root and protocol)."""
        return ClipTable(
            self.name,
            self.root,
            self.classes,
            tuple(self.clips[i] for i in indices),
            self.protocol,
            self.notes,
            self.background,
        )

    def canonical(self) -> ClipTable:
        """The same clips in an order that depends only on the clips, not on the reader.

        Classes: those with at least one clip, sorted by name (labels renumbered); rows:
        sorted by file name, then path. Training uses row and label indices (the head's rows,
        the shuffle, the batches), so the same clips with the same folds read through any
        layout (an official reader, a folder of class folders, a CSV) give the same numbers.

        Returns:
            The table (same name, root, protocol and notes).
        """
        names = self.classes
        present = sorted({names[k] for s in self.label_sets() for k in s})
        index = {name: k for k, name in enumerate(present)}

        def renumber(c: Clip) -> Clip:
            if c.labels is None:
                return replace(c, label=index[names[c.label]])
            labels = tuple(sorted(index[names[k]] for k in c.labels))
            return replace(c, label=labels[0] if labels else 0, labels=labels)

        clips = sorted(
            (renumber(c) for c in self.clips),
            key=lambda c: (PurePosixPath(c.file).name, c.file, c.start_s),
        )
        background = tuple(b for b in self.background if b in index)
        return ClipTable(
            self.name, self.root, tuple(present), tuple(clips), self.protocol, self.notes,
            background,
        )  # fmt: skip
