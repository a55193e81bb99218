"""The HEAR API: the checks of HEAR's validator (hearbenchmark/hear-validator, validate.py),
batch independence on real clips, and agreement with a bundle's own embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from soundtransfer.audio import get_preset, load_clip
from soundtransfer.datasets import load_dataset
from soundtransfer.errors import AudioError, WeightsError
from soundtransfer.inference.bundle import load_bundle, save_bundle
from soundtransfer.inference.hear import (
    CHUNK_COLUMNS,
    CONTEXT_COLUMNS,
    STRIDE,
    HearModel,
    get_scene_embeddings,
    get_timestamp_embeddings,
    load_model,
    plan_chunks,
    resample,
)
from soundtransfer.models import Classifier, InputNorm, build_encoder
from soundtransfer.models.backbones import LITES, RESNETS

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
    """A clip's embeddings alone equal its embeddings in a batch of 3, within float32 in
    another order (oneDNN and MKL pick their kernels by batch size and CPU) through the
    network's layers: 1e-4; another clip's embedding is off by order 1."""
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
    model = load_model(str(bundle))
    assert model.normalisation == "fixed" and model.scene_embedding_size == 512
    validate(model)
    assert_batch_independent(model, clips)
    # A clip of exactly the bundle's length gives the classifier's own embedding.
    audio_model, meta = load_bundle(bundle)
    wave = torch.cat([clips[0], clips[1]])[None, : meta.frontend.clip_samples]
    with torch.no_grad():
        want = audio_model.classifier.embed(audio_model.frontend(wave))
    # The HEAR wrapper's path vs the bundle's own: the tolerance of assert_batch_independent.
    torch.testing.assert_close(get_scene_embeddings(wave, model), want, rtol=1e-4, atol=1e-4)
    clip_model = load_model(str(bundle), normalisation="clip")
    assert not torch.allclose(get_scene_embeddings(wave, clip_model), want)


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
    # Times in ms from frame counts, one multiply and divide: float32's default tolerance.
    torch.testing.assert_close(ts[0], torch.tensor([312.5, 937.5, 1562.5, 2187.5]))
    # The scene embedding is the mean of the map, i.e. of the timestamp embeddings here: the
    # same values averaged in another order, float32's default tolerance.
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


# --- long sounds, input types, resampling (issue 23 defect 14, issue 24 point 9) ---


@pytest.mark.parametrize("width", [32, 100, 5663, 5664, 5665, 9000, 12345, 40000])
def test_chunks_cover_the_map_once_with_context(width: int) -> None:
    chunks = plan_chunks(width)
    n_map = -(-width // STRIDE)
    kept = [k for c in chunks for k in range(c.keep_lo, c.keep_hi)]
    assert kept == list(range(n_map))  # every map column once, in order
    for c in chunks:
        assert c.lo % STRIDE == 0 and (c.hi - c.lo) % STRIDE == width % STRIDE
        assert c.hi - c.lo <= CHUNK_COLUMNS + 2 * CONTEXT_COLUMNS + STRIDE - 1
        # Context on both sides of the kept columns, except at the image's own edges.
        assert c.lo == 0 or c.keep_lo * STRIDE - c.lo >= CONTEXT_COLUMNS
        assert c.hi == width or c.hi - c.keep_hi * STRIDE >= CONTEXT_COLUMNS
    assert (len(chunks) == 1) == (width <= CHUNK_COLUMNS + 2 * CONTEXT_COLUMNS)


def _long_real(esc10_root: Path, seconds: float, rate: int = 44100) -> torch.Tensor:
    """Real ESC-10 clips end to end, ``(1, seconds * rate)``."""
    paths = sorted((esc10_root / "audio").glob("*.ogg"))[::10]
    wave = np.concatenate([load_clip(p, rate) for p in paths[: int(seconds // 3) + 1]])
    return torch.from_numpy(wave[: int(seconds * rate)])[None]


@pytest.mark.parametrize("normalisation", ["clip", "fixed"])
def test_chunked_sound_equals_one_pass(normalisation: str, esc10_root: Path) -> None:
    """A long sound encoded in chunks gets the columns of one pass over its whole image."""
    model = load_model("random", arch="resnet18", normalisation=normalisation)
    audio = _long_real(esc10_root, 40.3)  # 2015 image columns, a width that is not 0 mod 32
    whole_t, whole_s = get_timestamp_embeddings(audio, model), get_scene_embeddings(audio, model)
    assert len(plan_chunks(model.image_width(audio.shape[1]))) == 1
    model.chunk_columns, model.context_columns = 256, 256  # ResNet-18 reaches 217 / 186 columns
    chunked_t, chunked_s = (
        get_timestamp_embeddings(audio, model),
        get_scene_embeddings(audio, model),
    )
    assert len(plan_chunks(2015, 256, 256)) == 8
    # Same frames and the same convolutions on the same inputs; only the order of float sums
    # in the convolutions and the clip statistics (float64 in parts vs at once) can differ.
    torch.testing.assert_close(chunked_t[0], whole_t[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(chunked_t[1], whole_t[1])
    torch.testing.assert_close(chunked_s, whole_s, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_chunked_lite0_equals_one_pass(esc10_root: Path) -> None:
    """Lite0 pads 'SAME' by each layer's width parity: chunks of the image's parity keep the
    grid (even-width chunks gave cosine 0.5 to the whole image's columns)."""
    model = load_model("lite0")
    audio = _long_real(esc10_root, 130.3)  # 6515 columns: 2 chunks with the defaults
    assert len(plan_chunks(model.image_width(audio.shape[1]))) == 2
    chunked, _ = get_timestamp_embeddings(audio, model)
    model.chunk_columns = 1 << 20
    whole, _ = get_timestamp_embeddings(audio, model)
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-4)  # as above


