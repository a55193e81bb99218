"""``linear-eval --set pool=... --set blocks=...`` end to end on a small folder tree of real
ESC-10 clips (issue 22 point 2), and its bad values: exit 2 with one line, nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from soundtransfer.cli.main import main
from soundtransfer.datasets import load_dataset
from soundtransfer.inference.bundle import load_bundle
from soundtransfer.models.embedding import EmbeddingSpec

CLASSES = ("dog", "rain", "rooster")


@pytest.fixture
def folder(esc10_root: Path, tmp_path: Path) -> Path:
    """Three classes of eight ESC-10 clips each, as a folder tree (links)."""
    esc10 = load_dataset("esc10", esc10_root)
    data = tmp_path / "data"
    for name in CLASSES:
        (data / name).mkdir(parents=True)
        k = esc10.classes.index(name)
        for i in [i for i, c in enumerate(esc10.clips) if c.label == k][:8]:
            os.symlink(esc10.path(i), data / name / Path(esc10.clips[i].file).name)
    return data


def _argv(data: Path, out: Path, cache: Path, *settings: str, arch: str = "resnet18") -> list[str]:
    sets = [a for s in ("probe=logistic", "probe_inner_folds=2", *settings) for a in ("--set", s)]
    return ["linear-eval", str(data), "--weights", "random", "--arch", arch, "--preset", "cpu",
            "--frontend", "n_mels=32", "--frontend", "out_frames=64", *sets,
            "--split", "0.5,0.25,0.25", "--out", str(out), "--cache", str(cache),
            "--quiet"]  # fmt: skip


def test_linear_eval_on_meanstd_multi_block_embeddings(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    argv = _argv(folder, tmp_path / "runs", cache, "pool=meanstd", "blocks=2")
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "logistic" in out, (out, err)
    (bundle,) = sorted((tmp_path / "runs").rglob("model.pt"))
    model, meta = load_bundle(bundle)
    assert meta.embedding == EmbeddingSpec("meanstd", 2)
    assert model.classifier.head.in_features == 2 * (512 + 256)
    (first,) = sorted((cache / "embeddings").glob("*.npy"))
    assert np.load(first).shape[1] == 2 * (512 + 256)
    # The default on the same data and cache: its own embeddings, never the meanstd ones.
    assert main(_argv(folder, tmp_path / "runs_mean", cache)) == 0
    files = sorted((cache / "embeddings").glob("*.npy"))
    assert len(files) == 2 and {np.load(f).shape[1] for f in files} == {512, 1536}
    (plain,) = sorted((tmp_path / "runs_mean").rglob("model.pt"))
    assert load_bundle(plain)[1].embedding == EmbeddingSpec()


@pytest.mark.parametrize(
    ("settings", "arch", "culprit"),
    [(("pool=max",), "resnet18", r"pool: 'max' is not one of \['mean', 'meanstd'\]"),
     (("blocks=0",), "resnet18", r"blocks must be an integer in \[1, 8\], got 0"),
     (("blocks=two",), "resnet18", r"blocks: expected an integer, got 'two'"),
     (("blocks=5",), "resnet18", r"resnet18 has 4 blocks to pool, not 5"),
     (("pool=meanstd",), "mobilenet_v3_small",
      r"mobilenet_v3_small takes only pool=mean blocks=1; pool=meanstd")],
)  # fmt: skip
def test_bad_embedding_settings_are_one_line_exit_2_before_any_work(
    settings: tuple[str, ...],
    arch: str,
    culprit: str,
    folder: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    out_dir, cache = tmp_path / "runs", tmp_path / "cache"
    capfd.readouterr()
    code = main(_argv(folder, out_dir, cache, *settings, arch=arch))
    out, err = capfd.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("soundtransfer ") and "Traceback" not in err
    assert re.search(culprit, err), err
    assert not out_dir.exists() and not cache.exists()  # refused before reading or writing
