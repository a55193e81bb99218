"""Helpers for the dataset tests: damaged metadata copies that reuse the real audio."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from soundtransfer.datasets import load_dataset
from soundtransfer.errors import DatasetError


def _read_rows(meta: Path) -> list[dict[str, str]]:
    with meta.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _write_rows(meta: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> None:
    meta.parent.mkdir(parents=True, exist_ok=True)
    with meta.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns or list(rows[0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _linked_copy(src: Path, dst: Path, meta_rel: str, meta_src: str | None = None) -> Path:
    """``dst`` with a symlink to ``src/audio`` and a writable copy of the metadata file.

    Returns the path of the copied metadata file (``dst / meta_rel``).
    """
    dst.mkdir(parents=True)
    (dst / "audio").symlink_to(src / "audio")
    meta = dst / meta_rel
    meta.parent.mkdir(parents=True)
    meta.write_bytes((src / (meta_src or meta_rel)).read_bytes())
    return meta


@pytest.fixture(scope="session")
def us8k_root(shared_data: Path) -> Path:
    return shared_data / "us8k"


@pytest.fixture(scope="session")
def esc50_fold4_root(shared_data: Path) -> Path:
    return shared_data / "esc50-fold4"


def _copy_rows(src: Path, dst: Path, meta_rel: str) -> tuple[Path, list[dict[str, str]]]:
    """``_linked_copy`` then the copied metadata file's rows: ``(path, rows)``."""
    path = _linked_copy(src, dst, meta_rel)
    return path, _read_rows(path)


def _refuses_edited_row(
    src: Path, dst: Path, meta_rel: str, dataset: str, edit: dict[str, str], message: str
) -> None:
    """Apply ``edit`` to the first metadata row of a copy of ``src``: loading ``dataset`` from
    it must raise DatasetError matching ``message`` and naming the metadata file."""
    path, rows = _copy_rows(src, dst, meta_rel)
    rows[0].update(edit)
    _write_rows(path, rows)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(dataset, dst)
    assert str(path) in str(info.value)


def _load_with_wav_names(src: Path, dst: Path, meta_rel: str, dataset: str, ext: str) -> Any:
    """Load ``dataset`` from a copy of ``src`` whose metadata names every ``ext`` file ``.wav``."""
    path = _linked_copy(src, dst, meta_rel)
    path.write_text(path.read_text().replace(ext, ".wav"))
    return load_dataset(dataset, dst)


@pytest.fixture(scope="session")
def meta() -> SimpleNamespace:
    """Metadata helpers: ``read(path)``, ``write(path, rows, columns)``,
    ``copy(src, dst, rel)``,
    ``copy_rows(src, dst, rel)``, ``refuses_edited_row(src, dst, rel, dataset, edit, message)``,
    ``load_with_wav_names(src, dst, rel, dataset, ext)``."""
    fns: dict[str, Callable[..., object]] = {
        "read": _read_rows,
        "write": _write_rows,
        "copy": _linked_copy,
        "copy_rows": _copy_rows,
        "refuses_edited_row": _refuses_edited_row,
        "load_with_wav_names": _load_with_wav_names,
    }
    return SimpleNamespace(**fns)


@pytest.fixture
def esc10_zip(esc10_root: Path, tmp_path: Path) -> Path:
    """``ESC-50-master.zip`` as GitHub serves it, cut down to 20 real clips (folds 1 and 2,
    one per class each) and their metadata rows."""
    rows = _read_rows(esc10_root / "meta" / "esc50.csv")
    chosen: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        if r["fold"] in ("1", "2"):
            chosen.setdefault((r["fold"], r["target"]), r)
    picked = list(chosen.values())
    meta = tmp_path / "src-meta" / "esc50.csv"
    _write_rows(meta, picked)
    archive = tmp_path / "ESC-50-master.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(meta, "ESC-50-master/meta/esc50.csv")
        zf.writestr("ESC-50-master/README.md", "ESC-50\n")
        for r in picked:
            zf.write(esc10_root / "audio" / r["filename"], f"ESC-50-master/audio/{r['filename']}")
    return archive
