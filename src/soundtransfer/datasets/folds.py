"""Folds and splits for own data that cannot leak: grouped, stratified, seeded.

Clips cut from one source recording (or spoken by one speaker, recorded in one session) must
sit on one side of every split, or a model is scored on audio it has half seen. So every
fold assignment here is made per *group*:

1. the ``group`` column of a user's CSV when present;
2. otherwise a recording id read from the file name when it follows a documented naming
   convention (:data:`RECORDING_PATTERNS`);
3. otherwise each file is its own group (nothing is known about shared recordings).

:func:`stratified_group_folds` deals groups to ``k`` folds with scikit-learn's
``StratifiedGroupKFold`` (shuffled with the seed), keeping each class's share of every fold
close to its share of the data; :func:`group_split` does the same for one train / valid /
test split. Both are pure functions of (labels, groups, seed); the returned
:class:`FoldAssignment` records how the folds were made, for the run's config.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from soundtransfer.errors import DatasetError


@dataclass(frozen=True)
class RecordingPattern:
    """A file-naming convention that encodes the source recording (and maybe the fold).

    Attributes:
        name: short name (``esc50``, ``us8k``).
        regex: matched against the file's *stem* (name without extension); named groups
            ``rec`` (recording id) and, optionally, ``fold``.
        prefix: group ids are ``prefix + rec`` (the official readers' ``src``/``fs`` ids, so the
            same clip has the same group whichever reader read it).
        doc: the convention, as documented by the dataset's authors.
    """

    name: str
    regex: re.Pattern[str]
    prefix: str
    doc: str


# Tried in this order; the first that matches a stem wins. The two never both match: the ESC
# take is letters, UrbanSound8K's four fields are digits.
RECORDING_PATTERNS: tuple[RecordingPattern, ...] = (
    RecordingPattern(
        "esc50",
        re.compile(
            r"^(?P<fold>\d+)-(?P<rec>[0-9A-Za-z]+)-(?P<take>[A-Za-z]+)(?:-(?P<target>\d+))?$"
        ),
        "src",
        "ESC-50 / ESC-10 {fold}-{src_file}-{take}[-{target}].wav, e.g. 1-100032-A-0.wav",
    ),
    RecordingPattern(
        "us8k",
        re.compile(r"^(?P<rec>\d+)-(?P<cls>\d+)-(?P<occ>\d+)-(?P<slice>\d+)$"),
        "fs",
        "UrbanSound8K {fsID}-{classID}-{occurrenceID}-{sliceID}.wav, e.g. 100032-3-0-0.wav",
    ),
)


def match_recording(file: str) -> tuple[RecordingPattern, re.Match[str]] | None:
    """The first pattern of :data:`RECORDING_PATTERNS` matching the file's stem, or None."""
    stem = PurePosixPath(file.replace("\\", "/")).stem
    for pattern in RECORDING_PATTERNS:
        m = pattern.regex.match(stem)
        if m is not None:
            return pattern, m
    return None


def recording_id(file: str) -> str | None:
    """The group id a file name encodes (``src100032``, ``fs100032``), or None."""
    found = match_recording(file)
    if found is None:
        return None
    pattern, m = found
    return pattern.prefix + m.group("rec")


def name_fold(file: str) -> int | None:
    """The fold a file name encodes (ESC-50's leading ``{fold}-``), or None."""
    found = match_recording(file)
    if found is None or "fold" not in found[0].regex.groupindex:
        return None
    return int(found[1].group("fold"))


def infer_groups(files: Sequence[str]) -> tuple[list[str], str]:
    """A group per file: the recording id of its name, else the file itself.

    Args:
        files: file paths (relative to the dataset root).

    Returns:
        The groups, and a one-line account of where they came from (which pattern matched how
        many files).
    """
    groups: list[str] = []
    used: Counter[str] = Counter()
    for f in files:
        found = match_recording(f)
        if found is None:
            groups.append(f"file:{f}")
            continue
        pattern, m = found
        used[pattern.name] += 1
        groups.append(pattern.prefix + m.group("rec"))
    if not used:
        how = "no recording id in the file names: each file is its own group"
    else:
        parts = [f"{n} file(s) by the {name} pattern" for name, n in used.most_common()]
        rest = len(files) - sum(used.values())
        how = "groups = recording id from the file name: " + ", ".join(parts)
        if rest:
            how += f"; {rest} file(s) matched no pattern and are their own group"
    return groups, how


