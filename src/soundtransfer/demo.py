"""The demo: the whole path on the vendored ESC-10 sample, offline, in minutes on a CPU.

Steps (each a function of :func:`run_demo`):
1. features of the sample (5 official folds) and a picture of a few clips' channels;
2. frozen encoders: a randomly initialised EfficientNet-Lite0 (the baseline: what the
   architecture gives without ImageNet) and the ImageNet one, each with a converged
   logistic-regression probe (``probe=logistic``, seconds on cached embeddings); the ImageNet
   one also with the paper's linear probe (FC layer, Adam); then the ImageNet encoder briefly
   fine-tuned. (A randomly initialised network fine-tuned for a few epochs on 80 clips stays
   at chance, which says nothing about transfer, so the demo does not show it.)
3. the results table (mean, sample std, 95 % CI over folds; paired comparisons with p-values),
   loss curves, confusion matrices, a t-SNE;
4. the fold-1 model (frozen ImageNet encoder + logistic probe) run by ``predict`` on every
   clip of held-out fold 1, which it never saw: how many it gets right per class and what it
   confuses, as a table (and ``heldout_fold1.csv``, one row per clip).

EfficientNet-Lite0's ImageNet weights install offline; the paper's ResNet-50 weights need
``soundtransfer weights fetch``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from soundtransfer.datasets.clips import ClipTable

DEMO_ROOT = Path("demo/esc10-sample")
ARCH = "efficientnet_lite0"
#: (weights, training settings) of each row, in order: frozen random and frozen ImageNet with
#: the logistic probe, the paper's linear probe, then brief fine-tuning (epochs set below).
ROWS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("random", {"mode": "linear", "probe": "logistic"}),
    ("lite0", {"mode": "linear", "probe": "logistic"}),
    ("lite0", {"mode": "linear"}),
    ("lite0", {"mode": "finetune"}),
)


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
    from soundtransfer.analysis import (
        format_summary,
        make_figures,
        plot_spectrograms,
        summarize,
        tsne_figure,
    )
    from soundtransfer.features import dataset_store
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
    for weights, settings in ROWS:
        epochs = {"finetune": finetune_epochs, "linear": linear_epochs}[settings["mode"]]
        cfg = get_preset("demo", {**settings, "epochs": epochs})
        t1 = time.perf_counter()
        r = run_crossval(store, weights, ARCH, cfg, runs, cache_dir=cache, progress=progress)
        s = summarize(r.accuracies)
        results[f"{r.mode}/{weights}"] = (s.mean, s.std)
        what = {"finetune": f"fine-tuned {epochs} epochs", "linear": f"frozen, linear probe "
                f"{epochs} epochs", "logistic": "frozen, logistic probe"}[r.mode]  # fmt: skip
        log(
            f"[2/4] {ARCH}.{weights:<7} {what:<30} {format_summary(s, 1)} % "
            f"over {len(r.splits)} folds ({time.perf_counter() - t1:.0f} s)"
        )

    figures = out / "figures"
    written = make_figures(runs, figures)
    tuned = run_dir(runs, "esc10", f"{ARCH}.lite0", "finetune", "fold1") / MODEL
    written += tsne_figure(tuned, store, figures / "tsne_esc10_lite0_finetune")
    log(f"[3/4] {len(written)} figure/table files in {figures}; results (accuracy %):")
    log((figures / "results.md").read_text())
    # The best row's fold-1 model (frozen ImageNet encoder + logistic probe) on its held-out fold.
    fold1 = run_dir(runs, "esc10", f"{ARCH}.lite0", "logistic", "fold1")
    for line in held_out_step(fold1, table, 1, out / "heldout_fold1.csv"):
        log(line)
    log(f"demo finished in {time.perf_counter() - t0:.0f} s; outputs in {out}")
    return {"results": results, "written": written}


def held_out_step(run: Path, table: ClipTable, fold: int, csv_path: Path) -> list[str]:
    """``predict`` with a run's bundle on every clip of its held-out ``fold``.

    Each clip's file is read and classified as ``soundtransfer predict`` does (not from the
    feature cache), so the table shows what a user of the bundle would get.

    Args:
        run: the run directory (``model.pt``, ``config.json``, ``final.json``).
        table: the dataset the run was trained on.
        fold: the fold the run held out.
        csv_path: written atomically, one row per clip (file, true, predicted,
            probability, right).

    Returns:
        The console lines: a header naming the model and clips, one line per class (right
        of total, what else it was heard as), the accuracy beside the run's own test
        accuracy, the main confusions and where the CSV is.
    """
    import csv
    import io
    import json

    from soundtransfer.analysis.confusion import (
        accuracy_line,
        class_table_lines,
        confusion_counts,
        top_confusions,
    )
    from soundtransfer.analysis.report import model_phrase
    from soundtransfer.inference.predict import PredictConfig, Predictor
    from soundtransfer.runs import atomic_write_text
    from soundtransfer.runs.rundir import CONFIG, FINAL, MODEL, parse_run_dir

    clips = [c for c in table.clips if c.fold == fold]
    predictor = Predictor(run / MODEL, PredictConfig(top_k=1))
    tops = [predictor.predict_file(table.root / c.file).top[0] for c in clips]  # (class, p)
    classes = list(table.classes)
    cm = confusion_counts(
        [c.label for c in clips], [classes.index(t[0]) for t in tops], len(classes)
    )
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "true", "predicted", "probability", "right"])
    for c, (name, prob) in zip(clips, tops, strict=True):
        truth = classes[c.label]
        writer.writerow([c.file, truth, name, f"{prob:.4f}", int(name == truth)])
    atomic_write_text(csv_path, buf.getvalue())
    ref = parse_run_dir(run)
    model = model_phrase(ref.weights, ref.mode, json.loads((run / CONFIG).read_text()))
    own = float(json.loads((run / FINAL).read_text())["test_acc"])
    main = top_confusions(cm, classes, 5)
    return [
        f"[4/4] the fold-{fold} model ({model}) on the {len(clips)} clips of held-out fold "
        f"{fold}, none of them seen in its training (`soundtransfer predict` on each file):",
        *(f"  {line}" for line in class_table_lines(cm, classes)),
        f"  {accuracy_line(cm)}; the results table's fold{fold}: {own:.2f} %",
        "  main confusions (true -> predicted, clips): "
        + (", ".join(f"{c.true} -> {c.predicted} ({c.clips})" for c in main) or "none"),
        f"  one row per clip: {csv_path}",
    ]
