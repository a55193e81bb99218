"""Figures for a paper: training curves per split, loss per initialisation (Fig. 6), t-SNE of
block-4 features (Fig. 7), confusion matrices with counts.

The ``*_figure`` functions are pure (data in, a matplotlib ``Figure`` out); the ``plot_*``
ones write it with :func:`save_figure`: a 300 dpi PNG and a vector PDF (``<stem>.png``,
``<stem>.pdf``), atomically, the title also in the files' metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from soundtransfer.models.classifier import Classifier

STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "font.family": "serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _style() -> Any:
    return plt.rc_context(STYLE)  # type: ignore[arg-type]


def save_figure(fig: Any, stem: Path, title: str = "") -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` (300 dpi) and ``<stem>.pdf``, each atomically, with
    ``title`` in the files' metadata (PNG text chunk / PDF info ``Title``); closes it."""
    from soundtransfer.runs.files import atomic_write

    meta = {"Title": title} if title else {}

    def writer(ext: str) -> Callable[[Path], object]:
        return lambda tmp: fig.savefig(tmp, format=ext, dpi=300, bbox_inches="tight", metadata=meta)

    try:
        return [
            atomic_write(stem.parent / f"{stem.name}.{ext}", writer(ext)) for ext in ("png", "pdf")
        ]
    finally:
        plt.close(fig)


#: How the figures name the three curves; the test curve is drawn dashed and grey.
TRAIN_LOSS_LABEL = "training loss"
VAL_LABEL = "validation accuracy"
TEST_LABEL = "test accuracy (reported only, never used for selection)"
REPORTED_LABEL = "reported epoch"

Points = tuple[tuple[int, float], ...]  # (epoch, value) pairs


@dataclass(frozen=True)
class SplitCurves:
    """One run's curves against epochs (from its ``metrics.jsonl``).

    Attributes:
        title: which split and clips, e.g. ``"held-out fold 3: 80 test clips (320 train)"``.
        train_loss, val_acc, test_acc: (epoch, value) pairs; accuracies in %. ``val_acc``
            is empty without validation clips, ``test_acc`` holds the epochs that logged it.
        reported_epoch: the epoch whose model is reported (the final one, or the best
            validation epoch with ``select=best_val``), ``None`` if unknown.
        reported_how: why that epoch, for the legend (``"final epoch"``).
    """

    title: str
    train_loss: Points
    val_acc: Points = ()
    test_acc: Points = ()
    reported_epoch: int | None = None
    reported_how: str = "final epoch"


def _xy(points: Points) -> tuple[list[int], list[float]]:
    return [e for e, _ in points], [v for _, v in points]


def _accuracy_panel(ax: Any, c: SplitCurves) -> None:
    if c.val_acc:
        ax.plot(*_xy(c.val_acc), color="tab:green", lw=1.3, label=VAL_LABEL)
    else:
        ax.text(0.03, 0.04, "no validation clips", transform=ax.transAxes, fontsize=6,
                color="0.35", style="italic")  # fmt: skip
    if c.test_acc:
        ax.plot(*_xy(c.test_acc), color="0.45", ls="--", lw=1.0, marker=".", ms=3,
                label=TEST_LABEL)  # fmt: skip
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3, lw=0.5)


