"""Result tables from run directories, beside the paper's numbers (Markdown and CSV).

Every row carries the mean, the sample standard deviation and a 95 % Student-t interval over
its folds; rows measured on the same folds are compared pairwise (paired t-test and exact
sign-flip permutation test, see :mod:`soundtransfer.analysis.stats`). Runs that logged the
test accuracy after every epoch also give a protocol table: the epoch chosen on the test fold
against the final epoch and the best-validation epoch.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from soundtransfer.analysis.stats import (
    Paired,
    ProtocolSummary,
    Summary,
    format_pvalue,
    format_summary,
    paired_comparison,
    protocol_summary,
    split_label,
    summarize,
)
from soundtransfer.errors import RunError
from soundtransfer.runs import RunRef, list_runs, read_metrics
from soundtransfer.runs.rundir import METRICS

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
    """One grid cell's results: accuracy % (or mAP %, multi-label) per split."""

    dataset: str
    weights: str  # run-directory label, ``<arch>.<weights>``
    mode: str
    splits: tuple[str, ...]
    accuracies: tuple[float, ...]  # % per split: accuracy, or mAP x 100 (``metric``)
    metric: str = "accuracy"  # "accuracy" (single-label) or "mAP" (multi-label)

    @property
    def arch(self) -> str:
        return self.weights.split(".", 1)[0] if "." in self.weights else ""

    @property
    def source(self) -> str:
        return self.weights.split(".", 1)[1] if "." in self.weights else self.weights

    @property
    def summary(self) -> Summary:
        """Mean, sample std (ddof 1) and 95 % Student-t interval over the splits."""
        return summarize(self.accuracies)

    @property
    def mean(self) -> float:
        return self.summary.mean

    @property
    def std(self) -> float:
        return self.summary.std

    @property
    def paper(self) -> float | None:
        if self.arch and self.arch != "resnet50":
            return None
        return PAPER.get((self.dataset, self.source, self.mode))


def labelled(mode: str, label: str) -> str:
    """A mode named with the runs directory it comes from (``finetune@recipe``), so that runs
    of one cell under several directories (e.g. two presets) are rows of their own."""
    return f"{mode}@{label}" if label else mode


Warn = Callable[[str], None]


def run_cells(
    out_dir: Path, label: str = "", done_only: bool = True, warn: Warn | None = None
) -> dict[tuple[str, str, str], list[RunRef]]:
    """Runs under ``out_dir`` (:func:`soundtransfer.runs.list_runs`; the finished ones only
    with ``done_only``) by (dataset, weights, mode :func:`labelled` with ``label``), splits in
    fold order.

    Each run's files are checked first (``final.json`` of a finished run,
    ``metrics.jsonl``: :mod:`soundtransfer.runs.records`). A damaged run is an error, or with
    ``warn`` left out with a warning line naming the file (what ``figures`` does, so that one
    bad run directory does not hide the others).

    Raises:
        RunError: a damaged run file (without ``warn``).
    """
    cells: dict[tuple[str, str, str], list[RunRef]] = {}
    for ref in list_runs(Path(out_dir), done_only=done_only):
        try:
            if ref.done:
                ref.final()
            read_metrics(ref.dir / METRICS)
        except RunError as exc:
            if warn is None:
                raise
            warn(f"warning: run left out: {exc}")
            continue
        cells.setdefault((ref.dataset, ref.weights, labelled(ref.mode, label)), []).append(ref)
    return cells


def warn_once(warn: Warn | None) -> Warn | None:
    """``warn`` passing each distinct line on once (several tables read the same runs)."""
    if warn is None:
        return None
    seen: set[str] = set()
    target = warn

    def once(line: str) -> None:
        if line not in seen:
            seen.add(line)
            target(line)

    return once


def collect_results(out_dir: Path, label: str = "", warn: Warn | None = None) -> list[Row]:
    """One row per (dataset, weights, mode) of the finished runs under ``out_dir`` (their
    ``final.json``); ``label`` names the directory in the modes (:func:`labelled`); damaged
    runs as in :func:`run_cells`."""
    rows = []
    for (ds, w, mode), refs in sorted(run_cells(out_dir, label, warn=warn).items()):
        finals = [ref.final() for ref in refs]
        metrics = {"mAP" if f.get("task") == "multi_label" else "accuracy" for f in finals}
        if len(metrics) > 1:  # one cell, both tasks: no mean of accuracies and mAPs
            raise RunError(f"{refs[0].dir.parent}: splits of both tasks (accuracy and mAP)")
        (metric,) = metrics
        values = tuple(
            100 * float(f["test_mAP"]) if metric == "mAP" else float(f["test_acc"]) for f in finals
        )
        rows.append(Row(ds, w, mode, tuple(r.split for r in refs), values, metric))
    return rows


def _ci(s: Summary) -> str:
    return "-" if math.isnan(s.ci_low) else f"[{s.ci_low:.2f}, {s.ci_high:.2f}]"


def _mean_std(s: Summary) -> str:
    """``mean +- std``; one split has no spread, so its mean alone."""
    return f"{s.mean:.2f}" if s.n < 2 else f"{s.mean:.2f} +- {s.std:.2f}"


