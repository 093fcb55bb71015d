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


@pytest.fixture
def trained(cli_project: Path) -> Path:
    """The project with dataset train@1 and model clf@1 (a logistic regression) trained on it."""
    import polars as pl
    from sklearn.linear_model import LogisticRegression

    import shipyard

    x = pl.DataFrame({"a": [0.1, 0.4, 0.5, 0.9, 0.2, 0.8], "b": [3.0, 1.0, 2.0, 5.0, 4.0, 0.0]})
    frame = x.with_columns(y=pl.Series([0, 0, 1, 1, 0, 1]))
    with shipyard.open_project(cli_project) as p:
        train = p.datasets.add("train", frame)
        model = LogisticRegression().fit(x.to_pandas(), frame["y"].to_list())
        with p.start_run("clf") as run:
            run.log_input(train.ref, context="train")
            run.log_model(model, "clf", input_example=x.to_pandas())
    return cli_project


def test_report_export_drift_and_checkpoint_outputs_follow_the_rule(
    cli: Cli, trained: Path
) -> None:
    """`report pr -o`, `models export -o`, `monitor drift --html` and `audit checkpoint -o`
    refuse a missing folder (creating none) and an extension they cannot write (listing those
    they can), before doing any work; an ONNX export replaces a file only with --force."""
    missing = trained / "nodir"
    for args in (
        ("report", "pr", "--candidate", "clf@1", "-o", missing / "sub" / "r.md"),
        ("models", "export", "clf@1", "-o", missing / "sub" / "m.onnx"),
        ("monitor", "drift", "clf@1", "--current", "train@1", "--html", missing / "d.html"),
        ("audit", "checkpoint", "-o", missing / "cp.json"),
    ):
        res = cli(*args)
        assert res.code == 1 and "does not exist; create it first" in res.stderr, args
        assert not missing.exists(), args
    pdf = trained / "r.pdf"
    for args, listed in (
        (("report", "pr", "--candidate", "clf@1", "-o", pdf), ".md, .markdown"),
        (("models", "export", "clf@1", "-o", pdf), "writes .onnx"),
        (("monitor", "drift", "clf@1", "--current", "train@1", "--html", pdf), ".html, .htm"),
        (("audit", "checkpoint", "-o", pdf), "writes .json"),
    ):
        res = cli(*args)
        assert res.code == 2 and "cannot write a .pdf file" in res.stderr, args
        assert listed in res.stderr, args
        assert not pdf.exists(), args

    import onnx

    out = trained / "m.onnx"
    out.write_bytes(b"mine")
    res = cli("models", "export", "clf@1", "-o", out)
    assert res.code == 1 and "already exists" in res.stderr and out.read_bytes() == b"mine"
    assert cli("models", "export", "clf@1", "-o", out, "--force").code == 0
    assert onnx.load(out).graph.node, "a real ONNX graph replaced the file"


def test_the_python_export_keeps_the_same_rule(trained: Path) -> None:
    """`project.models.export` refuses what `models export -o` refuses: an ONNX model is never
    written into a .pdf, and no folder is made for it."""
    import shipyard
    from shipyard.errors import InvalidInputError

    with shipyard.open_project(trained) as p:
        with pytest.raises(InvalidInputError, match=r"cannot write a \.pdf file; .* writes \.onnx"):
            p.models.export("clf@1", trained / "m.pdf")
        with pytest.raises(InvalidInputError, match="does not exist; create it first"):
            p.models.export("clf@1", trained / "nodir" / "sub" / "m.onnx")
    assert not (trained / "m.pdf").exists() and not (trained / "nodir").exists()


def test_data_get_of_a_file_tree_refuses_a_missing_folder(cli: Cli, cli_project: Path) -> None:
    """A file tree is restored into a new folder whose parent must exist, as for any -o."""
    tree = cli_project / "imgs"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "1.txt").write_text("one")
    assert cli("data", "add", "imgs", tree).code == 0
    res = cli("data", "get", "imgs@1", "-o", cli_project / "missing" / "a" / "b")
    assert res.code == 1 and "does not exist; create it first" in res.stderr
    assert not (cli_project / "missing").exists()
    assert cli("data", "get", "imgs@1", "-o", cli_project / "restored").code == 0
    assert (cli_project / "restored" / "a" / "1.txt").read_text() == "one"


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


def test_a_misspelt_card_section_in_a_policy_is_refused(cli: Cli, cli_project: Path) -> None:
    """A policy naming a card section that `models describe` does not know is refused with a
    suggestion, at the top level and in a risk tier, and no version is stored (it would fail
    every check for good)."""
    policy = cli_project / "policy.yaml"
    policy.write_text(
        "card_sections: [ethical_consideratons]\n"
        "risk_tiers: {high: {card_sections: [intended_use, cavaets]}}\n"
    )
    res = cli("policy", "set", "*", policy)
    assert res.code == 1
    assert (
        "card_sections[0]: unknown card section 'ethical_consideratons'; "
        "did you mean 'ethical_considerations'?"
    ) in res.stderr
    assert (
        "risk_tiers.high.card_sections[1]: unknown card section 'cavaets'; did you mean 'caveats'?"
    ) in res.stderr
    assert cli("policy", "show", "*", "--json").json()["stored"] is None
    policy.write_text("card_sections: [ethical_considerations]\n")
    assert "is now version 1" in cli("policy", "set", "*", policy).stdout


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


#: Commands that take no --json, each with why. Empty: every command that shows something
#: takes it (the servers print one JSON line once they answer).
WITHOUT_JSON: dict[str, str] = {}


