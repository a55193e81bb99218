"""Multi-label folds that keep every group whole: iterative stratification over groups.

Single-label folds (:mod:`soundtransfer.datasets.folds`) stratify one label per clip. A
multi-label clip has several, and rare labels are what a random split loses first, so folds
here follow the *iterative stratification* of Sechidis, Tsoumakas and Vlahavas ("On the
stratification of multi-label data", ECML PKDD 2011), applied to **groups** instead of clips
(a recording's windows, a speaker's clips: a group never straddles two folds):

1. each group's label counts are summed over its clips (``G[g, c]``: its clips with label
   ``c``) and its size is its clip count;
2. each fold (or part of a split) wants its share of every label's clips and of all clips;
3. while a group with a label is unassigned: take the label with the fewest clips left in
   unassigned groups (ties: seeded random); deal its groups, largest count first (ties:
   seeded random), each to the fold that most lacks that label (ties: the fold lacking the
   most clips, then seeded random), updating every label's need by the whole group;
4. groups without any label (negatives) go, largest first, to the fold lacking the most
   clips.

With one clip per group this is the published algorithm. Results are pure functions of
(targets, groups, seed): the same inputs and seed give the same folds.
:func:`label_distribution` measures the result (Sechidis' LD: the mean over labels of the
spread of each fold's positive share around the whole data's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from soundtransfer.errors import DatasetError

__all__ = [
    "MultilabelFolds",
    "iterative_group_folds",
    "iterative_group_split",
    "label_distribution",
    "multi_hot",
]


def multi_hot(labels: Sequence[Sequence[str]], classes: Sequence[str]) -> NDArray[np.uint8]:
    """(N, C) 0/1 targets from each item's class names.

    Args:
        labels: per item, the names of its classes (empty: a negative).
        classes: the C class names (column order).

    Raises:
        DatasetError: an item naming a class not in ``classes``.
    """
    index = {name: k for k, name in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)), dtype=np.uint8)
    for i, names in enumerate(labels):
        for name in names:
            if name not in index:
                raise DatasetError(f"item {i}: label {name!r} is not one of the classes")
            out[i, index[name]] = 1
    return out


@dataclass(frozen=True)
class MultilabelFolds:
    """Folds of multi-label items and their balance.

    Attributes:
        folds: 1-based fold (or part: 1 train, 2 valid, 3 test) per item.
        counts: (folds, C) positive items per fold and class.
        sizes: items per fold.
        notes: classes too rare to reach every fold, one line each.
    """

    folds: tuple[int, ...]
    counts: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]
    notes: tuple[str, ...]


def _group_table(
    y: NDArray[np.bool_], groups: Sequence[str]
) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Sorted group names, each item's group index, (n_groups, C) label counts, sizes."""
    names = sorted(set(groups))
    index = {g: k for k, g in enumerate(names)}
    member = np.asarray([index[g] for g in groups], dtype=np.int64)
    counts = np.zeros((len(names), y.shape[1]), dtype=np.int64)
    np.add.at(counts, member, y.astype(np.int64))
    sizes = np.bincount(member, minlength=len(names)).astype(np.int64)
    return names, member, counts, sizes


