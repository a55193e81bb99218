"""Probes on cached embeddings: logistic regression against scikit-learn, MLP on XOR, folds;
wired into linear evaluation (run files, identity, model bundle)."""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from soundtransfer.config import ConfigError
from soundtransfer.errors import RunError
from soundtransfer.features import FeatureStore
from soundtransfer.models.heads import build_head, mlp_head
from soundtransfer.train import get_preset, run_crossval, run_split
from soundtransfer.train.config import AUTO_EMBED_BATCH, embed_batch_for, identity_settings
from soundtransfer.train.probes import PROBES, fit_probe, get_probe
from soundtransfer.train.probes.base import FitData, FittedProbe, holdout_split, inner_splits
from soundtransfer.train.probes.base import standardise as _standardise
from soundtransfer.train.probes.knn import KNNConfig, choose_k, knn_votes
from soundtransfer.train.probes.logistic import LogisticConfig, logistic_objective
from soundtransfer.train.probes.mlp import MLPConfig
from soundtransfer.train.probes.mlp import restandardise as _restandardise

from .conftest import assert_predicts


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny full-batch fits: a second thread only adds synchronisation (20x slower on a busy
    # 2-core machine, measured).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _blobs(n_per: int = 50, k: int = 3, d: int = 20, seed: int = 0) -> tuple[np.ndarray, ...]:
    centres = np.random.default_rng(100).normal(0, 0.5, (k, d))  # the same for every seed
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + rng.normal(0, 1, (n_per, d)) for c in centres]) * 3 + 7
    y = np.repeat(np.arange(k), n_per)
    groups = np.arange(len(y)) // 2  # recordings of two clips each (same class)
    return x.astype(np.float32), y, groups


def _xor(n: int = 400, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(n, 2))
    x = np.concatenate([signs * 2 + rng.normal(0, 0.4, (n, 2)), rng.normal(0, 1, (n, d - 2))], 1)
    y = (signs[:, 0] * signs[:, 1] > 0).astype(np.int64)
    return x.astype(np.float32), y


def test_logistic_matches_sklearn_solution() -> None:
    x, y, groups = _blobs()
    xte, yte, _ = _blobs(seed=1)
    cfg = LogisticConfig(cs=(0.01, 0.1, 1.0, 10.0), tol=1e-8)
    probe = fit_probe("logistic", x, y, groups, seed=0, config=cfg)
    c = probe.info["C"]
    assert min(cfg.cs) < c < max(cfg.cs), probe.info  # an interior choice
    assert probe.info["inner_folds"] == 5
    assert json.loads(json.dumps(probe.info))["C"] == c  # stored with the run
    mean, std = _standardise(x.astype(np.float64))
    z, zte = (x - mean) / std, (xte - mean) / std
    ref = LogisticRegression(C=c, tol=1e-8, max_iter=10_000).fit(z, y)
    zt, yt = torch.from_numpy(z).double(), torch.from_numpy(y)
    ours = logistic_objective(copy.deepcopy(probe.model).double(), zt, yt, c)
    lin = torch.nn.Linear(x.shape[1], 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(ref.coef_))
        lin.bias.copy_(torch.from_numpy(ref.intercept_))
    theirs = logistic_objective(lin, zt, yt, c)
    # Two solvers (torch's L-BFGS here, sklearn's there) stopped at tol 1e-8 near the same
    # optimum: the objective within 1e-4 relative, the probabilities within 1e-4. A test point
    # on the decision boundary may then go either way: the accuracies within one point.
    assert ours == pytest.approx(theirs, rel=1e-4)
    np.testing.assert_allclose(probe.predict_proba(xte), ref.predict_proba(zte), atol=1e-4)
    assert probe.accuracy(xte, yte) == pytest.approx(100 * ref.score(zte, yte), abs=100 / len(yte))
    assert probe.accuracy(xte, yte) > 70  # well above chance (33 %)


def test_logistic_selects_by_accuracy_too() -> None:
    x, y, groups = _blobs()
    probe = fit_probe(
        "logistic", x, y, groups, config=LogisticConfig(cs=(0.001, 0.1, 10.0), select="acc")
    )
    acc = probe.info["inner_acc"]
    assert acc[f"{probe.info['C']:.3g}"] == max(acc.values())
    with pytest.raises(ConfigError, match="select"):
        LogisticConfig(select="auc")


