"""Frozen dataclass configs: ``key=value`` overrides, JSON round trip, stable hashing.

Every concern owns one frozen dataclass (``FrontEnd``, ``Finetune``, ``Pretrain`` ...) with
named presets. This module turns command-line overrides into a new instance with the types
checked (unknown keys and wrong types are errors, as in nanoGPT's configurator, without
``exec``) and writes the resolved config next to results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from soundtransfer.errors import ConfigError
from soundtransfer.numbers import finite_float
from soundtransfer.runs.files import save_json

__all__ = [
    "ConfigError",
    "check_bounds",
    "check_finite_fields",
    "config_hash",
    "flat_settings",
    "from_dict",
    "get_named",
    "override",
    "save_json",
    "setting_names",
    "to_dict",
]

T = TypeVar("T")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert ``value`` (a string from the command line, or a JSON value) to type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, arg, value)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{name}: cannot read {value!r} as {tp}")
    if origin is typing.Literal:
        for arg in args:
            if str(arg) == str(value):
                return arg
        raise ConfigError(f"{name}: {value!r} is not one of {list(args)}")
    if origin is tuple:
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(name, args[0], v) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{name}: expected {len(args)} items, got {value!r}")
        return tuple(_coerce(name, a, v) for a, v in zip(args, value, strict=True))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return int(f)
    if tp is float:
        return finite_float(value, lambda w: ConfigError(f"{name}: expected {w}, got {value!r}"))
    if tp is str:
        return str(value)
    if tp is Path:
        return Path(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type) and isinstance(value, Mapping):
        return from_dict(tp, value)
    raise ConfigError(f"{name}: unsupported type {tp}")


def parse_pairs(overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    """``{key: value}`` of a mapping (copied) or of ``"key=value"`` strings (keys with dashes
    and leading ``--`` normalised: ``--n-mels=64`` is ``n_mels``).

    Raises:
        ConfigError: a string without ``=`` or with an empty key.
    """
    if isinstance(overrides, Mapping):
        return dict(overrides)
    pairs: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        pairs[key] = value
    return pairs


def _aliases(cls: type) -> dict[str, str]:
    """A settings class's flat names for its nested settings (``ALIASES``: ``{"lr":
    "optimiser.lr"}``), so command lines written before the grouping keep working."""
    return dict(getattr(cls, "ALIASES", {}))


def setting_names(cls: type) -> list[str]:
    """Every name ``override`` takes for ``cls``: plain fields, aliases, and ``group.field``
    for the nested settings no alias names."""
    aliased = set(_aliases(cls).values())
    names = list(_aliases(cls))
    for f in dataclasses.fields(cls):
        tp = _field_types(cls)[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            names += [f"{f.name}.{n}" for n in setting_names(tp) if f"{f.name}.{n}" not in aliased]
        elif f.name not in names:
            names.append(f.name)
    return sorted(names)


def _apply(cfg: T, changes: Mapping[str, tuple[str, Any]]) -> T:
    """``cfg`` with ``{path: (name the user gave, value)}`` applied; ``path`` is a field or
    ``group.field`` of a nested settings dataclass (replaced as a whole, so it validates)."""
    types_ = _field_types(type(cfg))
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, tuple[str, Any]]] = {}
    for path, (name, value) in changes.items():
        head, _, rest = path.partition(".")
        tp = types_.get(head)
        if tp is None:
            known = ", ".join(setting_names(type(cfg)))
            raise ConfigError(f"unknown setting {name!r} for {type(cfg).__name__} (known: {known})")
        if rest:
            nested.setdefault(head, {})[rest] = (name, value)
        else:
            direct[head] = _coerce(name, tp, value)
    for head, inner in nested.items():
        direct[head] = _apply(direct.get(head, getattr(cfg, head)), inner)
    return dataclasses.replace(cfg, **direct)  # type: ignore[type-var]


def override(cfg: T, overrides: Mapping[str, Any] | Iterable[str]) -> T:
    """Return a copy of ``cfg`` with fields replaced.

    Args:
        cfg: a dataclass instance.
        overrides: a mapping ``{name: value}`` or strings ``"name=value"``; a name is a
            field, ``group.field`` of a nested settings dataclass, or one of the class's
            ``ALIASES`` (flat names of nested settings).

    Raises:
        ConfigError: unknown name, malformed string, or a value of the wrong type (the name
            as given in the message).
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError("override() needs a dataclass instance")
    aliases = _aliases(type(cfg))
    changes = {aliases.get(k, k): (k, v) for k, v in parse_pairs(overrides).items()}
    return _apply(cfg, changes)


def flat_settings(cfg: Any) -> dict[str, Any]:
    """``cfg`` as one flat mapping under the names :func:`override` takes (aliases where a
    class has them, else ``group.field``), JSON-ready."""
    by_path = {v: k for k, v in _aliases(type(cfg)).items()}
    out: dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            path = prefix + f.name
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                walk(value, path + ".")
            else:
                out[by_path.get(path, path)] = to_dict(value) if isinstance(value, tuple) else value

    walk(cfg, "")
    return out


def get_named(
    presets: Mapping[str, T],
    name: str,
    overrides: Mapping[str, Any] | Iterable[str] = (),
    kind: str = "preset",
) -> T:
    """``presets[name]`` with ``overrides`` applied: the body of every ``get_preset``.

    Raises:
        ConfigError: an unknown name (the known ones listed) or a bad override.
    """
    if name not in presets:
        raise ConfigError(f"unknown {kind} {name!r}; choose from {sorted(presets)}")
    return override(presets[name], overrides)


def check_finite_fields(cfg: Any) -> None:
    """Raise :class:`ConfigError` for a float field that is NaN or infinite (a dataclass built
    in code bypasses :func:`override`'s parsing)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be a finite number, got {value}")


def check_bounds(
    cfg: Any, *, at_least_1: Iterable[str] = (), positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
) -> None:  # fmt: skip
    """The range checks of a settings dataclass, one :class:`ConfigError` line naming the
    first field out of range (also NaN/inf for float fields)."""
    check_finite_fields(cfg)
    rules = (
        (at_least_1, lambda v: v >= 1, "must be at least 1"),
        (positive, lambda v: v > 0, "must be positive"),
        (non_negative, lambda v: v >= 0, "must be >= 0"),
    )
    for names, ok, text in rules:
        for name in names:
            value = getattr(cfg, name)
            if not ok(value):
                raise ConfigError(f"{name} {text}, got {value}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass (tuples become lists, paths strings)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    out: dict[str, Any] = conv(cfg)
    return out


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` from a dict written by :func:`to_dict` (types checked)."""
    types_ = _field_types(cls)
    unknown = set(data) - set(types_)
    if unknown:
        raise ConfigError(f"unknown settings for {cls.__name__}: {sorted(unknown)}")
    kwargs = {k: _coerce(k, types_[k], v) for k, v in data.items()}
    return cls(**kwargs)


def config_hash(*parts: Any) -> str:
    """A short stable hash of configs and plain values (for cache keys)."""
    payload = json.dumps(
        [to_dict(p) if dataclasses.is_dataclass(p) else p for p in parts],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
