"""Dataset downloads end to end: archives built here from real clips, served by file:// URLs
and by a loopback HTTP server that honours Range (resume), checksums, unsafe archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from soundtransfer.datasets import load_dataset
from soundtransfer.datasets.clips import ClipTable
from soundtransfer.datasets.download import ARCHIVES, download
from soundtransfer.datasets.gtzan import split_ids
from soundtransfer.datasets.urbansound8k import CLASSES as US8K_CLASSES
from soundtransfer.errors import DatasetError, DownloadError

GTZAN_SHA256 = "24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Server:
    """A loopback HTTP server over ``folder``; logs each GET's Range header and bytes sent."""

    url: str
    folder: Path
    honour_range: bool = True
    requests: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    folder = tmp_path / "served"
    folder.mkdir()
    state = Server("", folder)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = folder / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            rng = self.headers.get("Range", "")
            start = 0
            if rng and state.honour_range:
                start = int(rng.removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])
            state.requests.append((rng, len(data) - start))

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def us8k_tar(us8k_root: Path, dest: Path) -> Path:
    """``UrbanSound8K.tar.gz`` as on Zenodo, with one real clip per class of folds 1 and 10."""
    lines = (us8k_root / "metadata" / "UrbanSound8K.csv").read_text().splitlines()
    chosen: dict[tuple[str, str], str] = {}
    for line in lines[1:]:
        cols = line.split(",")
        chosen.setdefault((cols[5], cols[6]), line)
    text = "\n".join([lines[0], *chosen.values()]) + "\n"
    with tarfile.open(dest, "w:gz") as tf:
        info = tarfile.TarInfo("UrbanSound8K/metadata/UrbanSound8K.csv")
        info.size = len(text.encode())
        tf.addfile(info, io.BytesIO(text.encode()))
        for line in chosen.values():
            name, fold = line.split(",")[0], line.split(",")[5]
            rel = f"audio/fold{fold}/{name}"
            tf.add(us8k_root / rel, f"UrbanSound8K/{rel}")
    return dest


def gtzan_tar(dest: Path) -> Path:
    """``genres.tar.gz`` laid out like the original (``genres/<genre>/<id>.au``), empty clips."""
    with tarfile.open(dest, "w:gz") as tf:
        for ids in split_ids().values():
            for cid in ids:
                tf.addfile(tarfile.TarInfo(f"genres/{cid.split('.')[0]}/{cid}.au"), io.BytesIO())
    return dest


def test_esc10_from_zip_and_existing_copy_in_place(esc10_zip: Path, tmp_path: Path) -> None:
    root = tmp_path / "ESC-50"
    table = download("esc10", root, url=esc10_zip.as_uri(), progress=False)
    assert len(table) == 20 and table.folds == (1, 2) and len(table.classes) == 10
    assert (root / "meta" / "esc50.csv").is_file() and (root / "README.md").is_file()
    assert not (root / "downloads").exists()  # archive and staging removed after success
    # A readable copy is used in place: this URL does not exist and is never opened.
    again = download("esc10", root, url=(tmp_path / "nowhere.zip").as_uri(), progress=False)
    assert again == table
    assert not (root / "downloads").exists()


def test_checksum_mismatch_keeps_the_bad_file(tmp_path: Path) -> None:
    archive = gtzan_tar(tmp_path / "genres.tar.gz")
    root = tmp_path / "gtzan"
    # A re-packed copy does not match the sha256 recorded for the original archive.
    with pytest.raises(DownloadError) as info:
        download("gtzan", root, url=archive.as_uri(), progress=False)
    message = str(info.value)
    assert GTZAN_SHA256 in message and sha256(archive) in message
    assert "genres.tar.gz" in message
    bad = root / "downloads" / "genres.tar.gz.bad"
    assert bad.is_file() and sha256(bad) == sha256(archive)
    assert not (root / "genres").exists()
    # With its own checksum it installs, in the original genres/ layout with .au files.
    table = download("gtzan", root, url=archive.as_uri(), sha256=sha256(archive), progress=False)
    assert len(table) == 930 and table.clips[0].file.startswith("genres/")
    assert table.protocol == "fixed" and load_dataset("gtzan", root) == table


def download_us8k_from(server: Server, archive: Path, root: Path) -> ClipTable:
    """Download the UrbanSound8K archive ``archive`` served by ``server`` into ``root``."""
    return download(
        "us8k",
        root,
        url=f"{server.url}/UrbanSound8K.tar.gz",
        sha256=sha256(archive),
        progress=False,
    )


