"""``soundtransfer`` command line: parse, call one library function, print.

Each subcommand lives in its own module under ``soundtransfer.cli`` exposing
``register(subparsers)``; the handler it sets receives the parsed namespace and returns an exit
code. Library errors (:class:`~soundtransfer.errors.SoundTransferError`) become one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from soundtransfer import __version__
from soundtransfer.errors import SoundTransferError

# Subcommand modules, in the order of the workflow.
COMMANDS = (
    "download",
    "features",
    "weights",
    "pretrain",
    "finetune",
    "linear_eval",
    "reproduce",
    "figures",
    "predict",
    "export",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundtransfer",
        description="Sound classification as transfer learning from natural images.",
    )
    parser.add_argument("--version", action="version", version=f"soundtransfer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"soundtransfer.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except SoundTransferError as exc:
        print(f"soundtransfer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"soundtransfer {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
