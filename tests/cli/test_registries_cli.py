"""Issue 19's end-to-end checks: a registry entry is reachable from the command line with no
code of its own in the CLI (the kNN probe, a torchvision backbone by name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundtransfer.cli.main import main
from soundtransfer.inference.bundle import load_bundle


def _final(runs: Path) -> dict[str, object]:
    (path,) = sorted(runs.rglob("final.json"))
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_linear_eval_with_the_knn_probe(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    argv = ["linear-eval", "esc10", "--root", str(demo_root), "--weights", "lite0",
            "--folds", "1", "--set", "probe=knn", "--quiet",
            "--out", str(runs), "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    final = _final(runs)
    probe = final["probe"]
    assert isinstance(probe, dict) and probe["kind"] == "knn"
    acc = final["test_acc"]
    assert isinstance(acc, float) and 0.0 <= acc <= 100.0
    # The bundle holds the kNN head and loads as predict loads it.
    (bundle,) = sorted(runs.rglob("model.pt"))
    model, meta = load_bundle(bundle)
    assert type(model.classifier.head).__name__ == "KNNHead" and meta.arch == "efficientnet_lite0"
    assert "knn" in capsys.readouterr().out


def test_finetune_a_torchvision_backbone_by_name(demo_root: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    argv = ["finetune", "esc10", "--root", str(demo_root), "--weights", "random",
            "--arch", "mobilenet_v3_small", "--preset", "demo", "--folds", "1",
            "--set", "epochs=1", "--quiet",
            "--out", str(runs), "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    final = _final(runs)
    assert final["epochs"] == 1 and len(final["predictions"]) == final["n_test"]  # type: ignore[arg-type]
    (bundle,) = sorted(runs.rglob("model.pt"))
    _model, meta = load_bundle(bundle)
    assert meta.arch == "mobilenet_v3_small"
    assert (bundle.parent.parent.name, bundle.parent.parent.parent.name) == (
        "finetune",
        "mobilenet_v3_small.random",
    )
