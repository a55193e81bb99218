"""Recipe pieces: log-mel augmentation, soft-target loss, EMA."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from soundtransfer.audio import LogMel3, get_preset, load_clip
from soundtransfer.config import ConfigError
from soundtransfer.train.augment import (
    AugmentConfig,
    BatchAugment,
    mixup,
    random_gain,
    silence_aware_crop,
    soft_target_cross_entropy,
    spec_augment,
    time_reverse,
    time_scale,
    time_shift,
)
from soundtransfer.train.ema import ModelEma

# Every transform on, mixup included (the recipe preset keeps mixup off).
ALL_ON = AugmentConfig(
    gain_db=6.0, time_shift=0.5, time_masks=2, freq_masks=2, mixup_alpha=0.4, mixup_prob=1.0
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b: int = 6, f: int = 16, t: int = 40) -> torch.Tensor:
    return torch.randn(b, 3, f, t, generator=_gen(123)) - 5.0


def test_gain_matches_front_end_on_real_clip(esc10_root: Path) -> None:
    fe = get_preset("esc10")
    wave = load_clip(esc10_root / "audio" / "1-17367-A.ogg", fe.sample_rate, fe.clip_samples)
    model = LogMel3(fe).eval()
    audio = torch.from_numpy(wave).unsqueeze(0)  # (1, T)
    with torch.no_grad():
        x = model(audio)
    out = random_gain(x, 6.0, _gen(1))
    offset = float((out - x).flatten()[0])
    # One constant: (x + offset) - x in float32 at |x| <= 14 rounds by ~1e-6.
    assert torch.allclose(out - x, torch.full_like(x, offset), atol=1e-5)
    # The gain drawn (uniform in [-6, 6] dB), applied to the audio's amplitude instead: the
    # front end's image moves by the same offset wherever power >> log_eps.
    gain_db = (2 * float(torch.rand(1, generator=_gen(1))) - 1) * 6.0
    assert abs(gain_db) > 1.0
    with torch.no_grad():
        xg = model(audio * 10 ** (gain_db / 20))
    strong = x > math.log(fe.log_eps) + 8
    assert strong.float().mean() > 0.5  # rain: loud throughout
    # Two front-end computations on other inputs: float32 log-mel errors (< 5e-4 each, see
    # tests/audio/test_frontend.py) averaged over the loud bins: 1e-3.
    assert (xg - x)[strong].mean().item() == pytest.approx(offset, abs=1e-3)
    assert offset == pytest.approx(gain_db * math.log(10) / 10, rel=1e-5)  # float32 of the dB


def test_gain_per_clip_and_reproducible() -> None:
    x = _images()
    a, b = random_gain(x, 3.0, _gen(1)), random_gain(x, 3.0, _gen(1))
    assert torch.equal(a, b)  # bitwise: the same seeded draws and ops, in this process
    offsets = (a - x)[:, 0, 0, 0]
    assert len(set(offsets.tolist())) == x.shape[0]
    assert torch.equal(random_gain(x, 0.0, _gen(1)), x)


@pytest.mark.parametrize("mode", ["roll", "edge", "min"])
def test_time_shift_against_loop(mode: str) -> None:
    x = _images()
    out = time_shift(x, 0.25, mode, _gen(3))
    t = x.shape[-1]
    shifts = []
    # Bitwise throughout: shifted columns and fills are copies of the input, no arithmetic.
    for i in range(x.shape[0]):  # recover each clip's shift by search, then check the fill
        found = None
        for s in range(-10, 11):
            ref = torch.roll(x[i], s, dims=-1)
            lo, hi = max(s, 0), t + min(s, 0)
            if torch.equal(out[i, ..., lo:hi], ref[..., lo:hi]):
                found = s
                break
        assert found is not None
        s = found
        shifts.append(s)
        lo, hi = max(s, 0), t + min(s, 0)
        entering = torch.cat([out[i, ..., :lo], out[i, ..., hi:]], dim=-1)
        if mode == "roll":
            assert torch.equal(out[i], torch.roll(x[i], s, dims=-1))
        elif mode == "edge" and s:
            edge = x[i, ..., :1] if s > 0 else x[i, ..., -1:]
            assert torch.equal(entering, edge.expand_as(entering))
        elif mode == "min" and s:
            floor = x[i].amin(dim=(1, 2), keepdim=True)
            assert torch.equal(entering, floor.expand_as(entering))
    assert len(set(shifts)) > 1
    assert torch.equal(out, time_shift(x, 0.25, mode, _gen(3)))


def test_spec_augment_masks_shared_across_channels() -> None:
    x = _images(b=32, f=20, t=50)
    out = spec_augment(x, 2, 0.2, 2, 0.2, "mean", _gen(5))
    changed = out != x  # (B, 3, F, T)
    assert torch.equal(changed[:, 0], changed[:, 1]) and torch.equal(changed[:, 0], changed[:, 2])
    mask = changed[:, 0]  # (B, F, T)
    # Masked pixels hold the image's channel mean; each mask is whole rows and columns.
    fill = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    assert torch.equal(out[changed], fill[changed])
    for i in range(x.shape[0]):
        cols = mask[i].all(dim=0)  # time frames fully masked
        rows = mask[i].all(dim=1)  # mel bands fully masked
        assert torch.equal(mask[i], cols.view(1, -1) | rows.view(-1, 1))
        assert int(cols.sum()) <= 2 * 10 and int(rows.sum()) <= 2 * 4
    assert mask.any(dim=(1, 2)).float().mean() > 0.5
    assert torch.equal(out, spec_augment(x, 2, 0.2, 2, 0.2, "mean", _gen(5)))
    assert torch.equal(spec_augment(x, 0, 0.2, 0, 0.2), x)


def test_mixup_mixes_images_and_targets_alike() -> None:
    x = _images(b=8)
    y = torch.eye(8)  # every clip its own class: the targets reveal lambda and the partner
    xm, ym = mixup(x, y, 0.4, _gen(7))
    # float32: lam * a + (1 - lam) * b rounds at the values' scale (|x| <= 10): allclose's
    # 1e-8 + 1e-5 relative, or 1e-5 absolute for the images.
    assert torch.allclose(ym.sum(1), torch.ones(8))
    lams = []
    for i in range(8):
        lam = float(ym[i, i])
        lams.append(lam)
        if lam == 1.0:  # paired with itself
            assert torch.allclose(xm[i], x[i])
            continue
        (j,) = [k for k in range(8) if k != i and ym[i, k] > 0]
        assert float(ym[i, j]) == pytest.approx(1 - lam)
        assert torch.allclose(xm[i], lam * x[i] + (1 - lam) * x[j], atol=1e-5)
    assert len(set(lams)) > 1  # one lambda per clip
    xm2, ym2 = mixup(x, y, 0.4, _gen(7))
    assert torch.equal(xm, xm2) and torch.equal(ym, ym2)  # bitwise: the same seeded call again
    assert mixup(x, y, 0.0, _gen(7))[0] is x


def test_batch_augment_train_vs_eval_and_seeded() -> None:
    x, y = _images(b=8), torch.arange(8) % 3
    aug = BatchAugment(ALL_ON, num_classes=3)
    xa, ta = aug(x, y, _gen(11))
    xb, tb = aug(x, y, _gen(11))
    assert torch.equal(xa, xb) and torch.equal(ta, tb)  # bitwise: the same seeded call again
    assert not torch.equal(xa, x) and ta.shape == (8, 3)
    assert torch.allclose(ta.sum(1), torch.ones(8))
    aug.eval()
    xe, te = aug(x, y)
    assert xe is x and torch.equal(te, F.one_hot(y, 3).float())
    assert not AugmentConfig().active and ALL_ON.active
    with pytest.raises(ConfigError, match="time_shift_mode"):
        AugmentConfig(time_shift_mode="wrap")


def test_soft_target_cross_entropy_matches_torch() -> None:
    logits = torch.randn(10, 5, generator=_gen(2))
    y = torch.randint(0, 5, (10,), generator=_gen(3))
    onehot = F.one_hot(y, 5).float()
    for eps in (0.0, 0.1):
        ref = F.cross_entropy(logits, y, label_smoothing=eps)
        # Another formula for the same loss (float32, order 1): approx's 1e-6 relative.
        assert soft_target_cross_entropy(logits, onehot, eps).item() == pytest.approx(ref.item())
    soft = torch.softmax(torch.randn(10, 5, generator=_gen(4)), 1)
    by_hand = -(soft * torch.log_softmax(logits, 1)).sum(1).mean()
    assert soft_target_cross_entropy(logits, soft).item() == pytest.approx(by_hand.item())


def test_ema_averages_weights_and_batchnorm_buffers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 8, 8))
    ema = ModelEma(model, decay=0.9, warmup=False)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    loss = model(torch.randn(4, 3, 8, 8)).square().mean()
    loss.backward()
    opt.step()
    ema.update(model)
    live = model.state_dict()
    for k, v in ema.module.state_dict().items():
        if v.dtype.is_floating_point:  # the same average in another order: float32 rounding
            assert torch.allclose(v, 0.9 * before[k] + 0.1 * live[k]), k
        else:
            assert torch.equal(v, live[k]), k  # num_batches_tracked is copied
    assert int(ema.module[1].num_batches_tracked) == 2  # two training forwards
    assert not ema.module.training and not ema.train().training
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert ModelEma(model, decay=0.999).current_decay() == pytest.approx(0.1)
    out = ema(torch.randn(1, 3, 8, 8))
    assert out.shape == (1, 2)
    # The state (with its update count) round-trips through a state dict.
    again = ModelEma(model, decay=0.9, warmup=False)
    again.load_state_dict(ema.state_dict())
    assert int(again.num_updates) == 1


def test_batch_augment_keeps_dtype() -> None:
    # Parameters drawn from the generator land on the images' device and dtype.
    x = _images().to(torch.float64)
    out = BatchAugment(ALL_ON, 3)(x, torch.zeros(6, dtype=torch.long), _gen(0))[0]
    assert out.dtype == torch.float64 and np.isfinite(out.numpy()).all()


def _front_end_image(path: Path, wave: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """(1, 3, 128, 250) image of an ESC-10 clip (or of ``wave``) and the clip's samples."""
    fe = get_preset("esc10")
    if wave is None:
        wave = load_clip(path, fe.sample_rate, fe.clip_samples)
    with torch.no_grad():
        return LogMel3(fe).eval()(torch.from_numpy(np.ascontiguousarray(wave)).unsqueeze(0)), wave


