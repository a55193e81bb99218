"""``soundtransfer weights list|fetch``: the weight sources and the cache."""

from __future__ import annotations

import argparse
from typing import Any

from soundtransfer.cli.common import add_cache_arg, progress


def register(sub: Any) -> None:
    p = sub.add_parser("weights", help="list weight sources, fetch and convert them")
    wsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    lst = wsub.add_parser("list", help="every source, its licence and whether it is cached")
    add_cache_arg(lst)
    fetch = wsub.add_parser(
        "fetch", help="download (and convert from TensorFlow) a source into the cache"
    )
    fetch.add_argument("name", help="supervised, supervised-v2, simclr-v1, simclr-v2")
    fetch.add_argument(
        "--url",
        default=None,
        help="a mirror of the official file (checked against the official digest)",
    )
    fetch.add_argument(
        "--sha256", default=None, help="expected sha256 of the downloaded file (default: known)"
    )
    add_cache_arg(fetch)
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.weights import fetch_weights, list_sources

    if args.action == "list":
        for row in list_sources(args.cache):
            print(f"{row['name']:<14} {row['arch']:<19} {row['status']}")
            print(f"{'':<14} {row['description']}")
            if row["licence"]:
                print(f"{'':<14} licence: {row['licence']}")
        return 0
    path = fetch_weights(
        args.name, args.cache, url=args.url, sha256=args.sha256, progress=progress(args)
    )
    print(f"{args.name}: {path}")
    return 0