@pytest.mark.slow
@pytest.mark.parametrize("arch", [*RESNETS, *LITES])
def test_receptive_field_fits_in_the_context(arch: str) -> None:
    """A map column depends on no image column further than CONTEXT_COLUMNS from its edges
    (the gradient of one column of a random network is zero beyond its receptive field)."""
    encoder = build_encoder(arch).eval()
    image = torch.randn(1, 3, 32, 2 * CONTEXT_COLUMNS + 2048, requires_grad=True)
    fmap = encoder.forward_features(image)
    col = fmap.shape[-1] // 2
    fmap[..., col].sum().backward()
    assert image.grad is not None
    reached = torch.nonzero(image.grad.abs().sum(dim=(0, 1, 2)) > 0).flatten()
    assert col * STRIDE - int(reached.min()) <= CONTEXT_COLUMNS
    assert int(reached.max()) - (col * STRIDE + STRIDE - 1) <= CONTEXT_COLUMNS


def test_long_sound_holds_one_chunk() -> None:
    """What the front end and the encoder hold at once does not grow with the length: at most
    one chunk with its context (the image of 120 s has 6000 columns)."""
    most = 256 + 2 * 256 + STRIDE - 1  # image columns of a chunk with its context
    for seconds in (30.0, 120.0):
        model = load_model("random", arch="resnet18", normalisation="fixed")
        model.chunk_columns, model.context_columns = 256, 256
        audio = torch.rand(1, int(seconds * 44100), generator=torch.Generator().manual_seed(0))
        get_timestamp_embeddings(audio * 2 - 1, model)
        assert model.image_width(audio.shape[1]) == 50 * seconds
        assert most - STRIDE < model.stats.peak_columns <= most
        # The samples under those columns (50 a second) and one FFT frame (4410 samples).
        assert model.stats.peak_samples <= (most + 2) / 50 * 44100 + 4410


