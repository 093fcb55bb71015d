"""What a new user meets in the first week, through the command line: ragged CSV files,
output files that are never overwritten by surprise, typos caught with a suggestion, and help
that lists every command in full."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

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


# -- output files -------------------------------------------------------------------------------


def test_data_get_never_overwrites_without_force(cli: Cli, cli_project: Path) -> None:
    """`data get -o` refuses an existing file unless --force, a missing folder and an
    extension it cannot write (listing those it can); the refused file is left untouched."""
    source = cli_project / "a.csv"
    source.write_text("id,age\n1,30\n2,40\n")
    assert cli("data", "add", "credit", source).code == 0
    out = cli_project / "out.csv"
    out.write_text("keep me")
    res = cli("data", "get", "credit", "-o", out)
    assert res.code == 1 and "already exists; pass --force" in res.stderr
    assert out.read_text() == "keep me"
    assert cli("data", "get", "credit", "-o", out, "--force").code == 0
    assert out.read_text() == "id,age\n1,30\n2,40\n"

    res = cli("data", "get", "credit", "-o", cli_project / "missing" / "x.csv")
    assert res.code == 1 and "does not exist; create it first" in res.stderr
    assert not (cli_project / "missing").exists()
    res = cli("data", "get", "credit", "-o", cli_project / "x.pdf")
    assert res.code == 2 and ".csv, .parquet, .jsonl" in res.stderr


def test_every_output_option_follows_the_same_rule(cli: Cli, cli_project: Path) -> None:
    """`contract infer`, `models card`, `models predict` and `digest` refuse the same way,
    before doing any work: a Markdown card is never written into a .pdf."""
    source = cli_project / "a.csv"
    source.write_text("id,age\n1,30\n2,40\n")
    taken = cli_project / "taken.yaml"
    taken.write_text("mine")
    res = cli("contract", "infer", source, "-o", taken)
    assert res.code == 1 and "already exists" in res.stderr and taken.read_text() == "mine"
    assert cli("contract", "infer", source, "-o", taken, "--force").code == 0
    assert "columns:" in taken.read_text()

    res = cli("models", "card", "credit-risk@1", "-o", cli_project / "card.pdf")
    assert res.code == 2 and ".md, .markdown, .html, .htm" in res.stderr
    assert not (cli_project / "card.pdf").exists()
    res = cli("models", "predict", "m@1", source, "-o", cli_project / "no" / "x.csv")
    assert res.code == 1 and "does not exist" in res.stderr
    res = cli("digest", "-o", cli_project / "digest.html")
    assert res.code == 2 and ".md, .markdown" in res.stderr


# -- typos ----------------------------------------------------------------------------------------


@pytest.mark.slow  # about 3 s: seven commands
def test_typos_are_caught_with_a_suggestion(cli: Cli, cli_project: Path) -> None:
    """Binding a contract to a dataset that does not exist suggests the near name (and --new
    binds one before its first version); a mistyped card section suggests the real one; a
    policy set again with the same content as its latest version is "unchanged", with no new
    version (the content of an older version is a new one)."""
    source = cli_project / "a.csv"
    source.write_text("id,age\n1,30\n2,40\n")
    contract = cli_project / "c.yaml"
    contract.write_text("columns: {id: {type: int}, age: {type: int}}\n")
    assert cli("data", "add", "credit", source).code == 0
    assert cli("contract", "add", "applicants", contract).code == 0
    res = cli("contract", "bind", "credt", "applicants")
    assert res.code == 1 and "no dataset 'credt' (did you mean 'credit'?)" in res.stderr
    assert cli("contract", "bind", "credit", "applicants").code == 0
    assert cli("contract", "bind", "loans", "applicants", "--new").code == 0

    res = cli("models", "describe", "m@1", "--section", "intended_uze", "--text", "x")
    assert res.code == 1 and "(did you mean 'intended_use'?)" in res.stderr

    policy = cli_project / "policy.yaml"
    policy.write_text("approvals: {min: 1}\n")
    assert "is now version 1" in cli("policy", "set", "*", policy).stdout
    policy.write_text("# the same rules\napprovals:\n  min: 1\n")
    res = cli("policy", "set", "*", policy)
    assert res.code == 0 and res.stdout.startswith("unchanged: policy * version 1")
    assert cli("policy", "set", "*", policy, "--json").json()["created"] is False
    # Only the latest version counts: going back to version 1's rules is version 3.
    policy.write_text("approvals: {min: 2}\n")
    assert "is now version 2" in cli("policy", "set", "*", policy).stdout
    policy.write_text("approvals: {min: 1}\n")
    assert "is now version 3" in cli("policy", "set", "*", policy).stdout


# -- NaN and infinite metrics ---------------------------------------------------------------------


def test_runs_show_prints_nan_and_inf(cli: Cli, cli_project: Path) -> None:
    """`runs show` prints a NaN loss as NaN; --json writes NaN and inf as the strings "NaN"
    and "inf", so the document stays valid JSON."""
    import json

    from shipyard.project import open_project

    project = open_project(cli_project)
    with project.start_run(experiment="sweep") as run:
        run.log_metrics({"loss": float("nan"), "gain": float("inf")})
    res = cli("runs", "show", run.id)
    assert res.code == 0, res.stderr
    assert "NaN" in res.stdout and "inf" in res.stdout
    res = cli("runs", "show", run.id, "--json")
    doc = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert doc["metrics"] == {"gain": "inf", "loss": "NaN"}


# -- help ---------------------------------------------------------------------------------------


def _groups(command: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    """Every group under ``command`` (itself included), with a context to render its help."""
    if hasattr(command, "commands"):
        yield command, ctx
        for name, sub in command.commands.items():
            yield from _groups(sub, sub.make_context(name, [], parent=ctx, resilient_parsing=True))


def test_every_group_lists_all_its_commands_with_whole_summaries() -> None:
    """Walking the whole command tree: each group's help names every one of its commands
    beside its full one-line summary, never cut short with "...", and every command has one."""
    from shipyard.cli._common import summary
    from shipyard.cli.main import app

    root = typer.main.get_command(app)
    top = root.make_context("shipyard", [], resilient_parsing=True)
    groups = list(_groups(root, top))
    assert len(groups) > 10
    for group, ctx in groups:
        path = ctx.command_path
        # Compared without white space: wrapping may break a line after a hyphen.
        listing = "".join(group.get_help(ctx).split("Commands:", 1)[1].split())
        for name, command in group.commands.items():
            text = summary(command)
            assert text, f"`{path} {name}` has no summary"
            assert not text.endswith("..."), (path, name)  # what a cut-short summary ends with
            assert name + "".join(text.split()) in listing, (path, name)


# -- exit codes ---------------------------------------------------------------------------------


def test_a_usage_error_under_json_prints_a_json_error(cli: Cli, cli_project: Path) -> None:
    """A missing argument exits 2 and, under --json, stdout holds one error document; a
    filter that does not parse is a usage error too."""
    res = cli("data", "add", "credit", "--json")
    assert res.code == 2
    assert res.json() == {"error": "usage", "message": "Missing argument 'path'."}
    assert "Missing argument 'path'" in res.stderr
    assert cli("runs", "list", "--filter", "metrics.auc >> 1").code == 2


def test_output_cut_short_by_its_reader_is_not_an_error(
    cli_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`shipyard data list | head -0`: when the reader has gone before the table is written,
    the command still exits 0 and says nothing on stderr."""
    import os
    import sys

    from shipyard.cli.main import run

    source = cli_project / "a.csv"
    source.write_text("id\n1\n")
    monkeypatch.setattr(sys, "argv", ["shipyard", "data", "add", "credit", str(source)])
    with pytest.raises(SystemExit):
        run()
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone
    capsys.readouterr()
    with os.fdopen(write_end, "w") as gone:
        monkeypatch.setattr(sys, "stdout", gone)
        monkeypatch.setattr(sys, "argv", ["shipyard", "data", "list"])
        with pytest.raises(SystemExit) as exit_:
            run()
    assert exit_.value.code == 0
    assert capsys.readouterr().err == ""


