"""LARS step by hand (TF SimCLR's formula) and the warm-up + cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from soundtransfer.pretrain.lars import LARS, lars_param_groups, lr_at_step, scaled_lr


def test_one_step_matches_hand_computation() -> None:
    w = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # |w| = 5
    b = nn.Parameter(torch.tensor([1.0, -1.0]))  # excluded: 1-D
    w.grad = torch.tensor([[0.6, 0.8]])
    b.grad = torch.tensor([0.5, 0.25])
    opt = LARS(
        [
            {"params": [w], "weight_decay": 0.1, "lars": True},
            {"params": [b], "weight_decay": 0.0, "lars": False},
        ],
        lr=2.0,
        momentum=0.9,
        weight_decay=0.1,
        trust_coefficient=0.001,
    )
    opt.step()
    # w: g = [0.6, 0.8] + 0.1 * [3, 4] = [0.9, 1.2], |g| = 1.5, ratio = 0.001 * 5 / 1.5
    ratio = 0.001 * 5 / 1.5
    step_w = 2.0 * ratio * torch.tensor([[0.9, 1.2]])
    # float32 of the same few operations in another order: allclose's 1e-5 relative covers
    # the last bits at these values (1 to 4); atol for the values near 0.
    assert torch.allclose(w.detach(), torch.tensor([[3.0, 4.0]]) - step_w, atol=1e-7)
    # b: plain momentum SGD, no decay, no adaptation
    assert torch.allclose(b.detach(), torch.tensor([1.0 - 1.0, -1.0 - 0.5]), atol=1e-7)
    # second step: v = 0.9 v + lr * ratio' * g'
    w_before = w.detach().clone()
    w.grad = torch.tensor([[0.6, 0.8]])
    b.grad = torch.tensor([0.5, 0.25])
    opt.step()
    g2 = torch.tensor([[0.6, 0.8]]) + 0.1 * w_before
    ratio2 = 0.001 * w_before.norm() / g2.norm()
    v2 = 0.9 * step_w + 2.0 * ratio2 * g2
    assert torch.allclose(w.detach(), w_before - v2, atol=1e-7)
    assert torch.allclose(b.detach(), torch.tensor([0.0 - 0.9 - 1.0, -1.5 - 0.45 - 0.5]))


def test_zero_weight_norm_uses_ratio_one() -> None:
    w = nn.Parameter(torch.zeros(2, 2))
    w.grad = torch.ones(2, 2)
    LARS([w], lr=0.1, momentum=0.0, weight_decay=0.0).step()
    assert torch.allclose(w.detach(), torch.full((2, 2), -0.1))


def test_param_groups_exclude_biases_and_batch_norm() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    groups = lars_param_groups(model, 1e-6)
    adapted, plain = groups
    assert adapted["lars"] and adapted["weight_decay"] == 1e-6
    assert not plain["lars"] and plain["weight_decay"] == 0.0
    assert [p.shape for p in adapted["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert len(plain["params"]) == 4  # conv bias, BN weight + bias, linear bias


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="momentum"):
        LARS([nn.Parameter(torch.zeros(1))], momentum=1.5)


def test_scaled_lr() -> None:
    assert scaled_lr(0.3, 4096) == pytest.approx(4.8)
    assert scaled_lr(0.075, 4096, "sqrt") == pytest.approx(4.8)
    assert scaled_lr(0.5, 64, "none") == 0.5
    with pytest.raises(ValueError, match="lr_scaling"):
        scaled_lr(0.3, 256, "cubic")


def test_schedule_warmup_then_cosine() -> None:
    total, warmup, peak = 100, 10, 4.8
    # float64 arithmetic of a few operations: approx's 1e-6 relative; exact where none happens.
    assert lr_at_step(0, total, warmup, peak) == 0.0
    assert lr_at_step(5, total, warmup, peak) == pytest.approx(2.4)
    assert lr_at_step(10, total, warmup, peak) == pytest.approx(peak)
    assert lr_at_step(55, total, warmup, peak) == pytest.approx(peak / 2)
    assert lr_at_step(70, total, warmup, peak) == pytest.approx(
        peak * 0.5 * (1 + math.cos(math.pi * 60 / 90))
    )
    assert lr_at_step(100, total, warmup, peak) == pytest.approx(0.0, abs=1e-12)
    assert lr_at_step(0, 10, 0, 1.0) == 1.0  # no warm-up: starts at the peak