_RSS_CHILD = """
import resource, sys, torch
from soundtransfer.inference.hear import get_timestamp_embeddings, load_model
model = load_model("random", arch="resnet18")
audio = torch.rand(1, int(float(sys.argv[1]) * 44100), generator=torch.Generator().manual_seed(0))
audio = audio * 2 - 1
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
emb, _ = get_timestamp_embeddings(audio, model)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_peak_memory_does_not_grow_with_length() -> None:
    """Peak RSS above the input, in fresh processes: 150 s and 600 s of 44.1 kHz audio.

    Before chunking the 600 s sound took 369 MB more than the 150 s one (178 vs 548 MB;
    1 hour of audio took 9.4 GB with Lite0); chunked, 15 MB more (158 vs 173 MB: the last
    chunk is a little wider). The bound leaves room for allocator noise."""
    import subprocess
    import sys

    grown = []
    for seconds in ("150", "600"):
        out = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, seconds], capture_output=True, text=True, check=True
        )
        grown.append(int(out.stdout.split()[-1]))
    assert grown[1] - grown[0] < 64e6, grown


def test_int16_is_scaled_and_other_integers_refused(bundle: Path) -> None:
    model = load_model(str(bundle))  # "fixed": the level matters
    g = torch.Generator().manual_seed(0)
    pcm = (torch.rand(2, 44100, generator=g) * 2 - 1).mul(32767).round().to(torch.int16)
    emb, _ = get_timestamp_embeddings(pcm, model)
    # x / 32768 is exact in float32, so both read the same samples.
    want, _ = get_timestamp_embeddings(pcm.float() / 32768, model)
    torch.testing.assert_close(emb, want)
    torch.testing.assert_close(
        get_scene_embeddings(pcm.to(torch.int32) * 65536, model), get_scene_embeddings(pcm, model)
    )
    for dtype in (torch.uint8, torch.int64, torch.bool):
        with pytest.raises(AudioError, match=f"dtype {dtype}"):
            get_scene_embeddings(pcm.to(dtype), model)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_audio_is_an_error(bundle: Path, bad: float) -> None:
    model = load_model(str(bundle))
    audio = torch.full((2, 3 * 44100), 0.1)
    audio[1, 100_000] = bad
    for embed in (get_scene_embeddings, get_timestamp_embeddings):
        with pytest.raises(AudioError, match=r"sound 1 has a non-finite sample .* 100000"):
            embed(audio, model)
    with pytest.raises(AudioError, match="shape"):
        get_scene_embeddings(audio[0], model)


def test_resample_to_the_model_rate(bundle: Path, tmp_path: Path) -> None:
    model = load_model(str(bundle))  # 44.1 kHz
    t = np.arange(16000 * 2) / 16000
    tone = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 1000 * t)])
    out = resample(torch.from_numpy(tone.astype(np.float32)), 16000, model)
    assert out.dtype == torch.float32 and out.shape == (2, 2 * 44100)
    t2 = np.arange(2 * 44100) / 44100
    want = np.stack([np.sin(2 * np.pi * 440 * t2), 0.5 * np.sin(2 * np.pi * 1000 * t2)])
    # soxr's filter rings at the ends (zeros outside); inside, a band-limited tone is kept to
    # well within 1e-3 (VHQ: passband ripple ~0.01 dB, stop-band -175 dB).
    inner = slice(4410, -4410)
    np.testing.assert_allclose(out.numpy()[:, inner], want[:, inner], atol=1e-3)
    pcm = torch.from_numpy((tone * 32767).round().astype(np.int16))
    torch.testing.assert_close(
        resample(pcm, 16000, 44100), resample(pcm.float() / 32768, 16000, 44100)
    )
    same = torch.from_numpy(tone.astype(np.float32))
    assert torch.equal(resample(same, 44100, model), same)
    for rate in (0, -16000, 16000.5):
        with pytest.raises(AudioError, match="positive integer"):
            resample(same, rate, model)  # type: ignore[arg-type]


def test_readme_example_on_a_real_clip(bundle: Path, esc10_root: Path) -> None:
    """The README's HEAR example: a file at its own rate, resampled, both embeddings."""
    import soundfile as sf

    from soundtransfer.inference import hear

    model = hear.load_model(str(bundle))
    path = sorted((esc10_root / "audio").glob("*.ogg"))[0]
    wave, rate = sf.read(path, dtype="float32", always_2d=True)  # (samples, channels)
    audio = hear.resample(torch.from_numpy(wave.mean(axis=1))[None], rate, model)
    scene = hear.get_scene_embeddings(audio, model)
    emb, times_ms = hear.get_timestamp_embeddings(audio, model)
    assert scene.shape == (1, model.scene_embedding_size)
    assert emb.shape[:2] == times_ms.shape and emb.shape[2] == model.timestamp_embedding_size
    assert float(times_ms[0, -1]) < 1000 * wave.shape[0] / rate
