"""Batch augmentation of log-mel images, a part of the fine-tuning recipe.

Everything here works on whole batches on the training device, with per-sample random
parameters drawn in one call (no Python loop over the batch) from an optional
``torch.Generator`` for reproducibility. The paper's protocol uses none of it: every switch
is off in :class:`AugmentConfig`'s defaults; the ``recipe`` training preset
(:data:`soundtransfer.train.config.PRESETS`) holds the values we use. The learning-rate
schedule is :mod:`soundtransfer.schedule`, the weight average :mod:`soundtransfer.train.ema`.

Units: images are the front end's ``log(mel_power + log_eps)``, natural log of mel *power*
(:class:`~soundtransfer.audio.frontend.LogMel3`), before :class:`~soundtransfer.models.InputNorm`.
A gain of ``g`` dB multiplies power by ``10 ** (g / 10)``, i.e. adds ``g * ln(10) / 10``
(0.2303 per dB) to every pixel; exact where ``mel_power >> log_eps`` (the 1e-6 floor is
shifted too), and it commutes with the front end's bilinear resize. Note that a gain is
removed again by any per-image standardisation: it only matters with training-fold
statistics.

Time parts (ESResNet's, issue 22): time reversal, time scaling and the silence-aware crop
work on the stored image's time axis, not on the waveform: training reads a precomputed
float16 image store, and the image's columns are frames evenly spaced in time for every
channel (each channel's frames are resized to the same width), so

- reversing the waveform is reversing the columns, exactly up to where the frame grid falls
  (the magnitude spectrum of a reversed frame is the frame's, the Hann windows are
  symmetric, the bilinear resize with ``align_corners=False`` commutes with a flip; the
  reversed signal's frame grid is offset by ``len - 1 - (frames - 1) * hop`` samples, one
  sample for the presets: ``test_time_reverse_matches_the_front_end_on_a_real_clip``);
- time scaling is a resize of the columns (linear interpolation between frames), a change of
  tempo at the same pitch, what a phase-vocoder time stretch gives. ESResNet resamples the
  waveform, which changes the pitch as well; that has no exact image counterpart (mel rows
  are not log-frequency, so a pitch change is no row shift) and recomputing the front end per
  batch would cost about a store build per epoch;
- a random crop is a run of columns; its loudness is read from the image's mel power
  (``exp`` of the log image, averaged over channels and bands: a frame's energy up to the
  filterbank's weighting), the counterpart of the waveform's standard deviation ESResNet
  compares.

Order in :class:`BatchAugment`: gain, time reversal, time scaling, crop, time shift,
SpecAugment masks, mixup. A part that is off draws nothing, so switching a part on leaves the
others' draws unchanged for the parts before it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from soundtransfer.tasks.single_label import soft_target_cross_entropy
from soundtransfer.train.config import MASK_FILLS, SHIFT_MODES, AugmentConfig

__all__ = [
    "DB_TO_LOG_POWER",
    "MASK_FILLS",
    "SHIFT_MODES",
    "AugmentConfig",
    "BatchAugment",
    "mixup",
    "random_gain",
    "sample_beta",
    "silence_aware_crop",
    "soft_target_cross_entropy",
    "spec_augment",
    "time_reverse",
    "time_scale",
    "time_shift",
]

DB_TO_LOG_POWER = math.log(10.0) / 10.0  # natural-log power units per dB


def _uniform(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``n`` uniforms in [0, 1) drawn on the generator's device, moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(n, generator=generator, device=gen_device).to(device)


def random_gain(x: Tensor, max_db: float, generator: torch.Generator | None = None) -> Tensor:
    """Add a per-clip gain uniform in ``[-max_db, max_db]`` dB to log-power images.

    Args:
        x: (B, C, F, T) natural-log power images.
    """
    if max_db <= 0:
        return x
    gain_db = (2 * _uniform(x.shape[0], generator, x.device) - 1) * max_db  # (B,)
    return x + (gain_db * DB_TO_LOG_POWER).to(x.dtype).view(-1, 1, 1, 1)


def time_shift(
    x: Tensor, max_fraction: float, mode: str = "roll", generator: torch.Generator | None = None
) -> Tensor:
    """Shift each clip along time by a random whole number of frames.

    A shift ``s > 0`` moves content later: ``out[..., t] = x[..., t - s]``; the frames that
    enter take ``mode``'s values (see :class:`AugmentConfig`).

    Args:
        x: (B, C, F, T) images.
        max_fraction: shifts are uniform integers in ``[-m, m]``, ``m = round(max_fraction * T)``.
    """
    if mode not in SHIFT_MODES:
        raise ValueError(f"time_shift mode must be one of {SHIFT_MODES}, not {mode!r}")
    b, c, f, t = x.shape
    m = round(max_fraction * t)
    if m == 0:
        return x
    shift = (_uniform(b, generator, x.device) * (2 * m + 1)).long().clamp_max(2 * m) - m  # (B,)
    src = torch.arange(t, device=x.device).view(1, t) - shift.view(b, 1)  # (B, T)
    inside = (src >= 0) & (src < t)  # (B, T)
    src = src.remainder(t) if mode == "roll" else src.clamp(0, t - 1)
    out = torch.gather(x, 3, src.view(b, 1, 1, t).expand(b, c, f, t))  # (B, C, F, T)
    if mode == "min":
        floor = x.amin(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        out = torch.where(inside.view(b, 1, 1, t), out, floor)
    return out


def time_reverse(x: Tensor, prob: float, generator: torch.Generator | None = None) -> Tensor:
    """Reverse each clip in time with probability ``prob`` (the columns of its image flipped).

    Args:
        x: (B, C, F, T) images.
    """
    if prob <= 0:
        return x
    flip = _uniform(x.shape[0], generator, x.device) < prob  # (B,)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def time_scale(x: Tensor, max_stretch: float, generator: torch.Generator | None = None) -> Tensor:
    """Stretch each clip in time by ``s = (1 + max_stretch) ** U(-1, 1)``, about its start.

    Column ``t`` of the output (frame centres at ``t + 0.5``) takes the image at
    ``(t + 0.5) / s - 0.5`` (linear interpolation between columns): ``s > 1`` slows the clip
    down and cuts what passes the end, ``s < 1`` speeds it up and fills the end with the
    image's minimum per channel (the front end's silence floor, as for a padded clip), as the
    store's own crop and pad treat a longer or a shorter clip. ``s = 1`` returns the image.

    Args:
        x: (B, C, F, T) images.
        max_stretch: 0 = off; 0.25 = ESResNet's factors in [1/1.25, 1.25].
    """
    if max_stretch <= 0:
        return x
    b, c, f, t = x.shape
    u = 2 * _uniform(b, generator, x.device) - 1  # (B,) in [-1, 1)
    scale = torch.pow(torch.tensor(1.0 + max_stretch, device=x.device), u)  # (B,)
    pos = (torch.arange(t, device=x.device).view(1, t) + 0.5) / scale.view(b, 1) - 0.5
    pos = pos.clamp_min(0.0)  # (B, T): the first half column repeats the edge
    lo = pos.floor().long()  # (B, T)
    frac = (pos - lo).to(x.dtype).view(b, 1, 1, t)
    inside = lo <= t - 1  # (B, T): past the end is silence
    lo_c, hi_c = lo.clamp_max(t - 1), (lo + 1).clamp_max(t - 1)
    left = torch.gather(x, 3, lo_c.view(b, 1, 1, t).expand(b, c, f, t))
    right = torch.gather(x, 3, hi_c.view(b, 1, 1, t).expand(b, c, f, t))
    out = torch.lerp(left, right, frac)  # frac 0 gives ``left`` exactly
    floor = x.amin(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    return torch.where(inside.view(b, 1, 1, t), out, floor)


def frame_power(x: Tensor) -> Tensor:
    """(B, C, F, T) log-power images -> (B, T) mean mel power per column, relative to each
    image's loudest pixel (so ``exp`` cannot overflow; ratios are unchanged)."""
    peak = x.amax(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return torch.exp((x - peak).float()).mean(dim=(1, 2))  # (B, T)


def silence_aware_crop(
    x: Tensor,
    fraction: float,
    min_rms: float = 0.5,
    tries: int = 10,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A random run of ``w = round(fraction * T)`` columns per clip that is not mostly silence.

    ``tries`` start positions are drawn per clip (uniform over the ``T - w + 1`` possible);
    the first whose RMS (the root of its mean :func:`frame_power`) reaches ``min_rms`` times
    the whole image's RMS is kept (ESResNet rejects a crop whose waveform standard deviation
    is below half the clip's), else the loudest of them. Padded clips (silence at the end) and
    images of clips longer than the training window (a store built with a longer
    ``clip_seconds``) are the cases it serves.

    Args:
        x: (B, C, F, T) images.
        fraction: the crop's width as a fraction of T, in (0, 1).

    Returns:
        (B, C, F, w) crops.
    """
    b, c, f, t = x.shape
    w = max(1, min(t, round(fraction * t)))
    starts = (_uniform(b * tries, generator, x.device).view(b, tries) * (t - w + 1)).long()
    starts = starts.clamp_max(t - w)  # (B, tries)
    power = frame_power(x)  # (B, T)
    cum = F.pad(power.double().cumsum(dim=1), (1, 0))  # (B, T + 1), float64 sums
    crop_ms = (cum.gather(1, starts + w) - cum.gather(1, starts)) / w  # (B, tries) mean power
    loud = crop_ms >= (min_rms**2) * power.double().mean(dim=1, keepdim=True)  # RMS ratio
    first = torch.where(loud.any(dim=1), loud.double().argmax(dim=1), crop_ms.argmax(dim=1))
    start = starts.gather(1, first.view(b, 1))  # (B, 1)
    src = start + torch.arange(w, device=x.device).view(1, w)  # (B, w)
    return torch.gather(x, 3, src.view(b, 1, 1, w).expand(b, c, f, w))


def _band_mask(
    b: int,
    length: int,
    count: int,
    max_fraction: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """(B, length) bool: union of ``count`` random intervals per row, each of width uniform
    in ``[0, round(max_fraction * length)]`` and placed uniformly inside the row."""
    max_w = round(max_fraction * length)
    if count == 0 or max_w == 0:
        return torch.zeros(b, length, dtype=torch.bool, device=device)
    u = _uniform(2 * b * count, generator, device).view(2, b, count)
    width = (u[0] * (max_w + 1)).long().clamp_max(max_w)  # (B, count)
    start = (u[1] * (length - width + 1)).long().clamp_max(length - width)  # (B, count)
    pos = torch.arange(length, device=device).view(1, 1, length)
    inside = (pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))
    return inside.any(dim=1)  # (B, length)


def spec_augment(
    x: Tensor,
    time_masks: int,
    time_width: float,
    freq_masks: int,
    freq_width: float,
    fill: str = "mean",
    generator: torch.Generator | None = None,
) -> Tensor:
    """SpecAugment time and frequency masking (Park et al. 2019), the same mask on all channels.

    Args:
        x: (B, C, F, T) images.
        time_masks, freq_masks: masks per clip.
        time_width, freq_width: maximum mask size as a fraction of T and F.
        fill: ``mean`` or ``min`` of each image's channel.
    """
    if fill not in MASK_FILLS:
        raise ValueError(f"mask fill must be one of {MASK_FILLS}, not {fill!r}")
    b, _c, f, t = x.shape
    tmask = _band_mask(b, t, time_masks, time_width, generator, x.device)  # (B, T)
    fmask = _band_mask(b, f, freq_masks, freq_width, generator, x.device)  # (B, F)
    mask = tmask.view(b, 1, 1, t) | fmask.view(b, 1, f, 1)  # (B, 1, F, T)
    dims = (2, 3)
    value = x.mean(dim=dims, keepdim=True) if fill == "mean" else x.amin(dim=dims, keepdim=True)
    return torch.where(mask, value, x)


def sample_beta(
    alpha: float, n: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``n`` draws of Beta(alpha, alpha), reproducible from a torch generator.

    torch's Beta sampler takes no generator, so the draws come from numpy seeded with one
    integer taken from ``generator`` (or torch's global RNG).
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=gen_device))
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    return torch.from_numpy(lam).to(device=device, dtype=torch.float32)


def mixup(
    x: Tensor, targets: Tensor, alpha: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Mixup (Zhang et al. 2018) with one ``lambda ~ Beta(alpha, alpha)`` per clip.

    ``x_i' = lam_i x_i + (1 - lam_i) x_{p(i)}``, ``y_i' = lam_i y_i + (1 - lam_i) y_{p(i)}``
    with ``p`` a random permutation of the batch.

    Args:
        x: (B, C, F, T) images.
        targets: (B, K) soft targets (rows summing to 1).

    Returns:
        Mixed images (B, C, F, T) and mixed targets (B, K).
    """
    b = x.shape[0]
    if alpha <= 0 or b < 2:
        return x, targets
    lam = sample_beta(alpha, b, generator, x.device)  # (B,)
    gen_device = generator.device if generator is not None else x.device
    perm = torch.randperm(b, generator=generator, device=gen_device).to(x.device)  # (B,)
    lx = lam.to(x.dtype).view(b, 1, 1, 1)
    ly = lam.to(targets.dtype).view(b, 1)
    return lx * x + (1 - lx) * x[perm], ly * targets + (1 - ly) * targets[perm]


class BatchAugment(nn.Module):
    """All of :class:`AugmentConfig`'s transforms on a batch, in training mode only.

    ``forward(x, y)`` returns the augmented images and soft targets ``(B, K)`` (one-hot
    rows of class indices, or the task's (B, K) rows as given, mixed by mixup); in ``eval()``
    mode images pass unchanged. The task's loss takes them
    (:func:`~soundtransfer.tasks.single_label.soft_target_cross_entropy` for single-label).
    """

    def __init__(self, cfg: AugmentConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """x: (B, C, F, T) log-mel images; y: (B,) class indices or (B, K) target rows ->
        (images, (B, K) targets)."""
        if y.dim() == 2:  # multi-hot or soft rows already
            targets = y.to(torch.float32)  # (B, K)
        else:
            targets = F.one_hot(y, self.num_classes).to(torch.float32)  # (B, K)
        cfg = self.cfg
        if not self.training or not cfg.active:
            return x, targets
        x = random_gain(x, cfg.gain_db, generator)
        x = time_reverse(x, cfg.reverse_prob, generator)
        x = time_scale(x, cfg.time_scale, generator)
        if cfg.crop > 0:
            x = silence_aware_crop(x, cfg.crop, cfg.crop_min_rms, cfg.crop_tries, generator)
        if cfg.time_shift > 0:
            x = time_shift(x, cfg.time_shift, cfg.time_shift_mode, generator)
        if (cfg.time_masks and cfg.time_mask_width) or (cfg.freq_masks and cfg.freq_mask_width):
            x = spec_augment(
                x,
                cfg.time_masks,
                cfg.time_mask_width,
                cfg.freq_masks,
                cfg.freq_mask_width,
                cfg.mask_fill,
                generator,
            )
        if cfg.mixup_alpha > 0 and cfg.mixup_prob > 0:
            gen_device = generator.device if generator is not None else x.device
            if float(torch.rand((), generator=generator, device=gen_device)) < cfg.mixup_prob:
                x, targets = mixup(x, targets, cfg.mixup_alpha, generator)
        return x, targets