def test_time_reverse_matches_the_front_end_on_a_real_clip(esc10_root: Path) -> None:
    x, wave = _front_end_image(esc10_root / "audio" / "1-17367-A.ogg")
    reversed_audio, _ = _front_end_image(Path(), wave[::-1])
    flipped = time_reverse(x, 1.0, _gen(0))
    assert torch.equal(flipped, x.flip(-1))  # prob 1: every clip, a copy of the columns
    diff = (reversed_audio - flipped).abs()
    # The reversed waveform's frame grid sits one sample off the flipped one (220500 samples,
    # hops of 441 and 2205): measured 0.025 nats at most, 7e-4 on average; a wrong direction
    # or a frame off differs by ~0.6 on average (the next line checks the clip is not
    # symmetric enough to hide that).
    assert float(diff.max()) < 0.1 and float(diff.mean()) < 0.01
    assert float((x - x.flip(-1)).abs().mean()) > 0.3


def test_time_reverse_flips_some_clips_and_copies_the_rest() -> None:
    x = _images(b=32)
    out = time_reverse(x, 0.5, _gen(4))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(32)]
    kept = [torch.equal(out[i], x[i]) for i in range(32)]
    assert all(a != b for a, b in zip(flipped, kept, strict=True))  # bitwise one or the other
    assert 4 < sum(flipped) < 28
    assert time_reverse(x, 0.0, _gen(4)) is x


