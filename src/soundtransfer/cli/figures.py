"""``soundtransfer figures``: loss curves, confusion matrices, t-SNE and the results table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import add_cache_arg, add_frontend_arg, progress, warn


def register(sub: Any) -> None:
    p = sub.add_parser(
        "figures",
        help="figures and tables from runs directories (PNG + PDF)",
        description="Loss curves, confusion matrices, t-SNE and the results table (mean, "
        "std, 95 %% CI, paired tests, epoch selection). Several runs directories (e.g. "
        "--out paper and --out recipe runs of the same cells) go into one table, each mode "
        "named with its directory (finetune@paper, finetune@recipe), compared pairwise.",
    )
    p.add_argument("runs", type=Path, nargs="+", help="runs directory (one or more)")
    p.add_argument("--out", type=Path, default=Path("figures"))
    p.add_argument("--dataset", default=None, help="only this dataset")
    p.add_argument("--tsne-bundle", type=Path, default=None, help="model.pt for the t-SNE")
    p.add_argument(
        "--tsne-dataset",
        default=None,
        help="dataset of the t-SNE clips: an official name (with --root) or your own folder/CSV",
    )
    p.add_argument("--root", type=Path, default=None, help="root of an official --tsne-dataset")
    p.add_argument("--classes", default=None, help="comma-separated classes for the t-SNE")
    add_cache_arg(p)
    add_frontend_arg(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.analysis import make_figures, tsne_figure

    written = make_figures(args.runs, args.out, args.dataset, warn=warn)
    if args.tsne_bundle:
        from soundtransfer.config import ConfigError
        from soundtransfer.features import dataset_store

        if not args.tsne_dataset:
            raise ConfigError("--tsne-bundle needs --tsne-dataset (and --root for an official one)")
        store = dataset_store(  # only embedded and plotted: duplicates across folds do no harm
            args.tsne_dataset,
            args.root,
            frontend_overrides=args.frontend_overrides,
            cache_dir=args.cache,
            allow_duplicates=True,
            progress=progress(args),
            warn=warn,
        )
        classes = args.classes.split(",") if args.classes else None
        written += tsne_figure(args.tsne_bundle, store, args.out / "tsne", classes)
    for path in written:
        print(path)
    return 0
