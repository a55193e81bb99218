"""Grouped, stratified, seeded folds and splits; recording ids from file names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from soundtransfer.datasets import load_dataset
from soundtransfer.datasets.folds import (
    group_split,
    infer_groups,
    name_fold,
    recording_id,
    stratified_group_folds,
)
from soundtransfer.errors import DatasetError


def test_recording_ids_from_documented_names() -> None:
    assert recording_id("audio/1-100032-A-0.wav") == "src100032"
    assert recording_id("dog/5-9032-B.ogg") == "src9032"
    assert name_fold("dog/5-9032-B.ogg") == 5
    assert recording_id("fold1/100032-3-0-0.wav") == "fs100032"
    assert name_fold("100032-3-0-0.wav") is None
    assert recording_id("my_recording_take2.wav") is None
    groups, how = infer_groups(["a/1-7-A.wav", "b/2-7-B.wav", "c/x.wav"])
    assert groups == ["src7", "src7", "file:c/x.wav"] and "1 file(s) matched no pattern" in how


def synthetic(n_groups: int = 60, seed: int = 0) -> tuple[list[int], list[str]]:
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for g in range(n_groups):
        label = g % 4
        for _ in range(int(rng.integers(1, 6))):
            labels.append(label)
            groups.append(f"g{g}")
    return labels, groups


def test_stratified_group_folds() -> None:
    labels, groups = synthetic()
    folds = stratified_group_folds(labels, groups, n_folds=5, seed=3)
    assert sorted(set(folds)) == [1, 2, 3, 4, 5]
    by_group: dict[str, set[int]] = {}
    for g, k in zip(groups, folds, strict=True):
        by_group.setdefault(g, set()).add(k)
    assert all(len(v) == 1 for v in by_group.values())
    for k in range(1, 6):
        assert {lab for lab, f in zip(labels, folds, strict=True) if f == k} == {0, 1, 2, 3}
    assert stratified_group_folds(labels, groups, 5, seed=3) == folds
    assert stratified_group_folds(labels, groups, 5, seed=4) != folds


def test_group_split_fractions_and_groups() -> None:
    labels, groups = synthetic(120)
    parts = group_split(labels, groups, (0.7, 0.15, 0.15), seed=1)
    share = Counter(parts)
    n = len(labels)
    assert abs(share[1] / n - 0.7) < 0.06 and abs(share[3] / n - 0.15) < 0.06
    for g in set(groups):
        assert len({p for p, gg in zip(parts, groups, strict=True) if gg == g}) == 1
    for k in (1, 2, 3):
        assert {lab for lab, p in zip(labels, parts, strict=True) if p == k} == {0, 1, 2, 3}
    assert group_split(labels, groups, (0.7, 0.15, 0.15), seed=1) == parts


def test_regenerated_us8k_folds_keep_recordings_together(shared_data: Path) -> None:
    t = load_dataset("us8k", shared_data / "us8k")
    folds = stratified_group_folds(t.labels, [c.group for c in t.clips], 5, seed=0)
    by_group: dict[str, set[int]] = {}
    for c, k in zip(t.clips, folds, strict=True):
        by_group.setdefault(c.group, set()).add(k)
    assert all(len(v) == 1 for v in by_group.values())


@pytest.mark.parametrize(
    ("labels", "groups", "n", "text"),
    [
        ([0, 0, 0], ["a", "b", "c"], 2, "only one class"),
        ([0, 0, 1, 1, 1], ["a", "b", "c", "d", "e"], 3, "class 0 has 2 clip(s)"),
        ([0, 0, 0, 1, 1, 1], ["a", "a", "a", "b", "b", "b"], 3, "only 2 group(s)"),
        ([0, 1], ["a", "b"], 1, "at least 2"),
    ],
)
def test_fold_errors(labels: list[int], groups: list[str], n: int, text: str) -> None:
    with pytest.raises(DatasetError) as info:
        stratified_group_folds(labels, groups, n)
    assert text in str(info.value)


def test_split_errors() -> None:
    with pytest.raises(DatasetError, match="summing to 1"):
        group_split([0, 1] * 5, [str(i) for i in range(10)], (0.5, 0.5, 0.5))
    with pytest.raises(DatasetError, match=r"fewer than the 3.*train, valid and test"):
        group_split([0, 0, 0, 1, 1], list("abcde"), (0.6, 0.2, 0.2))


def test_too_few_clips_or_groups_name_the_option() -> None:
    """Issue 24 point 5: "choose fewer folds" did not say which option chooses them."""
    with pytest.raises(DatasetError, match=r"fewer than the 5 folds.*--n-folds"):
        stratified_group_folds([0, 0, 0, 1, 1, 1], list("abcdef"), 5)
    with pytest.raises(DatasetError, match=r"only 2 group\(s\).*--n-folds"):
        stratified_group_folds([0, 1] * 5, list("aabbaabbaa"), 5)
