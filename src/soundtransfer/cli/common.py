"""Arguments shared by several commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtransfer.config import ConfigError


def add_set_arg(p: argparse.ArgumentParser, help: str, dest: str = "overrides") -> None:
    """``--set KEY=VALUE`` (repeatable): ``key=value`` overrides of a settings dataclass."""
    p.add_argument("--set", dest=dest, action="append", default=[], metavar="KEY=VALUE", help=help)


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=["esc50", "esc10", "us8k", "gtzan"], help="dataset")
    p.add_argument("--root", type=Path, required=True, help="dataset root (official layout)")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache for features, embeddings and weights "
        "(default: $SOUNDTRANSFER_CACHE or ~/.cache/soundtransfer)",
    )
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
    p.add_argument(
        "--frontend",
        dest="frontend_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a front-end setting, e.g. --frontend n_mels=64 (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def parse_folds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise ConfigError(f"--folds expects comma-separated integers, got {text!r}") from None


def open_store(
    args: argparse.Namespace,
    device: str = "cpu",
    batch_size: int = 32,
    workers: int = 2,
    distributed: bool = False,
) -> Any:
    """Load the dataset and build (or open) its feature store from the common arguments
    (``distributed``: with the other ranks of the process group, see ``build_features``)."""
    from soundtransfer.audio.presets import get_preset
    from soundtransfer.config import override
    from soundtransfer.datasets import load_dataset
    from soundtransfer.features import build_features

    table = load_dataset(args.dataset, args.root, missing=args.missing)
    for note in table.notes:
        print(f"note: {note}", file=sys.stderr)
    frontend = get_preset(args.dataset)
    if args.frontend_overrides:
        frontend = override(frontend, args.frontend_overrides)
    store = build_features(
        table,
        frontend,
        args.cache,
        batch_size=batch_size,
        device=device,
        workers=workers,
        skip_bad=args.skip_bad,
        progress=progress(args),
        distributed=distributed,
    )
    if store.resumed:
        print(
            f"note: resumed an unfinished feature store: {store.resumed} of {len(table)} clips "
            "were computed by an earlier run",
            file=sys.stderr,
        )
    if store.bad:
        print(
            f"warning: {len(store.bad)} bad clip(s) left out, listed in {store.dir / 'bad.json'}",
            file=sys.stderr,
        )
    return store
