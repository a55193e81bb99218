"""The demo: its vendored sample (official layout, balanced, credited) and its rows."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from soundtransfer.datasets import load_dataset
from soundtransfer.demo import ROWS, run_demo


def test_sample_is_balanced_credited_and_lean(demo_root: Path) -> None:
    table = load_dataset("esc10", demo_root)
    assert Counter((c.fold, c.label) for c in table.clips) == {
        (f, k): 2 for f in range(1, 6) for k in range(10)
    }
    files = {p.name for p in (demo_root / "audio").iterdir()}
    meta = {r["filename"] for r in csv.DictReader((demo_root / "meta" / "esc50.csv").open())}
    assert files == meta  # nothing unlisted is shipped
    credited = re.findall(r"^- \[([^\]]+)\]", (demo_root / "ATTRIBUTION.txt").read_text(), re.M)
    assert sorted(credited) == sorted(files)  # CC BY: every clip credited once
    assert sum((demo_root / "audio" / f).stat().st_size for f in files) < 11e6


def test_rows_compare_imagenet_with_a_random_baseline() -> None:
    modes = [(w, s["mode"], s.get("probe", "linear")) for w, s in ROWS]
    assert ("random", "linear", "logistic") in modes and ("lite0", "linear", "logistic") in modes
    assert ("random", "finetune", "linear") not in modes  # a few epochs from random: chance


@pytest.mark.slow
def test_demo_shows_transfer_with_confidence_intervals(demo_root: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    out = run_demo(tmp_path / "out", demo_root, finetune_epochs=1, linear_epochs=5,
                   log=lines.append)  # fmt: skip
    text = "\n".join(lines)
    assert "95 % CI" in text and "Paired comparisons" in text and "sign-flip p" in text
    imagenet, _ = out["results"]["logistic/lite0"]
    random, _ = out["results"]["logistic/random"]
    assert imagenet > random + 15, out["results"]  # frozen ImageNet features transfer
    assert "[4/4] predict" in text
