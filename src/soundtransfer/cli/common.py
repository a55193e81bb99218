"""Arguments shared by several commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtransfer.config import ConfigError

CACHE_HELP = (
    "cache root for features, weights and embeddings "
    "(default: $SOUNDTRANSFER_CACHE or ~/.cache/soundtransfer)"
)
FRONTEND_HELP = "override a front-end setting, e.g. --frontend n_mels=64 (repeatable)"


def add_cache_arg(p: argparse.ArgumentParser) -> None:
    """``--cache DIR``: the cache root, the same in every command."""
    p.add_argument("--cache", type=Path, default=None, help=CACHE_HELP)


def add_frontend_arg(p: argparse.ArgumentParser) -> None:
    """``--frontend KEY=VALUE`` (repeatable): front-end overrides, the same in every command."""
    p.add_argument(
        "--frontend",
        dest="frontend_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=FRONTEND_HELP,
    )


def add_set_arg(p: argparse.ArgumentParser, help: str, dest: str = "overrides") -> None:
    """``--set KEY=VALUE`` (repeatable): ``key=value`` overrides of a settings dataclass."""
    p.add_argument("--set", dest=dest, action="append", default=[], metavar="KEY=VALUE", help=help)


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=["esc50", "esc10", "us8k", "gtzan"], help="dataset")
    p.add_argument("--root", type=Path, required=True, help="dataset root (official layout)")
    add_cache_arg(p)
    p.add_argument(
        "--missing",
        choices=["error", "skip"],
        default="error",
        help="audio files named in the metadata but absent: stop (default) or leave out "
        "with a note",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave undecodable clips out and list them in the store's bad.json",
    )
    add_frontend_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def parse_folds(text: str | None) -> list[int] | None:
    """``--folds 1,2`` as a list; a repeated fold is an error (it would count twice)."""
    from soundtransfer.train.crossval import check_folds

    if not text:
        return None
    try:
        folds = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise ConfigError(f"--folds expects comma-separated integers, got {text!r}") from None
    return check_folds(folds)


def warn(message: str) -> None:
    """A note or warning line on stderr."""
    print(message, file=sys.stderr)


def open_store(
    args: argparse.Namespace,
    device: str = "cpu",
    batch_size: int = 32,
    workers: int = 2,
    distributed: bool = False,
) -> Any:
    """The feature store of the common dataset arguments (:func:`~soundtransfer.features.
    dataset_store`)."""
    from soundtransfer.features import dataset_store

    return dataset_store(
        args.dataset,
        args.root,
        frontend_overrides=args.frontend_overrides,
        cache_dir=args.cache,
        missing=args.missing,
        skip_bad=args.skip_bad,
        device=device,
        batch_size=batch_size,
        workers=workers,
        progress=progress(args),
        distributed=distributed,
        warn=warn,
    )
