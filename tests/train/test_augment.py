"""Recipe pieces: log-mel augmentation, soft-target loss, warm-up + cosine schedule, EMA."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from soundtransfer.audio import LogMel3, get_preset, load_clip
from soundtransfer.config import ConfigError
from soundtransfer.train.augment import (
    RECIPE,
    AugmentConfig,
    BatchAugment,
    ModelEma,
    augment_from,
    mixup,
    random_gain,
    soft_target_cross_entropy,
    spec_augment,
    time_shift,
    warmup_cosine,
    warmup_cosine_scheduler,
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
    aug = BatchAugment(RECIPE, num_classes=3)
    xa, ta = aug(x, y, _gen(11))
    xb, tb = aug(x, y, _gen(11))
    assert torch.equal(xa, xb) and torch.equal(ta, tb)  # bitwise: the same seeded call again
    assert not torch.equal(xa, x) and ta.shape == (8, 3)
    assert torch.allclose(ta.sum(1), torch.ones(8))
    aug.eval()
    xe, te = aug(x, y)
    assert xe is x and torch.equal(te, F.one_hot(y, 3).float())
    assert not AugmentConfig().active and RECIPE.active
    with pytest.raises(ConfigError, match="time_shift_mode"):
        AugmentConfig(time_shift_mode="wrap")


def test_augment_from_flat_settings() -> None:
    @dataclass(frozen=True)
    class Flat:
        lr: float = 1e-3
        aug_mixup_alpha: float = 0.4
        aug_time_masks: int = 2

    cfg = augment_from(Flat())
    assert cfg == AugmentConfig(mixup_alpha=0.4, time_masks=2)
    with pytest.raises(ConfigError, match="mixup_alpha"):
        augment_from(Flat(aug_mixup_alpha=-1.0))


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


def test_warmup_cosine_values() -> None:
    f = [warmup_cosine(s, 10, 2, 0.1) for s in range(12)]
    # float64 arithmetic of a few operations: approx's 1e-6 relative (exact where no
    # arithmetic happens: the floor after the schedule's end).
    assert f[0] == pytest.approx(0.5) and f[1] == pytest.approx(1.0)
    assert f[2] == pytest.approx(1.0) and f[10] == f[11] == 0.1
    # Step 6 is halfway through the 8 cosine steps: the mean of 1 and the final ratio.
    assert f[6] == pytest.approx(0.55)
    assert f[9] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 7 / 8)))
    assert warmup_cosine(3, 6, 0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="bad schedule"):
        warmup_cosine(0, 5, 6)
    assert all(a >= b for a, b in itertools.pairwise(f[1:]))  # non-increasing
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = warmup_cosine_scheduler(opt, 10, 2, 0.1)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2.0 * v for v in f[:10]])


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
    out = BatchAugment(RECIPE, 3)(x, torch.zeros(6, dtype=torch.long), _gen(0))[0]
    assert out.dtype == torch.float64 and np.isfinite(out.numpy()).all()