def test_resume_over_http_with_range(server: Server, us8k_root: Path, tmp_path: Path) -> None:
    archive = us8k_tar(us8k_root, server.folder / "UrbanSound8K.tar.gz")
    size = archive.stat().st_size
    root = tmp_path / "us8k"
    part = root / "downloads" / "UrbanSound8K.tar.gz.part"
    part.parent.mkdir(parents=True)
    half = size // 2
    part.write_bytes(archive.read_bytes()[:half])  # an interrupted earlier download
    table = download_us8k_from(server, archive, root)
    assert server.requests == [(f"bytes={half}-", size - half)]  # only the rest was sent
    assert len(table) == 20 and table.folds == (1, 10) and table.classes == US8K_CLASSES
    assert (root / "audio" / "fold10").is_dir() and not part.exists()


def test_server_ignoring_range_restarts(server: Server, us8k_root: Path, tmp_path: Path) -> None:
    archive = us8k_tar(us8k_root, server.folder / "UrbanSound8K.tar.gz")
    server.honour_range = False
    root = tmp_path / "us8k"
    part = root / "downloads" / "UrbanSound8K.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes of some other file")  # appending to it would corrupt
    table = download_us8k_from(server, archive, root)
    assert server.requests == [("bytes=30-", archive.stat().st_size)]
    assert len(table) == 20


def test_http_404_and_missing_file_url(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="404"):
        download("esc50", tmp_path / "a", url=f"{server.url}/ESC-50-master.zip", progress=False)
    with pytest.raises(DownloadError, match="no such file"):
        download("esc50", tmp_path / "b", url=(tmp_path / "x.zip").as_uri(), progress=False)


@pytest.mark.parametrize("kind", ["zip-dotdot", "zip-absolute", "tar-dotdot", "tar-symlink"])
def test_unsafe_archive_rejected(kind: str, tmp_path: Path) -> None:
    archive = tmp_path / "src" / ("ESC-50-master.zip" if kind.startswith("zip") else "x.tar.gz")
    archive.parent.mkdir()
    evil = tmp_path / "evil.txt"
    if kind.startswith("zip"):
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("ESC-50-master/meta/esc50.csv", "filename,fold,target,category\n")
            name = "ESC-50-master/../../../evil.txt" if kind == "zip-dotdot" else str(evil)
            zf.writestr(name, "owned")
    else:
        with tarfile.open(archive, "w:gz") as tf:
            if kind == "tar-dotdot":
                info = tarfile.TarInfo("../../../evil.txt")
                info.size = 5
                tf.addfile(info, io.BytesIO(b"owned"))
            else:
                info = tarfile.TarInfo("ESC-50-master/audio")
                info.type = tarfile.SYMTYPE
                info.linkname = str(tmp_path)
                tf.addfile(info)
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match=r"outside|links are not allowed"):
        download("esc50", root, url=archive.as_uri(), progress=False)
    assert not evil.exists() and not (root / "audio").exists()


def test_archive_without_the_dataset(tmp_path: Path) -> None:
    archive = tmp_path / "ESC-50-master.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("something/else.txt", "not a dataset")
    with pytest.raises(DownloadError, match=r"no meta/esc50.csv inside the archive"):
        download("esc50", tmp_path / "root", url=archive.as_uri(), progress=False)
    not_archive = tmp_path / "plain.zip"
    not_archive.write_bytes(b"plain bytes")
    with pytest.raises(DownloadError, match="not a zip or tar archive"):
        download("esc50", tmp_path / "root2", url=not_archive.as_uri(), progress=False)


def test_sources_and_unknown_name(tmp_path: Path) -> None:
    assert set(ARCHIVES) == {"esc50", "esc10", "us8k", "gtzan"}
    assert ARCHIVES["gtzan"].sha256 == GTZAN_SHA256
    assert ARCHIVES["us8k"].md5 == "9aa69802bbf37fb986f71ec1483a196e"
    assert ARCHIVES["esc50"].url == "https://github.com/karoldvl/ESC-50/archive/master.zip"
    assert ARCHIVES["us8k"].url.startswith("https://zenodo.org/records/1203745/")
    with pytest.raises(DatasetError, match="unknown dataset 'esc70'"):
        download("esc70", tmp_path)
