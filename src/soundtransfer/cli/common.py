"""Arguments shared by several commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtransfer.config import ConfigError
from soundtransfer.datasets.clips import BACKGROUND_FOLDERS  # light: no numpy or audio

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


DATASET_HELP = (
    "an official dataset (esc50, esc10, us8k, gtzan; with --root) or your own data: a folder "
    "ROOT/<class>/**/*.{wav,flac,ogg,mp3,...} or a .csv/.tsv with file,label and optional "
    "fold, group, split columns (paths relative to the CSV)"
)


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    """The dataset (a name or a path) and how it is read, split into folds and checked."""
    p.add_argument("dataset", help=DATASET_HELP)
    p.add_argument(
        "--root", type=Path, default=None, help="root of an official dataset (official layout)"
    )
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
    g = p.add_argument_group(
        "own data",
        "folds of a folder or CSV without a fold/split column (ESC-50-style names keep their "
        "folds): stratified, grouped by recording, seeded; written to each run's config.json",
    )
    g.add_argument("--n-folds", type=int, default=5, help="number of folds (default 5)")
    g.add_argument("--fold-seed", type=int, default=0, help="seed of the folds (default 0)")
    g.add_argument(
        "--split",
        default=None,
        metavar="TRAIN,VALID,TEST",
        help="one train/valid/test split of these fractions instead of k folds, e.g. 0.7,0.15,0.15",
    )
    g.add_argument(
        "--group-level",
        type=int,
        default=None,
        metavar="N",
        help="a folder tree ROOT/<class>/<a>/<b>/...: the folder N levels below the class "
        "folder is the group (1: <a>); files of one group stay in one fold (default: "
        "ROOT/groups.csv if present, else the recording id in the names)",
    )
    add_window_args(g)
    g.add_argument(
        "--background-folders",
        default=",".join(BACKGROUND_FOLDERS),
        metavar="A,B",
        help="class folders holding 'no event' clips, any case (default: "
        f"{','.join(BACKGROUND_FOLDERS)}; 'none': no such folders): negatives of a multi-label "
        "tree, a class predict never reports in a single-label one",
    )
    g.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="the same or nearly the same audio in two folds is an error (it inflates the "
        "accuracy); with this flag it is listed as a warning and kept",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_window_args(g: Any) -> None:
    """Options for annotated recordings (a folder of audio with Raven / Audacity tables)."""
    g.add_argument(
        "--label-column",
        default=None,
        metavar="NAME",
        help="annotated recordings: the Raven column holding the classes",
    )
    g.add_argument(
        "--min-overlap",
        default=None,
        metavar="50%|0.25s",
        help="annotated recordings: how much of a box a window must hold to get "
        "its class, a fraction of the box (50%%, default) or seconds (0.25s)",
    )
    g.add_argument(
        "--window",
        type=float,
        default=None,
        metavar="S",
        help="annotated recordings: window length in seconds (default: from the boxes)",
    )
    g.add_argument(
        "--hop",
        type=float,
        default=None,
        metavar="S",
        help="annotated recordings: seconds between windows (default: half the window)",
    )


def window_options(args: argparse.Namespace) -> Any:
    """The :class:`~soundtransfer.datasets.annotations.WindowOptions` of ``--label-column``,
    ``--min-overlap``, ``--window``, ``--hop`` (None when none is given)."""
    from soundtransfer.datasets.annotations import MinOverlap, WindowOptions

    names = ("label_column", "min_overlap", "window", "hop")
    if all(getattr(args, n, None) is None for n in names):
        return None
    fields: dict[str, Any] = {
        "label_column": args.label_column,
        "window_s": args.window,
        "hop_s": args.hop,
    }
    if args.min_overlap is not None:
        try:
            fields["min_overlap"] = MinOverlap.parse(args.min_overlap)
        except ConfigError as exc:
            raise ConfigError(f"--min-overlap: {exc}") from None
    try:
        return WindowOptions(**fields)
    except ConfigError as exc:
        raise ConfigError(f"--window / --hop: {exc}") from None


def parse_split(text: str | None) -> tuple[float, float, float] | None:
    """``--split 0.7,0.15,0.15`` as three floats."""
    if not text:
        return None
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--split expects TRAIN,VALID,TEST fractions, got {text!r}") from None
    if len(parts) != 3:
        raise ConfigError(f"--split expects 3 fractions TRAIN,VALID,TEST, got {text!r}")
    return (parts[0], parts[1], parts[2])


def parse_background(text: str) -> tuple[str, ...]:
    """``--background-folders a,b`` as names (``none``: no background folders).

    Raises:
        ConfigError: an empty name (``a,,b``, ``""``).
    """
    if text.strip().lower() == "none":
        return ()
    names = tuple(n.strip() for n in text.split(","))
    if any(not n for n in names):
        raise ConfigError(
            f"--background-folders expects comma-separated folder names (or 'none'), got {text!r}"
        )
    return names


def progress(args: argparse.Namespace) -> bool:
    """Progress bars: unless ``--quiet``, and only when stderr is a terminal (a log file or a
    pipe would get every redraw of every bar)."""
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
    build: Any = None,
    distributed: bool = False,
    report: bool = True,
) -> Any:
    """The feature store of the common dataset arguments (:func:`~soundtransfer.features.
    dataset_store`), computed with ``build`` (a :class:`~soundtransfer.features.BuildOptions`,
    its defaults if None) and ``--skip-bad``; what was read, the folds, the front end and the
    leakage report are printed on stdout (by the main process) unless ``report`` is False."""
    from dataclasses import replace

    from soundtransfer.datasets.own import ReadOptions
    from soundtransfer.distributed import torchrun_slot
    from soundtransfer.features import BuildOptions, dataset_store

    if args.n_folds < 2:
        raise ConfigError(f"--n-folds must be at least 2, got {args.n_folds}")
    level = getattr(args, "group_level", None)
    if level is not None and level < 1:
        raise ConfigError(f"--group-level must be at least 1, got {level}")
    read = ReadOptions(
        n_folds=args.n_folds,
        seed=args.fold_seed,
        split=parse_split(args.split),
        group_level=level,
        windows=window_options(args),
        background=parse_background(getattr(args, "background_folders", "none")),
    )
    build = replace(build or BuildOptions(), skip_bad=args.skip_bad, progress=progress(args))
    return dataset_store(
        args.dataset,
        args.root,
        read=read,
        build=build,
        frontend_overrides=args.frontend_overrides,
        missing=args.missing,
        cache_dir=args.cache,
        allow_duplicates=args.allow_duplicates,
        distributed=distributed,
        warn=warn,
        report=print if report and torchrun_slot()[0] == 0 else None,
    )
