"""Grouped training settings: flat ``--set`` names and dotted ones reach the same field, and
the run directories written before the grouping keep their identity (the old-config fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soundtransfer.config import ConfigError, flat_settings, override, setting_names
from soundtransfer.errors import RunError
from soundtransfer.features import FeatureStore
from soundtransfer.runs import open_run
from soundtransfer.runs.rundir import describe_changes
from soundtransfer.train import TrainConfig, get_preset
from soundtransfer.train.config import identity_settings
from soundtransfer.train.run import run_identity
from soundtransfer.weights import resolve

OLD = json.loads((Path(__file__).parent / "fixtures" / "old_configs.json").read_text())


#: A value off the default for every flat name (the test fails when an alias is added
#: without one here).
OFF_DEFAULT: dict[str, Any] = {
    "optimizer": "sgd", "lr": 0.5, "weight_decay": 0.0, "schedule": "cosine",
    "warmup_epochs": 1.0, "min_lr_ratio": 0.1, "probe": "knn", "probe_inner_folds": 3,
    "probe_valid_fraction": 0.5, "aug_gain_db": 3.0, "aug_time_shift": 0.5,
    "aug_time_shift_mode": "edge", "aug_time_masks": 2, "aug_time_mask_width": 0.2,
    "aug_freq_masks": 2, "aug_freq_mask_width": 0.2, "aug_mask_fill": "min",
    "aug_mixup_alpha": 0.4, "aug_mixup_prob": 0.5, "aug_reverse_prob": 0.5,
    "aug_time_scale": 0.25, "aug_crop": 0.8, "aug_crop_min_rms": 0.25, "aug_crop_tries": 3,
    "pool": "meanstd", "blocks": 2,
}  # fmt: skip


def test_every_flat_name_sets_its_grouped_field() -> None:
    assert set(OFF_DEFAULT) == set(TrainConfig.ALIASES)
    cfg = TrainConfig(mode="linear")
    names = setting_names(TrainConfig)
    for flat, dotted in TrainConfig.ALIASES.items():
        assert flat in names and dotted not in names  # one name per setting in the help
        group, field = dotted.split(".")
        value = OFF_DEFAULT[flat]
        assert getattr(getattr(cfg, group), field) != value
        by_flat, by_dotted = override(cfg, {flat: value}), override(cfg, {dotted: value})
        assert by_flat == by_dotted and getattr(getattr(by_flat, group), field) == value
        assert flat_settings(by_flat)[flat] == value  # recorded under the flat name


def test_group_errors_name_the_setting_as_given() -> None:
    with pytest.raises(ConfigError, match="lr must be positive"):
        get_preset("paper", ["lr=-1"])
    with pytest.raises(ConfigError, match="aug_mixup_prob"):
        get_preset("paper", ["aug_mixup_prob=2"])
    with pytest.raises(ConfigError, match=r"unknown setting 'optimiser\.momentum'"):
        get_preset("paper", ["optimiser.momentum=0.9"])
    with pytest.raises(ConfigError, match="warmup_epochs=0"):
        get_preset("paper", ["epochs=1", "warmup_epochs=2"])
    with pytest.raises(ConfigError, match="task"):
        get_preset("paper", ["task=regression"])


@pytest.mark.parametrize("name", sorted(OLD["cases"]))
def test_runs_made_before_the_grouping_keep_their_identity(
    name: str, tiny_store: FeatureStore, tmp_path: Path
) -> None:
    case = OLD["cases"][name]
    recorded = case["config"]
    # The recipe chooses its epoch on validation since issue 22; its runs from before are the
    # recipe with the final epoch kept (and reused as such).
    before = ["select=last", "val_fraction=0"] if case["preset"] == "recipe" else []
    cfg = get_preset(case["preset"], [*before, *case["overrides"]])
    split = tiny_store.table.splits([1])[0]
    rows = tuple(np.asarray(r, dtype=np.int64) for r in (split.train, (), split.test))
    identity = run_identity(tiny_store, split.name, rows, resolve(case["weights"], case["arch"]),
                            cfg, 1)  # fmt: skip
    # The store key hashes the files' modification times: this machine's copy has its own.
    old = {**recorded["identity"], "store": tiny_store.key}
    assert describe_changes(old, identity) == ""
    run = tmp_path / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({**recorded, "identity": old}))
    (run / "final.json").write_text(json.dumps({"test_acc": 50.0}))
    assert open_run(run, identity, {}).state == "done"  # reused, not refused
    # A changed setting is still refused, named by its flat name.
    changed = override(cfg, {"lr": 0.5})
    other = run_identity(tiny_store, split.name, rows, resolve(case["weights"], case["arch"]),
                         changed, 1)  # fmt: skip
    with pytest.raises(RunError, match=r"settings\.lr: .* -> 0\.5"):
        open_run(run, other, {})


def test_new_settings_join_an_identity_only_off_their_default() -> None:
    paper = identity_settings(get_preset("paper"))
    assert "task" not in paper and "aug_gain_db" not in paper
    assert identity_settings(get_preset("paper", ["aug_gain_db=3"]))["aug_gain_db"] == 3.0
    knn = identity_settings(get_preset("paper", ["mode=linear", "probe=knn"]))
    assert knn["probe"] == "knn"
