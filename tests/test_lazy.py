"""Lazy package attributes: every public name resolves, to what type checkers are told."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import pytest

from soundtransfer.lazy import lazy_exports

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


def _type_checking_imports(package: ModuleType) -> dict[str, str]:
    """Name -> module of the ``from M import N`` lines under ``if TYPE_CHECKING:``."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                out.update({alias.name: imp.module for alias in imp.names})
    return out


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_resolve_to_the_type_checked_objects(name: str) -> None:
    package = importlib.import_module(name)
    hinted = _type_checking_imports(package)
    assert hinted, f"{name}: no TYPE_CHECKING imports"
    for attr, module in hinted.items():
        assert getattr(package, attr) is getattr(importlib.import_module(module), attr), attr
    for attr in package.__all__:
        assert attr in dir(package)
        getattr(package, attr)
    assert set(hinted) <= set(package.__all__), f"{name}: lazy names missing from __all__"
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