def training_curves_figure(curves: Sequence[SplitCurves], title: str) -> Any:
    """Per split (one column each, five to a row): training loss above, validation and test
    accuracy below, against epochs; the reported epoch marked on both. Pure: data in, a
    matplotlib ``Figure`` out (:func:`save_figure` writes it)."""
    n = len(curves)
    cols = min(n, 5)
    rows = -(-n // cols)
    with _style():
        fig, axes = plt.subplots(
            2 * rows, cols, figsize=(2.4 * cols + 0.4, 3.4 * rows + 0.9), squeeze=False,
            gridspec_kw={"height_ratios": [1.0, 1.2] * rows},
        )  # fmt: skip
        for k in range(rows * cols):
            top, bottom = axes[2 * (k // cols)][k % cols], axes[2 * (k // cols) + 1][k % cols]
            if k >= n:
                top.set_axis_off()
                bottom.set_axis_off()
                continue
            c = curves[k]
            bottom.sharex(top)
            top.plot(*_xy(c.train_loss), color="tab:blue", lw=1.3, label=TRAIN_LOSS_LABEL)
            top.set_title(c.title, fontsize=7)
            top.grid(alpha=0.3, lw=0.5)
            top.tick_params(labelbottom=False)
            _accuracy_panel(bottom, c)
            if c.reported_epoch is not None:
                for ax in (top, bottom):
                    ax.axvline(c.reported_epoch, color="tab:red", lw=0.8, ls=":",
                               label=f"{REPORTED_LABEL} ({c.reported_how})")  # fmt: skip
                reported = dict(c.test_acc).get(c.reported_epoch)
                if reported is not None:  # the number the results table carries
                    # Above the point on a white patch: a validation curve near the
                    # test value would otherwise strike the number through.
                    bottom.annotate(f"{reported:.1f} %", (c.reported_epoch, reported),
                                    xytext=(-3, 4), textcoords="offset points", ha="right",
                                    va="bottom", fontsize=6, color="0.2",
                                    bbox={"fc": "white", "ec": "none", "pad": 0.6,
                                          "alpha": 0.85})  # fmt: skip
            bottom.set_xlabel("epoch")
            if k % cols == 0:
                top.set_ylabel("training loss\n(cross-entropy)")
                bottom.set_ylabel("accuracy %")
        handles: dict[str, Any] = {}
        for ax in fig.axes:
            for line in ax.get_lines():
                handles.setdefault(str(line.get_label()), line)
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=2,
                   frameon=False, bbox_to_anchor=(0.5, -0.01))  # fmt: skip
        fig.suptitle(title, fontsize=9)
        fig.tight_layout(rect=(0, 0.07 if rows == 1 else 0.04, 1, 0.97))
        return fig


def loss_comparison_figure(losses: Mapping[str, Sequence[Points]], title: str) -> Any:
    """Training loss of several initialisations (the paper's Figure 6), every split drawn
    thin and their mean (over the epochs all splits logged) thick, one colour per label."""
    with _style():
        fig, ax = plt.subplots(figsize=(3.6, 2.6))
        for k, (label, splits) in enumerate(losses.items()):
            color = plt.get_cmap("tab10")(k % 10)
            for points in splits:
                ax.plot(*_xy(points), color=color, lw=0.5, alpha=0.45)
            common = sorted(set.intersection(*(set(_xy(p)[0]) for p in splits)))
            mean = [float(np.mean([dict(p)[e] for p in splits])) for e in common]
            ax.plot(common, mean, color=color, lw=1.6, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.set_title(title, fontsize=7)
        ax.legend(frameon=False, fontsize=6)
        ax.grid(alpha=0.3, lw=0.5)
        return fig


def confusion_figure(cm: np.ndarray, class_names: Sequence[str], title: str) -> Any:
    """Confusion matrix with the clip count in every non-empty cell (rows: true class).

    Shades give the share of the true class's clips: blue on the diagonal (right), red off
    it (confused, scaled to the largest confusion so single clips still show). Cells are
    sized so that 50 classes fit a page's width (about 7 in) with counts still legible (4 pt
    at 50 classes, more with fewer classes; 300 dpi).
    """
    n = len(class_names)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    cell = min(0.42, 6.0 / max(n, 1))  # inches
    count_pt = float(np.clip(cell * 72 * 0.45, 3.5, 7.0))
    label_pt = float(np.clip(cell * 72 * 0.6, 4.0, 8.0))
    diag = np.eye(n, dtype=bool)
    with _style():
        fig, ax = plt.subplots(figsize=(cell * n + 1.6, cell * n + 1.4))
        kw: dict[str, Any] = {"vmin": 0.0, "interpolation": "nearest"}
        ax.imshow(np.ma.masked_where(~diag | (cm == 0), share), cmap="Blues", vmax=1.0, **kw)
        # Confusions are shaded against the largest one, so a 1-in-40 cell is still seen.
        worst = float(share[~diag].max()) if n > 1 and share[~diag].size else 1.0
        ax.imshow(np.ma.masked_where(diag | (cm == 0), share), cmap="Reds",
                  vmax=max(worst, 1e-9) / 0.55, **kw)  # fmt: skip
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=label_pt)
        ax.set_yticks(range(n), class_names, fontsize=label_pt)
        ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="0.88", lw=0.3)
        ax.tick_params(which="minor", length=0)
        ax.spines[["top", "right"]].set_visible(True)
        for i, j in zip(*np.nonzero(cm), strict=True):
            color = "white" if i == j and share[i, j] > 0.6 else "black"  # red stays light
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=count_pt,
                    color=color)  # fmt: skip
        ax.set_xlabel(
            "predicted class\ncell: clips; blue: right (shade: share of the true class), "
            "red: confused (shade: against the largest confusion)",
            fontsize=7,
        )
        ax.set_ylabel("true class", fontsize=7)
        ax.set_title(title, fontsize=7)
        return fig


