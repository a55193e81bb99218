"""Bundles written before the registries refactor (issue 19) still load and give the same
outputs: ``fixtures/old_bundle_*.pt.xz`` were written by commit 7655f27's ``save_bundle``
(``fixtures/make_old_bundles.py``), with that code's logits on a fixed input recorded beside
them."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch

from soundtransfer.cli.main import main
from soundtransfer.inference.bundle import load_bundle

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = json.loads((FIXTURES / "old_bundle_outputs.json").read_text())


def _unpack(kind: str, tmp_path: Path) -> Path:
    out = tmp_path / f"old_{kind}.pt"
    out.write_bytes(lzma.decompress((FIXTURES / f"old_bundle_{kind}.pt.xz").read_bytes()))
    return out


def _fixed_input(n: int) -> torch.Tensor:
    """The input ``make_old_bundles.py`` recorded the logits of (seed 19, 440 Hz + noise)."""
    rng = np.random.default_rng(19)
    t = np.arange(n) / 22050.0
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)
    return torch.from_numpy(wave.astype(np.float32))[None]


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_old_bundle_gives_the_recorded_logits(kind: str, tmp_path: Path) -> None:
    net, meta = load_bundle(_unpack(kind, tmp_path))
    assert meta.arch == "efficientnet_lite0"
    assert meta.classes == ("chainsaw", "dog", "rain")
    with torch.no_grad():
        logits = net(_fixed_input(meta.frontend.clip_samples))
    want = torch.tensor(RECORDED["logits"][kind])
    # Recorded on another machine and thread count: float32 sums in another order differ in
    # the last bits, amplified through ~50 layers; 1e-3 of the logits' scale is far below
    # what a misloaded head or input normalisation changes (order 1).
    scale = float(want.abs().max())
    torch.testing.assert_close(logits, want, rtol=0, atol=1e-3 * scale)


def test_old_bundle_predicts_through_the_cli(
    tmp_path: Path, esc10_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _unpack("linear", tmp_path)
    clip = sorted((esc10_root / "audio").glob("*.ogg"))[0]
    assert main(["predict", str(bundle), str(clip), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {t["class"] for t in out["mean_top"]} <= {"chainsaw", "dog", "rain"}


def test_old_bundle_is_single_label_without_thresholds(tmp_path: Path) -> None:
    _net, meta = load_bundle(_unpack("linear", tmp_path))
    assert (meta.task, meta.thresholds, meta.background) == ("single_label", None, ())
