"""Shared by the benchmarks: the real clips, a fresh process per measured path, peak memory.

Each measured path runs in its own spawned process so that its peak resident memory
(``ru_maxrss``) is its own, not the sum of everything measured before it in the same run.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ESC10 = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "esc10").resolve()


def require_esc10() -> Path:
    """The ESC-10 copy in ../shared/data, or exit with a message saying where it was looked for."""
    if not (ESC10 / "meta" / "esc50.csv").exists():
        raise SystemExit(f"real audio not found at {ESC10} (see ../shared/data/README)")
    return ESC10


def esc10_table(n: int | None = None) -> Any:
    """ESC-10 from ../shared/data, or ``n`` clips of it spread evenly over the 400."""
    from soundtransfer.datasets import load_dataset

    table = load_dataset("esc10", require_esc10())
    if n is None or n >= len(table):
        return table
    return table.subset(np.linspace(0, len(table) - 1, n).round().astype(int).tolist())


def esc10_store(cache: str | Path) -> Any:
    """The esc10-preset feature store of all 400 clips in ``cache`` (built once, then opened)."""
    from soundtransfer.audio import get_preset
    from soundtransfer.features import build_features

    return build_features(esc10_table(), get_preset("esc10"), cache_dir=Path(cache), progress=False)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh spawned process and return its result dict."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def interleaved(
    paths: Sequence[Callable[[], dict[str, Any]]], repeats: int
) -> list[list[dict[str, Any]]]:
    """Each path once per round, in order, for ``repeats`` rounds (a, b, a, b, ...): per path,
    its results in round order.

    Interleaved, so that a shared machine's slow minutes fall on every path alike, and
    adjacent runs (one round) can be compared as a pair.
    """
    results: list[list[dict[str, Any]]] = [[] for _ in paths]
    for _ in range(max(1, repeats)):
        for k, path in enumerate(paths):
            results[k].append(path())
    return results


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements and their range (min, max)."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def show(self, fmt: str = ".2f") -> str:
        """``median (min-max low-high, n runs)``."""
        if self.n == 1:
            return f"{self.median:{fmt}} (1 run: no spread)"
        return f"{self.median:{fmt}} (min-max {self.low:{fmt}}-{self.high:{fmt}}, {self.n} runs)"


def ratio_report(name: str, ratios: Sequence[float], target: float) -> list[str]:
    """Lines on a ratio that should reach ``target`` (>=): its median and range over the
    repeats, met or not, and a warning when the range is wider than the median's margin to the
    target (the run cannot tell; measure again with more repeats on an idle machine)."""
    spread = Spread.of(ratios)
    verdict = "met" if spread.median >= target else "NOT met"
    lines = [f"    {name} {spread.show()} (target >= {target:g}: {verdict})"]
    margin = abs(spread.median - target)
    if spread.n == 1 or spread.high - spread.low > margin:
        width = "unknown (1 run)" if spread.n == 1 else f"{spread.high - spread.low:.2f}"
        lines.append(
            f"    WARNING: {name}: spread {width} is not below the margin to the target "
            f"({margin:.2f}): noise can decide 'met'; rerun with more --repeats on an idle machine"
        )
    return lines


def cuda_peak_mb() -> float | None:
    """Peak CUDA memory allocated by torch in this process (None without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def bare_rates(
    model: Any, x: Any, y: Any, cfg: Any, steps: int, eval_batches: int = 0, repeats: int = 1
) -> tuple[float, float | None]:
    """Samples/s of the bare model: (train step, inference) on one batch already on the device.

    A train step is forward + cross-entropy + backward + the optimiser of ``cfg`` (Adam), under
    the fine-tuning loop's autocast; on CUDA the model and batch are channels_last, as in the
    loop. Two untimed warm-up steps first; the train rate is the median of ``repeats`` timings
    of ``steps`` steps. ``eval_batches`` > 0 also times that many forward
    passes in eval mode without gradients (the rate of a test-fold evaluation).
    """
    import torch
    import torch.nn.functional as F

    from soundtransfer.runs import Precision
    from soundtransfer.train.loop import make_optimizer

    dev = x.device
    cuda = dev.type == "cuda"
    precision = Precision.resolve(dev, cfg.amp, cfg.channels_last)
    precision.model(model)
    x = precision.inputs(x)
    optimizer = make_optimizer(model.parameters(), cfg)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def step() -> None:
        with precision.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    for _ in range(2):
        step()
    sync()
    rates = []
    for _ in range(repeats):  # the median of ``repeats`` timings of ``steps`` steps
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(steps * len(x) / (time.perf_counter() - t0))
    train_rate = statistics.median(rates)
    if eval_batches <= 0:
        return train_rate, None
    model.eval()
    with torch.no_grad(), precision.autocast():
        model(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(eval_batches):
            model(x)
        sync()
    return train_rate, eval_batches * len(x) / (time.perf_counter() - t0)
