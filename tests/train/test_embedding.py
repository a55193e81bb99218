"""The embedding option in runs (issue 22 point 2): out of a default run's identity and cache
key, every probe and fine-tuning on the wider embedding, and the bundle's ``predict`` giving
the training run's probabilities from raw audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from soundtransfer.audio import load_clip
from soundtransfer.config import config_hash
from soundtransfer.errors import WeightsError
from soundtransfer.features import FeatureStore
from soundtransfer.inference.bundle import load_bundle
from soundtransfer.inference.predict import Predictor, reference_window_probs
from soundtransfer.models import Classifier, InputNorm, build_encoder
from soundtransfer.models.embedding import EmbeddingSpec
from soundtransfer.train import get_preset, run_split
from soundtransfer.train.config import TrainConfig, identity_settings
from soundtransfer.train.modes import cached_embeddings

from .conftest import assert_predicts

WIDTH = 2 * (512 + 256)  # resnet18, pool=meanstd, blocks=2: layer4 and layer3, mean and std
PROB_TOL = 1e-4  # the streamed predict path against the plain one (tests/inference)


def test_the_default_stays_out_of_a_runs_identity() -> None:
    default = identity_settings(TrainConfig())
    assert "pool" not in default and "blocks" not in default
    richer = identity_settings(get_preset("paper", ["pool=meanstd", "blocks=2"]))
    assert (richer["pool"], richer["blocks"]) == ("meanstd", 2)
    assert {k: v for k, v in richer.items() if k not in ("pool", "blocks")} == default


def test_cache_key_covers_the_embedding(tiny_store: FeatureStore, tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = build_encoder("resnet18")
    norm = InputNorm([-10.0] * 3, [3.0] * 3)
    rows = np.arange(4)
    cfg = get_preset("cpu", {"mode": "linear"})
    cpu = torch.device("cpu")
    # The default's key is the one of before the option: older caches are still found
    # (fingerprinted before the embedding pass, which makes the weights channels-last).
    weights = [float(p.double().sum()) for p in encoder.state_dict().values()
               if p.dtype.is_floating_point]  # fmt: skip
    scale, shift = norm.scale.flatten().tolist(), norm.shift.flatten().tolist()
    old = config_hash(tiny_store.key, "resnet18", [scale, shift], weights, rows.tolist())
    paths, widths = [], []
    for spec in (EmbeddingSpec(), EmbeddingSpec("meanstd"), EmbeddingSpec("mean", 2)):
        model = Classifier(encoder, 10, norm, spec)
        emb, path = cached_embeddings(model, tiny_store, rows, cfg, cpu, tmp_path, False)
        paths.append(path)
        widths.append(emb.shape[1])
    assert len(set(paths)) == 3 and widths == [512, 1024, 768]
    assert paths[0].name == f"{old}.npy"


@pytest.mark.parametrize("probe", ["linear", "logistic", "mlp", "knn"])
def test_every_probe_on_meanstd_blocks_and_predict_gives_the_runs_probabilities(
    probe: str, tiny_store: FeatureStore, tmp_path: Path
) -> None:
    split = tiny_store.table.splits()[1]
    settings = {"mode": "linear", "probe": probe, "pool": "meanstd", "blocks": 2}
    if probe != "linear":
        settings["probe_inner_folds"] = 2
    cfg = get_preset("cpu", settings)
    run, cache = tmp_path / "run", tmp_path / "cache"
    run_split(tiny_store, split, "random", "resnet18", cfg, run, cache_dir=cache, progress=False)
    final = json.loads((run / "final.json").read_text())
    model, meta = load_bundle(run / "model.pt")
    assert meta.embedding == EmbeddingSpec("meanstd", 2) and model.classifier.embed_dim == WIDTH
    (npy,) = sorted((cache / "embeddings").glob("*.npy"))
    emb = np.load(npy)  # the training run's own embeddings of its rows, sorted
    assert emb.shape == (len(split.train) + len(split.test), WIDTH)
    every = sorted({*split.train, *split.test})
    test_emb = torch.from_numpy(emb[[every.index(int(r)) for r in split.test]])
    with torch.no_grad():
        logits = model.classifier(tiny_store.batch(split.test))
        # The bundle's model on the store's images: the run's head on the run's embeddings
        # (those made channels-last in batches of 8: float32 sums in another order).
        torch.testing.assert_close(
            torch.softmax(logits, 1), torch.softmax(model.classifier.head(test_emb), 1),
            rtol=0, atol=PROB_TOL,
        )  # fmt: skip
    assert_predicts(logits, final["predictions"])
    # predict (streamed, traced) on the raw test clips: the bundle's model window by window.
    predictor = Predictor(run / "model.pt")
    sr = meta.frontend.sample_rate
    for row in split.test[:3]:
        path = tiny_store.table.path(int(row))
        got = np.stack([w.probs for w in predictor.iter_windows(path)])
        want = reference_window_probs(model, meta, load_clip(path, sr), predictor.hop.samples)
        assert got.shape == want.shape and np.abs(got - want).max() < PROB_TOL


def test_finetune_trains_the_head_on_the_wider_embedding(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    split = tiny_store.table.splits()[1]
    cfg = get_preset("cpu", {"epochs": 1, "pool": "meanstd", "blocks": 2})
    out = run_split(tiny_store, split, "random", "resnet18", cfg, tmp_path / "run",
                    cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
    assert np.isfinite(out["test_loss"])
    model, meta = load_bundle(tmp_path / "run" / "model.pt")
    assert meta.embedding == EmbeddingSpec("meanstd", 2)
    assert model.classifier.head.in_features == WIDTH
    with torch.no_grad():
        logits = model.classifier(tiny_store.batch(split.test))
    assert_predicts(logits, out["predictions"])


def test_an_encoder_without_stage_maps_is_refused_before_the_run_directory(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:

    split = tiny_store.table.splits()[1]
    cfg = get_preset("cpu", {"mode": "linear", "pool": "meanstd"})
    with pytest.raises(WeightsError, match=r"^mobilenet_v3_small takes only pool=mean blocks=1;"):
        run_split(tiny_store, split, "random", "mobilenet_v3_small", cfg, tmp_path / "run",
                  cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
