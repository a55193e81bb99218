"""The SimCLR converter against TensorFlow itself: same outputs on the same input.

A TF1 graph of SimCLR's ResNet-50 is built here with the official variable names and creation
order (``resnet.py``: fixed padding for strided convs, projection shortcut created first, BN
epsilon 1e-5, 'SAME' stem max-pool), given random weights *and* random BN statistics, saved
with a Saver, converted, and run in both frameworks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soundtransfer.errors import WeightsError
from soundtransfer.models import build_encoder
from soundtransfer.weights.tf_simclr import convert_arrays, convert_checkpoint, torchvision_order

tf = pytest.importorskip("tensorflow", reason="TensorFlow (extra 'tf') is the reference")


def _tf_resnet50(x: object, rng: np.random.Generator) -> tuple[object, list[object]]:
    """SimCLR's TF1 ResNet-50 with raw ops and tf.layers' auto-names, created in its order."""
    v1 = tf.compat.v1
    assigns: list[object] = []
    counters = {"conv2d": 0, "batch_normalization": 0}

    def name(kind: str) -> str:
        k = counters[kind]
        counters[kind] += 1
        return kind if k == 0 else f"{kind}_{k}"

    def conv(inputs: object, filters: int, k: int, strides: int) -> object:
        c_in = int(inputs.shape[-1])
        with v1.variable_scope(name("conv2d")):
            std = np.sqrt(2.0 / (k * k * c_in))
            kernel = v1.get_variable(
                "kernel", initializer=rng.normal(0, std, (k, k, c_in, filters)).astype("f4")
            )
        if strides > 1:  # resnet.py fixed_padding, then VALID
            total = k - 1
            beg = total // 2
            inputs = tf.pad(inputs, [[0, 0], [beg, total - beg], [beg, total - beg], [0, 0]])
            return tf.nn.conv2d(inputs, kernel, strides, "VALID")
        return tf.nn.conv2d(inputs, kernel, 1, "SAME")

    def bn(inputs: object, relu: bool = True) -> object:
        c = int(inputs.shape[-1])
        with v1.variable_scope(name("batch_normalization")):
            init = {
                "gamma": rng.uniform(0.5, 1.5, c),
                "beta": rng.normal(0, 0.1, c),
                "moving_mean": rng.normal(0, 0.1, c),
                "moving_variance": rng.uniform(0.5, 1.5, c),
            }
            v = {k: v1.get_variable(k, initializer=a.astype("f4")) for k, a in init.items()}
        out = tf.nn.batch_normalization(
            inputs, v["moving_mean"], v["moving_variance"], v["beta"], v["gamma"], 1e-5
        )
        return tf.nn.relu(out) if relu else out

    with v1.variable_scope("base_model"):
        h = bn(conv(x, 64, 7, 2))
        h = tf.nn.max_pool2d(h, 3, 2, "SAME")
        for filters, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for b in range(blocks):
                s = stride if b == 0 else 1
                shortcut = h
                if b == 0:  # the projection shortcut is created first (resnet.py)
                    shortcut = bn(conv(h, 4 * filters, 1, s), relu=False)
                y = bn(conv(h, filters, 1, 1))
                y = bn(conv(y, filters, 3, s))
                y = bn(conv(y, 4 * filters, 1, 1), relu=False)
                h = tf.nn.relu(y + shortcut)
        pooled = tf.reduce_mean(h, axis=[1, 2])
    assert counters == {"conv2d": 53, "batch_normalization": 53}
    return pooled, assigns


@pytest.mark.slow
def test_converted_model_matches_tensorflow(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (2, 64, 96, 3)).astype(np.float32)  # even sides: SAME max-pool
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, (None, 64, 96, 3))
        pooled, _ = _tf_resnet50(x, rng)
        step = tf.compat.v1.train.get_or_create_global_step()
        # An optimiser slot per variable, as in the released checkpoints: must be filtered.
        for var in tf.compat.v1.trainable_variables():
            tf.compat.v1.Variable(tf.zeros_like(var), name=var.op.name + "/Momentum")
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            want = sess.run(pooled, {x: image})
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=step)
    state = convert_checkpoint(Path(prefix))
    encoder = build_encoder("resnet50", tf_same_pool=True)
    encoder.load_state_dict(state, strict=True)
    encoder.eval()
    with torch.no_grad():
        got = encoder(torch.from_numpy(image).permute(0, 3, 1, 2)).numpy()
    assert got.shape == (2, 2048)
    assert np.abs(want).max() > 1e-3  # a non-trivial output
    # TensorFlow's kernels vs torch's through 50 layers: float32 sums in another order, which
    # also depends on the CPU; 1e-4 of the output's scale, far below the 1e-3 the pooling
    # flag alone changes (below).
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 1e-4, f"max relative difference {rel:.2e}"
    # PyTorch's symmetric max-pool padding gives a different result: the flag matters.
    plain = build_encoder("resnet50", tf_same_pool=False)
    plain.load_state_dict(state, strict=True)
    with torch.no_grad():
        other = plain.eval()(torch.from_numpy(image).permute(0, 3, 1, 2)).numpy()
    assert np.abs(other - want).max() / np.abs(want).max() > 1e-3


def _fake_arrays(arch: str = "resnet50") -> dict[str, np.ndarray]:
    ref = build_encoder(arch).state_dict()
    arrays: dict[str, np.ndarray] = {}
    for k, (conv_key, _) in enumerate(torchvision_order(arch)):
        sfx = "" if k == 0 else f"_{k}"
        w = ref[f"{conv_key}.weight"].numpy()
        arrays[f"base_model/conv2d{sfx}/kernel"] = w.transpose(2, 3, 1, 0)
        c = w.shape[0]
        for name in ("gamma", "beta", "moving_mean", "moving_variance"):
            arrays[f"base_model/batch_normalization{sfx}/{name}"] = np.full(c, float(k), "f4")
    arrays["global_step"] = np.array(5)
    arrays["base_model/conv2d_3/kernel/Momentum"] = arrays["base_model/conv2d_3/kernel"]
    arrays["head_supervised/linear_layer/dense/kernel"] = np.zeros((2048, 1000), "f4")
    return arrays


def test_creation_order_and_filters() -> None:
    arrays = _fake_arrays()
    state = convert_arrays(arrays)
    # conv2d_1 is the first block's projection shortcut (created before the block's convs).
    # Bitwise: conversion transposes the arrays, no arithmetic.
    assert torch.equal(
        state["layer1.0.downsample.0.weight"],
        torch.from_numpy(arrays["base_model/conv2d_1/kernel"].transpose(3, 2, 0, 1)),
    )
    assert float(state["layer1.0.bn1.weight"][0]) == 2.0  # batch_normalization_2
    assert len([k for k in state if k.endswith("num_batches_tracked")]) == 53
    # Integer order, not lexicographic: conv2d_10 comes after conv2d_9.
    assert float(state["layer2.0.downsample.1.weight"][0]) == 11.0


def test_wrong_count_and_shape_are_errors() -> None:
    arrays = _fake_arrays()
    del arrays["base_model/conv2d_52/kernel"]
    with pytest.raises(WeightsError, match="52 trunk convs"):
        convert_arrays(arrays)
    arrays = _fake_arrays()
    arrays["base_model/conv2d_5/kernel"] = np.zeros((1, 1, 3, 3), "f4")
    with pytest.raises(WeightsError, match="shape"):
        convert_arrays(arrays)
