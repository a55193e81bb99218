"""The one warm-up + cosine formula, shared by fine-tuning and SimCLR pre-training."""

from __future__ import annotations

import itertools
import math

import pytest

from soundtransfer.pretrain.lars import lr_at_step
from soundtransfer.schedule import warmup_cosine


def test_warmup_cosine_values() -> None:
    f = [warmup_cosine(s, 10, 2, 0.1) for s in range(12)]
    assert f[0] == pytest.approx(0.5) and f[1] == pytest.approx(1.0)
    assert f[2] == pytest.approx(1.0) and f[10] == f[11] == 0.1
    # Step 6 is halfway through the 8 cosine steps: the mean of 1 and the final ratio.
    assert f[6] == pytest.approx(0.55)
    assert f[9] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 7 / 8)))
    assert warmup_cosine(3, 6, 0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="bad schedule"):
        warmup_cosine(0, 5, 6)
    assert all(a >= b for a, b in itertools.pairwise(f[1:]))  # non-increasing


def test_pretraining_uses_the_same_formula() -> None:
    # lr_at_step is warmup_cosine scaled by the peak, to zero: the two loops cannot differ.
    for total, warmup in ((100, 10), (7, 0), (5, 5), (12, 3)):
        for step in range(total + 2):
            assert lr_at_step(step, total, warmup, 4.8) == 4.8 * warmup_cosine(step, total, warmup)
