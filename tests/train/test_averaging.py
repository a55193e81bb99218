"""Weight averaging of the last epochs, best-validation selection beside the final epoch, and
test-time augmentation: each changes what it should (the kept model, its evaluation) and
nothing else (the training itself)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from soundtransfer.config import ConfigError
from soundtransfer.datasets.clips import Split
from soundtransfer.features import FeatureStore
from soundtransfer.runs import Precision
from soundtransfer.train import get_preset, run_split
from soundtransfer.train.ema import WeightAverage, recompute_batchnorm
from soundtransfer.train.loop import batchnorm_rows, tta_logits, tta_views

from .conftest import assert_predicts

ARCH = "resnet18"


def _train_losses(run: Path) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["train_loss"] for x in lines]


def _saved_state(run: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    return state


def test_weight_average_is_the_uniform_mean_and_keeps_the_latest_counter() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average, seen = WeightAverage(), []
    for step in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(float(step + 1))
        net[1].num_batches_tracked += 1
        seen.append({k: v.clone() for k, v in net.state_dict().items()})
        average.add(net)
    assert average.count == 3
    for k, v in average.state.items():
        if v.dtype.is_floating_point:  # three float32 values summed in another order
            torch.testing.assert_close(v, torch.stack([s[k] for s in seen]).mean(0))
        else:
            assert torch.equal(v, seen[-1][k])
    again = WeightAverage()
    again.load_state_dict(average.state_dict())
    assert again.count == 3 and all(torch.equal(again.state[k], average.state[k]) for k in seen[0])


def test_recompute_batchnorm_gives_the_exact_statistics_and_draws_no_randomness() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout(0.5), nn.BatchNorm2d(4))
    batches = [torch.randn(5, 1, 6, 6) for _ in range(3)]
    net[2].running_mean.fill_(7.0)  # stale statistics that must be replaced
    assert recompute_batchnorm(net, batches) == 1
    feats = torch.cat([net[0](x) for x in batches]).detach()  # dropout off: eval
    bn = net[2]
    # The cumulative average of per-batch means (equal batches) vs one mean over all: float32
    # sums in another order.
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    per_batch_var = torch.stack([net[0](x).detach().var((0, 2, 3)) for x in batches]).mean(0)
    torch.testing.assert_close(bn.running_var, per_batch_var, rtol=1e-5, atol=1e-6)
    assert bn.momentum == 0.1 and not net.training
    first = bn.running_mean.clone()
    torch.manual_seed(123)  # another global random state: the same statistics
    recompute_batchnorm(net, batches)
    assert torch.equal(bn.running_mean, first)


def test_averaged_model_is_reported_and_saved_and_training_is_unchanged(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = tiny_store.table.splits()[0]
    base = ["epochs=3", "batch_size=8"]
    plain = run_split(
        tiny_store, split, "random", ARCH, get_preset("recipe", base), tmp_path / "a",
        progress=False,
    )  # fmt: skip
    added: list[dict[str, torch.Tensor]] = []
    original = WeightAverage.add

    def record(self: WeightAverage, model: nn.Module) -> None:
        added.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        original(self, model)

    monkeypatch.setattr(WeightAverage, "add", record)
    cfg = get_preset("recipe", [*base, "average_last=2"])
    out = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "b", progress=False)
    # Same process, same computation: the training is bitwise the plain run's.
    assert _train_losses(tmp_path / "a") == _train_losses(tmp_path / "b")
    assert plain["selected"] == "final_epoch" and "final_epoch" not in plain
    assert out["selected"] == "average" and out["average"]["epochs"] == [2, 3]
    assert out["final_epoch"] == {k: plain[k] for k in ("test_acc", "test_loss")}
    assert len(added) == 2  # the last two epochs' weights
    saved, last = _saved_state(tmp_path / "b"), _saved_state(tmp_path / "a")
    recomputed = 0
    for k, v in saved.items():
        if "running_" in k:  # recomputed on the training clips, not averaged
            recomputed += not torch.allclose(v, (added[0][k] + added[1][k]) / 2)
        elif v.dtype.is_floating_point:  # two float32 values averaged: last bits only
            torch.testing.assert_close(v, (added[0][k] + added[1][k]) / 2, rtol=1e-6, atol=1e-7)
    assert recomputed > 0
    assert any(not torch.equal(saved[k], last[k]) for k in saved if "conv" in k)
    from soundtransfer.inference.bundle import load_bundle

    model, _ = load_bundle(tmp_path / "b" / "model.pt")
    with torch.no_grad():
        logits = model.classifier(tiny_store.batch(split.test))
    assert_predicts(logits, out["predictions"])  # the reported test score is the average's


def _rows_for(rows: np.ndarray, world_size: int = 1, seed: int = 3) -> tuple[np.ndarray, int]:
    cfg = get_preset("recipe", ["batch_size=8", f"seed={seed}"])
    ctx: Any = SimpleNamespace(cfg=cfg, train_rows=rows, world_size=world_size)
    return batchnorm_rows(ctx)


def test_batchnorm_is_recomputed_on_shuffled_training_batches() -> None:
    """The batches training normalised with: ``batch_size // world_size`` clips, shuffled by
    (seed, epochs), whole batches only; not the stored order (neighbouring rows are slices of
    one recording) and not the evaluation batch."""
    rows = np.arange(100, 121)  # 21 training rows
    got, size = _rows_for(rows[::-1].copy())
    assert size == 8 and len(got) == 16 and set(got) <= set(rows)
    assert not np.array_equal(got, np.sort(got))  # shuffled
    assert np.array_equal(got, _rows_for(rows)[0])  # fixed by (seed, epochs), not the order
    assert not np.array_equal(got, _rows_for(rows, seed=4)[0])
    per_rank, size = _rows_for(rows, world_size=2)
    assert size == 4 and len(per_rank) == 20
    few, size = _rows_for(rows[:5])
    assert size == 8 and sorted(few) == list(rows[:5])  # no whole batch: every row


def test_recomputed_batchnorm_does_not_depend_on_the_evaluation_batch(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    """``embed_batch_size`` is a runtime setting (not in a run's identity): it must not change
    the averaged model."""
    split = tiny_store.table.splits()[0]
    states = []
    for n in (2, 3):
        cfg = get_preset("recipe", ["epochs=2", "batch_size=8", "average_last=2",
                                    f"embed_batch_size={n}"])  # fmt: skip
        run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / str(n), progress=False)
        states.append(_saved_state(tmp_path / str(n)))
    stats = [k for k in states[0] if "running_" in k]
    assert stats
    for k in stats:  # the same computation in this process: bitwise
        assert torch.equal(states[0][k], states[1][k]), k


def with_valid(store: FeatureStore) -> Split:
    """Fold 1 of the tiny store with every 4th training clip as valid rows (carving by
    recording is not possible there: some classes have one recording in the training fold)."""
    base = store.table.splits()[0]
    valid = base.train[::4]
    return Split("fixed", tuple(i for i in base.train if i not in valid), base.test, valid)


def test_best_val_reports_the_final_epoch_beside(tiny_store: FeatureStore, tmp_path: Path) -> None:
    split = with_valid(tiny_store)
    cfg = get_preset("recipe", ["epochs=3", "batch_size=8"])
    out = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    best = max(lines, key=lambda r: r["val_acc"])  # the first best: ties keep the earlier
    assert out["selected_epoch"] == best["epoch"]
    assert out["selected"] == "best_val"
    assert out["final_epoch"]["test_acc"] == lines[-1]["test_acc"]


def test_tta_views_are_even_circular_shifts() -> None:
    x = torch.arange(2 * 1 * 2 * 8, dtype=torch.float32).view(2, 1, 2, 8)
    views = list(tta_views(x, 4))
    assert len(views) == 4 and views[0] is x
    for k, v in enumerate(views):
        assert torch.equal(v, torch.roll(x, 2 * k, dims=-1))
    assert len(list(tta_views(x, 1))) == 1


def test_tta_logits_average_the_views_and_one_view_is_the_plain_forward() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net.eval()
    x = torch.randn(4, 1, 5, 9)
    cpu = Precision.resolve(torch.device("cpu"), "off", "off")
    with torch.no_grad():
        assert torch.equal(tta_logits(net, x, 1, cpu), net(x))
        want = torch.stack([net(v) for v in tta_views(x, 3)]).mean(0)
        got = tta_logits(net, x, 3, cpu)
    torch.testing.assert_close(got, want)  # a sum then a division vs torch.mean: last bits
    assert not torch.allclose(got, net(x))  # zero padding: shifted views score differently


def test_tta_changes_evaluation_only(tiny_store: FeatureStore, tmp_path: Path) -> None:
    split = tiny_store.table.splits()[0]
    base = ["epochs=2", "batch_size=8"]
    runs: dict[int, dict[str, Any]] = {}
    for n in (1, 3):
        cfg = get_preset("recipe", [*base, f"tta={n}"])
        run = tmp_path / str(n)
        runs[n] = run_split(tiny_store, split, "random", ARCH, cfg, run, progress=False)
    assert _train_losses(tmp_path / "1") == _train_losses(tmp_path / "3")
    for k, v in _saved_state(tmp_path / "1").items():  # the same model is saved
        assert torch.equal(v, _saved_state(tmp_path / "3")[k])
    assert runs[1]["test_loss"] != runs[3]["test_loss"]


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ("average_last=5", "average_last=5 is more than epochs=4"),
        ("average_last=-1", "average_last must be >= 0"),
        ("tta=0", "tta must be at least 1"),
    ],
)
def test_bad_averaging_and_tta_settings(setting: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_preset("cpu", [setting])


def test_tta_on_a_probe_is_refused() -> None:
    with pytest.raises(ConfigError, match="fine-tuning only"):
        get_preset("cpu", ["mode=linear", "tta=2"])


def test_average_resumes_exactly_from_the_checkpoint(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the last epoch's metrics line, before its checkpoint: the resumed run
    redoes epoch 3 only, so epoch 2's share of the average must come from last.pt."""
    from .test_loop import _kill_after

    split = tiny_store.table.splits()[0]
    cfg = get_preset("recipe", ["epochs=3", "batch_size=8", "average_last=2"])
    straight = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "a", progress=False)
    with monkeypatch.context() as m:
        _kill_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "b", progress=False)
    resumed = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "b", progress=False)
    # The same computation repeated in this process: bitwise.
    assert resumed == straight
    for k, v in _saved_state(tmp_path / "a").items():
        assert torch.equal(v, _saved_state(tmp_path / "b")[k])


