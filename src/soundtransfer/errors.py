"""Exceptions raised where a fault is found; the CLI prints them as one line, exit code 2."""

from __future__ import annotations


class SoundTransferError(Exception):
    """Base class: a user-facing error whose message names the file or setting at fault."""


class AudioError(SoundTransferError):
    """A clip that cannot be used: missing, empty, corrupt, truncated, silent or non-finite."""


class DatasetError(SoundTransferError):
    """A dataset layout or metadata problem: missing files, bad labels or folds."""


class DownloadError(SoundTransferError):
    """A download that failed, or a file whose checksum does not match."""


class WeightsError(SoundTransferError):
    """An unknown weight source, a missing or mismatched checkpoint."""


class RunError(SoundTransferError):
    """A training or experiment run that cannot proceed (bad resume state, non-finite loss)."""


class ConfigError(SoundTransferError, ValueError):
    """A setting that does not exist, does not parse or is out of range; the message names it."""


class OutputError(SoundTransferError):
    """An output path that cannot be written safely: one of the inputs, outside the folder
    the user named, or a disk that is full."""


def brief(text: str, limit: int = 120) -> str:
    """The first sentence of the first line of ``text`` (a library's message, to quote inside
    ours), cut at a word boundary with ``...`` when longer than ``limit`` characters."""
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    line = line.split(". ")[0].rstrip(".")
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0] + " ..."