def _num(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.4f}"


def two_tables(
    md_columns: Sequence[str],
    csv_columns: Sequence[str],
    lines: Iterable[tuple[Sequence[object], Sequence[object]]],
) -> tuple[str, str]:
    """(Markdown, CSV) of one table written twice: each line is (its Markdown cells, its CSV
    cells); the Markdown for reading, the CSV (other columns, full precision) for tools."""
    md = ["| " + " | ".join(md_columns) + " |", "|" + "---|" * len(md_columns)]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(csv_columns)
    for md_cells, csv_cells in lines:
        md.append("| " + " | ".join(map(str, md_cells)) + " |")
        writer.writerow(csv_cells)
    return "\n".join(md) + "\n", buf.getvalue()


def paired_cells(p: Paired) -> tuple[str, str, str, str]:
    """Markdown cells of one paired comparison: difference (mean +- std), wins / ties /
    losses, paired t p, sign-flip p."""
    d = p.diff
    wins = f"{p.wins[0]} / {p.wins[1]} / {p.wins[2]}"
    return (
        f"{d.mean:+.2f} +- {d.std:.2f}",
        wins,
        format_pvalue(p.t_pvalue),
        format_pvalue(p.perm_pvalue),
    )


def paired_rows(rows: Sequence[Row]) -> list[tuple[Row, Row, Paired]]:
    """Pairwise comparisons of rows measured on the same splits of the same dataset.

    Two rows are compared when they have the same dataset and the same split names (at least
    two) and differ in exactly one of weights and mode: weight sources within a mode, and
    fine-tuning against linear evaluation for one weight source.
    """
    out = []
    for a, b in itertools.combinations(rows, 2):
        if a.dataset != b.dataset or a.splits != b.splits or len(a.splits) < 2:
            continue
        if a.metric != b.metric:
            continue
        if (a.weights == b.weights) == (a.mode == b.mode):
            continue
        out.append((a, b, paired_comparison(a.accuracies, b.accuracies)))
    return out


def paired_table(rows: Sequence[Row]) -> tuple[str, str]:
    """(Markdown, CSV) of :func:`paired_rows`: per-fold difference a - b and its p-values."""
    lines = []
    for a, b, p in paired_rows(rows):
        name_a, name_b = f"{a.weights} {a.mode}", f"{b.weights} {b.mode}"
        diff, wins, t_p, perm_p = paired_cells(p)
        d = p.diff
        lines.append(
            (
                [a.dataset, name_a, name_b, diff, _ci(d), wins, t_p, perm_p],
                [a.dataset, name_a, name_b, d.n, _num(d.mean), _num(d.std), _num(d.ci_low),
                 _num(d.ci_high), *p.wins, _num(p.t_pvalue), _num(p.perm_pvalue)],
            )
        )  # fmt: skip
    return two_tables(
        ["dataset", "a", "b", "a - b % (mean +- std)", "95 % CI", "a>b / = / a<b", "paired t p",
         "sign-flip p"],
        ["dataset", "a", "b", "n_splits", "mean_diff", "std_diff", "ci_low", "ci_high",
         "a_wins", "ties", "b_wins", "t_pvalue", "perm_pvalue"],
        lines,
    )  # fmt: skip


def results_table(rows: Sequence[Row], protocol: Sequence[ProtocolRow] = ()) -> tuple[str, str]:
    """(Markdown, CSV): mean +- std and 95 % CI over splits, per-split numbers, the paper's.

    The Markdown also lists the paired comparisons of rows sharing their splits
    (:func:`paired_table`) and, when ``protocol`` rows are given, the epoch-selection table
    (:func:`protocol_table`). The CSV holds the rows only.
    """
    metrics = {r.metric for r in rows} or {"accuracy"}
    lines = []
    for r in rows:
        s = r.summary
        pairs = list(zip(r.splits, r.accuracies, strict=True))
        paper = f"{r.paper:.2f}" if r.paper is not None else "-"
        mode = r.mode if len(metrics) == 1 else f"{r.mode} ({r.metric})"
        lines.append(
            (
                [r.dataset, r.weights, mode, _mean_std(s), _ci(s),
                 len(r.splits), paper, ", ".join(f"{split_label(sp)} {a:.2f}" for sp, a in pairs)],
                [r.dataset, r.weights, r.mode, f"{s.mean:.4f}", f"{s.std:.4f}", _num(s.ci_low),
                 _num(s.ci_high), len(r.splits), "" if r.paper is None else r.paper,
                 ";".join(f"{sp}={a:.4f}" for sp, a in pairs), r.metric],
            )
        )  # fmt: skip
    score = next(iter(metrics)) if len(metrics) == 1 else "accuracy or mAP"
    text, csv_text = two_tables(
        ["dataset", "weights", "mode", f"{score} % (mean +- std)", "95 % CI", "splits", "paper %",
         "per split"],
        ["dataset", "weights", "mode", "mean", "std", "ci_low", "ci_high", "n_splits", "paper",
         "splits", "metric"],
        lines,
    )  # fmt: skip
    if paired_rows(rows):
        text += "\nPaired comparisons on the same splits (a - b per split):\n\n"
        text += paired_table(rows)[0]
    if protocol:
        text += "\nEpoch selection (test accuracy %, mean +- std [95 % CI]):\n\n"
        text += protocol_table(protocol)[0]
    return text, csv_text