def test_time_scale_moves_and_stretches_by_the_drawn_factor() -> None:
    t = 200
    x = torch.full((16, 3, 4, t), -10.0)
    x[..., 60] = 0.0  # one loud column (a click) at frame 60 of every clip
    x[..., 100:140] = -2.0  # and a 40-frame sound
    out = time_scale(x, 0.25, _gen(8))
    u = 2 * torch.rand(16, generator=_gen(8)) - 1
    factors = 1.25**u  # the draws: the same generator, the same first call
    assert out.shape == x.shape and float(factors.max()) > 1.1 and float(factors.min()) < 0.9
    for i in range(16):
        s = float(factors[i])
        peak = float(out[i, 0, 0, :78].argmax())  # the sound starts at 80 or later
        assert abs(peak - ((60 + 0.5) * s - 0.5)) <= 1.0  # frame centres scaled about the start
        # The sound lasts 40 * s frames (interpolated edges: one column either way).
        assert abs(int((out[i, 0, 0] > -6.0).sum()) - min(40 * s, t - 100 * s) - 1) <= 1.5
    # Sped-up clips end in silence (the image's minimum), slowed-down ones are cut.
    fast = int(factors.argmin())
    assert torch.equal(out[fast, ..., -5:], torch.full_like(out[fast, ..., -5:], -10.0))
    same = time_scale(x, 1e-9, _gen(8))  # factors of 1 within float32: the image itself
    torch.testing.assert_close(same, x, rtol=0, atol=1e-4)  # positions within 1e-7 frames
    assert time_scale(x, 0.0) is x