def _leaves(command: Any, ctx: Any) -> Iterator[tuple[str, Any]]:
    """Every command (not group) under ``command``, by its full path."""
    if not hasattr(command, "commands"):
        yield ctx.command_path, command
        return
    for name, sub in command.commands.items():
        yield from _leaves(sub, sub.make_context(name, [], parent=ctx, resilient_parsing=True))


def test_every_command_takes_json() -> None:
    """Walking the whole command tree: every command accepts --json, as the README says,
    but those on the short list of exceptions (and those still exist)."""
    from shipyard.cli.main import app

    root = typer.main.get_command(app)
    leaves = dict(_leaves(root, root.make_context("shipyard", [], resilient_parsing=True)))
    assert len(leaves) > 100 and {"shipyard ui", "shipyard server", "shipyard serve"} <= set(leaves)
    without = sorted(
        path
        for path, command in leaves.items()
        if not any("--json" in getattr(param, "opts", ()) for param in command.params)
    )
    assert without == sorted(WITHOUT_JSON)


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


@pytest.mark.slow
def test_a_one_column_model_exports_to_onnx_and_predicts_the_same(
    cli: Cli, cli_project: Path
) -> None:
    """A model of one numeric column (no ColumnTransformer) exports to ONNX whose one input is
    that column: the parity check passes and the file is written."""
    import polars as pl
    from sklearn.linear_model import LogisticRegression

    import shipyard

    x = pl.DataFrame({"a": [0.1, 0.4, 0.5, 0.9, 0.2, 0.8, 0.3, 0.7]})
    frame = x.with_columns(y=pl.Series([0, 0, 1, 1, 0, 1, 0, 1]))
    with shipyard.open_project(cli_project) as p:
        train = p.datasets.add("train", frame)
        model = LogisticRegression().fit(x.to_pandas(), frame["y"].to_list())
        with p.start_run("one") as run:
            run.log_input(train.ref, context="train")
            run.log_model(model, "one", input_example=x.to_pandas())
    res = cli("models", "export", "one@1", "-o", "one.onnx", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["parity"]["labels_agree"] == 8
    assert (cli_project / "one.onnx").stat().st_size > 0


def test_a_time_split_that_is_refused_says_nothing_about_fractions(
    cli: Cli, cli_project: Path
) -> None:
    """Two cutoffs for two parts is refused in words that count right ("2 parts need 1
    cutoff"), and the note about --fractions, which belongs to a split that is made, is not
    printed before the refusal; nothing is stored."""
    path = cli_project / "events.csv"
    path.write_text("id,ts\n1,2026-01-01\n2,2026-01-15\n3,2026-01-25\n")
    assert cli("data", "add", "credit", path).code == 0
    res = cli(
        "data", "split", "credit@1", "--time-column", "ts",
        "--cutoffs", "2026-01-10,2026-01-20", "--fractions", "train=0.5,test=0.5",
    )  # fmt: skip
    assert res.code == 1
    assert "cutoffs: 2 parts need 1 cutoff, got 2" in res.stderr
    assert "note:" not in res.stderr and "cannot honour" not in res.stderr
    assert [d["name"] for d in cli("data", "list", "--json").json()] == ["credit"]


def test_a_time_split_stores_only_what_it_applied(cli: Cli, cli_project: Path) -> None:
    """The spec stored with each part of a time split names the parts and the cutoffs, not
    the shares it could not honour; `data show` says how the part was cut in words, and
    --replay makes the same parts again."""
    path = cli_project / "events.csv"
    path.write_text("id,ts\n1,2026-01-01\n2,2026-01-15\n3,2026-01-25\n")
    assert cli("data", "add", "credit", path).code == 0
    res = cli(
        "data", "split", "credit@1", "--time-column", "ts", "--cutoffs", "2026-01-10",
        "--fractions", "train=0.5,test=0.5",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    stored = cli("data", "show", "credit.train@1", "--json").json()["source"]["split"]
    assert stored["parts"] == ["train", "test"] and "fractions" not in stored
    assert stored["cutoffs"] == ["2026-01-10"] and stored["time_column"] == "ts"
    assert "0.5" not in str(stored)
    shown = cli("data", "show", "credit.test@1").stdout
    assert "split: test part of credit@1, by ts at 2026-01-10 into train, test" in shown
    assert "{" not in shown.split("split:")[1].splitlines()[0]  # not a Python dict
    replayed = cli("data", "split", "--replay", "credit.test@1", "--json")
    assert replayed.code == 0, replayed.stderr
    assert replayed.json()["test"]["created"] is False


# -- column types -------------------------------------------------------------------------------


def test_data_show_prints_column_types_as_people_read_them(cli: Cli, cli_project: Path) -> None:
    """A datetime column reads `datetime[us]` (with its zone when it has one), not the
    Python `Datetime(time_unit='us', time_zone=None)`; --json keeps the stored type."""
    import polars as pl

    path = cli_project / "events.parquet"
    pl.DataFrame(
        {
            "id": [1, 2],
            "at": pl.Series(["2026-01-01 10:00", "2026-01-02 11:00"]).str.to_datetime(),
        }
    ).with_columns(pl.col("at").dt.replace_time_zone("UTC").alias("at_utc")).write_parquet(path)
    assert cli("data", "add", "events", path).code == 0
    shown = cli("data", "show", "events@1").stdout
    assert "datetime[us]" in shown and "datetime[us, UTC]" in shown
    assert "time_unit" not in shown and "None" not in shown
    schema = cli("data", "show", "events@1", "--json").json()["schema"]
    assert schema["at"] == "Datetime(time_unit='us', time_zone=None)"