@dataclass(frozen=True)
class ProtocolRow:
    """Per-epoch curves of one grid cell, for the epoch-selection table.

    Attributes:
        test_acc, val_acc: per split, accuracy % after each epoch (``val_acc`` ``None``
            without validation splits).
    """

    dataset: str
    weights: str
    mode: str
    splits: tuple[str, ...]
    test_acc: tuple[tuple[float, ...], ...]
    val_acc: tuple[tuple[float, ...], ...] | None

    @property
    def summary(self) -> ProtocolSummary:
        return protocol_summary(self.test_acc, self.val_acc)


def _curves(metrics: Path) -> tuple[tuple[float, ...], tuple[float, ...] | None] | None:
    """(test, validation) accuracy per epoch, or ``None`` if some epoch has no test accuracy."""
    records = read_metrics(metrics)
    if not records or any("test_acc" not in rec for rec in records):
        return None
    test = tuple(float(rec["test_acc"]) for rec in records)
    val = tuple(float(rec["val_acc"]) for rec in records if "val_acc" in rec)
    return test, (val if len(val) == len(test) else None)


def collect_protocol(out_dir: Path, label: str = "", warn: Warn | None = None) -> list[ProtocolRow]:
    """Per-epoch curves of every finished grid cell under ``out_dir`` whose splits all logged
    the test accuracy after every epoch (``eval_every=1``, the default) for at least two
    epochs (a fitted probe's single record has no epoch to choose); ``label`` and ``warn`` as
    in :func:`collect_results`."""
    rows = []
    for (ds, w, mode), refs in sorted(run_cells(out_dir, label, warn=warn).items()):
        curves = [_curves(r.dir / METRICS) if (r.dir / METRICS).exists() else None for r in refs]
        if any(c is None or len(c[0]) < 2 for c in curves):
            continue
        tests = tuple(c[0] for c in curves if c is not None)
        vals = [c[1] for c in curves if c is not None]
        val_acc = tuple(v for v in vals if v is not None)
        rows.append(
            ProtocolRow(
                ds,
                w,
                mode,
                tuple(r.split for r in refs),
                tests,
                val_acc if len(val_acc) == len(tests) else None,
            )
        )
    return rows


def protocol_table(rows: Sequence[ProtocolRow]) -> tuple[str, str]:
    """(Markdown, CSV): test accuracy with the epoch chosen on the test fold (an optimistic,
    invalid protocol), the final epoch and the best-validation epoch; ``inflation`` is the
    first minus the second."""
    lines = []
    for r in rows:
        p = r.summary
        bv, bv_mean, bv_std = (
            ("-", "", "")
            if p.best_val is None
            else (format_summary(p.best_val), f"{p.best_val.mean:.4f}", f"{p.best_val.std:.4f}")
        )
        lines.append(
            (
                [r.dataset, r.weights, r.mode, format_summary(p.oracle), format_summary(p.final),
                 bv, f"{p.inflation:+.2f}"],
                [r.dataset, r.weights, r.mode, p.final.n, f"{p.oracle.mean:.4f}",
                 f"{p.oracle.std:.4f}", f"{p.final.mean:.4f}", f"{p.final.std:.4f}",
                 bv_mean, bv_std, f"{p.inflation:.4f}", ";".join(map(str, p.oracle_epochs)),
                 "" if p.best_val_epochs is None else ";".join(map(str, p.best_val_epochs))],
            )
        )  # fmt: skip
    return two_tables(
        ["dataset", "weights", "mode", "best epoch on test", "final epoch", "best val epoch",
         "inflation"],
        ["dataset", "weights", "mode", "n_splits", "oracle_mean", "oracle_std", "final_mean",
         "final_std", "best_val_mean", "best_val_std", "inflation", "oracle_epochs",
         "best_val_epochs"],
        lines,
    )  # fmt: skip


def write_tables(
    out_dir: Path, rows: Sequence[Row], protocol: Sequence[ProtocolRow] = (), header: str = ""
) -> tuple[str, str, list[Path]]:
    """Write ``results.md`` (``header`` + :func:`results_table`), ``results.csv`` and, when
    they have rows, ``paired.csv`` (:func:`paired_table`) and ``protocol.csv``
    (:func:`protocol_table`) into ``out_dir``, atomically.

    Returns:
        The Markdown, the results CSV and the paths written.
    """
    from soundtransfer.runs import atomic_write_text

    out_dir = Path(out_dir)
    md, csv_text = results_table(rows, protocol)
    files = {"results.md": header + md, "results.csv": csv_text}
    if paired_rows(rows):
        files["paired.csv"] = paired_table(rows)[1]
    if protocol:
        files["protocol.csv"] = protocol_table(protocol)[1]
    written = []
    for name, text in files.items():
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    return header + md, csv_text, written