def _padded_image(esc10_root: Path) -> torch.Tensor:
    """A real clip (rain, loud throughout) cut to 1.5 s and zero-padded to 5 s (the store's
    padding of a short clip)."""
    fe = get_preset("esc10")
    wave = load_clip(esc10_root / "audio" / "1-17367-A.ogg", fe.sample_rate, fe.clip_samples)
    wave[int(1.5 * fe.sample_rate) :] = 0.0
    return _front_end_image(Path(), wave)[0]


def test_silence_aware_crop_avoids_the_padding(esc10_root: Path) -> None:
    x = _padded_image(esc10_root).expand(64, -1, -1, -1).contiguous()  # (64, 3, 128, 250)
    crops = silence_aware_crop(x, 0.4, 0.5, 10, _gen(2))
    assert crops.shape == (64, 3, 128, 100)
    full_ms = float(torch.exp(x[0] - x[0].max()).mean())
    for i in range(64):  # each crop is a run of the image's columns, copied
        starts = [s for s in range(151) if torch.equal(crops[i], x[i, ..., s : s + 100])]
        assert starts
        ms = float(torch.exp(crops[i] - x[0].max()).mean())
        assert ms >= 0.25 * full_ms * (1 - 1e-6)  # RMS >= half the clip's (float32 sums)
    # The same draws without the check: a uniform crop is often mostly padding.
    plain = silence_aware_crop(x, 0.4, 0.0, 1, _gen(2))
    quiet = [float(torch.exp(c - x[0].max()).mean()) < 0.25 * full_ms for c in plain]
    assert sum(quiet) > 10
    # Silence everywhere: no candidate passes, the loudest is kept (bounded tries).
    silent = torch.full((2, 3, 8, 50), -13.8)
    assert silence_aware_crop(silent, 0.5, 0.5, 3, _gen(0)).shape == (2, 3, 8, 25)
    assert torch.equal(crops, silence_aware_crop(x, 0.4, 0.5, 10, _gen(2)))  # seeded: bitwise


def test_time_parts_off_change_nothing_else() -> None:
    """The new parts at 0 draw nothing: the recipe's augmentation stream is as before, and each
    part switched on changes only its own step (later steps draw after it)."""
    x, y = _images(b=8), torch.arange(8) % 3
    plain = BatchAugment(ALL_ON, 3)(x, y, _gen(5))
    by_hand = random_gain(x, 6.0, g := _gen(5))
    by_hand = spec_augment(time_shift(by_hand, 0.5, "roll", g), 2, 0.1, 2, 0.1, "mean", g)
    assert float(torch.rand((), generator=g)) < 1.0  # the draw of mixup_prob (1: always)
    assert torch.equal(plain[0], mixup(by_hand, F.one_hot(y, 3).float(), 0.4, g)[0])
    on = AugmentConfig(reverse_prob=1.0)
    flipped = BatchAugment(on, 3)(x, y, _gen(5))[0]
    assert torch.equal(flipped, x.flip(-1))  # only the reversal: nothing else drawn or applied
    with pytest.raises(ConfigError, match="aug_crop"):
        AugmentConfig(crop=1.0)
    with pytest.raises(ConfigError, match="aug_time_scale"):
        AugmentConfig(time_scale=-0.1)
