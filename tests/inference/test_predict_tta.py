"""``predict --tta N``: each window scored by the mean logits of N time shifts of its image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from soundtransfer.cli.main import main
from soundtransfer.config import ConfigError
from soundtransfer.inference.predict import PredictConfig, Predictor
from soundtransfer.train.loop import tta_views


def test_tta_windows_are_the_mean_of_shifted_views(
    bundle: Path, long_wav: Callable[..., Path]
) -> None:
    path = long_wav(7.0)
    plain = Predictor(bundle, PredictConfig(hop_s=1.0, batch_size=3))
    images: list[Tensor] = []
    network = plain.score

    def record(x: Tensor) -> Tensor:
        images.append(x.clone())
        return network(x)

    plain.score = record
    one = np.stack([w.probs for w in plain.iter_windows(path)])
    want = torch.cat(
        [
            torch.softmax(torch.stack([network(v) for v in tta_views(x, 3)]).mean(0), 1)
            for x in images
        ]
    ).numpy()
    shifted = Predictor(bundle, PredictConfig(hop_s=1.0, batch_size=3, tta=3))
    got = np.stack([w.probs for w in shifted.iter_windows(path)])
    # The same network on the same images in this process; separate predictors trace their
    # own copies, so allow float32's last bits.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.abs(got - one).max() > 1e-3  # the shifts change the scores


def test_tta_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="--tta must be at least 1"):
        PredictConfig(tta=0)


def test_cli_bad_tta_is_one_line_exit_2(
    bundle: Path, esc10_clips: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["predict", str(bundle), str(esc10_clips[0]), "--tta", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--tta" in err
