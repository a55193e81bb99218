"""Pre-training loop on real photos: files written, resume equals an uninterrupted run, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from soundtransfer.config import ConfigError
from soundtransfer.errors import DatasetError, RunError
from soundtransfer.models import build_encoder
from soundtransfer.pretrain import loop
from soundtransfer.pretrain.config import PRESETS, PretrainConfig, get_preset
from soundtransfer.pretrain.data import ImageViews, epoch_batches, find_images
from soundtransfer.pretrain.lars import LARS, lars_param_groups
from soundtransfer.pretrain.loop import (
    SimCLRModel,
    encoder_state_dict,
    pretrain,
    projection_head,
)
from soundtransfer.pretrain.ntxent import nt_xent

FAST = ["batch_size=8", "input_size=32", "max_steps=4", "checkpoint_every=2"]


def losses(out_dir: Path) -> list[float]:
    lines = (out_dir / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_presets() -> None:
    paper = PRESETS["paper"]
    assert (paper.arch, paper.batch_size, paper.epochs, paper.temperature) == (
        "resnet50",
        4096,
        100,
        0.1,
    )
    assert (paper.base_lr, paper.lr_scaling, paper.weight_decay) == (0.3, "linear", 1e-6)
    assert (paper.proj_hidden_dim, paper.proj_out_dim, paper.warmup_epochs) == (2048, 128, 10)
    cpu = get_preset("cpu", ["batch_size=8", "amp=off"])
    assert cpu.arch == "resnet18" and cpu.batch_size == 8
    with pytest.raises(ConfigError, match="unknown setting"):
        get_preset("cpu", ["batchsize=8"])
    with pytest.raises(ConfigError, match="amp"):
        get_preset("cpu", ["amp=fp8"])
    with pytest.raises(ConfigError, match="preset"):
        get_preset("tpu")
    with pytest.raises(ConfigError, match="temperature"):
        PretrainConfig(temperature=0.0)


@pytest.mark.parametrize(
    "setting",
    ["epochs=nan", "epochs=inf", "base_lr=-1", "base_lr=nan", "temperature=inf", "momentum=1.5",
     "trust_coefficient=0", "weight_decay=-1", "seed=-1"],
)  # fmt: skip
def test_bad_settings_are_one_line_config_errors(setting: str) -> None:
    """Issue 11.6: every pre-training setting is validated with a one-line ConfigError."""
    from soundtransfer.errors import SoundTransferError

    with pytest.raises(ConfigError, match=setting.split("=")[0]) as info:
        get_preset("paper", [setting])
    assert isinstance(info.value, SoundTransferError) and "\n" not in str(info.value)


def test_find_images_nested_and_filtered(image_folder: Path) -> None:
    (image_folder / "notes.txt").write_text("not an image")
    (image_folder / "c" / "UPPER.JPG").write_bytes((image_folder / "china.jpg").read_bytes())
    files = find_images(image_folder)
    assert len(files) == 33 and files == sorted(files)
    assert {f.suffix for f in files} == {".jpg", ".png", ".webp", ".JPG"}
    with pytest.raises(DatasetError, match="does not exist"):
        find_images(image_folder / "missing")
    (image_folder / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no \.jpg"):
        find_images(image_folder / "empty")


def test_undecodable_image_is_named_or_skipped(image_folder: Path) -> None:
    bad = image_folder / "a" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    files = find_images(image_folder)
    index = files.index(bad)
    transform = PretrainConfig(input_size=32).transform()
    with pytest.raises(DatasetError, match=r"broken\.jpg"):
        ImageViews(files, transform, seed=0)[(0, index)]
    v0, _, skipped = ImageViews(files, transform, seed=0, skip_bad=True)[(0, index)]
    assert v0.shape == (3, 32, 32) and str(bad) in skipped


def test_views_are_seeded_by_epoch_and_index(image_folder: Path) -> None:
    files = find_images(image_folder)
    data = ImageViews(files, PretrainConfig(input_size=32).transform(), seed=0)
    a, b = data[(0, 3)], data[(0, 3)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # bitwise: the same seeded draw
    assert not torch.equal(data[(1, 3)][0], a[0])
    crops = ImageViews(files, PretrainConfig(input_size=32).transform(), 0, crops_only=True)
    assert crops[(0, 3)][0].dtype == torch.uint8


def test_epoch_batches_split_the_single_process_batch_over_ranks() -> None:
    single = epoch_batches(70, 16, world_size=1, rank=0, seed=0, epoch=2)
    assert len(single) == 4 and all(len(b) == 16 for b in single)  # 6 images dropped
    ranks = [epoch_batches(70, 16, world_size=2, rank=r, seed=0, epoch=2) for r in range(2)]
    for step in range(4):
        assert ranks[0][step] + ranks[1][step] == single[step]
    indices = [i for b in single for _, i in b]
    assert len(set(indices)) == 64 and all(e == 2 for b in single for e, _ in b)
    assert single != epoch_batches(70, 16, 1, 0, seed=0, epoch=3)
    assert single == epoch_batches(70, 16, 1, 0, seed=0, epoch=2)


def test_projection_head_layouts() -> None:
    v1 = projection_head(512, 512, 128, num_layers=2)
    assert [type(m) for m in v1] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    v2 = projection_head(2048, 2048, 128, num_layers=3)
    assert [type(m).__name__ for m in v2].count("BatchNorm1d") == 2
    assert v2(torch.randn(4, 2048)).shape == (4, 128)


def test_encoder_state_dict_has_torchvision_keys() -> None:
    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = torchvision.models.resnet18()
            self.backbone.fc = nn.Identity()

    state = encoder_state_dict(Wrapped(), "resnet18")
    reference = torchvision.models.resnet18().state_dict()
    assert set(state) == {k for k in reference if not k.startswith("fc.")}
    assert "conv1.weight" in state and "layer1.0.conv1.weight" in state
    with pytest.raises(RunError, match="key layout"):
        encoder_state_dict(nn.Linear(3, 3), "resnet18")


@pytest.mark.usefixtures("encoder")
def test_loss_falls_in_a_few_steps(image_folder: Path) -> None:
    torch.manual_seed(0)
    cfg = PretrainConfig(input_size=32, proj_hidden_dim=64, proj_out_dim=32)
    model = SimCLRModel(build_encoder("resnet18"), cfg)
    files = find_images(image_folder)
    data = ImageViews(files, cfg.transform(), seed=0)
    views = [data[(0, i)] for i in range(16)]
    v0, v1 = torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])
    opt = LARS(lars_param_groups(model, 1e-6), lr=5.0)
    history = []
    for _ in range(12):
        z0, z1 = model(torch.cat([v0, v1])).chunk(2)
        loss = nt_xent(z0, z1, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert history[-1] < 0.8 * history[0]


@pytest.mark.usefixtures("encoder")
def test_pretrain_writes_a_loadable_encoder(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    path = pretrain(image_folder, get_preset("cpu", FAST), out, progress=False)
    assert path == out / "encoder.safetensors"
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4]
    assert [e["epoch"] for e in log] == [0, 0, 0, 0]  # 32 images / batch 8 = 4 steps an epoch
    assert all(e["loss"] > 0 for e in log)
    assert log[0]["lr"] == pytest.approx(0.3 * 8 / 256)  # no warm-up in the cpu preset
    state = load_file(path)
    net = torchvision.models.resnet18()
    result = net.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys
    sidecar = json.loads((out / "encoder.json").read_text())
    assert sidecar["arch"] == "resnet18" and sidecar["steps"] == 4
    assert sidecar["input_mean"] == [0.485, 0.456, 0.406]
    assert sidecar["input_std"] == [0.229, 0.224, 0.225]
    assert sidecar["config"]["batch_size"] == 8 and sidecar["epochs"] == 1.0
    assert json.loads((out / "config.json").read_text())["input_size"] == 32
    with pytest.raises(RunError, match="exists"):
        pretrain(image_folder, get_preset("cpu", FAST), out, progress=False)


@pytest.mark.usefixtures("encoder")
def test_resume_gives_the_same_losses(image_folder: Path, tmp_path: Path) -> None:
    cfg = get_preset("cpu", [*FAST, "max_steps=6", "warmup_epochs=0.5"])  # 2 epochs, warm-up
    straight = pretrain(image_folder, cfg, tmp_path / "straight", progress=False)
    stopped = pretrain(image_folder, cfg, tmp_path / "split", stop_at=3, progress=False)
    assert stopped == tmp_path / "split" / "checkpoints" / "last.pt"
    assert len(losses(tmp_path / "split")) == 3
    with pytest.raises(RunError, match="temperature"):
        pretrain(
            image_folder,
            get_preset("cpu", [*FAST, "max_steps=6", "warmup_epochs=0.5", "temperature=0.5"]),
            tmp_path / "split",
            resume=True,
            progress=False,
        )
    resumed = pretrain(image_folder, cfg, tmp_path / "split", resume=True, progress=False)
    # The resumed run repeats the straight run's computation in this process (state restored
    # bitwise, the same threads): room for float32's last bits only.
    assert losses(tmp_path / "split") == pytest.approx(losses(tmp_path / "straight"), rel=1e-6)
    a, b = load_file(straight), load_file(resumed)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


@pytest.mark.usefixtures("encoder")
def test_device_batch_augment_path_runs(image_folder: Path, tmp_path: Path) -> None:
    cfg = get_preset("cpu", [*FAST, "max_steps=2", "batch_augment=on", "num_workers=1"])
    pretrain(image_folder, cfg, tmp_path / "run", progress=False)
    assert len(losses(tmp_path / "run")) == 2


@pytest.mark.usefixtures("encoder")
def test_non_finite_loss_stops_the_run(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NanLoss(nn.Module):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__()

        def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
            return (z0 * z1).sum() * float("nan")

    monkeypatch.setattr(loop, "NTXentLoss", NanLoss)
    with pytest.raises(RunError, match="non-finite loss nan at step 1"):
        pretrain(image_folder, get_preset("cpu", FAST), tmp_path / "run", progress=False)


@pytest.mark.usefixtures("encoder")
def test_skip_bad_reports_replaced_images(image_folder: Path, tmp_path: Path) -> None:
    (image_folder / "broken.png").write_bytes(b"\x89PNG broken")
    (image_folder / "extra.jpg").write_bytes((image_folder / "china.jpg").read_bytes())
    # 34 files in 2 steps of 17 (one epoch, none dropped): the broken one is met exactly once
    cfg = get_preset("cpu", [*FAST, "max_steps=2", "skip_bad=true", "batch_size=17"])
    pretrain(image_folder, cfg, tmp_path / "run", progress=False)
    text = (tmp_path / "run" / "skipped.jsonl").read_text()
    records = [json.loads(x) for x in text.splitlines()]
    assert [Path(r["file"]).name for r in records] == ["broken.png"]


def test_too_few_images(image_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="fewer than batch_size=64"):
        pretrain(image_folder, get_preset("cpu", ["batch_size=64"]), tmp_path, progress=False)


@pytest.mark.usefixtures("encoder")
def test_workers_do_not_change_the_numbers(image_folder: Path, tmp_path: Path) -> None:
    for workers in (0, 2):
        cfg = get_preset("cpu", [*FAST, "max_steps=2", f"num_workers={workers}"])
        pretrain(image_folder, cfg, tmp_path / f"w{workers}", progress=False)
    # The views made in 2 worker processes (one intra-op thread each) vs in this one: the same
    # seeded draws and float32 ops, which another thread split or kernel set may round in the
    # last bits; 1e-5 relative, while another draw moves these losses by several percent.
    assert losses(tmp_path / "w0") == pytest.approx(losses(tmp_path / "w2"), rel=1e-5)


@pytest.mark.usefixtures("encoder")
def test_undecodable_image_in_a_worker_is_one_clear_line(
    image_folder: Path, tmp_path: Path
) -> None:
    (image_folder / "broken.webp").write_bytes(b"RIFF broken")
    cfg = get_preset("cpu", [*FAST, "batch_size=33", "max_steps=1", "num_workers=1"])
    with pytest.raises(DatasetError, match=r"^cannot decode image .*broken\.webp") as info:
        pretrain(image_folder, cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(info.value)
