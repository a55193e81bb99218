"""Lazy package attributes (PEP 562), so ``import soundtransfer.<package>`` costs nothing.

A package ``__init__`` lists where each public name lives and gets a module ``__getattr__``
that imports that module on first use; the command line can then import light modules
(settings, presets, help texts) without pulling in torch, torchvision or kornia::

    if TYPE_CHECKING:
        from soundtransfer.train.loop import fit

    if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
        __getattr__, __dir__ = lazy_exports(__name__, {"soundtransfer.train.loop": ("fit",)})

``tests/test_lazy.py`` checks that both lists name the same objects.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_exports", "registered"]


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
