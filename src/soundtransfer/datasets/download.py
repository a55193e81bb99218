"""Download the official archives, verify them, extract them and arrange the official layout.

``download(name, root)`` leaves ``root`` in the layout :func:`load_dataset` reads:

1. an existing copy that :func:`load_dataset` reads is used in place (nothing is downloaded);
2. the archive is streamed to ``root/downloads/<file>.part``; an interrupted download resumes
   from the ``.part`` file with an HTTP ``Range`` request (from a seek for ``file://`` URLs;
   a server that ignores ``Range`` makes it start again);
3. the checksum is verified (sha256, or the md5 Zenodo publishes); on a mismatch
   :class:`DownloadError` names the file and both digests and the file is kept as ``.bad``;
4. the zip / tar.gz is extracted, refusing members that would land outside the target
   (``../``, absolute paths, links), and the folder holding the dataset (found by its metadata
   file) is moved to ``root``; the archive and the extraction folder are then deleted.

Sources (:data:`ARCHIVES`):

- ESC-50 / ESC-10: the GitHub archive of the official repository (karoldvl/ESC-50, now
  karolpiczak/ESC-50). GitHub builds it on request, so there is no fixed checksum; the layout
  check after extraction is the guard. CC BY-NC 3.0 (ESC-10 clips CC BY).
- UrbanSound8K: Zenodo record 1203745, with the md5 Zenodo lists. CC BY-NC 3.0.
- GTZAN: ``genres.tar.gz`` at the URL torchaudio recorded, with its sha256. Its first host no
  longer serves it and copies circulate elsewhere (often re-packed, e.g. as
  ``genres_original/`` WAVs, which have other checksums): pass ``url=`` with a mirror of the
  original file (the recorded sha256 is still checked), or ``sha256=`` for a re-packed copy,
  or place an extracted copy under ``root`` yourself.
"""

from __future__ import annotations

import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from soundtransfer.datasets import load_dataset
from soundtransfer.datasets.clips import ClipTable
from soundtransfer.errors import DatasetError, DownloadError
from soundtransfer.fetch import extract, fetch_url, move_tree


@dataclass(frozen=True)
class Archive:
    """Where a dataset's official archive is and how to check and unpack it.

    Attributes:
        url: official download URL.
        filename: name of the archive file on disk.
        sha256: expected sha256 (hex), or None when the source publishes none.
        md5: expected md5 (hex) as published (Zenodo), checked when no sha256 is given.
        marker: a path that identifies the dataset root inside the extracted archive.
        licence: the dataset's licence.
        note: what a user should know about the source.
    """

    url: str
    filename: str
    marker: str
    sha256: str | None = None
    md5: str | None = None
    licence: str = ""
    note: str = ""


_ESC50 = Archive(
    url="https://github.com/karoldvl/ESC-50/archive/master.zip",
    filename="ESC-50-master.zip",
    marker="meta/esc50.csv",
    licence="CC BY-NC 3.0 (ESC-10 clips: CC BY 3.0)",
    note="GitHub builds this archive on request: no fixed checksum (the layout is checked)",
)
ARCHIVES: dict[str, Archive] = {
    "esc50": _ESC50,
    "esc10": _ESC50,
    "us8k": Archive(
        url="https://zenodo.org/records/1203745/files/UrbanSound8K.tar.gz",
        filename="UrbanSound8K.tar.gz",
        marker="metadata/UrbanSound8K.csv",
        md5="9aa69802bbf37fb986f71ec1483a196e",
        licence="CC BY-NC 3.0",
        note="Zenodo record 1203745 (about 6 GB); md5 as listed by Zenodo",
    ),
    "gtzan": Archive(
        url="http://opihi.cs.uvic.ca/sound/genres.tar.gz",
        filename="genres.tar.gz",
        marker="genres",
        sha256="24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6",
        licence="research use (no explicit licence)",
        note="the original host no longer serves it: pass --url with a mirror of the same file "
        "(sha256 still checked) or --sha256 for a re-packed copy",
    ),
}


def _dataset_dir(staging: Path, markers: tuple[str, ...], archive: Path) -> Path:
    """The folder at most two levels under ``staging`` holding one of ``markers``."""
    candidates = [staging, *sorted(p for p in staging.iterdir() if p.is_dir())]
    candidates += [q for p in candidates[1:] for q in sorted(p.iterdir()) if q.is_dir()]
    for folder in candidates:
        if any((folder / m).exists() for m in markers):
            return folder
    raise DownloadError(f"{archive}: no {' or '.join(markers)} inside the archive")


def _install(name: str, arc: Archive, archive: Path, root: Path) -> ClipTable:
    """Extract ``archive`` into a staging folder under ``root/downloads``, check that it holds a
    readable dataset, then move it into ``root``.

    On any failure nothing extracted stays behind: the staging folder is removed and what was
    already moved into ``root`` is taken out again, so ``root`` keeps only what it held
    before and the fetched archive (a rerun does not download again).
    """
    staging = archive.parent / f"extracted-{name}"
    if staging.exists():
        shutil.rmtree(staging)  # left by an earlier, interrupted extraction
    moved: list[Path] = []
    try:
        extract(archive, staging)
        markers = (arc.marker, "genres_original") if name == "gtzan" else (arc.marker,)
        found = _dataset_dir(staging, markers, archive)
        _readable(name, found, archive)  # before anything lands in root
        moved = move_tree(found, root)
        return _readable(name, root, archive)
    except BaseException:
        for path in moved:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _readable(name: str, folder: Path, archive: Path) -> ClipTable:
    try:
        return load_dataset(name, folder)
    except DatasetError as exc:
        raise DownloadError(f"{archive}: extracted, but not a readable {name}: {exc}") from None


def download(
    name: str,
    root: str | Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> ClipTable:
    """Make ``root`` a readable copy of dataset ``name``, downloading only if needed.

    Args:
        name: ``esc50``, ``esc10``, ``us8k`` or ``gtzan``.
        root: dataset root; the archive is staged in ``root/downloads/``.
        url: a mirror of the official archive (``http(s)://`` or ``file://``).
        sha256: expected sha256 of the file at ``url`` (replaces the recorded checksum).
        progress: show a progress bar.

    Returns:
        The dataset's clip table, read from ``root``.

    Raises:
        DatasetError: an unknown dataset name.
        DownloadError: the URL cannot be read, the checksum does not match, the archive is
            unsafe or not an archive, or the extracted files are not a readable dataset.
    """
    if name not in ARCHIVES:
        raise DatasetError(f"unknown dataset {name!r}; choose from {list(ARCHIVES)}")
    root = Path(root).expanduser()
    try:
        return load_dataset(name, root)
    except DatasetError:
        pass  # absent or incomplete: download
    arc = ARCHIVES[name]
    source = url or arc.url
    filename = Path(urllib.parse.urlparse(source).path).name or arc.filename
    downloads = root / "downloads"
    archive = fetch_url(
        source,
        downloads / filename,
        sha256=sha256 or arc.sha256,
        md5=None if sha256 else arc.md5,
        progress=progress,
    )
    table = _install(name, arc, archive, root)
    archive.unlink()
    if not any(downloads.iterdir()):
        downloads.rmdir()
    return table
