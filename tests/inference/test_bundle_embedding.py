"""Bundles of classifiers on richer embeddings (issue 22 point 2): the option recorded and
rebuilt, a bundle from before it loads as ``mean``, and every inference path (predict's
traced network, HEAR scene embeddings, ONNX) pools as the classifier did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soundtransfer.audio import get_preset, load_clip
from soundtransfer.errors import WeightsError
from soundtransfer.inference.bundle import load_bundle, save_bundle
from soundtransfer.inference.hear import get_scene_embeddings, load_model
from soundtransfer.inference.jit import inference_net
from soundtransfer.models import Classifier, InputNorm, build_encoder
from soundtransfer.models.embedding import EmbeddingSpec

from .conftest import CLASSES


def make(path: Path, spec: EmbeddingSpec, n_mels: int = 32) -> tuple[Path, Classifier]:
    """A random ResNet-18 classifier on ``spec`` over ``n_mels`` x 64 images, bundled."""
    torch.manual_seed(0)
    fe = get_preset("esc10", n_mels=n_mels, out_frames=64)
    norm = InputNorm([-10.0] * 3, [3.0] * 3)
    model = Classifier(build_encoder("resnet18"), 3, norm, spec).eval()
    torch.nn.init.normal_(model.head.weight, std=0.05)  # scores that differ by class
    return save_bundle(path, model, fe, CLASSES, "resnet18", "random"), model


@pytest.mark.parametrize("spec", [EmbeddingSpec("meanstd"), EmbeddingSpec("meanstd", 2),
                                  EmbeddingSpec("mean", 3)])  # fmt: skip
def test_bundle_rebuilds_the_same_classifier(spec: EmbeddingSpec, tmp_path: Path) -> None:
    path, model = make(tmp_path / "model.pt", spec)
    payload = torch.load(path, weights_only=True)
    assert payload["embedding"] == spec.record()
    audio_model, meta = load_bundle(path)
    assert meta.embedding == spec and audio_model.classifier.embedding == spec
    assert audio_model.classifier.embed_dim == model.embed_dim
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(audio_model.classifier(x), model(x))


def test_a_bundle_without_the_record_loads_as_mean(tmp_path: Path) -> None:
    path, model = make(tmp_path / "model.pt", EmbeddingSpec())
    payload = torch.load(path, weights_only=True)
    assert payload["embedding"] == {"pool": "mean", "blocks": 1}
    del payload["embedding"]  # as every bundle written before the option
    torch.save(payload, tmp_path / "old.pt")
    audio_model, meta = load_bundle(tmp_path / "old.pt")
    assert meta.embedding == EmbeddingSpec() and audio_model.classifier.embed_dim == 512
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(audio_model.classifier(x), model(x))


@pytest.mark.parametrize(
    ("record", "culprit"),
    [({"pool": "max", "blocks": 1}, "pool: 'max' is not one of"),
     ({"pool": "mean", "blocks": 9}, "blocks must be an integer"),
     ("meanstd", "embedding must be")],
)  # fmt: skip
def test_a_bad_record_is_one_line(record: object, culprit: str, tmp_path: Path) -> None:
    path, _ = make(tmp_path / "model.pt", EmbeddingSpec())
    payload = torch.load(path, weights_only=True)
    payload["embedding"] = record
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=culprit) as err:
        load_bundle(tmp_path / "bad.pt")
    assert str(err.value).startswith(str(tmp_path / "bad.pt")) and "\n" not in str(err.value)


def test_a_record_that_does_not_fit_the_weights_is_refused(tmp_path: Path) -> None:
    path, _ = make(tmp_path / "model.pt", EmbeddingSpec("meanstd"))
    payload = torch.load(path, weights_only=True)
    payload["embedding"] = {"pool": "mean", "blocks": 1}  # a head of 1024 inputs, not 512
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="weights do not fit resnet18"):
        load_bundle(tmp_path / "bad.pt")


def test_predicts_traced_network_is_the_bundles(tmp_path: Path) -> None:
    path, _ = make(tmp_path / "model.pt", EmbeddingSpec("meanstd", 2))
    audio_model, meta = load_bundle(path)
    net = inference_net(audio_model.classifier, meta.frontend.image_shape, 4)
    assert net.traced is not None, net.fallback  # traced, checked against eager at load


def test_hear_scene_embeddings_pool_as_the_classifier(tmp_path: Path, esc10_root: Path) -> None:
    path, _ = make(tmp_path / "model.pt", EmbeddingSpec("meanstd"), n_mels=64)
    hear = load_model(str(path), normalisation="fixed")  # the bundle's own normalisation
    assert hear.scene_embedding_size == 1024 and hear.timestamp_embedding_size == 512
    audio_model, meta = load_bundle(path)
    clip = sorted((esc10_root / "audio").glob("*.ogg"))[0]
    wave = torch.from_numpy(load_clip(clip, meta.frontend.sample_rate, meta.frontend.clip_samples))
    with torch.no_grad():
        want = audio_model.classifier.embed(audio_model.frontend(wave[None]))
    got = get_scene_embeddings(wave[None], hear)
    assert got.shape == want.shape == (1, 1024)
    # The HEAR wrapper's path vs the bundle's own (tests/inference/test_hear.py's tolerance).
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_hear_refuses_a_multi_block_bundle_in_one_line(tmp_path: Path) -> None:
    path, _ = make(tmp_path / "model.pt", EmbeddingSpec("mean", 2), n_mels=64)
    with pytest.raises(WeightsError, match=r"blocks=2 bundle has no HEAR embeddings") as err:
        load_model(str(path))
    assert "\n" not in str(err.value)


@pytest.mark.slow  # traces a ResNet-18 with its front end (~20 s)
def test_onnx_export_of_a_meanstd_multi_block_bundle(tmp_path: Path, esc10_root: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from soundtransfer.inference.onnx import export_onnx
    from soundtransfer.inference.predict import plan_hop, reference_window_probs

    bundle, _ = make(tmp_path / "model.pt", EmbeddingSpec("meanstd", 2))
    path, diff = export_onnx(bundle, tmp_path / "model.onnx")
    assert diff is not None and diff < 1e-3  # the export's own onnxruntime check
    model, meta = load_bundle(bundle)
    fe = meta.frontend
    clips = sorted((esc10_root / "audio").glob("*.ogg"))[:2]
    wave = np.concatenate([load_clip(c, fe.sample_rate) for c in clips])[: 7 * fe.sample_rate]
    want = reference_window_probs(model, meta, wave, plan_hop(fe).samples)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores, window_logits = sess.run(None, {"audio": wave[None]})
    assert window_logits.shape == (1, len(want), len(CLASSES))
    np.testing.assert_allclose(scores[0], want.mean(0), rtol=0, atol=1e-4)