def _largest(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices of the largest values; values within 1e-9 tie (needs are fractions of counts
    minus whole counts, so two folds' equal needs may differ in the last bits)."""
    return np.flatnonzero(values >= values.max() - 1e-9)


def _best_fold(
    need_label: NDArray[np.float64], need_items: NDArray[np.float64], rng: np.random.Generator
) -> int:
    """The fold lacking the label most; ties: lacking the most items; then random."""
    top = _largest(need_label)
    if top.size > 1:
        top = top[_largest(need_items[top])]
    return int(top[0] if top.size == 1 else rng.choice(top))


def _assign_groups(
    counts: NDArray[np.int64],
    sizes: NDArray[np.int64],
    ratios: NDArray[np.float64],
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """The part (0-based) of each group, by iterative stratification (module docstring)."""
    n_groups = counts.shape[0]
    need_label = ratios[:, None] * counts.sum(axis=0)[None, :].astype(np.float64)  # (k, C)
    need_items = ratios * float(sizes.sum())  # (k,)
    part = np.full(n_groups, -1, dtype=np.int64)
    tie = rng.permutation(n_groups)  # a seeded order among equal groups
    left = counts.sum(axis=0).astype(np.int64)  # label counts over unassigned groups
    while left.any():
        present = np.flatnonzero(left > 0)
        rarest = present[left[present] == left[present].min()]
        label = int(rng.choice(rarest)) if rarest.size > 1 else int(rarest[0])
        todo = np.flatnonzero((part < 0) & (counts[:, label] > 0))
        for g in sorted(todo, key=lambda g: (-counts[g, label], tie[g])):
            k = _best_fold(need_label[:, label], need_items, rng)
            part[g] = k
            need_label[k] -= counts[g]
            need_items[k] -= sizes[g]
            left -= counts[g]
    for g in sorted(np.flatnonzero(part < 0), key=lambda g: (-sizes[g], tie[g])):
        top = _largest(need_items)
        k = int(top[0] if top.size == 1 else rng.choice(top))
        part[g] = k
        need_items[k] -= sizes[g]
    return part


def _check(y_true: ArrayLike, groups: Sequence[str], n_parts: int) -> NDArray[np.bool_]:
    y = np.asarray(y_true)
    if y.ndim != 2:
        raise DatasetError(f"multi-label targets must be (items, classes), got shape {y.shape}")
    if len(y) != len(groups):
        raise DatasetError(f"{len(y)} items but {len(groups)} groups")
    if not np.isin(y, (0, 1)).all():
        raise DatasetError("multi-label targets must be 0 or 1")
    n_groups = len(set(groups))
    if n_groups < n_parts:
        raise DatasetError(f"only {n_groups} group(s) (recordings) for {n_parts} folds/parts")
    return y.astype(bool)


def _finish(
    y: NDArray[np.bool_],
    member: NDArray[np.int64],
    counts: NDArray[np.int64],
    part: NDArray[np.int64],
    n_parts: int,
    class_names: Sequence[str] | None,
) -> MultilabelFolds:
    folds = part[member] + 1
    sizes = np.bincount(folds - 1, minlength=n_parts)
    if (sizes == 0).any():
        empty = [int(k) + 1 for k in np.flatnonzero(sizes == 0)]
        raise DatasetError(
            f"fold(s) {empty} got no group: the groups are too few or too uneven for "
            f"{n_parts} folds/parts"
        )
    per_fold = np.zeros((n_parts, y.shape[1]), dtype=np.int64)
    np.add.at(per_fold, folds - 1, y.astype(np.int64))
    in_groups = (counts > 0).sum(axis=0)
    notes = []
    for c in np.flatnonzero((in_groups > 0) & (in_groups < n_parts)):
        name = class_names[int(c)] if class_names else str(c)
        missing = int((per_fold[:, c] == 0).sum())
        notes.append(
            f"class {name!r} is in {in_groups[c]} group(s), fewer than the {n_parts} "
            f"folds/parts: {missing} of them have none (its AP is undefined there)"
        )
    return MultilabelFolds(
        folds=tuple(int(f) for f in folds),
        counts=tuple(tuple(int(v) for v in row) for row in per_fold),
        sizes=tuple(int(s) for s in sizes),
        notes=tuple(notes),
    )


def iterative_group_folds(
    y_true: ArrayLike,
    groups: Sequence[str],
    n_folds: int = 5,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> MultilabelFolds:
    """Deal groups to ``n_folds`` folds, balancing every label (module docstring).

    Args:
        y_true: (N, C) 0/1 targets (an all-zero row is a negative).
        groups: group per item; all items of a group land in one fold.
        n_folds: number of folds (>= 2).
        seed: the seed of every tie-break.
        class_names: for the notes.

    Returns:
        Folds 1..n_folds per item, per-fold label counts and notes.

    Raises:
        DatasetError: fewer than 2 folds, fewer groups than folds, targets that are not 0/1
            of shape (N, C), or a fold left empty.
    """
    if n_folds < 2:
        raise DatasetError(f"n_folds must be at least 2, got {n_folds}")
    y = _check(y_true, groups, n_folds)
    _, member, counts, sizes = _group_table(y, groups)
    ratios = np.full(n_folds, 1.0 / n_folds)
    part = _assign_groups(counts, sizes, ratios, np.random.default_rng(seed))
    return _finish(y, member, counts, part, n_folds, class_names)


def iterative_group_split(
    y_true: ArrayLike,
    groups: Sequence[str],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> MultilabelFolds:
    """One train / valid / test split by group, every label near the fractions.

    Args:
        y_true: (N, C) 0/1 targets.
        groups: group per item.
        fractions: train, valid, test fractions (positive, summing to 1).
        seed: tie-break seed.
        class_names: for the notes.

    Returns:
        1 (train), 2 (valid) or 3 (test) per item, with the parts' label counts.

    Raises:
        DatasetError: bad fractions, fewer than 3 groups, bad targets, or an empty part.
    """
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DatasetError(f"split fractions must be 3 positive numbers summing to 1: {fractions}")
    y = _check(y_true, groups, 3)
    _, member, counts, sizes = _group_table(y, groups)
    part = _assign_groups(counts, sizes, np.asarray(fractions, float), np.random.default_rng(seed))
    return _finish(y, member, counts, part, 3, class_names)


def label_distribution(y_true: ArrayLike, folds: Sequence[int]) -> float:
    """Sechidis et al.'s LD: for each label, the mean over folds of
    ``|p_fold / (1 - p_fold) - p / (1 - p)|`` (``p`` its share of positives among the items),
    averaged over labels with positives; 0 is perfect balance.

    A share of 1 (every item of the fold positive) is clipped to ``1 - 1e-9`` so the odds
    stay finite.
    """
    y = np.asarray(y_true, dtype=np.float64)
    f = np.asarray(folds)
    present = y.sum(axis=0) > 0
    if not present.any():
        return 0.0

    def odds(share: NDArray[np.float64]) -> NDArray[np.float64]:
        share = np.minimum(share, 1 - 1e-9)
        return share / (1 - share)

    whole = odds(y.mean(axis=0))
    spread = [np.abs(odds(y[f == k].mean(axis=0)) - whole) for k in np.unique(f)]
    per_label = np.mean(np.asarray(spread), axis=0)
    return float(per_label[present].mean())
