"""The classifier network prepared for inference: NHWC, traced and frozen with TorchScript.

On 2 CPU cores EfficientNet-Lite0 over 3 x 128 x 250 images in batches of 8 ran about 2x
faster so (83 windows/s eager, 162 traced, frozen and channels_last, ~1.2x more with oneDNN
Graph fusion; ``benchmarks/predict.py`` prints the figure of each run). Most of the gain is
the Python the eager model runs per layer (EfficientNet-Lite's "same" padding is computed
from the input's shape at every call), which tracing records once for the bundle's fixed
image size; freezing inlines the weights; NHWC suits oneDNN's depthwise convolutions.

The trace is specific to the image's height and width (a bundle's are fixed), not to the batch
size. It is checked against the eager network on two batch sizes before use; if tracing fails
or the outputs differ, the eager network is used and the reason is kept in
:attr:`InferenceNet.fallback` (nothing is silently different: the numbers are the eager ones).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: Largest |traced - eager| logit difference accepted (float32 reordering in NHWC kernels).
TOLERANCE = 1e-3
#: Calls at the batch size before use: TorchScript's profiling executor optimises the graph
#: (and oneDNN fuses it) on the first calls, which would otherwise land in the first batches.
WARMUP_CALLS = 3


@dataclass
class InferenceNet:
    """A network for inference on image batches ``(B, C, H, W)`` of one height and width.

    Attributes:
        eager: the network as loaded (eval mode).
        traced: the traced and frozen NHWC copy, or None where it is not used.
        fallback: why the eager network is used ("" when the traced one is).
    """

    eager: nn.Module
    traced: torch.jit.ScriptModule | None = None
    fallback: str = ""

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        if self.traced is None:
            out: Tensor = self.eager(x)
            return out
        result: Tensor = self.traced(x.contiguous(memory_format=torch.channels_last))
        return result


def _max_diff(a: Tensor, b: Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


@torch.no_grad()
def inference_net(
    net: nn.Module, image_shape: tuple[int, ...], batch_size: int, enabled: bool = True
) -> InferenceNet:
    """``net`` (eval mode) for inference on ``image_shape`` images, traced when ``enabled``.

    The copy is traced on a batch of ``batch_size`` random images and compared with the eager
    network on that batch and on a batch of one (the last batch of a file may be smaller).
    """
    net = net.eval()
    if not enabled:
        return InferenceNet(net, fallback="disabled")
    # oneDNN Graph fusion of the traced graph (convolutions with their activations): the
    # network ran ~1.2x faster so on 2 CPU cores (226 vs 183-195 windows/s, Lite0, batch 8).
    # A process-wide TorchScript setting; it changes nothing for eager models.
    torch.jit.enable_onednn_fusion(True)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(max(2, batch_size), *image_shape, generator=gen)
    try:
        nhwc = copy.deepcopy(net).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about shape-derived constants
            traced = torch.jit.freeze(
                torch.jit.trace(
                    nhwc, example.contiguous(memory_format=torch.channels_last), check_trace=False
                )
            )
        candidate = InferenceNet(net, traced)
        for _ in range(WARMUP_CALLS):  # the profiling executor optimises after a few calls
            candidate(example)
    except Exception as exc:  # any tracing failure means: run eagerly
        return InferenceNet(net, fallback=f"tracing failed ({type(exc).__name__}: {exc})")
    for x in (example, example[:1]):
        diff = _max_diff(candidate(x), net(x))
        if not diff <= TOLERANCE:
            return InferenceNet(net, fallback=f"traced outputs differ from eager by {diff:.3g}")
    return candidate
