"""Distributed helpers: single process without a group; 2-process Gloo matching one process in
loss *and* gradients (lightly shipped wrong gradients: #1528)."""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from soundtransfer import distributed as D
from soundtransfer.errors import RunError
from soundtransfer.pretrain.ntxent import NTXentLoss, nt_xent

WORLD = 2
N, DIM_IN, DIM_OUT = 8, 6, 4  # global batch of 8 images, 4 per rank


def test_single_process_needs_no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with D.distributed_session("cpu") as info:
        assert (info.rank, info.world_size, info.device) == (0, 1, torch.device("cpu"))
        assert not info.distributed and info.is_main
        assert not torch.distributed.is_initialized()
        assert D.is_main() and D.get_world_size() == 1
        t = torch.randn(3, 2, requires_grad=True)
        assert D.all_gather_with_grad(t) is t
        assert D.gather_objects({"a": 1}) == [{"a": 1}]
        D.barrier()


def test_bad_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RunError, match="RANK"):
        D.init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(RunError, match="WORLD_SIZE"):
        D.init_distributed("cpu")


def _data() -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Linear(DIM_IN, DIM_OUT)
    x0, x1 = torch.randn(N, DIM_IN, generator=gen), torch.randn(N, DIM_IN, generator=gen)
    return model, x0, x1


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    with D.distributed_session("cpu") as info:
        assert info.world_size == WORLD and info.rank == rank
        model, x0, x1 = _data()
        rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        ddp = DistributedDataParallel(model)
        z = ddp(torch.cat([x0[rows], x1[rows]]))  # (2n, DIM_OUT)
        z0, z1 = z.chunk(2)
        loss = NTXentLoss(0.2)(z0, z1)
        loss.backward()  # DDP averages the parameter gradients over ranks

        # Leaf embeddings: this rank's gradient is the sum over ranks' losses.
        e0 = x0[rows, :DIM_OUT].clone().requires_grad_(True)
        e1 = x1[rows, :DIM_OUT].clone().requires_grad_(True)
        NTXentLoss(0.2)(e0, e1).backward()

        # all_gather_with_grad alone: L_r = sum(gathered * (r + 1)) -> dL/dt = sum_r (r + 1).
        t = torch.full((2, 3), float(rank), requires_grad=True)
        gathered = D.all_gather_with_grad(t, check_shapes=True)
        (gathered * (rank + 1)).sum().backward()

        mismatch = ""
        try:
            D.all_gather_with_grad(torch.zeros(rank + 1, 2), check_shapes=True)
        except RunError as exc:
            mismatch = str(exc)
        torch.save(
            {
                "loss": loss.detach(),
                "weight_grad": model.weight.grad,
                "bias_grad": model.bias.grad,
                "e0_grad": e0.grad,
                "e1_grad": e1.grad,
                "gathered": gathered.detach(),
                "t_grad": t.grad,
                "mismatch": mismatch,
                "is_main": D.is_main(),
            },
            Path(out_dir) / f"rank{rank}.pt",
        )
        # Release DDP (its reducer holds the process group) and the graphs that reference it
        # before the group is destroyed: a reducer freed later by the garbage collector, after
        # destroy_process_group, could abort the process (seen in CI as SIGABRT).
        del ddp, z, z0, z1, loss, gathered
        gc.collect()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_two_processes_match_one_in_loss_and_gradients(
    tmp_path: Path, run_as_script: Callable[..., object]
) -> None:
    run_as_script(Path(__file__), str(_free_port()), str(tmp_path))  # the __main__ block
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    model, x0, x1 = _data()
    z = model(torch.cat([x0, x1]))
    z0, z1 = z.chunk(2)
    loss = nt_xent(z0, z1, 0.2)
    loss.backward()
    e0 = x0[:, :DIM_OUT].clone().requires_grad_(True)
    e1 = x1[:, :DIM_OUT].clone().requires_grad_(True)
    nt_xent(e0, e1, 0.2).backward()

    # Other processes, other sums: each rank sums its half, gloo adds the halves, this process
    # sums the whole batch in one go (float32, terms of order 1: a few 1e-7 apart). 1e-5 is
    # far below what a wrong reduction gives (a gradient not averaged is off by 2x).
    mean_loss = sum(r["loss"] for r in ranks) / WORLD
    assert mean_loss.item() == pytest.approx(loss.item(), rel=1e-5)
    for r in ranks:  # after DDP's averaging every rank holds the full-batch gradient
        assert torch.allclose(r["weight_grad"], model.weight.grad, rtol=1e-5, atol=1e-5)
        assert torch.allclose(r["bias_grad"], model.bias.grad, rtol=1e-5, atol=1e-5)
    n = N // WORLD
    for k, r in enumerate(ranks):  # sum over ranks of per-rank means = WORLD x global mean
        assert e0.grad is not None and e1.grad is not None
        rows = slice(k * n, (k + 1) * n)
        assert torch.allclose(r["e0_grad"] / WORLD, e0.grad[rows], rtol=1e-5, atol=1e-5)
        assert torch.allclose(r["e1_grad"] / WORLD, e1.grad[rows], rtol=1e-5, atol=1e-5)
        # Bitwise: small integers, exact in float32 in any order of summation.
        expected_gathered = torch.cat([torch.full((2, 3), float(s)) for s in range(WORLD)])
        assert torch.equal(r["gathered"], expected_gathered)
        assert torch.equal(r["t_grad"], torch.full((2, 3), float(sum(range(1, WORLD + 1)))))
        assert "same shape" in r["mismatch"]
    assert [r["is_main"] for r in ranks] == [True, False]


def test_independent_process_hides_torchrun_and_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert D.torchrun_slot() == (1, 2, 1)
    with D.independent_process() as slot:
        assert slot == (1, 2, 1)
        assert D.torchrun_slot() == (0, 1, 0) and D.is_main()
        assert D.init_distributed("cpu").world_size == 1
    assert D.torchrun_slot() == (1, 2, 1)


def test_resolve_device_names_bad_settings() -> None:
    assert D.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(RunError, match="not a torch device name"):
        D.resolve_device("tpu7")


if __name__ == "__main__":  # the ranks of test_two_processes_match_one_in_loss_and_gradients
    mp.spawn(_worker, args=(int(sys.argv[1]), sys.argv[2]), nprocs=WORLD, join=True)
