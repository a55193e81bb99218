"""The baseline to beat on the mixtures: a single-label model's scores used as tags.

A single-label classifier trained on whole ESC-10 clips gives each test mixture a softmax
over its classes; read as tags (one score per class, ranked across the mixtures), they have
an mAP like any multi-label model's. :func:`single_label_tags_report` scores them against
the mixtures' true labels (:func:`read_mixtures` reads ``mixtures.csv`` of
``build_mixtures.py``), matching the model's classes to the mixtures' by name, so a model
with its classes in another order (ESC-10 target order vs sorted names) scores the same.

Usage::

    PYTHONPATH=src python benchmarks/multilabel/baseline.py BUNDLE mixtures.csv [--split test]

or from Python::

    mix = read_mixtures(Path("mixtures.csv"))
    test = mix.rows("test")
    scores = ...  # (len(test), K) softmax of the single-label bundle, one row per test file
    print(single_label_tags_report(scores, bundle_classes, mix, "test").summary())
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundtransfer.datasets.multilabel_folds import multi_hot
from soundtransfer.errors import DatasetError
from soundtransfer.tasks.multilabel_metrics import TaggingReport, tagging_report


@dataclass(frozen=True)
class Mixtures:
    """The rows of ``mixtures.csv``.

    Attributes:
        path: the CSV.
        files: audio file per row (relative to the CSV).
        labels: class names per row (empty tuple: no sound of interest).
        splits: ``train`` / ``valid`` / ``test`` per row.
        groups: group per row.
        classes: every class named in any split, sorted.
    """

    path: Path
    files: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    splits: tuple[str, ...]
    groups: tuple[str, ...]
    classes: tuple[str, ...]

    def rows(self, split: str) -> list[int]:
        """Row indices of one split, in file order."""
        return [i for i, s in enumerate(self.splits) if s == split]


def read_mixtures(path: Path) -> Mixtures:
    """Read ``mixtures.csv`` (``file``, ``labels`` joined by ``;``, ``split``, ``group``).

    Raises:
        DatasetError: a missing file or column, or an unknown split (naming the line).
    """
    if not path.is_file():
        raise DatasetError(f"{path}: not found")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [
            c for c in ("file", "labels", "split", "group") if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing}")
        rows = list(reader)
    for line, r in enumerate(rows, start=2):
        if r["split"] not in ("train", "valid", "test"):
            raise DatasetError(f"{path}: line {line}: split {r['split']!r} is not train/valid/test")
    labels = tuple(tuple(x for x in r["labels"].split(";") if x) for r in rows)
    return Mixtures(
        path,
        tuple(r["file"] for r in rows),
        labels,
        tuple(r["split"] for r in rows),
        tuple(r["group"] for r in rows),
        tuple(sorted({c for names in labels for c in names})),
    )


def single_label_tags_report(
    scores: np.ndarray, score_classes: Sequence[str], mixtures: Mixtures, split: str = "test"
) -> TaggingReport:
    """mAP, per-class AP and lwlrap of a single-label model's scores read as tags.

    Args:
        scores: (n, K) the model's class scores (softmax probabilities, or logits: only
            their order matters) for the rows of ``split``, in file order.
        score_classes: the model's K class names (its output order).
        mixtures: the mixtures read by :func:`read_mixtures`.
        split: the split the scores are for.

    Returns:
        The report over ``mixtures.classes`` (a class of the model the mixtures never name is
        not scored).

    Raises:
        ValueError: a row count that is not the split's, or a mixture class the model lacks.
    """
    rows = mixtures.rows(split)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape != (len(rows), len(score_classes)):
        want = f"({len(rows)} {split} mixtures, {len(score_classes)} classes)"
        raise ValueError(f"scores {s.shape}: expected {want}")
    column = {name: k for k, name in enumerate(score_classes)}
    lacking = [c for c in mixtures.classes if c not in column]
    if lacking:
        raise ValueError(f"the model has no class {lacking}: it cannot tag them")
    aligned = s[:, [column[c] for c in mixtures.classes]]
    truth = multi_hot([mixtures.labels[i] for i in rows], mixtures.classes)
    return tagging_report(truth, aligned, mixtures.classes)


def bundle_scores(
    bundle: Path, mixtures: Mixtures, split: str = "test"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each ``split`` mixture's scores from a model bundle: the mean over its windows of the
    bundle's scores (softmax for a single-label bundle), and the bundle's class names.

    A mixture as long as the bundle's clip is one window, so the mean is that window's scores.
    """
    from soundtransfer.inference.predict import Predictor

    predictor = Predictor(bundle)
    root = mixtures.path.parent
    rows = []
    for i in mixtures.rows(split):
        probs = [w.probs for w in predictor.iter_windows(root / mixtures.files[i])]
        rows.append(np.mean(probs, axis=0))
    return np.stack(rows), tuple(predictor.meta.classes)


def main(argv: Sequence[str] | None = None) -> int:
    """``baseline.py BUNDLE MIXTURES_CSV [--split test]``: the bundle's scores on the split's
    mixtures read as tags; prints the tagging report and the time it took."""
    import argparse
    import sys
    import time

    from soundtransfer.errors import SoundTransferError

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle", type=Path, help="a single-label run's model.pt")
    ap.add_argument("mixtures", type=Path, help="mixtures.csv of build_mixtures.py")
    ap.add_argument("--split", default="test", choices=("train", "valid", "test"))
    args = ap.parse_args(argv)
    start = time.perf_counter()
    try:
        mixtures = read_mixtures(args.mixtures)
        scores, classes = bundle_scores(args.bundle, mixtures, args.split)
        report = single_label_tags_report(scores, classes, mixtures, args.split)
    except (SoundTransferError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = len(mixtures.rows(args.split))
    print(f"{args.bundle}: {n} {args.split} mixtures as tags: {report.summary()}")
    print(f"scored in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