@torch.no_grad()
def block4_features(model: Classifier, images: torch.Tensor, batch: int = 32) -> np.ndarray:
    """Global-average-pooled block-4 map ``(N, C)`` of a :class:`Classifier`'s encoder."""
    model.eval()
    out = []
    for s in range(0, len(images), batch):
        x = model.norm(images[s : s + batch])
        fmap = model.encoder.forward_features(x)  # (B, C, h, w)
        out.append(F.adaptive_avg_pool2d(fmap, 1).flatten(1).numpy())
    return np.concatenate(out)


def tsne_embed(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (openTSNE when installed, else scikit-learn), perplexity adapted to N."""
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    try:
        from openTSNE import TSNE

        emb = TSNE(perplexity=perplexity, random_state=seed, n_jobs=1).fit(features)
        return np.asarray(emb)
    except ImportError:
        from sklearn.manifold import TSNE as SKTSNE

        return np.asarray(
            SKTSNE(perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)
        )


def tsne_scatter_figure(
    xy: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    title: str,
    held_out: Sequence[bool] | None = None,
) -> Any:
    """2-D points ``(N, 2)`` coloured by class; with ``held_out``, the model's held-out clips
    drawn hollow and its training clips filled (said in the legend)."""
    lab = np.asarray(labels)
    out = np.zeros(len(lab), dtype=bool) if held_out is None else np.asarray(held_out, bool)
    with _style():
        fig, ax = plt.subplots(figsize=(3.8, 3.2))
        cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
        for k in sorted(set(lab.tolist())):
            color = cmap(k % cmap.N)
            sel = lab == k
            ax.scatter(xy[sel & ~out, 0], xy[sel & ~out, 1], s=8, color=color,
                       label=class_names[k])  # fmt: skip
            if out[sel].any():
                ax.scatter(xy[sel & out, 0], xy[sel & out, 1], s=10, facecolors="none",
                           edgecolors=color, lw=0.7)  # fmt: skip
        if out.any():
            ax.scatter(
                [], [], s=10, facecolors="none", edgecolors="0.3", label="(hollow: held out)"
            )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_title(title, fontsize=7)
        ax.legend(frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left", markerscale=1.5,
                  fontsize=6)  # fmt: skip
        return fig


def plot_tsne(
    features: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    stem: Path,
    title: str = "",
    seed: int = 0,
    held_out: Sequence[bool] | None = None,
) -> list[Path]:
    """t-SNE of ``(N, C)`` features coloured by class (the paper's Figure 7), written."""
    xy = tsne_embed(features.astype(np.float32), seed)
    return save_figure(tsne_scatter_figure(xy, labels, class_names, title, held_out), stem, title)


def plot_training_curves(curves: Sequence[SplitCurves], stem: Path, title: str) -> list[Path]:
    """:func:`training_curves_figure`, written."""
    return save_figure(training_curves_figure(curves, title), stem, title)


def plot_loss_curves(losses: Mapping[str, Sequence[Points]], stem: Path, title: str) -> list[Path]:
    """:func:`loss_comparison_figure`, written."""
    return save_figure(loss_comparison_figure(losses, title), stem, title)


def plot_confusion(
    labels: Sequence[int], preds: Sequence[int], class_names: Sequence[str], stem: Path, title: str
) -> list[Path]:
    """:func:`confusion_figure` of these predictions, written."""
    from soundtransfer.analysis.confusion import confusion_counts

    cm = confusion_counts(labels, preds, len(class_names))
    return save_figure(confusion_figure(cm, class_names, title), stem, title)


def plot_spectrograms(
    images: np.ndarray, titles: Sequence[str], windows_ms: Sequence[Sequence[float]], stem: Path
) -> list[Path]:
    """A grid of clips (rows) x the three log-mel channels (columns)."""
    n, c = images.shape[0], images.shape[1]
    with _style():
        fig, axes = plt.subplots(n, c, figsize=(3.2 * c, 1.6 * n), squeeze=False)
        for i in range(n):
            for j in range(c):
                ax = axes[i][j]
                ax.imshow(images[i, j], origin="lower", aspect="auto", cmap="magma")
                if i == 0:
                    w, h = windows_ms[j]
                    ax.set_title(f"ch. {j + 1}: {w:g} ms window, {h:g} ms hop")
                if j == 0:
                    ax.set_ylabel(f"{titles[i]}\nmel band")
                if i == n - 1:
                    ax.set_xlabel("frame (resized)")
        fig.tight_layout()
        return save_figure(fig, stem, "log-mel channels of a few clips")
