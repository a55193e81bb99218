"""A full disk (issue 23, defect 7): every write path turns ENOSPC into one OutputError naming
the file, leaves no temp or half file, and keeps what was there before.

The error is injected at the write layer: ``full_disk`` (tests/conftest.py) points the temp
file of an atomic write at ``/dev/full``, whose every write the kernel answers with ENOSPC, so
the real writers (torch, numpy, matplotlib, plain text) meet a real full disk, on any machine
and without root. Appends (metrics log, download) write straight to a link to ``/dev/full``.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest
import torch

from soundtransfer.errors import OutputError
from soundtransfer.runs import MetricsLog, atomic_open, atomic_torch_save, atomic_write_text
from soundtransfer.runs.files import is_disk_full, reporting_disk_full

from ..conftest import FullDisk

NO_SPACE = r"no space left on device \(\d+\.\d MB free\); free some space and run again"


def _full(path: Path) -> Path:
    """``path`` as a link to /dev/full (for writers that append in place)."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux) to fake a full disk")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to("/dev/full")
    return path


def test_atomic_writes_keep_the_old_file_and_name_the_new(
    tmp_path: Path, full_disk: FullDisk
) -> None:
    text, ckpt, table = tmp_path / "final.json", tmp_path / "last.pt", tmp_path / "out.csv"
    atomic_write_text(text, "old")
    atomic_torch_save({"epoch": 1}, ckpt)
    full_disk(lambda path: True)
    with pytest.raises(OutputError, match=rf"^{re.escape(str(text))}: {NO_SPACE}"):
        atomic_write_text(text, "new" * 10_000)
    # torch's own zip writer says only "unexpected pos"; through a file object the cause shows
    with pytest.raises(OutputError, match=rf"^{re.escape(str(ckpt))}: {NO_SPACE}"):
        atomic_torch_save({"epoch": 2, "w": torch.zeros(100_000)}, ckpt)
    with (
        pytest.raises(OutputError, match=rf"^{re.escape(str(table))}: {NO_SPACE}"),
        atomic_open(table, "w") as fh,
    ):
        for _ in range(10_000):
            fh.write("a,b,c\n")
    assert text.read_text() == "old"
    assert torch.load(ckpt, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final.json", "last.pt"]


def test_a_bundle_on_a_full_disk_is_one_error(tmp_path: Path, full_disk: FullDisk) -> None:
    from soundtransfer.audio import get_preset
    from soundtransfer.inference.bundle import save_bundle
    from soundtransfer.models import Classifier, InputNorm, build_encoder

    model = Classifier(build_encoder("resnet18"), 3, InputNorm([0.0] * 3, [1.0] * 3))
    fe = get_preset("esc10", n_mels=32, out_frames=64)
    full_disk(lambda path: path.name == "model.pt")
    with pytest.raises(OutputError, match=rf"model\.pt: {NO_SPACE}"):
        save_bundle(tmp_path / "model.pt", model, fe, ("a", "b", "c"), "resnet18", "random")
    assert list(tmp_path.iterdir()) == []


def test_a_metrics_line_on_a_full_disk_is_one_error(tmp_path: Path) -> None:
    path = _full(tmp_path / "run" / "metrics.jsonl")
    with pytest.raises(OutputError, match=rf"metrics\.jsonl: {NO_SPACE}"):
        MetricsLog(path, "epoch").write({"epoch": 1, "train_loss": 1.0})


def test_a_download_on_a_full_disk_keeps_its_part_file(tmp_path: Path) -> None:
    from soundtransfer.fetch import fetch_url

    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 100_000)
    part = _full(tmp_path / "dl" / "src.bin.part")
    with pytest.raises(OutputError, match=rf"src\.bin\.part: {NO_SPACE}"):
        fetch_url(source.as_uri(), tmp_path / "dl" / "src.bin", progress=False)
    assert part.is_symlink() and not (tmp_path / "dl" / "src.bin").exists()


def test_feature_rows_on_a_full_disk_are_one_error_and_resume(
    tmp_path: Path, esc10_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store writes rows into its preallocated images.f16: the row writer meets ENOSPC."""
    import shutil

    from soundtransfer.audio import get_preset
    from soundtransfer.datasets import load_dataset
    from soundtransfer.features import build_features, sharded

    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    lines = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()
    rows = [r for r in lines[1:] if ",True," in r][:4]
    (root / "meta" / "esc50.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    for r in rows:
        shutil.copy(esc10_root / "audio" / r.split(",")[0], root / "audio")
    table = load_dataset("esc10", root)
    fe = get_preset("esc10", n_mels=32, out_frames=64)

    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(sharded, "_write_rows", no_space)
        with pytest.raises(OutputError, match=rf"images\.f16: {NO_SPACE}"):
            build_features(table, fe, tmp_path / "cache", batch_size=2, progress=False)
    store = build_features(table, fe, tmp_path / "cache", batch_size=2, progress=False)
    assert store.images.shape[0] == 4  # freeing space and rerunning finishes the store


def test_what_counts_as_a_full_disk() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(RuntimeError("I/O error: No space left on device (os error 28)"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(RuntimeError("unexpected pos 704 vs 598"))
    with pytest.raises(PermissionError), reporting_disk_full(Path("x")):
        raise PermissionError(errno.EACCES, "Permission denied")  # other errors pass unchanged


def test_the_cli_prints_file_system_errors_as_one_line() -> None:
    from soundtransfer.cli.main import one_line, os_error_line

    full = os_error_line(OSError(errno.ENOSPC, "No space left on device", "/data/x.npy"))
    assert full == "/data/x.npy: no space left on device; free some space and run again"
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device")) == (
        "no space left on device; free some space and run again"
    )
    denied = os_error_line(PermissionError(errno.EACCES, "Permission denied", "/ro/out.csv"))
    assert denied == "/ro/out.csv: Permission denied"
    assert os_error_line(OSError("no file named")) is None  # a bug: its traceback shows
    assert one_line("a\n  b\r\nc") == "a b c"
