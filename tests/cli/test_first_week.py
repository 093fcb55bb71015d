"""What a new user meets in the first week, through the command line: ragged CSV files,
output files that are never overwritten by surprise, typos caught with a suggestion, and help
that lists every command in full."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli

# -- ragged CSV files ---------------------------------------------------------------------------


def test_a_short_line_is_refused_with_its_line_number_unless_allowed(
    cli: Cli, cli_project: Path
) -> None:
    """A CSV line with too few fields is refused naming the line and both field counts; with
    --allow-ragged it is stored with nulls and the note says which lines were short."""
    path = cli_project / "short.csv"
    path.write_text("id,age,city\n1,30,Oslo\n2,40\n3,50,Lima\n4\n")
    res = cli("data", "add", "credit", path)
    assert res.code == 1
    assert "line 3 has 2 fields (the header has 3), and 1 more line: 5" in res.stderr
    assert "--allow-ragged" in res.stderr
    assert cli("data", "list", "--json").json() == []

    res = cli("data", "add", "credit", path, "--allow-ragged")
    assert res.code == 0, res.stderr
    assert "note: 2 short lines filled with nulls (lines 3, 5)" in res.stdout
    doc = cli("data", "show", "credit@1", "--json").json()
    assert doc["rows"] == 4
    assert doc["source"]["ragged"]["lines"] == [
        {"line": 3, "fields": 2},
        {"line": 5, "fields": 1},
    ]


def test_a_long_line_is_refused_with_its_line_number(cli: Cli, cli_project: Path) -> None:
    """A CSV line with more fields than the header is refused, naming the line (a quoted
    field spanning two lines counts as one), even with --allow-ragged."""
    path = cli_project / "long.csv"
    path.write_text('id,note\n1,"two\nlines"\n2,ok,extra\n')
    for extra in ([], ["--allow-ragged"]):
        res = cli("data", "add", "credit", path, *extra)
        assert res.code == 1
        assert "line 4 has 3 fields (the header has 2)" in res.stderr
