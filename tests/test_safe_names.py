"""Values from the wire made safe: a file stem never leaves its folder nor collides, and a
printable value is one inert line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voiceagent.wire_text import file_in, file_stem, one_line, printable

HOSTILE = [
    "../x",
    "../../x\n\x1b[31mFORGED",
    "/etc/passwd",
    "..",
    ".",
    "",
    ".hidden",
    "a\x00b",
    "C:\\Windows\\x",
    "x" * 5000,
    "ユーザー",
    "\ud800",  # a lone surrogate: cannot even be encoded
]


@pytest.mark.parametrize("wire_id", HOSTILE)
def test_a_hostile_id_lands_inside_the_folder(tmp_path: Path, wire_id: str) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    path = file_in(folder, wire_id, ".json")
    assert path.parent == folder
    path.write_text("{}")
    assert os.listdir(folder) == [path.name]
    assert not path.name.startswith(".")


@pytest.mark.parametrize("wire_id", HOSTILE)
def test_a_stem_is_short_and_of_safe_characters_only(wire_id: str) -> None:
    stem = file_stem(wire_id)
    assert 0 < len(stem) <= 100
    assert set(stem) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
    assert not stem.startswith(".")


def test_a_carriers_own_id_is_kept_as_it_is() -> None:
    for sid in ("CA" + "0123456789abcdef" * 2, "v3:abc-DEF_1.2".replace(":", "-")):
        assert file_stem(sid) == sid


def test_ids_that_differ_never_share_a_stem() -> None:
    ids = ["../x", "__x", "_.x", "/x", "\\x", "x" * 200, "x" * 201, "a\x00", "a\x01", ""]
    stems = [file_stem(i) for i in ids]
    assert len(set(stems)) == len(ids)
    forged = file_stem("../x")  # an id spelling another's stem is not that stem
    assert file_stem(forged.replace("~", "_")) != forged


def test_a_symlink_in_the_folder_is_not_followed(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "calls", tmp_path / "elsewhere.json"
    folder.mkdir()
    (folder / "CA1.json").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="outside"):
        file_in(folder, "CA1", ".json")


def test_printable_escapes_every_control_and_stays_one_line() -> None:
    value = "CA1\nWARNING forged\r\x1b[31mred\x00\x7f\x85\u2028\u202etxt\ud800"
    text = printable(value)
    assert text == (
        "CA1\\x0aWARNING forged\\x0d\\x1b[31mred\\x00\\x7f\\x85\\u2028\\u202etxt\\ud800"
    )
    assert text.isprintable()
    text.encode("utf-8")  # no lone surrogate left


def test_printable_keeps_ordinary_text_and_joiners() -> None:
    for text in ("CA0123", "नमस्ते", "क्‍ष", "👩‍💻", "¿Qué tal?"):
        assert printable(text) == text


def test_printable_caps_the_length_saying_so() -> None:
    text = printable("x" * 1000, 50)
    assert text.startswith("x" * 50) and text.endswith("…(+950 chars)")
    assert printable("x" * 1000, None) == "x" * 1000


def test_one_line_joins_lines_and_escapes_the_rest() -> None:
    assert one_line("Hello\nWARNING forged\x1b[2J  there") == "Hello WARNING forged\\x1b[2J there"
