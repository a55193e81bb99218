"""Numbers read from text: one finiteness check, each caller's own error message."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["finite_float"]


def finite_float(text: object, fail: Callable[[str], Exception]) -> float:
    """``float(text)`` when it is a finite number.

    Args:
        text: a cell, a setting's value or a JSON value.
        fail: builds the error to raise from what was expected, ``"a number"`` (``text`` does
            not parse) or ``"a finite number"`` (it parses to NaN or an infinity), so that each
            reader names its own file, row and column.

    Raises:
        Exception: ``fail(expected)``, raised from None (the float() traceback says nothing
            the message does not).
    """
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise fail("a number") from None
    if not math.isfinite(value):
        raise fail("a finite number")
    return value
