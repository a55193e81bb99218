"""The README's quick examples say what they are for (issue 24, point 5)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_finetune_lines(text: str) -> list[str]:
    """The README's command lines of a short fine-tune (``finetune ... --set epochs=N``, N < 5)."""
    return [
        line
        for line in text.splitlines()
        if line.startswith("soundtransfer finetune")
        and (m := re.search(r"--set epochs=(\d+)", line)) is not None
        and int(m.group(1)) < 5
    ]


def test_the_short_finetune_example_says_it_only_checks_the_pipeline() -> None:
    text = README.read_text(encoding="utf-8")
    lines = quick_finetune_lines(text)
    assert lines, "the README's short fine-tune example is gone: update this test"
    for line in lines:
        remark = line.partition("#")[2]
        assert "pipeline" in remark, (
            f"the short fine-tune does not say it only checks the pipeline: {line}"
        )
    # and the prose says what to run for a real model
    assert "only checks that the pipeline runs" in text
