"""The multi-label task: loss, smoothing per label, metrics, targets from the table, the task
chosen from the data, and clips with several labels through the feature store's index."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from soundtransfer.datasets.clips import Clip, ClipTable
from soundtransfer.errors import DatasetError
from soundtransfer.features.store import _clip, _row
from soundtransfer.tasks import get_task
from soundtransfer.tasks.multilabel_metrics import mean_average_precision


def table(multi: bool = True) -> ClipTable:
    clips = (
        Clip("a.wav", 0, 1, "r1", (0, 2) if multi else None),
        Clip("b.wav", 1, 1, "r2", (1,) if multi else None),
        Clip("c.wav", 0, 2, "r3", () if multi else None, start_s=2.5),
    )
    return ClipTable("t", Path("/x"), ("a", "b", "c"), clips)


def test_task_from_the_data_and_multi_hot_targets() -> None:
    assert table().task == "multi_label" and table(False).task == "single_label"
    y = get_task("multi_label").targets(table())
    assert y.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]  # the negative: all zero


def test_loss_is_bce_with_per_label_smoothing() -> None:
    task = get_task("multi_label")
    torch.manual_seed(0)
    logits, y = torch.randn(4, 3), torch.tensor([[1.0, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1]])
    # the same formula evaluated twice in one process: equal up to float32 summation order
    assert torch.allclose(task.loss(logits, y), F.binary_cross_entropy_with_logits(logits, y))
    smoothed = F.binary_cross_entropy_with_logits(logits, y * 0.8 + 0.1)
    assert torch.allclose(task.loss(logits, y, 0.2), smoothed)
    assert not torch.allclose(task.loss(logits, y, 0.2), task.loss(logits, y))


def test_metrics_are_map_of_the_scores() -> None:
    task = get_task("multi_label")
    logits = torch.tensor([[2.0, -1, 0.5], [-1, 3, 0], [0.1, 0.2, -2], [1, 1, 1]])
    y = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 0]])
    m = task.metrics(logits, y)
    assert task.primary_metric == "mAP"
    assert m["mAP"] == pytest.approx(mean_average_precision(y.numpy(), logits.numpy()))
    # soft (mixed) targets count as present at 0.5 or more
    assert task.metrics(logits, y * 0.6)["mAP"] == pytest.approx(m["mAP"])
    assert len(task.predictions(logits)[0]) == 3


def test_store_index_keeps_labels_and_offsets() -> None:
    for c in table().clips + table(False).clips:
        assert _clip(_row(c)) == c
    assert len(_row(table(False).clips[0])) == 4  # single-label rows as before


def test_canonical_renumbers_label_sets() -> None:
    t = ClipTable("t", Path("/x"), ("z", "b", "a"), (Clip("1.wav", 0, 1, "", (0, 2)),
                  Clip("2.wav", 1, 1, "", (1,)), Clip("3.wav", 0, 2, "", ())))  # fmt: skip
    c = t.canonical()
    assert c.classes == ("a", "b", "z")
    assert [x.labels for x in c.clips] == [(0, 2), (1,), ()]


def test_bad_labels_refused() -> None:
    with pytest.raises(DatasetError, match="labels"):
        ClipTable("t", Path("/x"), ("a",), (Clip("1.wav", 0, 1, "", (0, 3)),))
