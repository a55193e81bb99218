"""The demo: the whole path on the vendored ESC-10 sample, offline, in minutes on a CPU.

Steps (each a function of :func:`run_demo`):
1. features of the 50-clip sample (5 official folds) and a picture of a few clips' channels;
2. linear evaluation (frozen encoder, cached embeddings) and a short fine-tune, each from
   random and from ImageNet weights (EfficientNet-Lite0: the ImageNet weights that install
   offline; the paper's ResNet-50 weights need ``soundtransfer weights fetch``);
3. the results table beside the paper's numbers, loss curves, confusion matrices, a t-SNE;
4. a prediction on one clip with a trained bundle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DEMO_ROOT = Path("demo/esc10-sample")
ARCH = "efficientnet_lite0"
INITS = ("random", "lite0")


def demo_root() -> Path:
    """The vendored sample, from the repository root or next to the installed package."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / DEMO_ROOT / "meta" / "esc50.csv").exists():
            return base / DEMO_ROOT
    from soundtransfer.errors import DatasetError

    raise DatasetError(f"demo sample {DEMO_ROOT} not found; run from the repository root")


def run_demo(
    out: Path,
    root: Path | None = None,
    finetune_epochs: int = 6,
    linear_epochs: int = 60,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every step; returns the paths written and the accuracies."""
    from soundtransfer.analysis import make_figures, plot_spectrograms, tsne_figure
    from soundtransfer.features import dataset_store
    from soundtransfer.inference.predict import predict
    from soundtransfer.runs import run_dir
    from soundtransfer.runs.rundir import MODEL
    from soundtransfer.train import get_preset, run_crossval

    root = root or demo_root()
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    t0 = time.perf_counter()

    store = dataset_store("esc10", root, cache_dir=cache, progress=progress)
    table = store.table
    log(
        f"[1/4] features: {len(store)} clips {tuple(store.images.shape[1:])} "
        f"({time.perf_counter() - t0:.0f} s) -> {store.dir}"
    )
    pick = [next(i for i, c in enumerate(table.clips) if c.label == k) for k in (0, 2, 7)]
    plot_spectrograms(
        np.asarray(store.images[pick], dtype=np.float32),
        [table.classes[table.clips[i].label] for i in pick],
        store.frontend.windows_ms,
        out / "spectrograms",
    )

    runs = out / "runs"
    results = {}
    for mode, epochs in (("linear", linear_epochs), ("finetune", finetune_epochs)):
        cfg = get_preset("demo", {"mode": mode, "epochs": epochs})
        for weights in INITS:
            t1 = time.perf_counter()
            r = run_crossval(store, weights, ARCH, cfg, runs, cache_dir=cache, progress=progress)
            results[f"{mode}/{weights}"] = (r.mean, r.std)
            log(
                f"[2/4] {mode:<8} {ARCH}.{weights:<7} {r.mean:5.1f} +- {r.std:4.1f} % "
                f"over {len(r.splits)} folds ({time.perf_counter() - t1:.0f} s)"
            )

    figures = out / "figures"
    written = make_figures(runs, figures)
    bundle = run_dir(runs, "esc10", f"{ARCH}.lite0", "finetune", "fold1") / MODEL
    written += tsne_figure(bundle, store, figures / "tsne_esc10_lite0_finetune")
    log(f"[3/4] {len(written)} figure/table files in {figures}; results:")
    log((figures / "results.md").read_text())

    held_out = next(c for c in table.clips if c.fold == 1)  # never seen by the fold-1 model
    clip = root / held_out.file
    (pred,) = predict(bundle, [clip], top_k=3)
    tops = ", ".join(f"{c} {p:.0%}" for c, p in pred.top)
    log(
        f"[4/4] predict {clip.name} with the fold-1 model (held-out clip, true class "
        f"{table.classes[held_out.label]}): {tops}"
    )
    log(f"demo finished in {time.perf_counter() - t0:.0f} s; outputs in {out}")
    return {"results": results, "written": written}
