"""Ensembles of finished runs: the average of several runs' test probabilities on the same
splits (seeds or architectures), scored per split and compared, split by split, with each
single run (:func:`soundtransfer.analysis.stats.paired_comparison`).

Each member is a run cell, ``<out>/<dataset>/<arch>.<weights>/<mode>/`` with one finished
split per subdirectory; its ``final.json`` must hold ``test_probabilities`` (written by the
epoch loop since issue 22: fine-tuning and the paper's linear evaluation). Members must cover
the same splits with the same test clips in the same order (same ``labels`` and classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundtransfer.analysis.stats import (
    Paired,
    format_summary,
    paired_comparison,
    summarize,
)
from soundtransfer.analysis.tables import paired_cells, two_tables
from soundtransfer.errors import RunError
from soundtransfer.runs import parse_run_dir, read_final
from soundtransfer.runs.rundir import FINAL, split_order

__all__ = ["Ensemble", "ensemble_of", "ensemble_table", "read_member"]


@dataclass(frozen=True)
class Ensemble:
    """Accuracy % per split of the averaged probabilities and of each member.

    Attributes:
        dataset: the members' dataset.
        members: each member's name (``<arch>.<weights> <mode>``, with its directory when two
            names coincide, e.g. seeds).
        splits: the split names, in fold order.
        accuracies: the ensemble's accuracy % per split.
        singles: per member, its accuracy % per split (as its ``final.json`` reports it).
    """

    dataset: str
    members: tuple[str, ...]
    splits: tuple[str, ...]
    accuracies: tuple[float, ...]
    singles: tuple[tuple[float, ...], ...]

    def paired(self) -> list[Paired]:
        """The ensemble against each member (ensemble - member per split)."""
        return [paired_comparison(self.accuracies, s) for s in self.singles]


def read_member(cell: Path) -> dict[str, dict[str, Any]]:
    """Split name -> checked ``final.json`` (with ``test_probabilities`` (N, K) as an array)
    of every finished split of one run cell.

    Raises:
        RunError: no finished split, a damaged ``final.json``, or no or misshapen
            ``test_probabilities`` (naming the file).
    """
    finals = sorted(Path(cell).glob(f"*/{FINAL}"), key=lambda p: split_order(p.parent.name))
    if not finals:
        raise RunError(
            f"{cell}: no finished split (<cell>/<split>/{FINAL}); give a run cell such as "
            "runs/esc10/efficientnet_lite0.imagenet/finetune"
        )
    out = {}
    for path in finals:
        data = read_final(path)
        if data.get("task") == "multi_label":
            raise RunError(f"{path}: a multi-label run; ensemble averages single-label runs")
        probs = np.asarray(data.get("test_probabilities", []), dtype=np.float64)
        want = (len(data["labels"]), len(data["classes"]))
        if probs.shape != want or not np.isfinite(probs).all():
            raise RunError(
                f"{path}: no test_probabilities of shape {want} (a run made before ensembles "
                "existed, or a fitted probe): re-run it to ensemble it"
            )
        out[path.parent.name] = {**data, "test_probabilities": probs}
    return out


def ensemble_of(cells: Sequence[Path]) -> Ensemble:
    """The ensemble of the given run cells (at least two) on their common splits.

    Raises:
        RunError: fewer than two members, members of other datasets, splits, classes or test
            clips (naming the member), or an unreadable member (:func:`read_member`).
    """
    if len(cells) < 2:
        raise RunError(f"an ensemble needs at least 2 run cells, got {len(cells)}")
    members = [read_member(c) for c in cells]
    first, ref = Path(cells[0]), members[0]
    for cell, m in zip(cells[1:], members[1:], strict=True):
        if list(m) != list(ref):
            raise RunError(f"{cell}: splits {list(m)} differ from {first}'s {list(ref)}")
        for split, data in m.items():
            for key in ("classes", "labels"):
                if data[key] != ref[split][key]:
                    raise RunError(f"{cell}/{split}: other {key} than {first}/{split}")
    accs = []
    for split, data in ref.items():
        mean = np.mean([m[split]["test_probabilities"] for m in members], axis=0)  # (N, K)
        accs.append(100.0 * float(np.mean(mean.argmax(1) == np.asarray(data["labels"]))))
    return Ensemble(
        parse_run_dir(first / next(iter(ref))).dataset,
        _names(cells),
        tuple(ref),
        tuple(accs),
        tuple(tuple(float(m[s]["test_acc"]) for s in ref) for m in members),
    )


def _names(cells: Sequence[Path]) -> tuple[str, ...]:
    """``<arch>.<weights> <mode>`` per cell; with the directory where names repeat."""
    names = [f"{Path(c).parent.name} {Path(c).name}" for c in cells]
    return tuple(
        f"{n} ({c})" if names.count(n) > 1 else n for n, c in zip(names, cells, strict=True)
    )


def ensemble_table(e: Ensemble) -> tuple[str, str]:
    """(Markdown, CSV): the ensemble row and the members' rows (accuracy %, mean +- std
    [95 % CI] over splits, per split), then the paired comparison with each member."""
    rows = [(f"ensemble of {len(e.members)}", e.accuracies)]
    rows += list(zip(e.members, e.singles, strict=True))
    lines = []
    for name, accs in rows:
        s = summarize(accs)
        pairs = list(zip(e.splits, accs, strict=True))
        per = ", ".join(f"{sp} {a:.2f}" for sp, a in pairs)
        cells = ";".join(f"{sp}={a:.4f}" for sp, a in pairs)
        lines.append(
            (
                [name, format_summary(s), per],
                [e.dataset, name, f"{s.mean:.4f}", f"{s.std:.4f}", len(e.splits), cells],
            )
        )
    md, csv_text = two_tables(
        ["model", "accuracy % (mean +- std [95 % CI])", "per split"],
        ["dataset", "model", "mean", "std", "n_splits", "splits"],
        lines,
    )
    comparisons = two_tables(
        ["ensemble - member", "% (mean +- std)", "wins / ties / losses", "paired t p",
         "sign-flip p"],
        [],
        (([name, *paired_cells(p)], []) for name, p in zip(e.members, e.paired(), strict=True)),
    )[0]  # fmt: skip
    return md + "\n" + comparisons, csv_text
