"""The fine-tuning recipe wired into the training loop: each switch changes training as stated,
the paper's preset trains exactly as a plain loop, schedule and EMA are what the run uses."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from soundtransfer import distributed as D
from soundtransfer.config import flat_settings
from soundtransfer.features import FeatureStore
from soundtransfer.schedule import warmup_cosine
from soundtransfer.tasks import single_label as single_label_mod
from soundtransfer.train import TrainConfig, get_preset, run_split
from soundtransfer.train import loop as loop_mod
from soundtransfer.train.augment import BatchAugment
from soundtransfer.train.config import RECIPE_FIELDS, identity_settings
from soundtransfer.train.data import chunks
from soundtransfer.train.loop import RunContext, fit, steps_per_epoch, train_epoch
from soundtransfer.train.modes import Job, build_classifier, finetune_context
from soundtransfer.weights import resolve

from .conftest import assert_predicts

ARCH = "resnet18"
OFF = [f"{k}=0" for k in ("aug_gain_db", "aug_time_shift", "aug_mixup_alpha")]


def _context(store: FeatureStore, run_dir: Path, preset: str, *settings: str) -> RunContext:
    """A fine-tuning context on fold 1 of the tiny store (no validation set)."""
    cfg = get_preset(preset, ["batch_size=8", "device=cpu", *settings])
    split = store.table.splits()[0]
    rows = (np.asarray(split.train), np.zeros(0, np.int64), np.asarray(split.test))
    torch.manual_seed(cfg.seed)
    model, _ = build_classifier(store, rows[0], resolve("random", ARCH), cfg)
    info = D.init_distributed("cpu")
    run_dir.mkdir(parents=True, exist_ok=True)
    return finetune_context(Job(store, rows, model, cfg, info, run_dir))


def _capture_inputs(ctx: RunContext) -> list[torch.Tensor]:
    """Every training batch the model receives (a forward pre-hook)."""
    seen: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if module.training:
            seen.append(args[0].detach().clone())

    ctx.module.register_forward_pre_hook(hook)
    return seen


def test_recipe_preset_switches_everything_on() -> None:
    cfg = get_preset("recipe")
    assert cfg.augment.time_masks and cfg.augment.freq_masks and cfg.schedule.kind == "cosine"
    assert cfg.optimiser.name == "adamw" and cfg.label_smoothing > 0
    paper = get_preset("paper")
    flat, default = flat_settings(paper), flat_settings(TrainConfig())
    assert all(flat[k] == default[k] for k in RECIPE_FIELDS)
    # Runs made before the recipe existed keep their identity (and are reused, resumed).
    assert not RECIPE_FIELDS & set(identity_settings(paper))
    assert {"aug_time_masks", "schedule"} <= set(identity_settings(cfg))
    assert "aug_mixup_alpha" in identity_settings(get_preset("recipe", ["aug_mixup_alpha=0.4"]))


def test_spec_augment_masks_reach_the_model(tiny_store: FeatureStore, tmp_path: Path) -> None:
    ctx = _context(
        tiny_store, tmp_path, "recipe", *OFF, "aug_time_masks=2", "aug_time_mask_width=0.2",
        "aug_freq_masks=2", "aug_freq_mask_width=0.2",
    )  # fmt: skip
    assert isinstance(ctx.augment, BatchAugment)
    seen = _capture_inputs(ctx)
    train_epoch(ctx, 0, ctx.precision.scaler())
    x = torch.cat(seen)  # (N, 3, F, T)
    clean = tiny_store.batch(loop_mod._my_rows(ctx, 0))  # what the store holds, same order
    changed = x != clean  # (N, 3, F, T); exact: unmasked pixels are the stored values, copied
    # The same mask on all 3 channels, made of whole time columns and whole mel bands.
    assert torch.equal(changed[:, 0], changed[:, 1]) and torch.equal(changed[:, 0], changed[:, 2])
    cols, bands = changed.all(dim=2), changed.all(dim=3)  # (N, 3, T), (N, 3, F)
    assert torch.equal(changed, cols.unsqueeze(2) | bands.unsqueeze(3))
    assert cols.any(dim=(1, 2)).float().mean() > 0.5  # most clips carry a time mask
    assert bands.any(dim=(1, 2)).float().mean() > 0.5  # and a frequency mask
    # Masked pixels hold the image's channel mean, the others the stored image (means of a
    # batch there, of all rows here: float32 sums in another order, the default tolerance).
    torch.testing.assert_close(x, torch.where(changed, clean.mean((2, 3), keepdim=True), clean))
    # Switched off: the model sees the stored images.
    off = _context(tiny_store, tmp_path / "off", "recipe", *OFF, "aug_time_masks=0",
                   "aug_freq_masks=0")  # fmt: skip
    assert off.augment is None
    seen_off = _capture_inputs(off)
    train_epoch(off, 0, off.precision.scaler())
    torch.testing.assert_close(torch.cat(seen_off), clean)  # copies of the stored rows


def test_time_parts_reach_the_model_and_evaluation_sees_whole_images(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    ctx = _context(tiny_store, tmp_path, "recipe", *OFF, "aug_time_masks=0", "aug_freq_masks=0",
                   "aug_crop=0.5", "aug_reverse_prob=0.5")  # fmt: skip
    seen = _capture_inputs(ctx)
    train_epoch(ctx, 0, ctx.precision.scaler())
    clean = tiny_store.batch(loop_mod._my_rows(ctx, 0))  # (N, 3, 32, 64), the same order
    x = torch.cat(seen)
    assert x.shape == (len(clean), 3, 32, 32)  # crops of half the width
    flipped = 0
    for i in range(len(clean)):  # each one a run of the stored columns, maybe reversed: copies
        runs = [clean[i, ..., s : s + 32] for s in range(33)]
        plain = any(torch.equal(x[i], r) for r in runs)
        backwards = any(torch.equal(x[i], r.flip(-1)) for r in runs)
        assert plain or backwards
        flipped += backwards and not plain
    assert 0 < flipped < len(clean)
    widths: list[int] = []
    ctx.module.register_forward_pre_hook(lambda m, a: widths.append(a[0].shape[-1]))
    loop_mod.evaluate(ctx, ctx.test_rows)
    assert set(widths) == {64}  # evaluation: the whole stored image, unaugmented


def test_mixup_gives_soft_targets_to_the_loss(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets: list[torch.Tensor] = []
    original = single_label_mod.soft_target_cross_entropy

    def spy(logits: torch.Tensor, t: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
        targets.append(t.detach().clone())
        assert eps == 0.1
        return original(logits, t, eps)

    monkeypatch.setattr(single_label_mod, "soft_target_cross_entropy", spy)
    ctx = _context(tiny_store, tmp_path, "recipe", *OFF, "aug_mixup_alpha=1.0",
                   "label_smoothing=0.1")  # fmt: skip
    train_epoch(ctx, 0, ctx.precision.scaler())
    t = torch.cat(targets)  # (N, K)
    assert t.shape == (len(ctx.train_rows), len(tiny_store.table.classes))
    torch.testing.assert_close(t.sum(1), torch.ones(len(t)))  # lam + (1 - lam), smoothed: float32
    assert ((t > 0) & (t < 1)).any(dim=1).float().mean() > 0.5  # mixed, not one-hot
    assert int((t > 0).sum(1).max()) <= 2  # two clips per mix


def test_label_smoothing_alone_uses_hard_targets(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []
    original = F.cross_entropy

    def spy(logits: torch.Tensor, y: torch.Tensor, **kw: Any) -> torch.Tensor:
        calls.append(kw.get("label_smoothing", 0.0))
        return original(logits, y, **kw)

    monkeypatch.setattr(single_label_mod.F, "cross_entropy", spy)
    ctx = _context(tiny_store, tmp_path, "paper", "label_smoothing=0.2")
    assert ctx.augment is None
    train_epoch(ctx, 0, ctx.precision.scaler())
    n = len(chunks(ctx.train_rows, 8))
    # Every training step's loss is smoothed; the epoch's train accuracy is scored after.
    assert n >= 2 and calls[:n] == [0.2] * n and len(calls) <= n + 1


def test_schedule_per_step_is_warmup_cosine(tiny_store: FeatureStore, tmp_path: Path) -> None:
    ctx = _context(tiny_store, tmp_path, "recipe", "epochs=3", "warmup_epochs=1",
                   "min_lr_ratio=0.1", "eval_every=0")  # fmt: skip
    lrs: list[float] = []
    ctx.optimizer.register_step_pre_hook(
        lambda opt, *_: lrs.append(opt.param_groups[0]["lr"])  # type: ignore[func-returns-value]
    )
    fit(ctx)
    n = steps_per_epoch(ctx)
    assert n == len(chunks(ctx.train_rows, 8)) >= 2
    expected = [ctx.cfg.optimiser.lr * warmup_cosine(s, 3 * n, n, 0.1) for s in range(3 * n)]
    assert lrs == pytest.approx(expected, rel=1e-12)  # the same float64 formula, a few ops
    assert lrs[0] < lrs[n - 1] == pytest.approx(ctx.cfg.optimiser.lr) and lrs[-1] < lrs[n]


def test_constant_schedule_with_warmup(tiny_store: FeatureStore, tmp_path: Path) -> None:
    ctx = _context(tiny_store, tmp_path, "paper", "epochs=2", "warmup_epochs=1", "eval_every=0")
    lrs: list[float] = []
    ctx.optimizer.register_step_pre_hook(
        lambda opt, *_: lrs.append(opt.param_groups[0]["lr"])  # type: ignore[func-returns-value]
    )
    fit(ctx)
    n = steps_per_epoch(ctx)
    assert lrs == pytest.approx([1e-4 * (s + 1) / n for s in range(n)] + [1e-4] * n)  # float64


def test_paper_preset_trains_as_a_plain_loop(tiny_store: FeatureStore, tmp_path: Path) -> None:
    """The recipe's hooks leave the paper's protocol exactly as it was: a plain Adam loop over
    the (seed, epoch) shuffle gives the same losses and weights."""
    ctx = _context(tiny_store, tmp_path, "paper", "epochs=2", "eval_every=0")
    reference = copy.deepcopy(ctx.module)
    assert ctx.augment is None and loop_mod.make_scheduler(ctx) is None
    log = [train_epoch(ctx, e, ctx.precision.scaler()) for e in range(2)]
    opt = torch.optim.Adam(reference.parameters(), lr=1e-4, weight_decay=1e-3)
    labels = torch.tensor(tiny_store.table.labels)
    for epoch in range(2):
        reference.train()
        perm = np.random.default_rng([0, epoch]).permutation(ctx.train_rows)
        total = 0.0
        for b in chunks(perm, 8):
            x = ctx.precision.inputs(tiny_store.batch(b))  # the loop's memory format (NHWC)
            loss = F.cross_entropy(reference(x), labels[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        # Exact, as the weights below: the same computation (the same model copy, batches,
        # memory format, optimiser and threads) repeated in this process.
        assert log[epoch]["train_loss"] == total / len(perm)
    for a, b in zip(ctx.module.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_ema_is_evaluated_and_saved(tiny_store: FeatureStore, tmp_path: Path) -> None:
    from soundtransfer.inference.bundle import load_bundle

    split = tiny_store.table.splits()[0]
    cfg = get_preset("recipe", ["epochs=2", "batch_size=8", "ema_decay=0.9"])
    out = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path, progress=False)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    live, ema = state["model"], state["ema"]
    saved = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    differ = 0
    for k, v in saved.items():
        torch.testing.assert_close(v, ema[f"module.{k}"], rtol=0, atol=0)  # a copy: bitwise
        differ += v.dtype.is_floating_point and not torch.equal(v, live[k])
    assert differ > len(saved) // 2  # the average, not the live weights
    assert int(ema["num_updates"]) == 2 * len(chunks(np.asarray(split.train), 8))
    model, _ = load_bundle(tmp_path / "model.pt")
    with torch.no_grad():
        logits = model.classifier(tiny_store.batch(split.test))
    assert_predicts(logits, out["predictions"])  # the test score is the EMA's


def test_augmentations_are_seeded_by_seed_and_epoch(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    a = _context(tiny_store, tmp_path / "a", "recipe")
    b = _context(tiny_store, tmp_path / "b", "recipe")
    assert torch.equal(  # the same seeded draws: bitwise
        torch.rand(4, generator=loop_mod.augment_generator(a, 3)),
        torch.rand(4, generator=loop_mod.augment_generator(b, 3)),
    )
    assert not torch.equal(
        torch.rand(4, generator=loop_mod.augment_generator(a, 3)),
        torch.rand(4, generator=loop_mod.augment_generator(a, 4)),
    )


def test_reproduce_has_a_recipe_grid() -> None:
    from soundtransfer.experiments.grid import GRID_PRESETS

    grid = GRID_PRESETS["recipe"]
    assert grid.train_preset == "recipe" and grid.datasets == ("esc10",)
    assert [c.mode for c in grid.cells()] == ["finetune"]
    assert get_preset(grid.train_preset).augment.time_masks > 0
