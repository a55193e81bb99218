"""A small real feature store for the training tests: 40 ESC-10 clips, 2 folds, 32 x 64 images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from soundtransfer.audio import get_preset
from soundtransfer.datasets import load_dataset
from soundtransfer.features import FeatureStore, build_features

from .fixtures.tiny_esc import copy_tiny_esc10

# Two best logits closer than this may swap when the logits are recomputed by another code
# path (another batch size, memory format or traced network: float32 sums in another order,
# up to soundtransfer.inference.jit.TOLERANCE apart).
TIE = 1e-3


def assert_predicts(logits: torch.Tensor, predictions: list[int]) -> None:
    """``logits`` (N, K), recomputed here, give the classes a run reported, except for rows
    whose two best logits lie within ``TIE`` (a near-tie may fall either way); most rows
    must be decided, so the check cannot pass empty."""
    top2 = logits.topk(2, dim=1).values
    decided = (top2[:, 0] - top2[:, 1]) > TIE
    assert decided.float().mean() > 0.5, "most test rows are near-ties: a vacuous check"
    want = torch.tensor(predictions)
    assert logits.argmax(1)[decided].tolist() == want[decided].tolist()


@pytest.fixture(scope="session")
def tiny_store(esc10_root: Path, tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    root = tmp_path_factory.mktemp("esc")
    copy_tiny_esc10(esc10_root, root)
    table = load_dataset("esc10", root)
    fe = get_preset("esc10", n_mels=32, out_frames=64)
    cache = tmp_path_factory.mktemp("cache")
    return build_features(table, fe, cache_dir=cache, progress=False)
