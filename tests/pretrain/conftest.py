"""Fixtures for pre-training tests: a folder of real photos and a small encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images


def write_image_folder(root: Path, count: int = 32) -> Path:
    """china.jpg, flower.jpg and ``count - 2`` random crops of them as jpg/png/webp files,
    spread over nested folders (a tiny natural-image folder)."""
    photos = load_sample_images()
    gen = torch.Generator().manual_seed(0)
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    for name, array in zip(photos.filenames, photos.images, strict=True):
        Image.fromarray(array).save(root / Path(name).name)
    suffixes = (".jpg", ".png", ".webp")
    for i in range(count - 2):
        array = photos.images[i % 2]
        h, w = torch.randint(64, 300, (2,), generator=gen).tolist()
        top = int(torch.randint(0, array.shape[0] - h, (1,), generator=gen))
        left = int(torch.randint(0, array.shape[1] - w, (1,), generator=gen))
        folder = root / ("a/b" if i % 3 == 0 else "c" if i % 3 == 1 else "")
        Image.fromarray(array[top : top + h, left : left + w]).save(
            folder / f"crop{i:02d}{suffixes[i % 3]}"
        )
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture
def encoder(torch_test_threads: int) -> None:
    """The pre-training tests build small torchvision encoders on the tests' thread count
    (2 unless ``OMP_NUM_THREADS`` says otherwise; tests/conftest.py)."""
    torch.set_num_threads(torch_test_threads)
