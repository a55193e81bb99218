"""Resumable downloads with checksums and safe archive extraction (datasets and weights).

``fetch_url`` streams to ``<dest>.part``, resumes it with an HTTP Range request (or a seek for
``file://`` URLs), verifies the sha256 (or md5) and renames into place; a mismatching file is
kept as ``<dest>.bad`` for inspection and a :class:`DownloadError` names both digests.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import shutil
import stat
import tarfile
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from soundtransfer.errors import DownloadError, OutputError
from soundtransfer.runs.files import is_disk_full, no_space_message

CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _open(url: str, offset: int) -> tuple[object, int | None, bool]:
    """Open ``url`` at byte ``offset``: (stream, total size or None, resumed?)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if not path.exists():
            raise DownloadError(f"{url}: no such file")
        fh = path.open("rb")
        fh.seek(offset)
        return fh, path.stat().st_size, True
    req = urllib.request.Request(url, headers={"User-Agent": "soundtransfer"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(req, timeout=60)
    except OSError as exc:
        raise DownloadError(f"{url}: {exc}") from None
    resumed = offset > 0 and getattr(resp, "status", 200) == 206
    length = resp.headers.get("Content-Length")
    total = int(length) + (offset if resumed else 0) if length else None
    return resp, total, resumed


def fetch_url(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``) and verify its checksum.

    An existing ``dest`` whose checksum matches is returned without downloading.

    Raises:
        DownloadError: the URL cannot be read, or the checksum does not match.
        OutputError: the disk is full (what was fetched is kept for a rerun to resume).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and _verify(dest, sha256, md5, raise_=False):
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    stream, total, resumed = _open(url, offset)
    if not resumed:
        offset = 0
    with (
        part.open("ab" if offset else "wb") as out,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            desc=dest.name,
            disable=not progress,
        ) as bar,
    ):
        try:
            while True:
                block = stream.read(CHUNK)  # type: ignore[attr-defined]
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
        except OSError as exc:
            if is_disk_full(exc):  # what was fetched stays in the .part file
                raise OutputError(no_space_message(part)) from None
            raise DownloadError(f"{url}: interrupted ({exc}); run again to resume") from None
        finally:
            stream.close()  # type: ignore[attr-defined]
    part.replace(dest)
    _verify(dest, sha256, md5, raise_=True)
    return dest


def _verify(path: Path, sha256: str | None, md5: str | None, raise_: bool) -> bool:
    for algo, want in (("sha256", sha256), ("md5", md5)):
        if not want:
            continue
        got = file_digest(path, algo)
        if got != want.lower():
            if not raise_:
                return False
            bad = path.with_name(path.name + ".bad")
            path.replace(bad)
            raise DownloadError(
                f"{path}: {algo} mismatch (expected {want}, got {got}); kept as {bad}"
            )
    return True


def extract(archive: Path, dest: Path) -> Path:
    """Extract a zip or tar(.gz) archive into ``dest``: regular files and directories only.

    Every member is checked before anything is written, so a refused archive leaves ``dest``
    as it was. These are our own checks and our own writes, never ``extractall``
    (``tarfile``'s ``filter=`` is absent from early 3.10 and 3.11 patch releases):

    - a name that is absolute or leaves ``dest`` (``..``, or through an existing link) is
      refused;
    - a symbolic or hard link becomes a copy of the regular file it names, and is refused
      when it points outside the archive's tree or at no regular file in it;
    - devices, FIFOs and other special members are refused;
    - modes keep the read and execute bits and the owner's write bit only (no setuid,
      setgid, sticky, group- or world-writable); owners are never changed.

    Raises:
        DownloadError: not a zip or tar archive, an unsafe member (named), or a write failure.
        OutputError: the disk is full.
    """
    if zipfile.is_zipfile(archive):
        plan = _zip_plan(archive)
    elif tarfile.is_tarfile(archive):
        plan = _tar_plan(archive)
    else:
        raise DownloadError(f"{archive}: not a zip or tar archive")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for item in plan:
        target = (root / item.name).resolve()
        if target != root and root not in target.parents:
            raise DownloadError(f"{archive}: member {item.name!r} would be written outside {dest}")
    try:
        with _member_reader(archive) as read:
            for item in plan:
                target = root / item.name
                if item.source is None:
                    target.mkdir(parents=True, exist_ok=True)
                    target.chmod(_safe_mode(item.mode, directory=True))
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)  # a duplicate member replaces the first
                with read(item.source) as src, target.open("xb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                target.chmod(_safe_mode(item.mode, directory=False))
                os.utime(target, (item.mtime, item.mtime))
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        if is_disk_full(exc):
            raise OutputError(no_space_message(dest)) from None
        raise DownloadError(f"{archive}: cannot extract ({exc})") from None
    return dest


@dataclass(frozen=True)
class _Item:
    """One thing :func:`extract` writes.

    Attributes:
        name: normalised relative POSIX path under the target folder.
        mode: permission bits from the archive (made safe when written).
        source: index of the member whose bytes fill the file; None for a directory.
        mtime: modification time to set, s since the epoch.
    """

    name: str
    mode: int
    source: int | None
    mtime: float = 0.0


@dataclass(frozen=True)
class _Member:
    """What the checks need of one archive member (tar or zip)."""

    raw_name: str
    kind: str  # "file", "dir", "link" or the name of a refused kind ("device", "FIFO" ...)
    mode: int
    mtime: float
    link: str | None = None  # a link's target as stored
    symbolic: bool = True


_LINK_DEPTH = 32  # links followed through other links before calling it a loop


def _normalise(archive: Path, name: str) -> str:
    """A member name as a normalised relative POSIX path; DownloadError if it leaves."""
    clean = posixpath.normpath(name.replace("\\", "/"))
    if clean.startswith(("/", "..")) or re.match(r"^[A-Za-z]:", clean):
        raise DownloadError(f"{archive}: member {name!r} would be written outside the target")
    return "" if clean == "." else clean


def _link_target(archive: Path, name: str, link: str, symbolic: bool) -> str:
    """The normalised member name a link points to: a symbolic link relative to its folder,
    a hard link to the archive's root; DownloadError if that leaves the archive's tree."""
    joined = posixpath.join(posixpath.dirname(name), link) if symbolic else link
    clean = posixpath.normpath(joined.replace("\\", "/"))
    if link.startswith(("/", "\\")) or clean.startswith("..") or re.match(r"^[A-Za-z]:", link):
        raise DownloadError(f"{archive}: link {name!r} -> {link!r} points outside the archive")
    return clean


def _plan(archive: Path, members: list[_Member]) -> list[_Item]:
    """Check every member (names, kinds, links) and list what to write, in archive order."""
    names = [_normalise(archive, m.raw_name) for m in members]
    last: dict[str, int] = {}  # name -> index of its last member (later ones replace earlier)
    for k, (m, name) in enumerate(zip(members, names, strict=True)):
        if m.kind not in ("file", "dir", "link"):
            raise DownloadError(
                f"{archive}: member {m.raw_name!r} is a {m.kind}; only regular files, "
                "directories and links inside the archive are allowed"
            )
        last[name] = k
    plan = []
    for m, name in zip(members, names, strict=True):
        if m.kind == "dir":
            if name:
                plan.append(_Item(name, m.mode, None))
            continue
        if not name:
            raise DownloadError(f"{archive}: member {m.raw_name!r} is not a file name")
        source = last[name]
        for _ in range(_LINK_DEPTH):
            src = members[source]
            if src.kind != "link":
                break
            target = _link_target(archive, src.raw_name, src.link or "", src.symbolic)
            if target not in last or members[last[target]].kind == "dir":
                raise DownloadError(
                    f"{archive}: link {m.raw_name!r} -> {m.link!r} names no regular file in "
                    "the archive"
                )
            source = last[target]
        else:
            raise DownloadError(f"{archive}: link {m.raw_name!r} is part of a loop of links")
        plan.append(_Item(name, members[source].mode, source, m.mtime))
    return plan


def _tar_plan(archive: Path) -> list[_Item]:
    """The checked plan for a tar archive (see :func:`extract`)."""
    try:
        with tarfile.open(archive) as tf:
            infos = tf.getmembers()
    except (OSError, tarfile.TarError) as exc:
        raise DownloadError(f"{archive}: cannot read the tar archive ({exc})") from None
    members = []
    for t in infos:
        if t.isreg():
            kind = "file"
        elif t.isdir():
            kind = "dir"
        elif t.issym() or t.islnk():
            kind = "link"
        else:
            kind = "device" if t.ischr() or t.isblk() else "FIFO" if t.isfifo() else "special file"
        members.append(_Member(t.name, kind, t.mode, float(t.mtime), t.linkname, t.issym()))
    return _plan(archive, members)


def _zip_plan(archive: Path) -> list[_Item]:
    """The checked plan for a zip archive (see :func:`extract`).

    Unix file types and permissions come from the upper 16 bits of ``external_attr`` when
    the archive was made on Unix; a symbolic link member holds its target as its data.
    """
    members = []
    try:
        with zipfile.ZipFile(archive) as zf:
            for i in zf.infolist():
                st_mode = _zip_st_mode(i)
                mtime = time.mktime((*i.date_time, 0, 0, -1))
                perm = stat.S_IMODE(st_mode)
                if stat.S_ISLNK(st_mode):
                    link = zf.read(i).decode("utf-8", "replace")
                    members.append(_Member(i.filename, "link", perm, mtime, link))
                elif i.is_dir() or stat.S_ISDIR(st_mode):
                    members.append(_Member(i.filename, "dir", perm or 0o755, mtime))
                elif stat.S_IFMT(st_mode) and not stat.S_ISREG(st_mode):  # 0: no type stored
                    members.append(_Member(i.filename, "special file", perm, mtime))
                else:
                    members.append(_Member(i.filename, "file", perm or 0o644, mtime))
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        raise DownloadError(f"{archive}: cannot read the zip archive ({exc})") from None
    return _plan(archive, members)


def _zip_st_mode(info: zipfile.ZipInfo) -> int:
    """The Unix ``st_mode`` stored in a zip member (0 when not made on Unix)."""
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _safe_mode(mode: int, *, directory: bool) -> int:
    """``mode`` without setuid/setgid/sticky and group/other write; the owner may read and
    write (and enter, for a directory)."""
    return (mode & 0o755) | (0o700 if directory else 0o600)


@contextlib.contextmanager
def _member_reader(archive: Path) -> Iterator[Callable[[int], IO[bytes]]]:
    """Open ``archive`` once and yield ``read(k)``: a stream of member ``k``'s bytes."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            yield lambda k: zf.open(infos[k])
        return
    with tarfile.open(archive) as tf:
        tar_infos = tf.getmembers()

        def read(k: int) -> IO[bytes]:
            stream = tf.extractfile(tar_infos[k])
            if stream is None:  # not a regular file: ruled out by the plan
                raise DownloadError(f"{archive}: member {tar_infos[k].name!r} has no data")
            return stream

        yield read


def move_tree(src: Path, dest: Path) -> list[Path]:
    """Move the contents of ``src`` into ``dest`` (used to flatten an archive's top folder);
    what ``dest`` already holds is kept. Returns the paths created in ``dest``, so a caller
    can take them out again."""
    dest.mkdir(parents=True, exist_ok=True)
    moved = []
    for item in sorted(src.iterdir()):
        target = dest / item.name
        if not target.exists():
            shutil.move(str(item), str(target))
            moved.append(target)
    return moved
