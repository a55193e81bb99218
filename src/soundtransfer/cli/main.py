"""``soundtransfer`` command line: parse, call one library function, print.

Each subcommand lives in its own module under ``soundtransfer.cli`` exposing
``register(subparsers)``; the handler it sets receives the parsed namespace and returns an exit
code. Library errors (:class:`~soundtransfer.errors.SoundTransferError`) become one line on
stderr and exit code 2, and so do the file system's refusals that reach here: a full disk
(named by the file being written wherever the library knows it, see
:mod:`soundtransfer.runs.files`) and an ``OSError`` naming its file (permission denied, a
read-only file system, a folder where a file was expected).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from soundtransfer import __version__
from soundtransfer.errors import SoundTransferError

DISK_FULL = (28, 122)  # ENOSPC, EDQUOT (Linux); errno is not imported at start-up for this


def one_line(message: str) -> str:
    """``message`` on one line (a library's text quoted inside ours may hold line breaks)."""
    return " ".join(message.split()) if "\n" in message or "\r" in message else message


def os_error_line(exc: OSError) -> str | None:
    """The one line for an ``OSError`` from the file system, or None when it names no file
    and is not a full disk (a bug to be seen with its traceback)."""
    name = exc.filename
    if exc.errno in DISK_FULL:
        where = f"{name}: " if name else ""
        return f"{where}no space left on device; free some space and run again"
    if name is None:
        return None
    extra = f" -> {exc.filename2}" if exc.filename2 else ""
    return f"{name}{extra}: {exc.strerror or type(exc).__name__}"


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
    "ensemble",
    "predict",
    "review",
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


def _discard_unstarted_runs() -> None:
    """A failed command leaves no run directory that never produced results
    (:func:`soundtransfer.runs.rundir.discard_unstarted`); nothing to do when no run was opened
    (the module is then not even imported)."""
    rundir = sys.modules.get("soundtransfer.runs.rundir")
    if rundir is not None:
        rundir.discard_unstarted()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = _handle(args)
    except BaseException:  # a traceback: still take back what never started
        _discard_unstarted_runs()
        raise
    if code != 0:
        _discard_unstarted_runs()
    return code


def _handle(args: argparse.Namespace) -> int:
    """Run the command's handler; library errors and file-system refusals as one line."""
    try:
        code: int = args.handler(args)
    except SoundTransferError as exc:
        print(f"soundtransfer {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        line = os_error_line(exc)
        if line is None:
            raise
        print(f"soundtransfer {args.command}: error: {one_line(line)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"soundtransfer {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
