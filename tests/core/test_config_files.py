"""The kernel's file readers: one error, naming the file and what is wrong with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from archon_gateway.core.config_files import UnusableFile, read_json, read_toml
from archon_gateway.core.text import one_line


def test_a_toml_file_is_read_or_its_problem_named(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('name = "x"\n')
    bad.write_text("name = \n")
    assert read_toml(good) == {"name": "x"}
    with pytest.raises(UnusableFile) as caught:
        read_toml(bad)
    assert caught.value.reason.startswith("not valid TOML: ")
    assert str(caught.value) == f"{bad}: {caught.value.reason}"
    with pytest.raises(UnusableFile, match=r": does not exist$"):
        read_toml(tmp_path / "missing.toml")
    with pytest.raises(UnusableFile, match=r": cannot be read: Is a directory$"):
        read_toml(tmp_path)


def test_a_json_file_is_read_or_its_problem_named(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"a": [1]}')
    bad.write_text("not json")
    assert read_json(good) == {"a": [1]}
    with pytest.raises(
        UnusableFile, match=r"bad.json: not valid JSON: expected ident at line 1 column 2"
    ):
        read_json(bad)


def test_one_line_folds_whitespace_shortens_and_falls_back_to_the_type() -> None:
    assert one_line(OSError("disk\n  full\tnow")) == "disk full now"
    assert one_line(KeyError()) == "KeyError"
    long = one_line(ValueError("x" * 400))
    assert len(long) == 300
    assert long.endswith("xx...")
