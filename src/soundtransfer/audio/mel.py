"""The Slaney mel scale (librosa's default, ``htk=False``): pure functions of frequency.

Kept apart from :mod:`soundtransfer.audio.frontend` so the front-end settings
(:mod:`soundtransfer.audio.presets`) can check their mel bands without importing the module.
"""

from __future__ import annotations

import math

import numpy as np


def hz_to_mel(freq_hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    freq_hz = np.asarray(freq_hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freq_hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    log_region = freq_hz >= min_log_hz
    mels = np.where(
        log_region,
        min_log_mel + np.log(np.maximum(freq_hz, min_log_hz) / min_log_hz) / logstep,
        mels,
    )
    out: np.ndarray = mels
    return out


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    hz: np.ndarray = np.where(
        mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs
    )
    return hz