# -- splits -------------------------------------------------------------------------------------


def test_a_time_split_says_it_cannot_honour_fractions_and_parts_name_their_parent(
    cli: Cli, cli_project: Path
) -> None:
    """`data split --time-column --cutoffs` with explicit --fractions says only the names are
    used; `data versions` of a part shows the parent version each was cut from, so that
    credit.train@2 cut from credit@1 is plain to see."""
    path = cli_project / "events.csv"
    path.write_text("id,ts\n1,2024-01-01\n2,2024-02-01\n3,2024-03-01\n4,2024-04-01\n")
    assert cli("data", "add", "credit", path).code == 0
    res = cli(
        "data", "split", "credit@1", "--time-column", "ts", "--cutoffs", "2024-03-01",
        "--fractions", "train=0.9,test=0.1",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert "cannot honour the shares in --fractions train=0.9,test=0.1" in res.stderr
    assert "only the part names (train, test) are used" in res.stderr
    plain = cli("data", "split", "credit@1", "--fractions", "train=0.5,test=0.5")
    assert plain.code == 0 and "cannot honour" not in plain.stderr
    path.write_text(path.read_text() + "5,2024-05-01\n")
    assert cli("data", "add", "credit", path).code == 0
    assert cli("data", "split", "credit@2", "--fractions", "train=0.5,test=0.5").code == 0
    res = cli("data", "versions", "credit.train")
    assert res.code == 0, res.stderr
    assert "split from" in res.stdout
    rows = [line for line in res.stdout.splitlines() if "credit@" in line]
    assert [("credit@1" in r, "credit@2" in r) for r in rows] == [
        (True, False),
        (True, False),
        (False, True),
    ]
