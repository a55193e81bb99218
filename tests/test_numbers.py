"""soundtransfer.numbers: the one finiteness check behind settings, tables and annotations."""

from __future__ import annotations

import pytest

from soundtransfer.numbers import finite_float


class Bad(Exception):
    pass


@pytest.mark.parametrize(("text", "value"), [("1.5", 1.5), (" -2 ", -2.0), (3, 3.0), ("1e3", 1e3)])
def test_numbers_parse(text: object, value: float) -> None:
    assert finite_float(text, Bad) == value  # exact: float() of a literal


@pytest.mark.parametrize(
    ("text", "want"),
    [("abc", "a number"), ("", "a number"), (None, "a number"), ([1], "a number"),
     ("nan", "a finite number"), ("inf", "a finite number"), ("-Infinity", "a finite number")],
)  # fmt: skip
def test_each_fault_reaches_the_callers_error_with_what_was_expected(
    text: object, want: str
) -> None:
    with pytest.raises(Bad) as info:
        finite_float(text, Bad)
    assert info.value.args == (want,)
    # no float() traceback chained under the one-line message
    assert info.value.__context__ is None or info.value.__suppress_context__
