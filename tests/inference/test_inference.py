"""Bundles, windowed prediction on files of any length (ONNX export: test_onnx.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundtransfer.audio import load_clip
from soundtransfer.errors import AudioError, WeightsError
from soundtransfer.inference.bundle import load_bundle
from soundtransfer.inference.predict import predict, windows

CLASSES = ("a", "b", "c")  # the classes of the conftest bundle


def test_round_trip(bundle: Path) -> None:
    model, meta = load_bundle(bundle)
    assert meta.classes == CLASSES and meta.frontend.n_mels == 32
    raw = torch.load(bundle, weights_only=True)  # plain tensors and types only
    assert "mel_fb" not in " ".join(raw["state_dict"])  # rebuilt from settings, not stored
    wave = torch.randn(2, meta.frontend.clip_samples)
    assert model(wave).shape == (2, 3)


def test_bad_bundle(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    torch.save({"hello": 1}, path)
    with pytest.raises(WeightsError, match="not a soundtransfer model bundle"):
        load_bundle(path)


def test_windows() -> None:
    w = windows(np.arange(10, dtype=np.float32), 4, 2)
    assert w.shape == (4, 4) and w[-1].tolist() == [6, 7, 8, 9]
    assert windows(np.ones(3, np.float32), 4, 2).tolist() == [[1, 1, 1, 0]]
    w = windows(np.arange(11, dtype=np.float32), 4, 2)
    assert w[-1].tolist() == [8, 9, 10, 0]  # the tail is covered, zero-padded


def test_predict_any_length_and_format(bundle: Path, tmp_path: Path, esc10_root: Path) -> None:
    clip = esc10_root / "audio" / "1-17367-A.ogg"
    wave = load_clip(clip, 44100, None)
    long = tmp_path / "long_stereo_48k.wav"
    import soxr

    stereo = np.stack([wave, wave], 1)
    sf.write(long, soxr.resample(np.tile(stereo, (3, 1)), 44100, 48000), 48000)
    preds = predict(bundle, [clip, long], top_k=2)
    assert preds[0].windows == 2 and preds[1].windows > 4
    for p in preds:
        assert len(p.top) == 2 and p.top[0][1] >= p.top[1][1]
        assert {c for c, _ in p.top} <= set(CLASSES)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav"):
        predict(bundle, [empty])


def test_bundle_keeps_task_thresholds_and_background(tmp_path: Path) -> None:
    from soundtransfer.audio import get_preset
    from soundtransfer.inference.bundle import save_bundle
    from soundtransfer.models import Classifier, InputNorm, build_encoder

    fe = get_preset("esc10", n_mels=32, out_frames=64)
    model = Classifier(build_encoder("resnet18"), 3, InputNorm([0.0] * 3, [1.0] * 3))
    path = save_bundle(
        tmp_path / "m.pt", model, fe, ("a", "b", "noise"), "resnet18", "random",
        task="multi_label", thresholds={"a": 0.4, "b": 0.7}, background=["noise"],
    )  # fmt: skip
    _net, meta = load_bundle(path)
    assert meta.task == "multi_label"
    assert meta.thresholds == {"a": 0.4, "b": 0.7}
    assert meta.background == ("noise",)
    with pytest.raises(WeightsError, match="name no class"):
        save_bundle(
            tmp_path / "x.pt", model, fe, ("a", "b", "noise"), "resnet18", "random",
            thresholds={"zebra": 0.5},
        )  # fmt: skip
