"""The librosa reference mel spectrogram of one LogMel3 channel, shared by the feature
benchmark (``benchmarks/features.py``) and the frontend tests (``tests/audio/test_frontend.py``,
which load this file by path)."""

from __future__ import annotations

from typing import Any

import numpy as np


def librosa_mel(y: np.ndarray, sr: int, fe: Any, win_ms: float, hop_ms: float) -> np.ndarray:
    """Power mel spectrogram of ``y`` by librosa with the frontend config ``fe``'s settings for
    the channel of window ``win_ms`` and hop ``hop_ms`` (centred, zero padded, power 2)."""
    import librosa

    return np.asarray(
        librosa.feature.melspectrogram(
            y=y,
            sr=sr,
            n_fft=fe.n_fft,
            hop_length=fe.hop_samples(hop_ms),
            win_length=fe.win_samples(win_ms),
            n_mels=fe.n_mels,
            center=True,
            pad_mode="constant",
            power=2.0,
        )
    )
