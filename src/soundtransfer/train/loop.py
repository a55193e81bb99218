"""Fine-tuning and linear evaluation of one split, resumable (nanoGPT-style plain loop).

Protocol (paper, section 4): the encoder f(.) starts from the chosen weights, a linear head
g(.) sized to the classes is added, and the whole network (``finetune``) or only g
(``linear``: f frozen, in ``eval()`` and ``no_grad``) is trained with Adam (lr 1e-4, weight
decay 1e-3, batch 32) for 70 epochs with cross-entropy; the accuracy of the final epoch on the
held-out fold is reported. Input normalisation uses statistics of the split's training clips
only. The test fold is evaluated for the log but never used to choose anything.

Linear evaluation extracts the frozen encoder's pooled features once per clip (cached, keyed by
the feature store, the weights and the normalisation) and trains g on them: seconds instead of
a network pass per epoch, with the same result since f is frozen and deterministic in eval().
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from soundtransfer import distributed as D
from soundtransfer.config import config_hash, save_json, to_dict
from soundtransfer.datasets.clips import ClipTable, Split
from soundtransfer.errors import RunError
from soundtransfer.features.store import FeatureStore, default_cache_dir
from soundtransfer.locking import file_lock
from soundtransfer.models.classifier import Classifier, InputNorm
from soundtransfer.train.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def channel_stats(
    store: FeatureStore, indices: Sequence[int], batch: int = 256
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over the given rows (float64 accumulation)."""
    idx = np.sort(np.asarray(indices, dtype=np.int64))
    c = store.images.shape[1]
    s1, s2, n = np.zeros(c), np.zeros(c), 0
    for start in range(0, len(idx), batch):
        x = np.asarray(store.images[idx[start : start + batch]], dtype=np.float64)
        s1 += x.sum(axis=(0, 2, 3))
        s2 += np.square(x).sum(axis=(0, 2, 3))
        n += x.shape[0] * x.shape[2] * x.shape[3]
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    return mean.tolist(), std.tolist()


