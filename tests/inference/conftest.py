"""Small model bundles (random ResNet-18, 32 x 64 images) and long files made of real clips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from soundtransfer.audio import get_preset, load_clip
from soundtransfer.inference.bundle import save_bundle
from soundtransfer.models import Classifier, InputNorm, build_encoder

CLASSES = ("a", "b", "c")


def make_bundle(path: Path, preset: str = "esc10", **meta: Any) -> Path:
    """A random ResNet-18 over 32 x 64 images (seeded: the same weights every call); ``meta``
    goes to :func:`save_bundle` (``task``, ``thresholds``, ``background``)."""
    torch.manual_seed(0)
    fe = get_preset(preset, n_mels=32, out_frames=64)
    model = Classifier(build_encoder("resnet18"), 3, InputNorm([-10.0] * 3, [3.0] * 3))
    return save_bundle(path, model.eval(), fe, CLASSES, "resnet18", "random", **meta)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "model.pt")


@pytest.fixture(scope="session")
def esc10_clips(esc10_root: Path) -> list[Path]:
    """Eight ESC-10 clips of different classes (3.6-7.2 s each)."""
    return sorted((esc10_root / "audio").glob("*.ogg"))[::50][:8]


@pytest.fixture
def long_wav(esc10_clips: list[Path], tmp_path: Path) -> Callable[..., Path]:
    """``long_wav(seconds, rate=44100, name=...)``: real clips end to end, cut to ``seconds``,
    written as float WAV at ``rate`` (the samples read back are exactly those written)."""

    def make(seconds: float, rate: int = 44100, name: str = "long.wav") -> Path:
        clips = [load_clip(c, rate) for c in esc10_clips]
        wave = np.concatenate(clips)
        reps = int(np.ceil(seconds * rate / len(wave)))
        wave = np.tile(wave, reps)[: round(seconds * rate)]
        path = tmp_path / name
        sf.write(path, wave, rate, subtype="FLOAT")
        return path

    return make
