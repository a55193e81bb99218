"""Fine-tuning / linear evaluation: protocol, no leakage, resume after a kill, validation."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from soundtransfer.config import ConfigError
from soundtransfer.errors import RunError, SoundTransferError
from soundtransfer.features import FeatureStore
from soundtransfer.runs.log import MetricsLog
from soundtransfer.train import TrainConfig, get_preset, run_crossval, run_split
from soundtransfer.train.data import carve_validation, channel_stats

from .conftest import assert_predicts

ARCH = "resnet18"


def _cfg(**kw: object) -> TrainConfig:
    return get_preset("cpu", [f"{k}={v}" for k, v in kw.items()])


def _run_random(
    store: FeatureStore, split: Any, cfg: TrainConfig, out_dir: Path, **kw: Any
) -> dict[str, Any]:
    """One split from random ``ARCH`` weights, quietly."""
    return run_split(store, split, "random", ARCH, cfg, out_dir, progress=False, **kw)


def _kill_after(monkeypatch: pytest.MonkeyPatch, epochs: int) -> None:
    """Interrupt the run right after the metrics line of epoch ``epochs`` (before its
    checkpoint), as a kill would."""
    original = MetricsLog.write
    calls = {"n": 0}

    def write(self: MetricsLog, record: dict[str, Any]) -> None:
        original(self, record)
        calls["n"] += 1
        if calls["n"] == epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(MetricsLog, "write", write)


def _metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_channel_stats_use_training_rows_only(tiny_store: FeatureStore) -> None:
    (split, _) = tiny_store.table.splits()
    mean, std = channel_stats(tiny_store, split.train)
    x = np.asarray(tiny_store.images[list(split.train)], dtype=np.float64)
    # The same float16 rows summed in another order (batch by batch vs NumPy at once):
    # float64 rounding; the std, from squares minus the squared mean, loses a few digits more.
    np.testing.assert_allclose(mean, x.mean((0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, x.std((0, 2, 3)), rtol=1e-5)
    all_mean, _ = channel_stats(tiny_store, range(len(tiny_store)))
    assert not np.allclose(mean, all_mean)


def test_validation_is_carved_from_training_groups(tiny_store: FeatureStore) -> None:
    (split, _) = tiny_store.table.splits()
    train, valid = carve_validation(tiny_store.table, split.train, 0.25, seed=0)
    assert valid and not set(valid) & set(split.test) and not set(valid) & set(train)
    assert set(train) | set(valid) == set(split.train)
    groups = lambda idx: {tiny_store.table.clips[i].group for i in idx}  # noqa: E731
    assert not groups(train) & groups(valid)
    with pytest.raises(ConfigError, match="never the test fold"):
        _cfg(select="best_val")


# The recipe: augmentation drawn per (seed, epoch), warm-up + cosine schedule and EMA state
# restored from last.pt, best-validation selection of the averaged weights (the EMA, and the
# average of the last 2 epochs, which lives in last.pt), test-time augmentation, and the head
# on a mean + std embedding of the last two blocks.
RECIPE_RESUME = ("epochs=3", "batch_size=8", "warmup_epochs=1", "ema_decay=0.9",
                 "aug_mixup_alpha=0.4", "val_fraction=0.25", "select=best_val",
                 "aug_reverse_prob=0.5", "aug_time_scale=0.25", "aug_crop=0.75",
                 "average_last=2", "tta=2", "pool=meanstd", "blocks=2")  # fmt: skip


@pytest.mark.parametrize("preset", ["cpu", "recipe"])
def test_finetune_resume_after_kill_gives_the_same_result(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preset: str
) -> None:
    from .test_averaging import with_valid

    split = tiny_store.table.splits()[0] if preset == "cpu" else with_valid(tiny_store)
    cfg = _cfg(epochs=3, batch_size=8) if preset == "cpu" else get_preset(preset, RECIPE_RESUME)
    straight = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "a", progress=False)

    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "b", progress=False)
    assert not (tmp_path / "b" / "final.json").exists()
    resumed = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "b", progress=False)
    # Exact: the resumed run repeats the straight run's computation in this process (weights,
    # optimiser, schedule and RNG restored bitwise, the same threads); the tolerances below
    # leave room for float32's last bits only, far less than a skipped or repeated epoch moves.
    assert resumed["test_acc"] == straight["test_acc"]
    assert resumed["predictions"] == straight["predictions"]
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert [r["epoch"] for r in b] == [1, 2, 3]  # the line after the checkpoint was cut
    assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b], rel=1e-5)
    assert [r["lr"] for r in a] == pytest.approx([r["lr"] for r in b], rel=1e-12)
    sa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6)


def test_loss_falls_and_final_json(tiny_store: FeatureStore, tmp_path: Path) -> None:
    split = tiny_store.table.splits()[0]
    out = _run_random(tiny_store, split, _cfg(epochs=4, batch_size=8, lr=1e-3), tmp_path)
    m = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(m) == 4 and m[-1]["train_loss"] < m[0]["train_loss"]
    assert out["n_test"] == len(split.test) == len(out["predictions"]) == len(out["labels"])
    assert 0.0 <= out["test_acc"] <= 100.0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["n_train"] == len(split.train) and config["train"]["optimiser"]["lr"] == 1e-3
    # A finished split of the same identity is reused (another device is not another run).
    again = _cfg(epochs=4, batch_size=8, lr=1e-3, device="cpu", eval_every=2)
    assert run_split(tiny_store, split, "random", ARCH, again, tmp_path, progress=False) == out


def test_changed_setting_or_data_never_reuses_a_run(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    """Issue 10: re-running with other settings or another dataset printed the old result."""
    split = tiny_store.table.splits()[0]
    cfg = _cfg(epochs=1, batch_size=8)
    run_split(tiny_store, split, "random", ARCH, cfg, tmp_path, progress=False)
    stamp = (tmp_path / "final.json").stat().st_mtime_ns
    with pytest.raises(RunError, match=r"settings\.lr: 0\.0001 -> 0\.01.*another --out"):
        run_split(tiny_store, split, "random", ARCH, _cfg(epochs=1, lr=0.01, batch_size=8),
                  tmp_path, progress=False)  # fmt: skip
    other_root = dataclasses.replace(tiny_store, key="0123456789abcdef")
    with pytest.raises(RunError, match="store"):
        run_split(other_root, split, "random", ARCH, cfg, tmp_path, progress=False)
    with pytest.raises(RunError, match=r"weights\.(label|fingerprint)"):
        run_split(tiny_store, split, "lite0", None, cfg, tmp_path, progress=False)
    assert (tmp_path / "final.json").stat().st_mtime_ns == stamp  # nothing overwritten


def test_changed_setting_never_resumes(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: on resume config.json said lr 0.01 while training used the restored 1e-4."""
    split = tiny_store.table.splits()[0]
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run_split(tiny_store, split, "random", ARCH, _cfg(epochs=3, batch_size=8),
                      tmp_path, progress=False)  # fmt: skip
    assert (tmp_path / "last.pt").exists()
    with pytest.raises(RunError, match=r"settings\.epochs: 3 -> 5"):
        run_split(tiny_store, split, "random", ARCH, _cfg(epochs=5, batch_size=8),
                  tmp_path, progress=False)  # fmt: skip
    assert json.loads((tmp_path / "config.json").read_text())["train"]["epochs"] == 3


