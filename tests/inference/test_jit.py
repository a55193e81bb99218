"""The traced, frozen network for inference: same outputs as eager, or the eager one with why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from soundtransfer.cli.main import main
from soundtransfer.inference import jit
from soundtransfer.inference.jit import inference_net
from soundtransfer.models import Classifier, InputNorm, build_encoder


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0"])
def test_traced_network_matches_eager_for_any_batch(arch: str) -> None:
    torch.manual_seed(0)
    net = Classifier(build_encoder(arch), 4, InputNorm([-8.0] * 3, [3.0] * 3)).eval()
    fast = inference_net(net, (3, 32, 64), batch_size=4)
    assert fast.fallback == "" and fast.traced is not None
    for b in (1, 3, 4, 6):
        x = torch.randn(b, 3, 32, 64) * 3 - 8
        with torch.no_grad():
            # Traced, frozen, NHWC and oneDNN-fused vs eager: other kernels, float32 sums in
            # another order (which depends on the CPU): the tolerance inference_net accepts.
            assert (fast(x) - net(x)).abs().max() < jit.TOLERANCE


class _BatchDependent(nn.Module):
    """Python control flow on the batch size: a trace at batch 4 would be wrong at batch 1."""

    def forward(self, x: Tensor) -> Tensor:
        y = x.mean(dim=(1, 2, 3))[:, None]
        return y * 2 if x.shape[0] == 1 else y


class _NoTensorOut(nn.Module):
    def forward(self, x: Tensor) -> None:
        return None


def test_batch_dependent_network_falls_back_to_eager() -> None:
    net = _BatchDependent()
    fast = inference_net(net, (3, 8, 8), batch_size=4)
    assert fast.traced is None and "differ from eager" in fast.fallback
    x = torch.ones(1, 3, 8, 8)
    assert torch.equal(fast(x), net(x))  # the eager network itself: the same computation


def test_untraceable_network_falls_back_and_disabled_is_eager() -> None:
    fast = inference_net(_NoTensorOut(), (3, 8, 8), batch_size=2)
    assert fast.traced is None and fast.fallback.startswith("tracing failed")
    off = inference_net(_BatchDependent(), (3, 8, 8), batch_size=2, enabled=False)
    assert off.traced is None and off.fallback == "disabled"


def test_cli_notes_a_fallback_and_no_jit_gives_the_same_output(
    bundle: Path,
    long_wav: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wav = long_wav(7.0)
    assert main(["predict", str(bundle), str(wav), "--hop", "1", "--format", "json"]) == 0
    traced = capsys.readouterr()
    assert "eagerly" not in traced.err
    assert (
        main(["predict", str(bundle), str(wav), "--hop", "1", "--format", "json", "--no-jit"]) == 0
    )
    eager = capsys.readouterr()
    assert "eagerly" not in eager.err
    # Traced vs eager logits differ by up to jit.TOLERANCE (other kernels); a softmax
    # probability moves by at most that much. (Rounding both to 4 places could split a
    # value lying on a rounding boundary.)
    assert [p["score"] for p in _top(traced.out)] == pytest.approx(
        [p["score"] for p in _top(eager.out)], abs=jit.TOLERANCE
    )
    monkeypatch.setattr(jit, "TOLERANCE", -1.0)  # every check fails: the eager network, noted
    assert main(["predict", str(bundle), str(wav), "--hop", "1", "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert "note: running the network eagerly: traced outputs differ" in err


def _top(out: str) -> list[dict[str, float]]:
    import json

    top: list[dict[str, float]] = json.loads(out.splitlines()[0])["mean_top"]
    return top
