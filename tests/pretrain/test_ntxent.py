"""NT-Xent against the paper's formula (a direct double loop), analytic values and symmetry."""

from __future__ import annotations

import math

import pytest
import torch

from soundtransfer.pretrain.ntxent import NTXentLoss, nt_xent, nt_xent_gathered


def loop_reference(z0: torch.Tensor, z1: torch.Tensor, t: float) -> float:
    """SimCLR eq. 1 literally: z_{2k}, z_{2k+1} the two views of image k; mean over 2N anchors."""
    n = z0.shape[0]
    z = [None] * (2 * n)
    for k in range(n):
        z[2 * k], z[2 * k + 1] = z0[k].double(), z1[k].double()

    def sim(u: torch.Tensor, v: torch.Tensor) -> float:
        return float(u @ v / (u.norm() * v.norm()))

    def ell(i: int, j: int) -> float:
        num = math.exp(sim(z[i], z[j]) / t)
        den = sum(math.exp(sim(z[i], z[k]) / t) for k in range(2 * n) if k != i)
        return -math.log(num / den)

    return sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(n)) / (2 * n)


@pytest.mark.parametrize(("n", "d", "t"), [(2, 3, 0.5), (5, 8, 0.1), (8, 16, 1.0)])
def test_matches_paper_double_loop(n: int, d: int, t: float) -> None:
    gen = torch.Generator().manual_seed(n * 100 + d)
    z0, z1 = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
    # float32 matrix form vs the paper's loop in float64, losses of order 1: 1e-5 relative
    # (here and below: float32 in another order, whatever the CPU's kernels).
    assert nt_xent(z0, z1, t).item() == pytest.approx(loop_reference(z0, z1, t), rel=1e-5)


def test_view_swap_symmetry() -> None:
    gen = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    assert nt_xent(z0, z1, 0.2).item() == pytest.approx(nt_xent(z1, z0, 0.2).item(), rel=1e-5)


def test_invariant_to_projection_scale() -> None:
    gen = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    scaled = nt_xent(3.0 * z0, 0.5 * z1, 0.1).item()
    assert scaled == pytest.approx(nt_xent(z0, z1, 0.1).item(), rel=1e-5)


@pytest.mark.parametrize("n", [2, 7])
def test_identical_embeddings_give_log_2n_minus_1(n: int) -> None:
    z = torch.ones(n, 4)
    assert nt_xent(z, z, 0.1).item() == pytest.approx(math.log(2 * n - 1), rel=1e-5)


@pytest.mark.parametrize(("n", "t"), [(3, 0.1), (4, 0.5)])
def test_orthogonal_pairs_analytic(n: int, t: float) -> None:
    z = torch.eye(n, dtype=torch.float64)  # pair k is e_k twice: positive 1, negatives 0
    expected = -1 / t + math.log(math.exp(1 / t) + 2 * n - 2)
    assert nt_xent(z, z.clone(), t).item() == pytest.approx(expected, rel=1e-5)


def test_tensorflow_logs_twice_this_value() -> None:
    """TF SimCLR's add_contrastive_loss: loss_a + loss_b, each a mean over N anchors."""
    gen = torch.Generator().manual_seed(3)
    h1, h2 = torch.randn(5, 6, generator=gen), torch.randn(5, 6, generator=gen)
    t, large = 0.1, 1e9
    a = torch.nn.functional.normalize(h1, dim=1)
    b = torch.nn.functional.normalize(h2, dim=1)
    mask = torch.eye(5) * large
    logits_aa, logits_bb = a @ a.T / t - mask, b @ b.T / t - mask
    logits_ab, logits_ba = a @ b.T / t, b @ a.T / t
    labels = torch.arange(5)
    ce = torch.nn.functional.cross_entropy
    loss_a = ce(torch.cat([logits_ab, logits_aa], 1), labels)
    loss_b = ce(torch.cat([logits_ba, logits_bb], 1), labels)
    assert (loss_a + loss_b).item() == pytest.approx(2 * nt_xent(h1, h2, t).item(), rel=1e-5)


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(4)
    z0 = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    z1 = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.3), (z0, z1))


def test_half_precision_input_computed_in_float32() -> None:
    z = torch.randn(4, 8).bfloat16()
    assert nt_xent(z, z.flip(0), 0.1).dtype == torch.float32


def test_gathered_with_own_batch_equals_plain() -> None:
    gen = torch.Generator().manual_seed(5)
    z0, z1 = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    # Two "ranks" of 4 images: the mean of their losses is the loss of the whole batch.
    parts = [
        nt_xent_gathered(z0[r * 4 : r * 4 + 4], z1[r * 4 : r * 4 + 4], z0, z1, r * 4, 0.2)
        for r in range(2)
    ]
    # Two partial losses vs one: float32 sums in another order.
    assert ((parts[0] + parts[1]) / 2).item() == pytest.approx(nt_xent(z0, z1, 0.2).item(), 1e-5)


def test_module_validates_arguments() -> None:
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)
    loss = NTXentLoss(0.1)
    with pytest.raises(ValueError, match="shape"):
        loss(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="two images"):
        loss(torch.zeros(1, 3), torch.zeros(1, 3))
    z = torch.randn(4, 3)
    assert loss(z, z).item() == pytest.approx(nt_xent(z, z, 0.1).item())  # the same function
