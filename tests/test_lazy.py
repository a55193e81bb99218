"""Lazy package attributes: every public name resolves, to what type checkers are told."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from soundtransfer.lazy import lazy_exports, type_checking_imports

PACKAGES = [
    "soundtransfer.analysis",
    "soundtransfer.audio",
    "soundtransfer.datasets",
    "soundtransfer.features",
    "soundtransfer.inference",
    "soundtransfer.models",
    "soundtransfer.pretrain",
    "soundtransfer.runs",
    "soundtransfer.train",
    "soundtransfer.weights",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_resolve_to_the_type_checked_objects(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__file__ is not None
    hinted = {n: m for m, names in type_checking_imports(package.__file__).items() for n in names}
    assert hinted, f"{name}: no TYPE_CHECKING imports"
    for attr, module in hinted.items():
        assert getattr(package, attr) is getattr(importlib.import_module(module), attr), attr
    assert set(hinted) <= set(dir(package)), f"{name}: lazy names missing from dir()"
    for attr in dir(package):
        getattr(package, attr)
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_from_import_and_cache() -> None:
    from soundtransfer.train import TrainConfig, run_crossval
    from soundtransfer.train.config import TrainConfig as Direct
    from soundtransfer.train.crossval import run_crossval as direct

    assert TrainConfig is Direct and run_crossval is direct
    assert "run_crossval" in vars(importlib.import_module("soundtransfer.train"))  # kept


def test_a_name_listed_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="'x' listed under a and b"):
        lazy_exports("p", {"a": ("x",), "b": ("x",)})


def test_the_lazy_names_are_read_from_the_type_checking_imports(tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    init.write_text(
        "from typing import TYPE_CHECKING\n"
        "import os\n"  # outside the block: not lazy
        "if TYPE_CHECKING:\n"
        "    from a.b import x, y\n"
        "    from a.c import (\n        z,\n    )\n"
        "    from a.b import w\n"
        "else:\n    pass\n",
        encoding="utf-8",
    )
    assert type_checking_imports(str(init)) == {"a.b": ("x", "y", "w"), "a.c": ("z",)}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("    import a.b\n", "not `from <module> import <names>`"),
        ("    from . import b\n", "not `from <module> import <names>`"),
        ("    from a import b as c\n", "`as` aliases are not lazy-loadable"),
    ],
)
def test_a_block_that_cannot_load_lazily_fails(tmp_path: Path, line: str, message: str) -> None:
    init = tmp_path / "__init__.py"
    init.write_text(f"if TYPE_CHECKING:\n{line}", encoding="utf-8")
    with pytest.raises(ValueError, match=f"__init__.py:2: {message}"):
        type_checking_imports(str(init))