def test_inner_folds_never_split_a_group_and_stay_stratified() -> None:
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), 30)
    groups = np.repeat(np.arange(40), 3)  # 3 clips per recording, one class each
    rng.shuffle(order := np.arange(len(y)))
    y, groups = y[order], groups[order]
    splits = inner_splits(y, groups, 5, seed=0)
    assert len(splits) == 5
    seen = np.concatenate([va for _, va in splits])
    assert sorted(seen.tolist()) == list(range(len(y)))  # each row validated exactly once
    for tr, va in splits:
        assert not set(groups[tr]) & set(groups[va])
        assert set(y[va]) == set(range(4))
    tr, va = holdout_split(y, groups, 0.25, seed=0)
    assert not set(groups[tr]) & set(groups[va]) and 0.15 < len(va) / len(y) < 0.35
    # Classes of 3 rows: the number of folds drops to what the data allow.
    assert len(inner_splits(np.array([0, 0, 1, 1, 0, 1]), np.array([0, 0, 1, 1, 2, 3]), 5, 0)) == 3


def test_fit_probe_takes_training_data_only() -> None:
    params = list(inspect.signature(fit_probe).parameters)
    assert params == [
        "kind", "x_train", "y_train", "groups_train", "seed", "num_classes", "config", "device"
    ]  # fmt: skip


def test_mlp_solves_xor_where_logistic_cannot() -> None:
    x, y = _xor()
    xte, yte = _xor(seed=1)
    cfg = MLPConfig(hidden=(64,), lrs=(1e-2,), max_epochs=300, batch_size=64)
    mlp = fit_probe("mlp", x, y, seed=0, config=cfg)
    lin = fit_probe("logistic", x, y, seed=0)
    assert mlp.accuracy(xte, yte) > 90, mlp.info
    assert lin.accuracy(xte, yte) < 70
    info = mlp.info
    assert info["hidden"] == 64 and 1 <= info["epochs"] <= 300 and info["valid_rows"] == 80
    assert mlp.predict_proba(xte).shape == (len(yte), 2)
    assert json.loads(json.dumps(info))["epochs"] == info["epochs"]


def test_probes_are_deterministic_given_a_seed() -> None:
    x, y = _xor(n=200)
    cfg = MLPConfig(hidden=(32,), lrs=(1e-2,), max_epochs=50, batch_size=32)
    a = fit_probe("mlp", x, y, seed=5, config=cfg).predict_proba(x)
    torch.manual_seed(123)  # the global RNG must not matter
    b = fit_probe("mlp", x, y, seed=5, config=cfg).predict_proba(x)
    np.testing.assert_array_equal(a, b)  # bitwise: the same fit repeated in this process
    state = torch.get_rng_state()
    fit_probe("mlp", x, y, seed=5, config=cfg)
    assert torch.equal(state, torch.get_rng_state())  # nor is it disturbed
    xb, yb, gb = _blobs()
    la = fit_probe("logistic", xb, yb, gb, seed=2).predict_proba(xb)
    lb = fit_probe("logistic", xb, yb, gb, seed=2).predict_proba(xb)
    np.testing.assert_array_equal(la, lb)  # bitwise, as above


def test_early_stopped_mlp_is_rewritten_for_all_rows_statistics() -> None:
    x, _y = _xor(n=100)
    sub = x[:60].astype(np.float64)
    mu, sd = _standardise(sub)
    mu_all, sd_all = _standardise(x.astype(np.float64))
    torch.manual_seed(0)
    model = mlp_head(x.shape[1], 8, 2, 0.0).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy((x - mu) / sd).float())
        moved = _restandardise(copy.deepcopy(model), x.astype(np.float64), mu, sd)
        got = moved(torch.from_numpy((x - mu_all) / sd_all).float())
    # The standardisation folded into the first layer: the same affine map in float32 in
    # another order (inputs of order 1, 8 hidden units).
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    xx, yy = _xor(n=200)
    for refit in (False, True):
        cfg = MLPConfig(hidden=(16,), lrs=(1e-2,), refit=refit)
        probe = fit_probe("mlp", xx, yy, config=cfg)
        assert probe.info["refit"] is refit and probe.accuracy(xx, yy) > 80