class _Planted:
    """Unpickling this runs a shell command (what a planted last.pt could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_planted_checkpoint_cannot_run_code(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11.1: last.pt was loaded with weights_only=False."""
    split = tiny_store.table.splits()[0]
    cfg = _cfg(epochs=2, batch_size=8)
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "run", progress=False)
    marker = tmp_path / "pwned"
    torch.save({"model": _Planted(marker)}, tmp_path / "run" / "last.pt")
    with pytest.raises(RunError, match=r"last\.pt: not a readable checkpoint"):
        run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "run", progress=False)
    assert not marker.exists()


def test_linear_eval_resumes_after_kill(
    tiny_store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = tiny_store.table.splits()[1]
    cfg = _cfg(mode="linear", epochs=6)
    kw: dict[str, Any] = {"cache_dir": tmp_path / "c", "progress": False}
    straight = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "a", **kw)
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        with pytest.raises(KeyboardInterrupt):
            run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "b", **kw)
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert state["epoch"] == 3
    resumed = run_split(tiny_store, split, "random", ARCH, cfg, tmp_path / "b", **kw)
    assert resumed["predictions"] == straight["predictions"]  # exact: as in the test above
    assert [r["train_loss"] for r in _metrics(tmp_path / "b")] == pytest.approx(
        [r["train_loss"] for r in _metrics(tmp_path / "a")], rel=1e-6
    )


