"""Figures for a paper: loss curves (Fig. 6), t-SNE of block-4 features (Fig. 7), confusion.

Every figure is written as a 300 dpi PNG and a vector PDF (``<stem>.png``, ``<stem>.pdf``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from soundtransfer.models.classifier import Classifier
from soundtransfer.runs.files import atomic_write

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


def _savefig(fig: Any, ext: str, path: Path) -> None:
    fig.savefig(path, format=ext, dpi=300, bbox_inches="tight")


def _save(fig: Any, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        path = stem.parent / f"{stem.name}.{ext}"
        # A temp file then a rename: a full disk leaves no half figure, one error naming it.
        atomic_write(path, partial(_savefig, fig, ext))
        out.append(path)
    plt.close(fig)
    return out


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_loss_curves(runs: Mapping[str, Path], stem: Path, title: str = "") -> list[Path]:
    """Training loss per epoch of one split for each initialisation (the paper's Figure 6)."""
    with _style():
        fig, ax = plt.subplots(figsize=(3.4, 2.4))
        for label, run_dir in runs.items():
            m = read_metrics(run_dir)
            ax.plot([r["epoch"] for r in m], [r["train_loss"] for r in m], label=label, lw=1.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (cross-entropy)")
        if title:
            ax.set_title(title)
        ax.legend(frameon=False)
        ax.grid(alpha=0.3, lw=0.5)
        return _save(fig, stem)


def plot_confusion(
    labels: Sequence[int],
    preds: Sequence[int],
    class_names: Sequence[str],
    stem: Path,
    normalize: bool = True,
    title: str = "",
) -> list[Path]:
    """Confusion matrix (rows: true class; normalised per row in % by default)."""
    n = len(class_names)
    cm = np.zeros((n, n), dtype=np.float64)
    for t, p in zip(labels, preds, strict=True):
        cm[t, p] += 1
    if normalize:
        cm = 100.0 * cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = max(3.0, 0.32 * n + 1.2)
    with _style():
        fig, ax = plt.subplots(figsize=(size, size))
        im = ax.imshow(cm, cmap="Blues", vmin=0)
        ax.set_xticks(range(n), class_names, rotation=60, ha="right")
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if cm[i, j] > 0:
                        color = "white" if cm[i, j] > cm.max() / 2 else "black"
                        txt = f"{cm[i, j]:.0f}"
                        ax.text(j, i, txt, ha="center", va="center", fontsize=6, color=color)
        fig.colorbar(im, ax=ax, fraction=0.046, label="% of true class" if normalize else "clips")
        if title:
            ax.set_title(title)
        return _save(fig, stem)


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


def plot_tsne(
    features: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    stem: Path,
    title: str = "",
    seed: int = 0,
) -> list[Path]:
    """t-SNE scatter of features coloured by class (the paper's Figure 7)."""
    xy = tsne_embed(features.astype(np.float32), seed)
    lab = np.asarray(labels)
    with _style():
        fig, ax = plt.subplots(figsize=(3.6, 3.0))
        cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
        for k in sorted(set(lab.tolist())):
            sel = lab == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=8, color=cmap(k % cmap.N), label=class_names[k])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        if title:
            ax.set_title(title)
        ax.legend(frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left", markerscale=1.5)
        return _save(fig, stem)


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
        return _save(fig, stem)