def test_recipe_selects_on_validation_and_paper_keeps_the_final_epoch() -> None:
    recipe, paper = get_preset("recipe"), get_preset("paper")
    assert (recipe.select, recipe.val_fraction) == ("best_val", 0.2)
    assert (paper.select, paper.val_fraction, paper.average_last, paper.tta) == ("last", 0, 0, 1)


def test_valid_rows_are_used_whole_and_training_rows_stay_whole(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    split = with_valid(tiny_store)
    valid = split.valid
    cfg = get_preset("recipe", ["epochs=2", "batch_size=8"])
    out = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["n_train"] == len(split.train) and config["n_valid"] == len(valid)
    assert out["selection_lines"][0] == f"validation: the split's {len(valid)} valid clips"
    assert out["selected"] == "best_val" and "final_epoch" in out


def test_no_carvable_validation_falls_back_to_the_final_epoch_and_says_so(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    table, base = tiny_store.table, tiny_store.table.splits()[0]
    lone = table.clips[base.train[0]]  # keep one recording of this class in training
    train = tuple(
        i for i in base.train
        if table.clips[i].label != lone.label or table.clips[i].group == lone.group
    )  # fmt: skip
    split = Split("lone", train, base.test)
    cfg = get_preset("recipe", ["epochs=1", "batch_size=8", "warmup_epochs=0"])
    out = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["n_train"] == len(train) and config["n_valid"] == 0
    assert config["train"]["select"] == "last"
    assert out["selected"] == "final_epoch"
    assert repr(table.classes[lone.label]) in out["selection_lines"][0]
    assert "select=last" in out["selection_lines"][0]
