"""Listings print plain aligned columns (cli/_common.table): whole values, a header and a
rule, cells with line breaks over several lines, and nothing a value holds can move the
terminal's cursor or break the columns."""

from __future__ import annotations

import pytest

from shipyard.cli._common import table


def test_columns_line_up_and_values_are_whole(capsys: pytest.CaptureFixture[str]) -> None:
    long = "x" * 300
    table("title", ["name", "value"], [["a", long], ["bee", None], ["c", "two\nlines"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "title",
        "name  value",
        "----  " + "-" * 300,
        "a     " + long,
        "bee",
        "c     two",
        "      lines",
    ]


def test_control_characters_are_shown_escaped_and_tabs_keep_the_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    table(None, ["a", "b"], [["tab\there", "x"], ["\x1b[2Jclear", "y\rz"]])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\t" not in out
    lines = out.splitlines()
    assert lines[2] == "tab here      x"  # the escaped sequence below sets the width
    assert lines[3] == "\\x1b[2Jclear  y\\x0dz"