def carve_validation(
    table: ClipTable, train: Sequence[int], fraction: float, seed: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Hold out ``fraction`` of the training clips, whole source recordings at a time.

    Groups (``Clip.group``, the source recording) are drawn per class so the validation set
    is roughly stratified; clips without a group are their own group.
    """
    if fraction <= 0:
        return tuple(train), ()
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i in train:
        c = table.clips[i]
        groups.setdefault(c.group or f"clip:{c.file}", []).append(i)
    by_class: dict[int, list[str]] = {}
    for g, members in groups.items():
        by_class.setdefault(table.clips[members[0]].label, []).append(g)
    valid: list[int] = []
    for label in sorted(by_class):
        names = sorted(by_class[label])
        rng.shuffle(names)
        target = fraction * sum(len(groups[g]) for g in names)
        taken = 0
        for g in names:
            if taken >= target:
                break
            valid += groups[g]
            taken += len(groups[g])
    vset = set(valid)
    return tuple(i for i in train if i not in vset), tuple(sorted(vset))


def _autocast(cfg: TrainConfig, device: torch.device) -> AbstractContextManager[Any]:
    if device.type != "cuda" or cfg.amp == "off":
        return nullcontext()
    dtype = torch.float16 if cfg.amp == "fp16" else torch.bfloat16
    if cfg.amp == "auto" and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the model and its inputs use channels_last (``auto``: on CUDA)."""
    return cfg.channels_last == "on" or (cfg.channels_last == "auto" and device.type == "cuda")


def _batches(indices: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]


def _prefetch(
    store: FeatureStore, batches: list[np.ndarray], device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches ``(x, y)`` on ``device``, one fancy-index memmap read each: no per-sample work.

    On CUDA a background thread reads one batch ahead into pinned memory, copied
    non-blocking, so reading overlaps the GPU's work. On CPU the batches are read inline: a
    reader thread would compete with torch's intra-op threads for the same cores, which made
    fine-tuning ~25 % slower (measured, 2 cores), while the read itself costs ~2 % of a step.
    """
    labels = torch.tensor(store.table.labels, dtype=torch.long)
    if device.type != "cuda":
        for b in batches:
            yield store.batch(b).to(device), labels[torch.from_numpy(b)].to(device)
        return
    q: queue.Queue[tuple[Tensor, Tensor] | None] = queue.Queue(maxsize=2)

    def work() -> None:
        for b in batches:
            x = store.batch(b).pin_memory()
            y = labels[torch.from_numpy(b)].pin_memory()
            q.put((x, y))
        q.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while (item := q.get()) is not None:
        x, y = item
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    thread.join()


def _optimizer(params: Any, cfg: TrainConfig, world: int) -> torch.optim.Optimizer:
    lr = cfg.lr * (world if cfg.scale_lr else 1)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    store: FeatureStore,
    indices: Sequence[int],
    cfg: TrainConfig,
    device: torch.device,
) -> tuple[float, float, list[int]]:
    """(mean loss, accuracy %, predictions) over the given rows."""
    model.eval()
    idx = np.asarray(indices, dtype=np.int64)
    total, correct, preds = 0.0, 0, []
    for x, y in _prefetch(store, _batches(idx, cfg.embed_batch_size), device):
        if _channels_last(cfg, device):
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(cfg, device):
            logits = model(x)
        total += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        p = logits.argmax(1)
        correct += int((p == y).sum())
        preds += p.cpu().tolist()
    n = max(len(idx), 1)
    return total / n, 100.0 * correct / n, preds


def build_classifier(
    store: FeatureStore,
    train_idx: Sequence[int],
    weights: str,
    arch: str | None,
    cfg: TrainConfig,
    cache_dir: Path | None = None,
) -> tuple[Classifier, dict[str, Any]]:
    """Encoder from ``weights`` + InputNorm from training-clip statistics + linear head."""
    from soundtransfer.weights import load_encoder

    encoder, src = load_encoder(weights, arch, cache_dir=cache_dir, seed=cfg.seed)
    mean, std = channel_stats(store, train_idx)
    norm = InputNorm(mean, std, src.input_mean, src.input_std)
    torch.manual_seed(cfg.seed)
    model = Classifier(encoder, len(store.table.classes), norm)
    info = {
        "weights": weights,
        "arch": encoder.arch,
        "source": to_dict(src),
        "train_mean": mean,
        "train_std": std,
    }
    return model, info


def _log(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def run_split(
    store: FeatureStore,
    split: Split,
    weights: str,
    arch: str | None,
    cfg: TrainConfig,
    run_dir: Path,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one split; resumes from ``last.pt``; skips when ``final.json`` exists.

    Returns:
        The contents of ``final.json``.
    """
    final_path = run_dir / "final.json"
    if final_path.exists():
        done: dict[str, Any] = json.loads(final_path.read_text())
        return done
    info = D.init_distributed(cfg.device)
    device = info.device if info.world_size > 1 else resolve_device(cfg.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_idx, valid_idx = carve_validation(store.table, split.train, cfg.val_fraction, cfg.seed)
    if split.valid:
        valid_idx = tuple(split.valid)
    torch.manual_seed(cfg.seed)
    model, model_info = build_classifier(store, train_idx, weights, arch, cfg, cache_dir)
    header = {
        "train": to_dict(cfg),
        "frontend": to_dict(store.frontend),
        "dataset": store.table.name,
        "store_key": store.key,
        "split": split.name,
        "n_train": len(train_idx),
        "n_valid": len(valid_idx),
        "n_test": len(split.test),
        "world_size": info.world_size,
        "effective_batch_size": cfg.batch_size * info.world_size,
        "torch": torch.__version__,
        "device": str(device),
        **{k: v for k, v in model_info.items() if k != "source"},
        "weight_source": model_info["source"],
    }
    if D.is_main():
        save_json(run_dir / "config.json", header)
    if cfg.mode == "linear":
        result = _linear(
            store, split, train_idx, valid_idx, model, cfg, device, run_dir, progress, cache_dir
        )
    else:
        result = _finetune(
            store,
            split,
            train_idx,
            valid_idx,
            model,
            cfg,
            device,
            run_dir,
            progress,
            info.world_size,
        )
    result.update(
        {
            "split": split.name,
            "n_train": len(train_idx),
            "n_test": len(split.test),
            "labels": [store.table.clips[i].label for i in split.test],
            "classes": list(store.table.classes),
        }
    )
    if D.is_main():
        _save_bundle(run_dir / "model.pt", model, store, model_info)
        save_json(final_path, result)
    return result


def _save_bundle(path: Path, model: Classifier, store: FeatureStore, info: dict[str, Any]) -> None:
    from soundtransfer.inference.bundle import save_bundle

    save_bundle(path, model, store.frontend, store.table.classes, info["arch"], info["weights"])


def _finetune(
    store: FeatureStore,
    split: Split,
    train_idx: Sequence[int],
    valid_idx: Sequence[int],
    model: Classifier,
    cfg: TrainConfig,
    device: torch.device,
    run_dir: Path,
    progress: bool,
    world: int,
) -> dict[str, Any]:
    channels_last = _channels_last(cfg, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = _optimizer(model.parameters(), cfg, world)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp == "fp16")
    start_epoch, best = 0, {"val_acc": -1.0, "epoch": 0}
    last = run_dir / "last.pt"
    metrics_path = run_dir / "metrics.jsonl"
    if last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best = state["epoch"], state["best"]
        _truncate_log(metrics_path, start_epoch)
    elif metrics_path.exists():
        metrics_path.unlink()
    trained: nn.Module = model
    if world > 1:
        trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile and device.type == "cuda":
        trained = torch.compile(trained)  # type: ignore[assignment]
    train_arr = np.asarray(train_idx, dtype=np.int64)
    rank = D.get_rank()
    test_loss = test_acc = float("nan")
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        # The shuffle depends only on (seed, epoch): a resumed run sees the same batches.
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(train_arr)
        usable = len(perm) // world * world
        mine = perm[:usable][rank::world] if world > 1 else perm
        batches = _batches(mine, cfg.batch_size)
        trained.train()
        seen, loss_sum, correct = 0, 0.0, 0
        bar = tqdm(
            total=len(mine),
            desc=f"{run_dir.name} epoch {epoch + 1}/{cfg.epochs}",
            unit="clip",
            disable=not progress or not D.is_main(),
            leave=False,
        )
        for step, (x, y) in enumerate(_prefetch(store, batches, device)):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(cfg, device):
                logits = trained(x)
                loss = F.cross_entropy(logits.float(), y)
            if not torch.isfinite(loss):
                raise RunError(f"{run_dir}: non-finite loss at epoch {epoch + 1}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            bar.update(len(y))
        bar.close()
        seconds = time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": 100.0 * correct / max(seen, 1),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "samples_per_s": seen * world / seconds,
        }
        if valid_idx:
            record["val_loss"], record["val_acc"], _ = evaluate(
                model, store, valid_idx, cfg, device
            )
            if record["val_acc"] > best["val_acc"]:
                best = {"val_acc": record["val_acc"], "epoch": epoch + 1}
                if cfg.select == "best_val" and D.is_main():
                    _save_atomic(model.state_dict(), run_dir / "best.pt")
        final_epoch = epoch + 1 == cfg.epochs
        if final_epoch or (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0):
            test_loss, test_acc, _ = evaluate(model, store, split.test, cfg, device)
            record["test_loss"], record["test_acc"] = test_loss, test_acc
        if D.is_main():
            _log(metrics_path, record)
            _save_atomic(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch": epoch + 1,
                    "best": best,
                },
                last,
            )
        D.barrier()
    if cfg.select == "best_val" and (run_dir / "best.pt").exists():
        model.load_state_dict(torch.load(run_dir / "best.pt", map_location=device))
    test_loss, test_acc, preds = evaluate(model, store, split.test, cfg, device)
    model.to("cpu")
    return {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "epochs": cfg.epochs,
        "selected_epoch": best["epoch"] if cfg.select == "best_val" else cfg.epochs,
        "predictions": preds,
    }


def _truncate_log(path: Path, epochs: int) -> None:
    """Keep the first ``epochs`` lines of metrics.jsonl (a kill may leave one more)."""
    if path.exists():
        lines = path.read_text().splitlines()[:epochs]
        path.write_text("".join(line + "\n" for line in lines))


@torch.no_grad()
def embed_rows(
    model: Classifier,
    store: FeatureStore,
    indices: np.ndarray,
    cfg: TrainConfig,
    device: torch.device,
    progress: bool = False,
) -> np.ndarray:
    """Frozen-encoder pooled features ``(N, D)`` float32 of the given rows."""
    model.eval().to(device)
    out = []
    batches = _batches(indices, cfg.embed_batch_size)
    for x, _y in tqdm(
        _prefetch(store, batches, device),
        total=len(batches),
        desc="embedding",
        disable=not progress,
        leave=False,
    ):
        with _autocast(cfg, device):
            out.append(model.embed(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.encoder.feature_dim), np.float32)


def _linear(
    store: FeatureStore,
    split: Split,
    train_idx: Sequence[int],
    valid_idx: Sequence[int],
    model: Classifier,
    cfg: TrainConfig,
    device: torch.device,
    run_dir: Path,
    progress: bool,
    cache_dir: Path | None,
) -> dict[str, Any]:
    rows = np.asarray(sorted({*train_idx, *valid_idx, *split.test}), dtype=np.int64)
    norm = model.norm
    assert isinstance(norm, InputNorm)
    norm_key = [norm.scale.flatten().tolist(), norm.shift.flatten().tolist()]
    enc_key = config_hash(
        store.key,
        model.encoder.arch,
        norm_key,
        [  # a fingerprint of every weight tensor (cheap next to one embedding pass)
            float(p.double().sum())
            for p in model.encoder.state_dict().values()
            if p.dtype.is_floating_point
        ],
        rows.tolist(),
    )
    cache = (cache_dir or default_cache_dir()) / "embeddings" / f"{enc_key}.npy"
    with file_lock(cache.with_suffix(".lock")):  # one process embeds, the others reuse it
        if cache.exists():
            emb = np.load(cache)
        else:
            emb = embed_rows(model, store, rows, cfg, device, progress)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, emb)
            tmp.replace(cache)
    pos = {int(r): k for k, r in enumerate(rows)}
    labels = np.asarray(store.table.labels, dtype=np.int64)

    def tensors(idx: Sequence[int]) -> tuple[Tensor, Tensor]:
        k = [pos[int(i)] for i in idx]
        return torch.from_numpy(emb[k]), torch.from_numpy(labels[list(idx)])

    xtr, ytr = tensors(train_idx)
    xte, yte = tensors(split.test)
    if cfg.feature_norm:
        # Standardise features with training statistics: an affine reparametrisation of the
        # linear head (still a linear classifier of frozen features) that makes Adam at the
        # paper's learning rate converge whatever the scale of the encoder's outputs.
        mu, sd = xtr.mean(0, keepdim=True), xtr.std(0, keepdim=True).clamp_min(1e-6)
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    else:
        mu, sd = torch.zeros(1, xtr.shape[1]), torch.ones(1, xtr.shape[1])
    head = model.head.to("cpu")
    torch.manual_seed(cfg.seed)
    head.reset_parameters()
    optimizer = _optimizer(head.parameters(), cfg, 1)
    metrics_path = run_dir / "metrics.jsonl"
    if metrics_path.exists():
        metrics_path.unlink()
    best: dict[str, Any] = {"val_acc": -1.0, "epoch": 0, "state": None}
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        perm = torch.from_numpy(np.random.default_rng([cfg.seed, epoch]).permutation(len(ytr)))
        loss_sum, correct = 0.0, 0
        for s in range(0, len(perm), cfg.batch_size):
            b = perm[s : s + cfg.batch_size]
            logits = head(xtr[b])
            loss = F.cross_entropy(logits, ytr[b])
            if not torch.isfinite(loss):
                raise RunError(f"{run_dir}: non-finite loss at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(b)
            correct += int((logits.argmax(1) == ytr[b]).sum())
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / len(ytr),
            "train_acc": 100.0 * correct / len(ytr),
            "lr": cfg.lr,
            "seconds": time.perf_counter() - t0,
        }
        with torch.no_grad():
            if valid_idx:
                xva, yva = tensors(valid_idx)
                xva = (xva - mu) / sd
                lv = head(xva)
                record["val_loss"] = float(F.cross_entropy(lv, yva))
                record["val_acc"] = 100.0 * float((lv.argmax(1) == yva).float().mean())
                if record["val_acc"] > best["val_acc"]:  # type: ignore[operator]
                    best = {
                        "val_acc": record["val_acc"],
                        "epoch": epoch + 1,
                        "state": {k: v.clone() for k, v in head.state_dict().items()},
                    }
            lt = head(xte)
            record["test_loss"] = float(F.cross_entropy(lt, yte))
            record["test_acc"] = 100.0 * float((lt.argmax(1) == yte).float().mean())
        _log(metrics_path, record)
    if cfg.select == "best_val" and best["state"] is not None:
        head.load_state_dict(best["state"])
    with torch.no_grad():
        lt = head(xte)
        preds = lt.argmax(1)
        # Fold the standardisation into the head so the bundle takes raw embeddings.
        head.bias.sub_((head.weight * (mu / sd)).sum(1))
        head.weight.div_(sd)
        acc = 100.0 * float((preds == yte).float().mean())
        loss_value = float(F.cross_entropy(lt, yte))
    model.to("cpu")
    if not math.isfinite(loss_value):
        raise RunError(f"{run_dir}: non-finite test loss")
    return {
        "test_acc": acc,
        "test_loss": loss_value,
        "epochs": cfg.epochs,
        "selected_epoch": best["epoch"] if cfg.select == "best_val" else cfg.epochs,
        "predictions": preds.tolist(),
        "embedding_cache": str(cache),
    }
