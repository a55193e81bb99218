"""Downloads: file:// and a local HTTP server with Range (resume), checksums, safe extraction."""

from __future__ import annotations

import hashlib
import http.server
import io
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from soundtransfer.datasets import load_dataset
from soundtransfer.datasets.download import download
from soundtransfer.errors import DownloadError
from soundtransfer.fetch import extract, fetch_url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A loopback HTTP server that honours Range, logging each request's Range header."""
    root = tmp_path / "served"
    root.mkdir()
    ranges: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, directory=str(root), **k)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            ranges.append(rng or "")
            data = (root / self.path.lstrip("/")).read_bytes()
            start = int(rng.split("=")[1].rstrip("-")) if rng else 0
            self.send_response(206 if rng else 200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, ranges
    httpd.shutdown()


def test_file_url_and_checksum(tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 5000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = fetch_url(src.as_uri(), tmp_path / "dl" / "a.bin", sha256=digest, progress=False)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_url(src.as_uri(), tmp_path / "dl2" / "a.bin", sha256="0" * 64, progress=False)
    assert (tmp_path / "dl2" / "a.bin.bad").exists()


def test_http_resume_with_range(server: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    url, root, ranges = server
    payload = bytes(range(256)) * 400
    (root / "big.bin").write_bytes(payload)
    dest = tmp_path / "big.bin"
    dest.with_name("big.bin.part").write_bytes(payload[:30000])  # an interrupted download
    digest = hashlib.sha256(payload).hexdigest()
    fetch_url(f"{url}/big.bin", dest, sha256=digest, progress=False)
    assert dest.read_bytes() == payload
    assert ranges == ["bytes=30000-"]


def test_extract_refuses_traversal(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tf:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DownloadError, match="outside"):
        extract(bad, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_download_dataset_from_archive(esc10_root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ESC-50-master.zip"
    names = (
        sorted(p.name for p in (esc10_root / "audio").glob("1-*.ogg"))[:6]
        + sorted(p.name for p in (esc10_root / "audio").glob("2-*.ogg"))[:6]
    )
    meta = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()
    rows = [meta[0]] + [r for r in meta[1:] if r.split(",")[0] in names]
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ESC-50-master/meta/esc50.csv", "\n".join(rows) + "\n")
        for n in names:
            zf.write(esc10_root / "audio" / n, f"ESC-50-master/audio/{n}")
    root = tmp_path / "ESC-50"
    table = download("esc10", root, url=archive.as_uri(), progress=False)
    assert len(table) == 12 and table.folds == (1, 2)
    # A second call uses the copy in place (the archive is not needed any more).
    archive.unlink()
    assert len(download("esc10", root, url=archive.as_uri(), progress=False)) == 12
    assert len(load_dataset("esc10", root)) == 12


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info


# Each: the member after a harmless first one, and what the error must say.
UNSAFE_TAR_MEMBERS = {
    "char-device": (_info("data/dev", tarfile.CHRTYPE, 0o666), "device"),
    "block-device": (_info("data/disk", tarfile.BLKTYPE, 0o666), "device"),
    "fifo": (_info("data/pipe", tarfile.FIFOTYPE), "FIFO"),
    "symlink-up": (_info("data/up", tarfile.SYMTYPE, link="../../etc/passwd"), "outside"),
    "symlink-absolute": (_info("data/abs", tarfile.SYMTYPE, link="/etc/passwd"), "outside"),
    "hardlink-absolute": (_info("data/hard", tarfile.LNKTYPE, link="/etc/passwd"), "outside"),
    "hardlink-up": (_info("data/hard", tarfile.LNKTYPE, link="../x"), "outside"),
    "symlink-to-nothing": (_info("data/dangling", tarfile.SYMTYPE, link="nope"), "no regular"),
    "absolute-name": (_info("/tmp/soundtransfer-evil.txt"), "outside"),
    "dotdot-name": (_info("data/../../evil.txt"), "outside"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE_TAR_MEMBERS))
def test_extract_refuses_unsafe_tar_members_and_writes_nothing(tmp_path: Path, case: str) -> None:
    member, message = UNSAFE_TAR_MEMBERS[case]
    data = b"bad" if member.isreg() else None
    archive = _tar(tmp_path / "bad.tar.gz", (_info("data/ok.txt"), b"fine"), (member, data))
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=message) as exc:
        extract(archive, out)
    assert "\n" not in str(exc.value) and str(archive) in str(exc.value)
    assert not out.exists() or not any(out.rglob("*"))  # checked before anything is written
    assert not Path("/tmp/soundtransfer-evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_extract_makes_modes_safe_and_links_copies(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "a.tar",
        (_info("d", tarfile.DIRTYPE, 0o1777), None),  # sticky, world-writable
        (_info("d/suid", mode=0o4777), b"#!/bin/sh\n"),  # setuid, world-writable
        (_info("d/sgid", mode=0o2775), b"g"),
        (_info("d/plain", mode=0o666), b"plain"),
        (_info("d/sym", tarfile.SYMTYPE, link="plain"), None),
        (_info("d/sub/up", tarfile.SYMTYPE, link="../plain"), None),
        (_info("hard", tarfile.LNKTYPE, link="d/plain"), None),
    )
    out = extract(archive, tmp_path / "out")

    def mode(rel: str) -> int:
        return stat.S_IMODE((out / rel).lstat().st_mode)

    assert mode("d") == 0o755
    assert (mode("d/suid"), mode("d/sgid"), mode("d/plain")) == (0o755, 0o755, 0o644)
    for rel in ("d/sym", "d/sub/up", "hard"):
        assert (out / rel).is_file() and not (out / rel).is_symlink()
        assert (out / rel).read_bytes() == b"plain" and mode(rel) == 0o644
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "d", "d/plain", "d/sgid", "d/sub", "d/sub/up", "d/suid", "d/sym", "hard",
    ]  # fmt: skip


def _zip_member(name: str, st_mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: external_attr carries st_mode
    info.external_attr = st_mode << 16
    return info


def test_extract_zip_modes_links_and_special_files(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr(_zip_member("top/run", stat.S_IFREG | 0o4777), b"x")
        zf.writestr(_zip_member("top/link", stat.S_IFLNK | 0o777), b"run")
    out = extract(good, tmp_path / "out")
    assert stat.S_IMODE((out / "top/run").stat().st_mode) == 0o755
    assert not (out / "top/link").is_symlink() and (out / "top/link").read_bytes() == b"x"
    for name, st_mode, data, message in [
        ("up", stat.S_IFLNK | 0o777, b"../../etc/passwd", "outside"),
        ("abs", stat.S_IFLNK | 0o777, b"/etc/passwd", "outside"),
        ("pipe", stat.S_IFIFO | 0o644, b"", "special"),
    ]:
        bad = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("ok.txt", b"fine")
            zf.writestr(_zip_member(name, st_mode), data)
        with pytest.raises(DownloadError, match=message):
            extract(bad, tmp_path / name)
        assert not (tmp_path / name / "ok.txt").exists()
