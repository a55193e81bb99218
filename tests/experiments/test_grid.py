"""The experiment grid: cells, resumable runs, the results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soundtransfer.config import ConfigError
from soundtransfer.errors import DatasetError, RunError
from soundtransfer.experiments.grid import GRID_PRESETS, GridPreset, get_preset, reproduce


def test_paper_grid_is_table_1_and_2() -> None:
    cells = GRID_PRESETS["paper"].cells()
    fine = {(c.dataset, c.weights) for c in cells if c.mode == "finetune"}
    assert len(fine) == 9 and ("gtzan", "simclr-v1") in fine
    assert {c.arch for c in cells} == {"resnet50"}
    assert ("us8k", "simclr-v1") in {(c.dataset, c.weights) for c in cells if c.mode == "linear"}
    with pytest.raises(ConfigError):
        get_preset("huge")
    assert get_preset("cpu", ["label=mine"]).label == "mine"


@pytest.mark.slow
def test_reproduce_runs_resumes_and_tables(demo_root: Path, tmp_path: Path) -> None:
    preset = GridPreset(
        "test",
        ("esc10",),
        finetune=(("random", "resnet18"),),
        linear=(("random", "resnet18"),),
        train_preset="demo",
        train_overrides=("epochs=1",),
        label="test grid",
    )
    with pytest.raises(DatasetError, match="needs a root"):
        reproduce(preset, {}, tmp_path)

    def run_two_folds() -> dict[str, Any]:
        return reproduce(
            preset,
            {"esc10": demo_root},
            tmp_path / "runs",
            folds=[1, 2],
            cache_dir=tmp_path / "c",
            progress=False,
        )

    out = run_two_folds()
    md = (tmp_path / "runs" / "results.md").read_text()
    assert "test grid" in md and "resnet18.random | finetune" in md and "fold2" in md
    # Statistics: a 95 % CI per row, fine-tuning vs linear evaluation paired fold by fold.
    assert "95 % CI" in md and "Paired comparisons" in md and "sign-flip p" in md
    assert (tmp_path / "runs" / "paired.csv").exists() and out["markdown"].endswith(md[-200:])
    assert out["csv"].count("\n") == 3
    final = tmp_path / "runs" / "esc10" / "resnet18.random" / "finetune" / "fold1" / "final.json"
    stamp = final.stat().st_mtime_ns
    run_two_folds()
    assert final.stat().st_mtime_ns == stamp  # done splits are reused
    with pytest.raises(RunError, match=r"settings\.epochs: 1 -> 2"):  # never silently
        reproduce(
            preset,
            {"esc10": demo_root},
            tmp_path / "runs",
            folds=[1],
            cache_dir=tmp_path / "c",
            extra_overrides=["epochs=2"],
            progress=False,
        )
    with pytest.raises(ConfigError, match="more than once"):
        reproduce(preset, {"esc10": demo_root}, tmp_path / "runs", folds=[1, 1])
