"""A stranger's bundle is checked on load (issue 23, defects 10, 15, 18): one WeightsError line
naming the file and the fault, before anything large is allocated; never a traceback, torch's
multi-line advice to pass ``weights_only=False``, or a list of every mismatched key."""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from soundtransfer.errors import WeightsError
from soundtransfer.inference.bundle import LIMITS, MAX_HIDDEN, load_bundle

from .conftest import make_bundle

Edit = Callable[[dict[str, Any]], Any]


def _nan_weight(p: dict[str, Any]) -> dict[str, Any]:
    state = dict(p["state_dict"])
    state["head.weight"] = state["head.weight"].clone()
    state["head.weight"][0, 0] = math.nan
    return {**p, "state_dict": state}


def _negative_variance(p: dict[str, Any]) -> dict[str, Any]:
    state = dict(p["state_dict"])
    state["encoder.bn1.running_var"] = -state["encoder.bn1.running_var"]
    return {**p, "state_dict": state}


def _frontend(**kw: Any) -> Edit:
    return lambda p: {**p, "frontend": {**p["frontend"], **kw}}


CASES: dict[str, tuple[Edit, str]] = {
    "a bare tensor": (lambda p: torch.zeros(3), r"not a soundtransfer model bundle \(it holds a"),
    "a plain dict": (lambda p: {"a": 1}, r"not a soundtransfer model bundle \(missing \["),
    "clip_seconds=1e7": (_frontend(clip_seconds=1e7), r"clip_seconds=1e\+07 is beyond 600"),
    # The front end's own check (a window longer than n_fft) may answer first: either refuses.
    "sample_rate=1e9": (
        _frontend(sample_rate=10**9),
        r"(sample_rate=1e\+09 is beyond|bad front-end settings)",
    ),
    "n_mels=100000": (  # as above: the empty-band check may answer first
        _frontend(n_mels=100_000),
        r"(n_mels=100000 is beyond 512|bad front-end settings)",
    ),
    "clip_seconds=inf": (_frontend(clip_seconds=math.inf), r"bad front-end settings"),
    "n_mels=-3": (_frontend(n_mels=-3), r"bad front-end settings \(.*n_mels"),
    "frontend a string": (lambda p: {**p, "frontend": "x"}, r"bad front-end settings"),
    "hidden=1e9": (
        lambda p: {**p, "head": {"kind": "mlp", "hidden": 10**9}},
        rf"head hidden size 1000000000 is not in 1\.\.{MAX_HIDDEN}",
    ),
    "hidden=True": (lambda p: {**p, "head": {"kind": "mlp", "hidden": True}}, r"hidden size True"),
    "a NaN weight": (_nan_weight, r"weight head\.weight holds NaN or infinite values"),
    "a negative variance": (_negative_variance, r"encoder\.bn1\.running_var holds negative"),
    "no classes": (lambda p: {**p, "classes": []}, r"classes must be 1\.\.\d+ distinct names"),
    "repeated classes": (lambda p: {**p, "classes": ["a", "a", "b"]}, r"distinct names"),
    "arch a path": (lambda p: {**p, "arch": "../../x"}, r"unknown arch '\.\./\.\./x'"),
    "arch a number": (lambda p: {**p, "arch": 3}, r"arch must be a name"),
    "state_dict a list": (lambda p: {**p, "state_dict": [1]}, r"state_dict is not a mapping"),
    "another arch": (
        lambda p: {**p, "arch": "resnet50"},
        r"weights do not fit resnet50: \d+ tensor\(s\) of another shape \(first .*\), \d+ "
        r"missing \(first [\w.]+\)$",
    ),
    "an extra tensor": (
        lambda p: {**p, "state_dict": {**p["state_dict"], "x.y": torch.zeros(1)}},
        r"weights do not fit resnet18: 1 unexpected \(first x\.y\)$",
    ),
}


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = make_bundle(tmp_path_factory.mktemp("b") / "model.pt")
    out: dict[str, Any] = torch.load(path, weights_only=True)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_stranger_bundle_is_one_line(payload: dict[str, Any], tmp_path: Path, case: str) -> None:
    edit, match = CASES[case]
    path = tmp_path / "model.pt"
    torch.save(edit(payload), path)
    with pytest.raises(WeightsError, match=rf"^{re.escape(str(path))}: (.*)?{match}") as info:
        load_bundle(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_limits_admit_every_preset() -> None:
    """The bounds sit at least 4x above what a real front end uses (GTZAN: 30 s, 1500
    frames; 44.1 kHz against a 192 kHz bound)."""
    from soundtransfer.audio.presets import PRESETS

    for fe in PRESETS.values():
        for key, limit in LIMITS.items():
            assert getattr(fe, key) <= limit / 4, (fe, key)


class _Planted:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch planted",))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (pickle.dumps(_Planted(), protocol=2), r"it holds Python objects, which are never loaded"),
        (pickle.dumps(_Planted()), r"not a torch file, or damaged: Unsupported operand"),
        (b"hello", r"not a torch file \(KeyError"),
        (b"PK\x03\x04" + b"\0" * 40, r"not a torch file, or cut short"),
    ],
)
def test_unreadable_bundle_message_is_short_and_whole(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    match: str,
) -> None:
    """torch's text runs over lines, advises weights_only=False and was cut mid-word; it
    also warned about the pickle protocol on stderr."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=rf"not a readable model bundle \({match}") as info:
        load_bundle(path)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message and message.endswith(")")
    assert capfd.readouterr().err == ""
    assert not (tmp_path / "planted").exists()


def test_a_weights_file_that_is_a_pickle_is_one_whole_line(tmp_path: Path) -> None:
    """Defect 18: "not a state dict file (... Re-running `torch.)"."""
    from soundtransfer.weights import load_encoder

    path = tmp_path / "w.pt"
    path.write_bytes(pickle.dumps(_Planted(), protocol=2))
    with pytest.raises(WeightsError, match=r"not a state dict file \(it holds Python") as info:
        load_encoder(str(path), arch="resnet18")
    message = str(info.value)
    assert "Re-running" not in message and message.endswith(")") and "\n" not in message
