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
    assert "[4/4] the fold-1 model" in text and "clips right" in text


def test_held_out_step_tables_every_clip_of_the_fold(demo_root: Path, tmp_path: Path) -> None:
    """The demo's last step: every clip of the held-out fold through ``predict``, right per
    class and the confusions, not one clip picked in advance."""
    import json

    import torch

    from soundtransfer.audio import get_preset
    from soundtransfer.demo import held_out_step
    from soundtransfer.inference.bundle import save_bundle
    from soundtransfer.models import Classifier, InputNorm, build_encoder

    table = load_dataset("esc10", demo_root)
    run = tmp_path / "runs" / "esc10" / "resnet18.random" / "logistic" / "fold1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"split": "fold1", "train": {"epochs": 1}}))
    (run / "final.json").write_text(json.dumps({"test_acc": 12.5}))
    torch.manual_seed(0)
    model = Classifier(build_encoder("resnet18"), 10, InputNorm([-6.0] * 3, [4.0] * 3)).eval()
    fe = get_preset("esc10", n_mels=32, out_frames=64)
    save_bundle(run / "model.pt", model, fe, table.classes, "resnet18", "random")
    lines = held_out_step(run, table, 1, tmp_path / "heldout.csv")
    rows = list(csv.DictReader((tmp_path / "heldout.csv").open()))
    assert sorted(r["file"] for r in rows) == sorted(c.file for c in table.clips if c.fold == 1)
    right = sum(int(r["right"]) for r in rows)
    assert lines[0].startswith("[4/4] the fold-1 model (resnet18 (random init), frozen, logistic")
    assert "on the 20 clips of held-out fold 1" in lines[0]
    per_class = {line.split()[0]: line.split()[1:4] for line in lines[2:12]}
    assert set(per_class) == set(table.classes)
    assert all(v[1:] == ["/", "2"] for v in per_class.values())  # 2 clips a class in fold 1
    assert sum(int(v[0]) for v in per_class.values()) == right
    assert f"{right} of 20 clips right" in lines[12] and "fold1: 12.50 %" in lines[12]
    assert lines[13].startswith("  main confusions (true -> predicted, clips): ")
