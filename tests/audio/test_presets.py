"""Front-end settings: every setting that would crash or store meaningless images is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from soundtransfer.audio import mel_filterbank
from soundtransfer.audio.presets import PRESETS, FrontEnd, get_preset
from soundtransfer.config import from_dict, to_dict
from soundtransfer.errors import SoundTransferError

# override (on the esc50 preset) -> the setting the one-line error must name
BAD_SETTINGS: dict[str, tuple[dict[str, object], str]] = {
    "n_mels=0": ({"n_mels": 0}, "n_mels"),
    "out_frames=0": ({"out_frames": 0}, "out_frames"),
    "n_fft=0": ({"n_fft": 0}, "n_fft"),
    "sample_rate=0": ({"sample_rate": 0}, "sample_rate"),
    "clip_seconds=1e-9": ({"clip_seconds": 1e-9}, "clip_seconds"),
    "clip_seconds=nan": ({"clip_seconds": float("nan")}, "clip_seconds"),
    "clip shorter than a window": ({"clip_seconds": 0.05}, "clip_seconds"),
    "f_min=30000": ({"f_min": 30000.0}, "f_min"),
    "f_min=-1": ({"f_min": -1.0}, "f_min"),
    "f_max=100000": ({"f_max": 100000.0}, "f_max"),
    "f_max<f_min": ({"f_min": 500.0, "f_max": 400.0}, "f_max"),
    "n_mels=4000": ({"n_mels": 4000}, "n_mels"),
    "f_max=100 (128 bands in 100 Hz)": ({"f_max": 100.0}, "f_max"),
    "no windows": ({"windows_ms": ()}, "windows_ms"),
    "window of 0 samples": ({"windows_ms": ((0.001, 10.0),)}, "windows_ms"),
    "hop of 0 samples": ({"windows_ms": ((25.0, 0.001),)}, "hop"),
    "negative hop": ({"windows_ms": ((25.0, -10.0),)}, "hop"),
    "window longer than n_fft": ({"n_fft": 512}, "n_fft"),
    "log_eps=0": ({"log_eps": 0.0}, "log_eps"),
    "crop": ({"crop": "middle"}, "crop"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_front_end_settings_are_one_line_errors(case: str) -> None:
    overrides, name = BAD_SETTINGS[case]
    for build in (
        lambda: get_preset("esc50", **overrides),
        lambda: dataclasses.replace(PRESETS["esc50"], **overrides),  # type: ignore[arg-type]
        lambda: from_dict(FrontEnd, {**to_dict(PRESETS["esc50"]), **overrides}),  # checkpoints
    ):
        with pytest.raises(SoundTransferError, match=name) as exc:
            build()
        assert "\n" not in str(exc.value)


def test_bad_settings_from_the_command_line_form() -> None:
    with pytest.raises(SoundTransferError, match="n_mels"):
        get_preset("us8k", **{"n_mels": "0"})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_every_mel_band_is_used(name: str) -> None:
    fe = get_preset(name)
    fb = mel_filterbank(fe.sample_rate, fe.n_fft, fe.n_mels, fe.f_min, fe.f_max)
    assert (fb.max(axis=1) > 0).all()


def test_largest_accepted_band_count_has_no_empty_band() -> None:
    """The check agrees with the filterbank itself: the accepted maximum fills every band,
    one more band leaves one empty (found by search, not hard-coded)."""
    base = get_preset("esc50", f_max=2000.0)
    lo, hi = 1, 4000
    while hi - lo > 1:  # the largest n_mels the check accepts
        mid = (lo + hi) // 2
        try:
            dataclasses.replace(base, n_mels=mid)
            lo = mid
        except SoundTransferError:
            hi = mid
    fb_ok = mel_filterbank(base.sample_rate, base.n_fft, lo, base.f_min, base.f_max)
    fb_bad = mel_filterbank(base.sample_rate, base.n_fft, hi, base.f_min, base.f_max)
    assert (fb_ok.max(axis=1) > 0).all() and not (fb_bad.max(axis=1) > 0).all()
    assert np.isfinite(fb_ok).all()


@pytest.mark.parametrize(("name", "frames"), [("esc10", 501), ("us8k", 401), ("gtzan", 3007)])
def test_native_out_frames_is_the_finest_channels_frame_count(name: str, frames: int) -> None:
    fe = get_preset(name, out_frames="native")
    assert fe.out_frames == fe.native_frames == frames
    assert dataclasses.replace(fe, out_frames=PRESETS[name].out_frames) == PRESETS[name]


def test_native_out_frames_follows_the_other_overrides_in_any_order() -> None:
    for overrides in (
        {"out_frames": "native", "clip_seconds": 2.0},
        {"clip_seconds": "2", "out_frames": "NATIVE"},
    ):
        assert get_preset("esc10", **overrides).out_frames == 201  # 88200 // 441 + 1


def test_native_image_is_the_finest_channels_log_mel_unresized() -> None:
    import torch

    from soundtransfer.audio import LogMel3

    fe = get_preset("esc10", out_frames="native")
    model = LogMel3(fe)
    wave = torch.randn(1, fe.clip_samples, generator=torch.Generator().manual_seed(0))
    image = model(wave)  # (1, 3, 128, 501)
    assert image.shape == (1, 3, 128, 501)
    raw = model.log_mel_frames(torch.nn.functional.pad(wave, (fe.n_fft // 2, fe.n_fft // 2)), 0)
    torch.testing.assert_close(image[:, 0], raw, rtol=0, atol=0)  # the same computation
    assert image[:, 2].shape[-1] == 501  # the 50 ms-hop channel (101 frames) interpolated up
