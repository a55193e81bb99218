"""Convert official SimCLR (v1 / v2 SK0) TensorFlow checkpoints to torchvision ResNet keys.

Facts used (google-research/simclr, TF1 ``resnet.py``): the trunk lives under ``base_model/``
as flat, auto-numbered ``conv2d[_N]/kernel`` and ``batch_normalization[_N]/{gamma, beta,
moving_mean, moving_variance}``; the suffix is the creation order; in the first block of each
group the projection shortcut (1x1 conv + BN) is created *before* the block's three convs;
kernels are HWIO; BN epsilon 1e-5. Optimiser slots (``.../Momentum``), ``global_step``, the
heads (``head_contrastive``, ``head_supervised``) and any ``ema_model/`` copy are filtered by
explicit rules, then the counts are asserted (ResNet-50: 53 convs + 53 BNs) and every tensor's
shape is checked before a strict load. SimCLR models take RGB in [0, 1] and a TF 'SAME' stem
max-pool (see :class:`~soundtransfer.models.ResNetEncoder`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torchvision

from soundtransfer.errors import WeightsError

_CONV = re.compile(r"^base_model/conv2d(?:_(\d+))?/kernel$")
_BN = re.compile(
    r"^base_model/batch_normalization(?:_(\d+))?/(gamma|beta|moving_mean|moving_variance)$"
)
_BN_KEYS = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def torchvision_order(arch: str = "resnet50") -> list[tuple[str, str]]:
    """(conv key prefix, bn key prefix) pairs of a torchvision ResNet in TF creation order."""
    net = getattr(torchvision.models, arch)(weights=None)
    pairs = [("conv1", "bn1")]
    for g in range(1, 5):
        layer = getattr(net, f"layer{g}")
        for b, block in enumerate(layer):
            p = f"layer{g}.{b}"
            if block.downsample is not None:
                pairs.append((f"{p}.downsample.0", f"{p}.downsample.1"))
            n_convs = 3 if hasattr(block, "conv3") else 2
            pairs += [(f"{p}.conv{i}", f"{p}.bn{i}") for i in range(1, n_convs + 1)]
    return pairs


def split_variables(
    names: list[str], prefix: str = ""
) -> tuple[dict[int, str], dict[int, dict[str, str]]]:
    """Trunk conv kernels and BN variables by creation index (explicit filters, no guessing).

    Args:
        names: every variable name in the checkpoint.
        prefix: ``""`` for the plain model or ``"ema_model/"`` for an EMA copy.
    """
    convs: dict[int, str] = {}
    bns: dict[int, dict[str, str]] = {}
    for name in names:
        if not name.startswith(prefix) or name.endswith("/Momentum") or "/Momentum/" in name:
            continue
        short = name[len(prefix) :]
        if m := _CONV.match(short):
            convs[int(m.group(1) or 0)] = name
        elif m := _BN.match(short):
            bns.setdefault(int(m.group(1) or 0), {})[m.group(2)] = name
    return convs, bns


def convert_arrays(
    arrays: dict[str, np.ndarray], arch: str = "resnet50", prefix: str = ""
) -> dict[str, torch.Tensor]:
    """Map TF variables (name -> array) to a torchvision ResNet state dict (no ``fc``)."""
    convs, bns = split_variables(list(arrays), prefix)
    order = torchvision_order(arch)
    if len(convs) != len(order) or len(bns) != len(order):
        raise WeightsError(
            f"checkpoint has {len(convs)} trunk convs and {len(bns)} BNs; {arch} needs "
            f"{len(order)} of each (is it a SimCLR sk0 ResNet of this depth?)"
        )
    reference = getattr(torchvision.models, arch)(weights=None).state_dict()
    state: dict[str, torch.Tensor] = {}
    for k, (conv_key, bn_key) in enumerate(order):
        ci, bi = sorted(convs)[k], sorted(bns)[k]
        kernel = torch.from_numpy(np.ascontiguousarray(arrays[convs[ci]].transpose(3, 2, 0, 1)))
        state[f"{conv_key}.weight"] = kernel  # HWIO -> OIHW
        parts = bns[bi]
        missing = set(_BN_KEYS) - set(parts)
        if missing:
            raise WeightsError(f"batch_normalization_{bi}: missing {sorted(missing)}")
        for tf_name, pt_name in _BN_KEYS.items():
            state[f"{bn_key}.{pt_name}"] = torch.from_numpy(np.asarray(arrays[parts[tf_name]]))
        state[f"{bn_key}.num_batches_tracked"] = torch.tensor(0)
    for key, value in state.items():
        if tuple(value.shape) != tuple(reference[key].shape):
            raise WeightsError(
                f"{key}: shape {tuple(value.shape)} from the checkpoint, "
                f"{tuple(reference[key].shape)} expected"
            )
    expected = {k for k in reference if not k.startswith("fc.")}
    if set(state) != expected:
        raise WeightsError(f"converted keys differ: {sorted(expected ^ set(state))[:5]}")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint (prefix path, e.g. ``.../model.ckpt-225206``)."""
    try:
        import tensorflow as tf
    except ImportError:
        raise WeightsError(
            "converting SimCLR checkpoints needs TensorFlow: pip install 'soundtransfer[tf]'"
        ) from None
    try:
        reader = tf.train.load_checkpoint(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable TensorFlow checkpoint ({exc})") from None
    shapes = reader.get_variable_to_shape_map()
    return {name: reader.get_tensor(name) for name in shapes}


def convert_checkpoint(
    path: Path, arch: str = "resnet50", ema: bool = False
) -> dict[str, torch.Tensor]:
    """Read a SimCLR TF checkpoint and return the torchvision-keyed trunk state dict."""
    return convert_arrays(read_checkpoint(path), arch, "ema_model/" if ema else "")
