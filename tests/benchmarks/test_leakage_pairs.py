"""The same-source study's pure parts (benchmarks/studies/leakage_pairs.py): pairs from ESC
names and the ROC AUC of a score."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

STUDY = Path(__file__).resolve().parents[2] / "benchmarks" / "studies" / "leakage_pairs.py"


def _study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("study_leakage_pairs", STUDY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


def test_pairs_of_takes_of_one_source_recording() -> None:
    names = [
        "audio/4-102844-A-49.flac",
        "4-102844-B-49.flac",
        "4-102871-A-42.flac",
        "4-102844-C-49.flac",
        "4-111671-A-42.flac",
    ]
    i, j, same = _study().source_pairs(names)
    assert len(i) == len(j) == len(same) == 10  # 5 * 4 / 2
    assert np.all(i < j)
    got = {(int(a), int(b)) for a, b, s in zip(i, j, same, strict=True) if s}
    assert got == {(0, 1), (0, 3), (1, 3)}  # the three takes of 102844, nothing else


def test_a_name_outside_the_esc_pattern_is_named() -> None:
    with pytest.raises(ValueError, match=r"dog_bark\.wav"):
        _study().source_pairs(["4-102844-A-49.flac", "dog_bark.wav"])


def test_auc_on_a_toy_score() -> None:
    auc = _study().roc_auc
    same = np.array([True, True, False, False, False])
    # Both positives above every negative: 1; below every negative: 0 (exact, 6 of 6 orders).
    assert auc(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), same) == 1.0
    assert auc(np.array([0.0, 0.05, 0.1, 0.2, 0.3]), same) == 0.0
    # 0.25 beats 0.1 and 0.2 but not 0.3 (2 of 3), 0.9 beats all (3 of 3): 5 / 6.
    assert auc(np.array([0.9, 0.25, 0.1, 0.2, 0.3]), same) == pytest.approx(5 / 6)
    # A tie between a positive and a negative counts half: (3 + 2.5) / 6.
    assert auc(np.array([0.9, 0.3, 0.1, 0.2, 0.3]), same) == pytest.approx(5.5 / 6)
