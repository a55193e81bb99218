"""Lazy package attributes (PEP 562), so ``import soundtransfer.<package>`` costs nothing.

A package ``__init__`` writes its lazy names once, as the imports under ``if TYPE_CHECKING:``
(what type checkers read, so a misspelt name stays an error), and gets from them a module
``__getattr__`` that imports the named module on first use; the command line can then import
light modules (settings, presets, help texts) without pulling in torch, torchvision or kornia::

    if TYPE_CHECKING:
        from soundtransfer.train.loop import fit
    else:
        __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))

``tests/test_lazy.py`` checks that every name resolves to the object type checkers are told.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["lazy_exports", "registered", "type_checking_imports"]


def type_checking_imports(init_file: str) -> dict[str, tuple[str, ...]]:
    """Module -> names of the ``from M import N`` lines under ``if TYPE_CHECKING:`` in a file.

    The one list of a package's lazy names: read from the package's own source (a few
    milliseconds), so the names type checkers see and the names that load are the same.

    Raises:
        ValueError: anything other than ``from M import N`` under ``if TYPE_CHECKING:``, or an
            ``as`` alias (the name on the package would differ from the one in the module).
    """
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"), filename=init_file)
    out: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"):
            continue
        for imp in node.body:
            if not (isinstance(imp, ast.ImportFrom) and imp.module and imp.level == 0):
                raise ValueError(f"{init_file}:{imp.lineno}: not `from <module> import <names>`")
            if any(alias.asname for alias in imp.names):
                raise ValueError(f"{init_file}:{imp.lineno}: `as` aliases are not lazy-loadable")
            out[imp.module] = out.get(imp.module, ()) + tuple(a.name for a in imp.names)
    return out


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names load on first use.

    Args:
        package: the package's ``__name__``.
        exports: module name -> the public names it defines.

    Returns:
        ``(__getattr__, __dir__)``; a name is imported once, then kept on the package.

    Raises:
        ValueError: a name listed under two modules.
    """
    home: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in home:
                raise ValueError(f"{package}: {name!r} listed under {home[name]} and {module}")
            home[name] = module

    def __getattr__(name: str) -> object:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return __getattr__, __dir__


def registered(entries: Mapping[str, str], name: str, what: str, attr: str) -> object:
    """``attr`` of the module registered under ``name`` (a registry of an axis: name -> the
    module defining its entry, imported on first use, so listing the names costs nothing).

    Raises:
        ConfigError: an unknown name (the known ones listed).
    """
    from soundtransfer.errors import ConfigError

    if name not in entries:
        raise ConfigError(f"unknown {what} {name!r} (choose from {', '.join(entries)})")
    return getattr(importlib.import_module(entries[name]), attr)
