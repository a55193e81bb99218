"""Folder trees of own data: comma-separated folder names (several labels, BirdNET's
convention) and background / "no event" folders, on real ESC-10 clips linked into a tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soundtransfer.cli.common import BACKGROUND_FOLDERS as CLI_BACKGROUND
from soundtransfer.cli.common import parse_background
from soundtransfer.config import ConfigError
from soundtransfer.datasets import ClipTable, load_dataset
from soundtransfer.datasets.own import BACKGROUND_FOLDERS, ReadOptions, read_folder
from soundtransfer.errors import DatasetError


@pytest.fixture(scope="module")
def esc10(esc10_root: Path) -> ClipTable:
    return load_dataset("esc10", esc10_root)


def tree(esc10: ClipTable, dst: Path, layout: dict[str, list[str]], per: int = 8) -> Path:
    """``dst/<folder>/<clip>``: ``per`` clips of each ESC-10 class in ``layout[folder]``,
    taken in table order, so a folder of two classes holds clips of both (symlinks)."""
    used: dict[str, int] = {}
    for folder, names in layout.items():
        (dst / folder).mkdir(parents=True)
        for name in names:
            k = esc10.classes.index(name)
            idx = [i for i, c in enumerate(esc10.clips) if c.label == k]
            start = used.get(name, 0)
            for i in idx[start : start + per]:
                os.symlink(esc10.path(i), dst / folder / Path(esc10.clips[i].file).name)
            used[name] = start + per
    return dst


def test_comma_folders_make_a_multilabel_table(esc10: ClipTable, tmp_path: Path) -> None:
    root = tree(
        esc10,
        tmp_path / "t",
        {"dog": ["dog"], "rain": ["rain"], "dog,rain": ["dog", "rain"], "noise": ["sea_waves"]},
        per=5,
    )
    ds = read_folder(root, ReadOptions(n_folds=2))
    t = ds.table
    assert t.task == "multi_label" and t.classes == ("dog", "rain") and t.background == ()
    by_folder: dict[str, set[tuple[int, ...] | None]] = {}
    for c in t.clips:
        by_folder.setdefault(Path(c.file).parts[0], set()).add(c.labels)
    # Every clip carries its folder's labels; the noise folder's clips are negatives.
    assert by_folder == {"dog": {(0,)}, "rain": {(1,)}, "dog,rain": {(0, 1)}, "noise": {()}}
    assert len(t) == 5 + 5 + 10 + 5
    assert ds.folds.method == "kfold" and "iterative stratification" in ds.folds.groups
    assert any("negatives" in n for n in t.notes)


def test_single_label_tree_records_background_class(esc10: ClipTable, tmp_path: Path) -> None:
    root = tree(esc10, tmp_path / "t", {"dog": ["dog"], "rain": ["rain"], "Noise": ["sea_waves"]})
    t = read_folder(root).table
    assert t.task == "single_label" and t.classes == ("Noise", "dog", "rain")
    assert t.background == ("Noise",)  # any case, as BirdNET's folders
    assert t.canonical().background == ("Noise",)
    # Without background names the noise folder is an ordinary class.
    assert read_folder(root, ReadOptions(background=())).table.background == ()
    assert read_folder(root, ReadOptions(background=("rain",))).table.background == ("rain",)


@pytest.mark.parametrize(
    ("layout", "options", "culprit"),
    [
        ({"dog,,rain": ["dog"], "rain": ["rain"]}, ReadOptions(), "'dog,,rain' holds an empty"),
        ({"dog,": ["dog"], "rain": ["rain"]}, ReadOptions(), "holds an empty label"),
        ({"dog,noise": ["dog"], "rain": ["rain"]}, ReadOptions(), "'noise' is a background"),
        ({"noise": ["dog"], "other": ["rain"]}, ReadOptions(), "only background folders"),
        ({"dog": ["dog"], "rain": ["rain"]}, ReadOptions(background=("",)), "non-empty name"),
        ({"dog": ["dog"], "rain": ["rain"]}, ReadOptions(background=("a,b",)), "without ','"),
    ],
)
def test_bad_folder_names_are_one_error(
    esc10: ClipTable,
    tmp_path: Path,
    layout: dict[str, list[str]],
    options: ReadOptions,
    culprit: str,
) -> None:
    root = tree(esc10, tmp_path / "t", layout, per=2)
    with pytest.raises(DatasetError, match=None) as info:
        read_folder(root, options)
    assert culprit in str(info.value) and "\n" not in str(info.value)


def test_cli_background_option() -> None:
    assert CLI_BACKGROUND == BACKGROUND_FOLDERS  # the parser's default is the library's
    assert parse_background("noise, Silence") == ("noise", "Silence")
    assert parse_background("none") == ()
    for bad in ("", "a,,b", "a,"):
        with pytest.raises(ConfigError, match="--background-folders"):
            parse_background(bad)