def test_bad_inputs() -> None:
    x, y, _ = _blobs()
    with pytest.raises(ConfigError, match="unknown probe 'svm'"):
        fit_probe("svm", x, y)
    with pytest.raises(ValueError, match="do not match"):
        fit_probe("logistic", x, y[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        fit_probe("logistic", np.where(x > 9, np.nan, x), y)
    with pytest.raises(ConfigError, match="MLPConfig"):
        fit_probe("mlp", x, y, config=LogisticConfig())
    with pytest.raises(ValueError, match="features must be"):
        fit_probe("logistic", x, y).predict(x[:, :5])


def test_knn_votes_match_a_brute_force_count() -> None:
    gen = torch.Generator().manual_seed(0)
    bank = torch.nn.functional.normalize(torch.randn(30, 8, generator=gen), dim=1)
    query = torch.nn.functional.normalize(torch.randn(5, 8, generator=gen), dim=1)
    labels = torch.randint(0, 3, (30,), generator=gen)
    votes = knn_votes(query, bank, labels, 3, (1, 4, 30), 0.5)
    for q in range(5):
        sims = [float(query[q] @ bank[j]) for j in range(30)]
        order = sorted(range(30), key=lambda j: -sims[j])
        for k, v in votes.items():
            expected = [0.0, 0.0, 0.0]
            for j in order[:k]:
                expected[int(labels[j])] += float(np.exp(sims[j] / 0.5))
            # float32 sums of up to 30 exponentials against float64: 1e-4 relative
            np.testing.assert_allclose(v[q].numpy(), expected, rtol=1e-4)


def test_knn_chooses_k_on_inner_folds_only() -> None:
    x, y, groups = _blobs()
    xte, yte, _ = _blobs(seed=1)
    probe = fit_probe("knn", x, y, groups, seed=0)
    info = probe.info
    data = FitData(x.astype(np.float64), y, groups, 3, 0, torch.device("cpu"))
    k, _ = choose_k(data, KNNConfig())
    assert info["k"] == k and info["bank"] == len(y) and info["inner_folds"] == 5
    inner = {int(c): a for c, a in info["inner_acc"].items()}
    assert inner[k] == max(inner.values())  # the best inner accuracy (ties: smaller k)
    assert all(inner[c] < inner[k] for c in inner if c < k)
    assert probe.accuracy(xte, yte) > 70  # well above chance (33 %)
    # A row's own label is its nearest neighbour at k=1 on the training rows.
    one = fit_probe("knn", x, y, groups, config=KNNConfig(ks=(1,)))
    assert one.info["k"] == 1 and one.accuracy(x, y) == 100.0
    with pytest.raises(ConfigError, match="temperature"):
        KNNConfig(temperature=0.0)


@pytest.mark.parametrize("kind", [k for k in PROBES if k != "linear"])
def test_every_fitted_probe_leaves_the_head_bundles_build(kind: str) -> None:
    x, y, groups = _blobs(n_per=20)
    probe_kind = get_probe(kind)
    assert isinstance(probe_kind, FittedProbe) and probe_kind.name == kind
    fast = {"mlp": MLPConfig(hidden=(8,), lrs=(1e-2,), max_epochs=20)}.get(kind)
    probe = probe_kind.fit_arrays(x, y, groups, config=fast)
    head, spec = probe_kind.head(probe)
    rebuilt = build_head(json.loads(json.dumps(spec)), x.shape[1], 3)  # as a bundle loads it
    rebuilt.load_state_dict(head.state_dict())
    with torch.no_grad():
        raw = torch.from_numpy(x)
        # The head on raw embeddings scores as the probe on its own standardised ones (the
        # standardisation folded in: float32 rounding of the fold, 1e-4).
        torch.testing.assert_close(rebuilt.eval()(raw), probe.logits(x), atol=1e-4, rtol=1e-4)


# --- wired into linear evaluation (run_split / run_crossval on a real feature store) ---


def test_probe_runs_write_run_files_and_a_bundle_predict_can_use(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    from soundtransfer.inference.bundle import load_bundle

    split = tiny_store.table.splits()[1]
    for probe, key in (("logistic", "C"), ("mlp", "hidden"), ("knn", "k")):
        cfg = get_preset("cpu", {"mode": "linear", "probe": probe, "probe_inner_folds": 2})
        run = tmp_path / probe
        out = run_split(tiny_store, split, "random", "resnet18", cfg, run, cache_dir=tmp_path / "c",
                        progress=False)  # fmt: skip
        final = json.loads((run / "final.json").read_text())
        assert final["probe"]["kind"] == probe and key in final["probe"], final["probe"]
        # Exact: the same numbers written to two files, not recomputed.
        assert final["test_acc"] == out["test_acc"] and len(final["predictions"]) == len(split.test)
        (record,) = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert record["test_acc"] == final["test_acc"] and record["probe"] == probe
        config = json.loads((run / "config.json").read_text())
        assert config["identity"]["settings"]["probe"] == probe
        model, _ = load_bundle(run / "model.pt")
        with torch.no_grad():
            logits = model.classifier(tiny_store.batch(split.test))
        assert_predicts(logits, final["predictions"])  # standardisation folded in
        # The same identity is reused; another probe in the same directory is refused.
        again = run_split(tiny_store, split, "random", "resnet18", cfg, run,
                          cache_dir=tmp_path / "c", progress=False)  # fmt: skip
        assert again["predictions"] == out["predictions"]  # read back, not recomputed
    other = get_preset("cpu", {"mode": "linear", "probe": "mlp"})
    with pytest.raises(RunError, match=r"settings\.probe: 'logistic' -> 'mlp'"):
        run_split(tiny_store, split, "random", "resnet18", other, tmp_path / "logistic",
                  cache_dir=tmp_path / "c", progress=False)  # fmt: skip
    # One embedding file per split, shared by every probe.
    assert len(list((tmp_path / "c" / "embeddings").glob("*.npy"))) == 1


def test_each_probe_has_its_own_cell(tiny_store: FeatureStore, tmp_path: Path) -> None:
    cfg = get_preset("cpu", {"mode": "linear", "probe": "logistic", "probe_inner_folds": 2})
    result = run_crossval(tiny_store, "random", "resnet18", cfg, tmp_path, [2],
                          cache_dir=tmp_path / "c", progress=False)  # fmt: skip
    assert result.mode == "logistic" and result.run_dir.name == "logistic"
    assert (result.run_dir / "fold2" / "final.json").exists()


def test_probe_settings_are_checked_and_batch_is_per_device() -> None:
    with pytest.raises(ConfigError, match="linear evaluation only"):
        get_preset("cpu", {"probe": "logistic"})  # mode=finetune
    with pytest.raises(ConfigError, match="probe"):
        get_preset("cpu", {"mode": "linear", "probe": "svm"})
    with pytest.raises(ConfigError, match="probe_inner_folds"):
        get_preset("cpu", {"mode": "linear", "probe_inner_folds": 1})
    with pytest.raises(ConfigError, match="probe_valid_fraction"):
        get_preset("cpu", {"mode": "linear", "probe_valid_fraction": 1.0})
    cfg = get_preset("cpu")
    assert cfg.embed_batch_size == "auto"
    assert embed_batch_for(cfg, "cpu") == AUTO_EMBED_BATCH["cpu"]
    assert embed_batch_for(cfg, "cuda") == AUTO_EMBED_BATCH["cuda"]
    assert embed_batch_for(get_preset("cpu", {"embed_batch_size": 5}), "cuda") == 5
    assert "embed_batch_size" not in identity_settings(cfg)
    assert "probe" in identity_settings(cfg) and "probe_inner_folds" in identity_settings(cfg)


# --- probes (issue 24 pt 4): small-data protocol -------------------------------------------


def test_holdout_keeps_its_fraction_with_a_rare_class() -> None:
    """A class with 2 rows used to cap the hold-out at 2 folds (50 % held out)."""
    from soundtransfer.train.probes.base import holdout_split

    y = np.array([0] * 90 + [1] * 95 + [2] * 2)  # 187 rows, as in issue 24
    tr, va = holdout_split(y, None, 0.2, seed=0)
    assert len(tr) + len(va) == len(y) and not set(tr) & set(va)
    # one of 5 stratified folds: 20 % give or take a row per class
    assert abs(len(va) / len(y) - 0.2) < 0.03


def test_mlp_refits_on_all_training_rows_by_default() -> None:
    from soundtransfer.train.probes.mlp import MLPConfig

    assert MLPConfig().refit is True


def test_logistic_says_when_it_runs_fewer_inner_folds(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 24 pt 4: a rare class caps the inner folds; the probe says so and why."""
    rng = np.random.default_rng(4)
    y = np.array([0] * 30 + [1] * 2)  # the rare class allows 2 stratified inner folds
    x = rng.standard_normal((len(y), 6)).astype(np.float32) + y[:, None]
    probe = fit_probe("logistic", x, y, seed=0, config=LogisticConfig(cs=(0.1, 1.0)))
    n = probe.info["inner_folds"]
    assert n < 5
    err = capsys.readouterr().err
    assert f"probe logistic: {n} inner folds instead of 5" in err
    assert "rarest class" in err


def test_multi_label_logistic_says_its_inner_metric_is_the_log_loss() -> None:
    """Multi-label rows: C is chosen on the inner log-loss and no inner accuracy is computed,
    so the info names the metric (``inner_metric: nll``) instead of an ``inner_acc`` of 0."""
    from soundtransfer.train.probes.logistic import fit_logistic

    x, y, groups = _blobs()
    multi = np.eye(3, dtype=np.int64)[y]
    multi[::7, (y[::7] + 1) % 3] = 1  # some rows with two labels
    data = FitData(x.astype(np.float64), multi, groups, 3, 0, torch.device("cpu"))
    _, info = fit_logistic(data.standardised(), LogisticConfig(cs=(0.01, 1.0)))
    assert info["inner_metric"] == "nll" and "inner_acc" not in info
    nll = info["inner_nll"]
    assert nll[f"{info['C']:.3g}"] == min(nll.values())
    single = FitData(x.astype(np.float64), y, groups, 3, 0, torch.device("cpu"))
    _, info1 = fit_logistic(single.standardised(), LogisticConfig(cs=(0.01, 1.0)))
    assert "inner_acc" in info1 and "inner_metric" not in info1
