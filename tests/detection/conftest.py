"""A small random bundle and folders of real ESC-10 clips laid out as recorders' folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..inference.conftest import make_bundle

#: The layout of a season's recordings: a folder per site, nested nights, mixed formats.
LAYOUT = ("site1/a.ogg", "site1/b.ogg", "site2/night1/c.ogg", "site2/night2/d.ogg")


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "model.pt")


@pytest.fixture
def recordings(esc10_root: Path, tmp_path: Path) -> Path:
    """``tmp/recordings``: four real ESC-10 clips (5 s, different classes) in :data:`LAYOUT`."""
    clips = sorted((esc10_root / "audio").glob("*.ogg"))[::97][: len(LAYOUT)]
    root = tmp_path / "recordings"
    for rel, clip in zip(LAYOUT, clips, strict=True):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / rel)
    return root