@dataclass(frozen=True)
class FoldAssignment:
    """Folds of a table and how they were made (written to the run's config).

    Attributes:
        folds: 1-based fold per clip (``split``: 1 train, 2 valid, 3 test).
        method: ``given`` (the user's folds), ``names`` (the fold in the file names),
            ``kfold`` (stratified group k-fold) or ``split`` (train / valid / test).
        n_folds: number of folds (3 for ``split``).
        seed: seed of the shuffle (None for given folds).
        groups: where the groups came from (one line).
        fractions: train / valid / test fractions (``split`` only).
    """

    folds: tuple[int, ...]
    method: str
    n_folds: int
    seed: int | None
    groups: str
    fractions: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The settings (not the per-clip folds) as plain JSON types."""
        out: dict[str, Any] = {
            "method": self.method,
            "n_folds": self.n_folds,
            "seed": self.seed,
            "groups": self.groups,
        }
        if self.fractions:
            out["fractions"] = list(self.fractions)
        return out


# What a user can do about too few clips or groups for k folds (the option, not only the idea).
FEWER_FOLDS = "add clips or choose fewer folds (--n-folds N, at least 2)"


def _check_labels(
    labels: Sequence[int], class_names: Sequence[str] | None, n_min: int, fix: str
) -> None:
    counts = Counter(labels)
    if len(counts) < 2:
        only = class_names[labels[0]] if class_names and labels else (labels[0] if labels else None)
        raise DatasetError(f"only one class ({only!r}): classification needs at least 2")
    for label, n in sorted(counts.items()):
        if n < n_min:
            name = class_names[label] if class_names else label
            raise DatasetError(
                f"class {name!r} has {n} clip(s), fewer than the {n_min} folds/parts: {fix}"
            )


def stratified_group_folds(
    labels: Sequence[int],
    groups: Sequence[str],
    n_folds: int = 5,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> list[int]:
    """Deal groups to ``n_folds`` folds, stratified by label (scikit-learn
    ``StratifiedGroupKFold``, shuffled with ``seed``).

    Args:
        labels: class index per clip.
        groups: group id per clip; all clips of a group land in one fold.
        n_folds: number of folds (>= 2).
        seed: shuffle seed; the same inputs and seed always give the same folds.
        class_names: for error messages.

    Returns:
        The fold (1..n_folds) of each clip.

    Raises:
        DatasetError: fewer than 2 folds or classes, a class with fewer clips than folds, or
            fewer groups than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if len(labels) != len(groups):
        raise DatasetError(f"{len(labels)} labels but {len(groups)} groups")
    if n_folds < 2:
        raise DatasetError(f"n_folds must be at least 2, got {n_folds}")
    _check_labels(labels, class_names, n_folds, FEWER_FOLDS)
    n_groups = len(set(groups))
    if n_groups < n_folds:
        raise DatasetError(
            f"only {n_groups} group(s) (recordings) for {n_folds} folds: {FEWER_FOLDS}"
        )
    y = np.asarray(labels)
    codes = {g: i for i, g in enumerate(sorted(set(groups)))}
    g = np.asarray([codes[x] for x in groups])
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.zeros(len(y), dtype=np.int64)
    for k, (_train, test) in enumerate(splitter.split(np.zeros(len(y)), y, g), start=1):
        folds[test] = k
    return [int(f) for f in folds]


def group_split(
    labels: Sequence[int],
    groups: Sequence[str],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> list[int]:
    """One train / valid / test split by group, each class near the given fractions.

    Groups are taken largest first (ties in a seeded random order) and each goes to the part
    that most lacks its clips' classes: the part maximising ``sum_c n_gc * (target_pc -
    have_pc) / target_pc`` (``n_gc`` the group's clips of class c, ``target_pc`` the part's
    share of class c). Every part gets at least one clip of each class when the class has
    at least 3 groups.

    Args:
        labels: class index per clip.
        groups: group id per clip.
        fractions: train, valid, test fractions (positive, summing to 1).
        seed: tie-break seed.
        class_names: for error messages.

    Returns:
        1 (train), 2 (valid) or 3 (test) per clip.

    Raises:
        DatasetError: bad fractions, fewer than 2 classes, or a class with fewer than 3 clips.
    """
    if len(labels) != len(groups):
        raise DatasetError(f"{len(labels)} labels but {len(groups)} groups")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DatasetError(f"split fractions must be 3 positive numbers summing to 1: {fractions}")
    _check_labels(labels, class_names, 3, "add clips (train, valid and test need one each)")
    classes = sorted(set(labels))
    col = {c: i for i, c in enumerate(classes)}
    members: dict[str, list[int]] = defaultdict(list)
    for i, grp in enumerate(groups):
        members[grp].append(i)
    names = sorted(members)
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(names))
    order = sorted(range(len(names)), key=lambda j: (-len(members[names[j]]), tie[j]))
    totals = np.zeros(len(classes))
    for lab in labels:
        totals[col[lab]] += 1
    target = np.asarray(fractions)[:, None] * totals[None, :]  # (3, C)
    have = np.zeros_like(target)
    out = [0] * len(labels)
    for j in order:
        idx = members[names[j]]
        n_gc = np.zeros(len(classes))
        for i in idx:
            n_gc[col[labels[i]]] += 1
        # The first group of a class in a part gets a bonus, so small classes reach all parts.
        need = ((target - have) / target * n_gc[None, :]).sum(1)
        empty = ((have == 0) & (n_gc[None, :] > 0)).sum(1)
        part = int(np.argmax(need + 10.0 * empty))
        have[part] += n_gc
        for i in idx:
            out[i] = part + 1
    return out
