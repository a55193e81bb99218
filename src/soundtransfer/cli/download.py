"""``soundtransfer download``: fetch a dataset from its official source (or list the sources)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtransfer.cli.common import progress
from soundtransfer.datasets import DATASETS


def register(sub: Any) -> None:
    p = sub.add_parser(
        "download",
        help="download, verify and extract a dataset (an existing copy is used in place)",
        description="Download a dataset's official archive (resuming a partial download), "
        "check its checksum, extract it safely and arrange the layout the loaders read. "
        "A root that already holds a readable copy is used as it is.",
    )
    p.add_argument("dataset", nargs="?", choices=DATASETS, help="dataset to download")
    p.add_argument("--root", type=Path, default=None, help="where the dataset goes")
    p.add_argument("--url", default=None, help="a mirror of the official archive")
    p.add_argument("--sha256", default=None, help="checksum of the file at --url")
    p.add_argument("--list", action="store_true", help="list the sources and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.datasets.download import ARCHIVES, download

    if args.list:
        for name, arc in ARCHIVES.items():
            check = f"sha256 {arc.sha256}" if arc.sha256 else f"md5 {arc.md5}" if arc.md5 else ""
            print(f"{name}: {arc.url}  {check or 'no checksum'}  [{arc.licence}]  {arc.note}")
        return 0
    if args.dataset is None or args.root is None:
        print("soundtransfer download: error: give DATASET and --root (or --list)", file=sys.stderr)
        return 2
    table = download(
        args.dataset, args.root, url=args.url, sha256=args.sha256, progress=progress(args)
    )
    print(f"{args.dataset}: {len(table)} clips, folds {list(table.folds)} at {table.root}")
    for note in table.notes:
        print(f"note: {note}")
    return 0
