"""Metadata CSVs as spreadsheets write them: BOM, Latin-1, blank lines, paths that leave."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from soundtransfer.datasets import load_dataset
from soundtransfer.datasets.metadata import read_csv, resolve_audio
from soundtransfer.errors import DatasetError


@pytest.fixture
def esc_copy(esc10_root: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """An ESC-10 root with 6 real clips copied (folds 1 and 2) and the CSV lines naming them."""
    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    lines = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()
    rows = [r for r in lines[1:] if r.startswith(("1-", "2-")) and ",True," in r][::20][:6]
    for r in rows:
        shutil.copy(esc10_root / "audio" / r.split(",")[0], root / "audio")
    return root, [lines[0], *rows]


def _write(root: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\n") -> Path:
    meta = root / "meta" / "esc50.csv"
    meta.write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    return meta


def test_utf8_bom_from_excel_is_read(esc_copy: tuple[Path, list[str]]) -> None:
    root, lines = esc_copy
    _write(root, lines)
    plain = load_dataset("esc10", root)
    _write(root, lines, encoding="utf-8-sig", newline="\r\n")  # Excel's "CSV UTF-8"
    with_bom = load_dataset("esc10", root)
    assert with_bom.clips == plain.clips and len(plain) == 6 and not with_bom.notes


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_latin1_csv_is_read_with_a_note(esc_copy: tuple[Path, list[str]], encoding: str) -> None:
    """A file name with an accent, saved by a Windows spreadsheet in its code page."""
    root, lines = esc_copy
    old = lines[1].split(",")[0]
    new = "caf\u00e9-" + old  # not an official name: nothing to cross-check
    (root / "audio" / old).rename(root / "audio" / new)
    meta = _write(root, [lines[0], lines[1].replace(old, new, 1), *lines[2:]], encoding)
    with pytest.raises(UnicodeDecodeError):
        meta.read_text(encoding="utf-8")  # really not UTF-8
    table = load_dataset("esc10", root)
    assert f"audio/{new}" in [c.file for c in table.clips] and len(table) == 6
    assert any(str(meta) in n and "not UTF-8" in n for n in table.notes)


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "{audio}/{first}", "../../etc/passwd", "C:\\clips\\x.wav"]
)
def test_path_leaving_the_dataset_is_a_one_line_error(
    esc_copy: tuple[Path, list[str]], name: str
) -> None:
    root, lines = esc_copy
    first = lines[2].split(",")[0]
    name = name.format(audio=root / "audio", first=first)
    meta = _write(root, [lines[0], lines[1], lines[2].replace(first, name, 1), *lines[3:]])
    with pytest.raises(DatasetError, match="line 3") as err:
        load_dataset("esc10", root)
    assert str(meta) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DatasetError, match="inside"):
        resolve_audio(root / "audio", name)


def test_line_numbers_count_blank_and_multiline_rows(esc_copy: tuple[Path, list[str]]) -> None:
    root, lines = esc_copy
    bad = lines[4].split(",")
    bad[1] = "x"  # fold
    meta = _write(root, [lines[0], "", lines[1], "", "", lines[2], lines[3], ",".join(bad)])
    with pytest.raises(DatasetError, match="line 8: fold 'x'"):
        load_dataset("esc50", root)
    quoted = lines[1].split(",")
    quoted[3] = '"' + quoted[3] + '\n"'  # a category with a line break inside quotes
    _write(root, [lines[0], ",".join(quoted), "", ",".join(bad)])
    assert [r.line for r in read_csv(meta, ("filename", "fold"))] == [2, 5]
    with pytest.raises(DatasetError, match="line 5: fold 'x'"):
        load_dataset("esc50", root)


def test_rows_carry_their_line_and_empty_rows_are_skipped(tmp_path: Path) -> None:
    meta = tmp_path / "m.csv"
    meta.write_text('a,b\n\n1,2\n,\n"x\ny",3\n\n')
    rows = read_csv(meta, ("a", "b"))
    assert [dict(r) for r in rows] == [{"a": "1", "b": "2"}, {"a": "x\ny", "b": "3"}]
    assert [r.line for r in rows] == [3, 5]
    meta.write_text("a,b\n1,2,3\n")
    with pytest.raises(DatasetError, match="line 2: 3 fields"):
        read_csv(meta, ("a", "b"))
    meta.write_text("a,b\n1," + "x" * 200_000 + "\n")  # beyond csv's field size limit
    with pytest.raises(DatasetError, match="line 2: not readable as CSV"):
        read_csv(meta, ("a", "b"))