def test_pretrained_file_of_another_arch_loads_without_arch(
    tiny_store: FeatureStore, tmp_path: Path
) -> None:
    """Issue 10: an encoder from ``pretrain`` (cpu preset: resnet18) did not load through
    ``--weights FILE`` without ``--arch``: crossval forced resnet50 over the file's record."""
    import torchvision

    from soundtransfer.pretrain.loop import save_encoder

    torch.manual_seed(3)
    net = torchvision.models.resnet18()
    net.fc = torch.nn.Identity()  # type: ignore[assignment]
    path = save_encoder(net, "resnet18", tmp_path / "pre" / "encoder.safetensors", {})
    res = run_crossval(
        tiny_store, str(path), None, _cfg(mode="linear", epochs=2), tmp_path / "runs",
        folds=[1], cache_dir=tmp_path / "c", progress=False,
    )  # fmt: skip
    assert res.arch == "resnet18" and res.run_dir.parent.name == "resnet18.encoder"
    with pytest.raises(SoundTransferError, match="records arch 'resnet18', not 'resnet50'"):
        run_crossval(tiny_store, str(path), "resnet50", _cfg(), tmp_path / "runs", folds=[1])


def test_repeated_folds_are_refused(tiny_store: FeatureStore, tmp_path: Path) -> None:
    """Issue 11.12: --folds 1,1 counted fold 1 twice in the mean and std."""
    with pytest.raises(ConfigError, match=r"folds \[1\] given more than once"):
        run_crossval(tiny_store, "random", ARCH, _cfg(), tmp_path, folds=[1, 1])


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ("epochs=nan", "epochs"),
        ("epochs=inf", "epochs"),
        ("lr=-1", "lr must be positive"),
        ("lr=nan", "lr"),
        ("weight_decay=-0.1", "weight_decay"),
        ("batch_size=0", "batch_size"),
        ("embed_batch_size=0", "embed_batch_size"),
        ("eval_every=-1", "eval_every"),
        ("aug_mixup_alpha=-1", "aug_mixup_alpha"),
        ("aug_time_shift=1.5", "aug_time_shift"),
        ("aug_time_masks=-2", "aug_time_masks"),
        ("aug_mask_fill=zero", "aug_mask_fill"),
        ("label_smoothing=1", "label_smoothing"),
        ("ema_decay=1", "ema_decay"),
        ("schedule=linear", "schedule"),
        # The message names the fix (issue 24 point 5).
        (
            "warmup_epochs=100",
            r"warmup_epochs=100.0 is longer than epochs=70; .*\(--set warmup_epochs=0 for none\)",
        ),
        ("min_lr_ratio=2", "min_lr_ratio"),
    ],
)
def test_bad_training_settings_are_one_line_config_errors(setting: str, match: str) -> None:
    """Issue 11.6: epochs=nan/inf gave a traceback, lr=-1 reached torch's own error."""
    with pytest.raises(ConfigError, match=match) as info:
        get_preset("paper", [setting])
    assert isinstance(info.value, SoundTransferError) and "\n" not in str(info.value)


def test_linear_eval_trains_only_the_head(tiny_store: FeatureStore, tmp_path: Path) -> None:
    cfg = _cfg(mode="linear", epochs=30, lr=1e-3)
    res = run_crossval(
        tiny_store, "random", ARCH, cfg, tmp_path, cache_dir=tmp_path / "c", progress=False
    )
    assert res.splits == ("fold1", "fold2") and res.mode == "linear"
    bundle = torch.load(res.run_dir / "fold1" / "model.pt", weights_only=True)["state_dict"]
    from soundtransfer.weights import load_encoder

    enc, _ = load_encoder("random", ARCH, seed=0)
    for k, v in enc.state_dict().items():
        torch.testing.assert_close(bundle[f"encoder.{k}"], v)  # encoder untouched: a copy
    assert len(list((tmp_path / "c" / "embeddings").glob("*.npy"))) == 2  # one per split


def test_linear_head_folding_keeps_predictions(tiny_store: FeatureStore, tmp_path: Path) -> None:
    """The bundle (standardisation folded into the head) predicts what training reported."""
    from soundtransfer.inference.bundle import load_bundle

    split = tiny_store.table.splits()[1]
    cfg = _cfg(mode="linear", epochs=20)
    out = _run_random(tiny_store, split, cfg, tmp_path, cache_dir=tmp_path / "c")
    model, _ = load_bundle(tmp_path / "model.pt")
    with torch.no_grad():
        logits = model.classifier(tiny_store.batch(split.test))
    assert_predicts(logits, out["predictions"])  # folded head, recomputed in one batch
