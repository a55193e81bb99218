"""The notes of a cross-validation run name each split as the user knows it (issue 24, point 6)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from soundtransfer.tasks import get_task
from soundtransfer.train import crossval


@pytest.mark.parametrize(
    ("split_names", "prefixes"),
    [(["fixed"], ["train/valid/test: "]), (["fold1", "fold2"], ["fold1: ", "fold2: "])],
)
def test_notes_name_the_split_as_the_user_knows_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, split_names: list[str], prefixes: list[str]
) -> None:
    metric = f"test_{get_task('single_label').primary_metric}"
    dirs: list[Path] = []

    def fake_run_split(store: Any, split: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        dirs.append(Path(args[3]))
        return {metric: 50.0, "selection_lines": ["validation: the split's 4 valid clips"]}

    monkeypatch.setattr(crossval, "run_split", fake_run_split)
    monkeypatch.setattr(
        crossval, "resolve", lambda w, a: SimpleNamespace(label="r.w", name="w", arch="r")
    )
    splits = [SimpleNamespace(name=n) for n in split_names]
    table = SimpleNamespace(name="own", task="single_label", splits=lambda folds: splits)
    cfg = SimpleNamespace(run_mode="linear")
    result = crossval.run_crossval(SimpleNamespace(table=table), "w", None, cfg, tmp_path)  # type: ignore[arg-type]
    assert list(result.notes) == [f"{p}validation: the split's 4 valid clips" for p in prefixes]
    assert not any(line.startswith("fixed") for line in result.notes)
    # the run folder keeps its name, so that earlier runs still resume
    assert [d.name for d in dirs] == split_names
    assert list(result.splits) == split_names
