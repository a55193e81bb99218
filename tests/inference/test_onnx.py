"""ONNX export: raw audio of any length in, predict's scores out (issue 23, defects 1, 7, 13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from soundtransfer.audio import load_clip
from soundtransfer.errors import ConfigError, OutputError
from soundtransfer.inference.bundle import load_bundle
from soundtransfer.inference.onnx import export_onnx
from soundtransfer.inference.predict import plan_hop, reference_window_probs

from ..conftest import FullDisk
from .conftest import make_bundle

SRC = Path(__file__).resolve().parents[2] / "src"

pytestmark = pytest.mark.slow  # each export traces a ResNet-18 with its front end (~20 s)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("onnxruntime")
    folder = tmp_path_factory.mktemp("onnx")
    bundle = make_bundle(folder / "model.pt")
    path, diff = export_onnx(bundle, folder / "model.onnx")
    # The export's own check: the same windows through PyTorch and onnxruntime.
    assert diff is not None and diff < 1e-3
    return bundle, path


@pytest.mark.parametrize("seconds", [2.0, 7.0, 12.3])
def test_any_length_matches_the_pytorch_windows(
    exported: tuple[Path, Path], esc10_root: Path, seconds: float
) -> None:
    import onnxruntime as ort

    bundle, path = exported
    model, meta = load_bundle(bundle)
    fe = meta.frontend
    clips = sorted((esc10_root / "audio").glob("*.ogg"))[:3]
    wave = np.concatenate([load_clip(c, fe.sample_rate) for c in clips])[: round(seconds * 44100)]
    hop = plan_hop(fe).samples  # predict's default hop, which the graph uses
    want = reference_window_probs(model, meta, wave, hop)  # (W, K), one window at a time
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores, window_logits = sess.run(None, {"audio": wave[None]})
    assert window_logits.shape == (1, len(want), len(meta.classes))
    # onnxruntime's DFT-as-matmul and torch's FFT sum in other orders (float32): the window
    # probabilities agree to ~1e-6 here; 1e-4 is far below what a wrong window changes.
    np.testing.assert_allclose(scores[0], want.mean(0), rtol=0, atol=1e-4)
    with torch.no_grad():
        probs = torch.softmax(torch.from_numpy(window_logits[0]), dim=1).numpy()
    np.testing.assert_allclose(probs, want, rtol=0, atol=1e-4)


def test_metadata_and_batches_of_cut_windows(exported: tuple[Path, Path]) -> None:
    import onnxruntime as ort

    bundle, path = exported
    _, meta = load_bundle(bundle)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    info = sess.get_modelmeta().custom_metadata_map
    assert int(info["clip_samples"]) == meta.frontend.clip_samples
    assert int(info["sample_rate"]) == meta.frontend.sample_rate
    assert int(info["hop_samples"]) == plan_hop(meta.frontend).samples
    batch = np.random.default_rng(0).standard_normal((3, meta.frontend.clip_samples), np.float32)
    scores, window_logits = sess.run(None, {"audio": 0.1 * batch})
    assert scores.shape == (3, 3) and window_logits.shape == (3, 1, 3)  # one window per row


def test_bundle_as_output_is_refused_and_kept(exported: tuple[Path, Path]) -> None:
    bundle, _ = exported
    before = bundle.read_bytes()
    with pytest.raises(OutputError, match=r"--out .*model\.pt is an input"):
        export_onnx(bundle, bundle.parent / "." / bundle.name)
    assert bundle.read_bytes() == before


@pytest.mark.parametrize("opset", [10, 21])
def test_opset_out_of_range(exported: tuple[Path, Path], opset: int, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"--opset {opset}: .* 11\.\.20"):
        export_onnx(exported[0], tmp_path / "m.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_leaves_no_onnx(
    exported: tuple[Path, Path], tmp_path: Path, full_disk: FullDisk
) -> None:
    full_disk(lambda path: path.suffix == ".onnx")
    with pytest.raises(OutputError, match=r"m\.onnx: no space left on device"):
        export_onnx(exported[0], tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []  # no 0-byte .onnx, no temp file


def test_export_keeps_the_exporters_noise_off_stderr(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue 23, defect 15: ``soundtransfer export`` printed the tracer's TracerWarnings (the
    front end's ``if n > num_samples``) and torch.onnx's messages to stderr. Run in a fresh
    process, as a user runs it: pytest's own warning capture would hide Python warnings here."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    out = tmp_path / "m.onnx"
    code = "import sys; from soundtransfer.cli.main import main; sys.exit(main(sys.argv[1:]))"
    argv = ["export", str(exported[0]), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    assert "TracerWarning" not in done.stderr, done.stderr
    assert done.stderr.count("\n") <= 1, done.stderr


def test_multilabel_export_scores_are_the_bundles_sigmoids(
    tmp_path: Path, esc10_root: Path
) -> None:
    """A multi-label bundle's graph outputs one sigmoid per class (issue 20), not a softmax."""
    import onnxruntime as ort

    bundle = make_bundle(tmp_path / "model.pt", task="multi_label")
    path, diff = export_onnx(bundle, tmp_path / "model.onnx")
    assert diff is not None and diff < 1e-3
    model, meta = load_bundle(bundle)
    clips = sorted((esc10_root / "audio").glob("*.ogg"))[:2]
    wave = np.concatenate([load_clip(c, meta.frontend.sample_rate) for c in clips])
    want = reference_window_probs(model, meta, wave, plan_hop(meta.frontend).samples)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores, window_logits = sess.run(None, {"audio": wave[None]})
    # As above: float32 FFT sums in other orders agree to ~1e-6; 1e-4 is far below what a
    # softmax in place of the sigmoids would change (scores of 3 classes summing to 1).
    np.testing.assert_allclose(scores[0], want.mean(0), rtol=0, atol=1e-4)
    sig = torch.sigmoid(torch.from_numpy(window_logits[0])).numpy()
    np.testing.assert_allclose(sig, want, rtol=0, atol=1e-4)
    soft = torch.softmax(torch.from_numpy(window_logits[0]), dim=1).numpy()
    assert np.abs(soft - want).max() > 1e-2  # the two readings differ on these windows
