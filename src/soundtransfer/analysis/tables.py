"""Result tables from run directories, beside the paper's numbers (Markdown and CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from soundtransfer.train.crossval import fold_mean_std

# The paper's Table 1 (fine-tuned) and Table 2 (linear evaluation), accuracy %.
PAPER: dict[tuple[str, str, str], float] = {
    ("gtzan", "random", "finetune"): 86.50,
    ("esc50", "random", "finetune"): 78.25,
    ("us8k", "random", "finetune"): 76.11,
    ("gtzan", "supervised", "finetune"): 90.50,
    ("esc50", "supervised", "finetune"): 90.55,
    ("us8k", "supervised", "finetune"): 83.34,
    ("gtzan", "simclr-v1", "finetune"): 90.50,
    ("esc50", "simclr-v1", "finetune"): 90.15,
    ("us8k", "simclr-v1", "finetune"): 83.30,
    ("gtzan", "simclr-v1", "linear"): 77.00,
    ("esc50", "simclr-v1", "linear"): 63.40,
    ("us8k", "simclr-v1", "linear"): 74.24,
}


@dataclass(frozen=True)
class Row:
    """One grid cell's results: accuracy % per split."""

    dataset: str
    weights: str  # run-directory label, ``<arch>.<weights>``
    mode: str
    splits: tuple[str, ...]
    accuracies: tuple[float, ...]

    @property
    def arch(self) -> str:
        return self.weights.split(".", 1)[0] if "." in self.weights else ""

    @property
    def source(self) -> str:
        return self.weights.split(".", 1)[1] if "." in self.weights else self.weights

    @property
    def mean(self) -> float:
        return fold_mean_std(self.accuracies)[0]

    @property
    def std(self) -> float:
        return fold_mean_std(self.accuracies)[1]

    @property
    def paper(self) -> float | None:
        if self.arch and self.arch != "resnet50":
            return None
        return PAPER.get((self.dataset, self.source, self.mode))


def collect_results(out_dir: Path) -> list[Row]:
    """Every ``<dataset>/<weights>/<mode>/<split>/final.json`` under ``out_dir``."""
    groups: dict[tuple[str, str, str], list[tuple[str, float]]] = {}
    for final in sorted(Path(out_dir).glob("*/*/*/*/final.json")):
        split_dir = final.parent
        mode_dir = split_dir.parent
        key = (mode_dir.parent.parent.name, mode_dir.parent.name, mode_dir.name)
        acc = float(json.loads(final.read_text())["test_acc"])
        groups.setdefault(key, []).append((split_dir.name, acc))
    rows = []
    for (ds, w, mode), items in sorted(groups.items()):
        items.sort(key=lambda t: (len(t[0]), t[0]))  # fold2 before fold10
        rows.append(Row(ds, w, mode, tuple(s for s, _ in items), tuple(a for _, a in items)))
    return rows


def results_table(rows: Sequence[Row]) -> tuple[str, str]:
    """(Markdown, CSV): mean +- std over splits, per-split numbers, the paper's number."""
    md = [
        "| dataset | weights | mode | accuracy % (mean +- std) | splits | paper % | per split |",
        "|---|---|---|---|---|---|---|",
    ]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["dataset", "weights", "mode", "mean", "std", "n_splits", "paper", "splits"])
    for r in rows:
        per = ", ".join(f"{s} {a:.2f}" for s, a in zip(r.splits, r.accuracies, strict=True))
        paper = f"{r.paper:.2f}" if r.paper is not None else "-"
        md.append(
            f"| {r.dataset} | {r.weights} | {r.mode} | {r.mean:.2f} +- {r.std:.2f} | "
            f"{len(r.splits)} | {paper} | {per} |"
        )
        writer.writerow(
            [
                r.dataset,
                r.weights,
                r.mode,
                f"{r.mean:.4f}",
                f"{r.std:.4f}",
                len(r.splits),
                "" if r.paper is None else r.paper,
                ";".join(f"{s}={a:.4f}" for s, a in zip(r.splits, r.accuracies, strict=True)),
            ]
        )
    return "\n".join(md) + "\n", buf.getvalue()
