"""The HEAR API: the checks of HEAR's validator (hearbenchmark/hear-validator, validate.py),
batch independence on real clips, and agreement with a bundle's own embedding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from soundtransfer.audio import get_preset, load_clip
from soundtransfer.datasets import load_dataset
from soundtransfer.errors import WeightsError
from soundtransfer.inference.bundle import load_bundle, save_bundle
from soundtransfer.inference.hear import (
    DEFAULT_PRESET,
    HearModel,
    get_scene_embeddings,
    get_timestamp_embeddings,
    load_model,
)
from soundtransfer.models import Classifier, InputNorm, build_encoder

VALIDATOR_RATES = (16000, 22050, 32000, 44100, 48000)


def validate(model: HearModel) -> None:
    """What hear-validator checks: attributes, then timestamp embeddings of 2 white-noise clips
    of 1.07, 1.98 and 4.0 s and scene embeddings of 4 clips of 2.74 s (uniform in [-1, 1])."""
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in VALIDATOR_RATES
    assert isinstance(model.scene_embedding_size, int)
    assert isinstance(model.timestamp_embedding_size, int)
    for length in (1.07, 1.98, 4.0):
        audio = torch.rand(2, int(length * model.sample_rate)) * 2 - 1
        emb, ts = get_timestamp_embeddings(audio, model)
        assert emb.dtype == torch.float32
        emb_np, ts_np = emb.numpy(), ts.numpy()
        assert emb_np.ndim == 3 and ts_np.ndim == 2
        assert emb_np.shape[0] == 2 and emb_np.shape[:2] == ts_np.shape
        assert emb_np.shape[2] == model.timestamp_embedding_size
        assert np.isfinite(emb_np).all()
        if ts_np.shape[1] > 1:
            diff = np.diff(ts_np)
            assert np.max(np.abs(diff - diff.mean())) <= 1.0  # regular, within 1 ms
        assert ts_np.max() <= 1000 * length and ts_np.min() >= 0
    audio = torch.rand(4, int(2.74 * model.sample_rate)) * 2 - 1
    scene = get_scene_embeddings(audio, model)
    assert scene.dtype == torch.float32
    assert tuple(scene.shape) == (4, model.scene_embedding_size)


@pytest.fixture(scope="module")
def clips(esc10_root: Path) -> torch.Tensor:
    """Three real ESC-10 clips of three classes, 2.5 s each at 44.1 kHz."""
    t = load_dataset("esc10", esc10_root)
    picks = [t.labels.index(k) for k in (0, 3, 7)]
    waves = [load_clip(t.path(i), 44100, int(2.5 * 44100)) for i in picks]
    return torch.from_numpy(np.stack(waves))  # (3, T)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    fe = get_preset("esc10", n_mels=64)
    model = Classifier(build_encoder("resnet18"), 3, InputNorm([-6.0] * 3, [4.0] * 3))
    path = tmp_path_factory.mktemp("hear") / "model.pt"
    return save_bundle(path, model.eval(), fe, ("a", "b", "c"), "resnet18", "random")


def assert_batch_independent(model: HearModel, clips: torch.Tensor) -> None:
    together = get_scene_embeddings(clips, model)
    stamps, _ = get_timestamp_embeddings(clips, model)
    for i in range(len(clips)):
        alone = get_scene_embeddings(clips[i : i + 1], model)
        torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-4, atol=1e-4)
        alone_t, _ = get_timestamp_embeddings(clips[i : i + 1], model)
        torch.testing.assert_close(stamps[i : i + 1], alone_t, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(together[0], together[1])  # different clips, different vectors


@pytest.mark.slow
@pytest.mark.parametrize("normalisation", ["clip", "fixed"])
def test_weight_source(normalisation: str, clips: torch.Tensor) -> None:
    model = load_model("lite0", normalisation=normalisation)
    assert model.sample_rate == 44100 and model.scene_embedding_size == 1280
    assert not model.training
    validate(model)
    assert_batch_independent(model, clips)


def test_bundle_matches_its_classifier(bundle: Path, clips: torch.Tensor) -> None:
    model = load_model(str(bundle), normalisation="fixed")  # its own training normalisation
    assert model.normalisation == "fixed" and model.scene_embedding_size == 512
    validate(model)
    assert_batch_independent(model, clips)
    # A clip of exactly the bundle's length gives the classifier's own embedding.
    audio_model, meta = load_bundle(bundle)
    wave = torch.cat([clips[0], clips[1]])[None, : meta.frontend.clip_samples]
    with torch.no_grad():
        want = audio_model.classifier.embed(audio_model.frontend(wave))
    torch.testing.assert_close(get_scene_embeddings(wave, model), want, rtol=1e-4, atol=1e-4)
    clip_model = load_model(str(bundle))  # the default, as for weight names
    assert clip_model.normalisation == "clip"
    assert not torch.allclose(get_scene_embeddings(wave, clip_model), want)


def test_bundle_and_its_weights_embed_alike(tmp_path: Path, clips: torch.Tensor) -> None:
    """Issue 24 point 9: a bundle trained from a weight file fell back to mean 0 / std 1 (its
    statistics were looked up by the weights' *name*); bundles now record them."""
    torch.manual_seed(2)
    path = tmp_path / "enc.safetensors"
    save_file(build_encoder("resnet18").state_dict(), str(path), metadata={"arch": "resnet18"})
    stats = ([0.4, 0.5, 0.6], [0.2, 0.3, 0.25])
    path.with_suffix(".json").write_text(
        json.dumps({"arch": "resnet18", "input_mean": stats[0], "input_std": stats[1]})
    )
    from soundtransfer.weights import load_encoder

    encoder, src = load_encoder(str(path))
    model = Classifier(encoder, 3, InputNorm([-6.0] * 3, [4.0] * 3)).eval()
    fe = get_preset(DEFAULT_PRESET)
    bundle = save_bundle(
        tmp_path / "model.pt", model, fe, ("a", "b", "c"), "resnet18", str(path),
        input_stats=(src.input_mean, src.input_std),
    )  # fmt: skip
    assert load_bundle(bundle)[1].input_mean == tuple(stats[0])
    from_bundle = get_scene_embeddings(clips, load_model(str(bundle)))
    from_weights = get_scene_embeddings(clips, load_model(str(path)))
    # The same encoder, front end and per-clip normalisation, computed alike in one process.
    torch.testing.assert_close(from_bundle, from_weights)


def test_weights_file_and_timestamps(tmp_path: Path, clips: torch.Tensor) -> None:
    torch.manual_seed(1)
    state = build_encoder("resnet18").state_dict()
    path = tmp_path / "enc.safetensors"
    save_file(state, str(path), metadata={"arch": "resnet18"})
    model = load_model(str(path))
    assert model.scene_embedding_size == 512
    validate(model)
    emb, ts = get_timestamp_embeddings(clips, model)
    # 2.5 s at 50 frames/s = 125 frames -> 4 columns after the 32x downsampling.
    assert emb.shape == (3, 4, 512)
    torch.testing.assert_close(ts[0], torch.tensor([312.5, 937.5, 1562.5, 2187.5]))
    # The scene embedding is the mean of the map, i.e. of the timestamp embeddings here.
    torch.testing.assert_close(get_scene_embeddings(clips, model), emb.mean(1))
    short = get_timestamp_embeddings(torch.zeros(1, 2000) + 0.1, model)[1]  # 45 ms
    assert short.shape == (1, 1) and 0 < float(short[0, 0]) <= 1000 * 2000 / 44100


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="unknown weight source"):
        load_model("no-such-weights")
    with pytest.raises(WeightsError, match="normalisation"):
        load_model("random", arch="resnet18", normalisation="dataset")
    fe = get_preset("esc10", sample_rate=8000, n_fft=800, n_mels=32)
    model = Classifier(build_encoder("resnet18"), 2, InputNorm([0.0] * 3, [1.0] * 3))
    path = save_bundle(tmp_path / "m.pt", model, fe, ("a", "b"), "resnet18", "random")
    with pytest.raises(WeightsError, match="8000 Hz"):
        load_model(str(path))
