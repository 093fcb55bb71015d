"""What the command line prints reads as written for people: one timestamp format in every
file, no Python dicts or ``None`` in messages, counts with their noun, hints that fit the case,
and values of the type the user gave."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import shipyard
from tests.cli.conftest import Cli
from tests.features.test_features import DEFINITIONS, payments_frame

LOANS = """\
description: Loan applicants
columns:
  id: {type: int, unique: true}
  gender: {type: category, allowed: [F, M]}
  age: {type: int, min: 18}
checks:
  representation:
    gender: {min_share: 0.1}
"""


def _loans(path: Path, *, women: int, young: int = 0, n: int = 200) -> Path:
    """``n`` applicants, ``women`` of them F; the first ``young`` are 12 years old."""
    pl.DataFrame(
        {
            "id": list(range(n)),
            "gender": ["F"] * women + ["M"] * (n - women),
            "age": [12 if i < young else 30 for i in range(n)],
        }
    ).write_csv(path)
    return path


def _flat(text: str) -> str:
    """``text`` with the line breaks of a table cell or a wrapped message undone."""
    return " ".join(text.replace("│", " ").split())


def test_every_file_writes_times_the_same_way(cli: Cli, cli_project: Path) -> None:
    """A time reads ``2026-01-01T06:53:00+00:00`` in CSV, in JSON Lines and in a JSON
    document alike (ISO 8601 with a T, the offset as +00:00); a time without a zone has no
    offset; the file reads back as the same times."""
    at = datetime(2026, 1, 1, 6, 53, tzinfo=UTC)
    frame = pl.DataFrame({"at": [at], "local": [datetime(2026, 1, 1, 6, 53)], "n": [1]})
    with shipyard.open_project(cli_project) as project:
        project.datasets.add("times", frame)
    assert cli("data", "get", "times@1", "-o", "t.csv").code == 0
    assert cli("data", "get", "times@1", "-o", "t.jsonl").code == 0
    csv_row = (cli_project / "t.csv").read_text().splitlines()[1]
    assert csv_row == "2026-01-01T06:53:00+00:00,2026-01-01T06:53:00,1"
    line = json.loads((cli_project / "t.jsonl").read_text())
    assert line == {"at": "2026-01-01T06:53:00+00:00", "local": "2026-01-01T06:53:00", "n": 1}
    assert line["at"] == at.isoformat()
    back = pl.read_csv(cli_project / "t.csv", try_parse_dates=True)
    assert back["at"].to_list() == [at] and back["local"].to_list() == [frame["local"][0]]


def test_dataset_level_failures_read_as_words_and_hints_fit(
    cli: Cli, cli_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A representation failure shows its group as ``'F': 5.0% (10 rows)``, not a dict; a
    batch that fails only as a whole is not told to quarantine; one with failing rows is,
    with the batch-wide check it must still pass; a quarantined batch says how many rows
    went where instead of "FAILED on" all of them."""
    monkeypatch.setenv("COLUMNS", "200")  # table cells on one line each
    (cli_project / "loans.yaml").write_text(LOANS)
    assert cli("contract", "add", "loans", "loans.yaml").code == 0
    assert cli("contract", "bind", "loans", "loans", "--new").code == 0

    whole = cli("data", "add", "loans", _loans(cli_project / "a.csv", women=10))
    assert whole.code == 3
    err = _flat(whole.stderr)
    assert "'F': 5.0% (10 rows)" in err and "{'group'" not in err
    assert "use --quarantine" not in err and "--quarantine cannot help" in err
    assert "1 check failed" in err

    mixed = cli("data", "add", "loans", _loans(cli_project / "b.csv", women=10, young=3))
    assert mixed.code == 3
    err = _flat(mixed.stderr)
    assert "2 checks failed" in err
    assert "use --quarantine to keep the valid rows, which then must pass the batch-wide " in err
    assert "check gender: representation on their own" in err

    split = cli(
        "data", "add", "loans", _loans(cli_project / "c.csv", women=60, young=1), "--quarantine"
    )
    assert split.code == 0, split.stderr
    out = _flat(split.stdout)
    assert "validation against loans@1: 1 of 200 rows failed (quarantined), 199 stored" in out
    assert "FAILED on" not in out


@pytest.mark.slow
def test_feature_commands_print_values_as_given(cli: Cli, cli_project: Path) -> None:
    """``features apply`` lists a new view's settings without ``None`` or dicts; ``features
    online --json`` keeps a whole-number key a number; a mistyped view gets a suggestion;
    ``features historical -o`` into a dataset whose contract refuses the result names the
    fixes it has (it has no --quarantine)."""
    payments_frame().write_parquet(cli_project / "payments.parquet")
    assert cli("data", "add", "payments", "payments.parquet").code == 0
    tagged = DEFINITIONS.replace(
        "    description: Repayment history.\n",
        "    description: Repayment history.\n    tags: {pii: 'no', team: risk}\n",
    )
    (cli_project / "features.yaml").write_text(tagged, encoding="utf-8")
    applied = cli("features", "apply", "features.yaml")
    assert applied.code == 0, applied.stderr
    assert "+ tags: pii=no, team=risk" in applied.stdout
    assert "None" not in applied.stdout and "{" not in applied.stdout
    assert cli("features", "materialize").code == 0

    found = cli(
        "features", "online", "--entity", "applicant_id=1", "--features", "payments:amount",
        "--json",
    )  # fmt: skip
    assert found.code == 0, found.stderr
    assert found.json()["rows"][0]["entity"] == {"applicant_id": 1}
    typo = cli("features", "online", "--entity", "applicant_id=1", "--features", "paymnts:amount")
    assert typo.code == 1 and "did you mean 'payments'?" in typo.stderr

    (cli_project / "apps.csv").write_text("applicant_id,applied_at\n1,2020-01-01T00:00:00\n")
    assert cli("data", "add", "apps", "apps.csv").code == 0
    strict = "columns:\n  applicant_id: {type: int}\nchecks:\n  row_count: {min: 5}\n"
    (cli_project / "training.yaml").write_text(strict)
    assert cli("contract", "add", "training", "training.yaml").code == 0
    assert cli("contract", "bind", "training", "training", "--new").code == 0
    refused = cli(
        "features", "historical", "--entities", "apps@1", "--features", "payments:amount",
        "-o", "training",
    )  # fmt: skip
    assert refused.code == 3
    err = _flat(refused.stderr)
    assert "the point-in-time result for dataset 'training' fails contract training@1" in err
    assert "--quarantine" not in err and "--allow-invalid" not in err
    assert "write to another dataset with -o" in err


def test_empty_lists_and_counts_read_as_words(cli: Cli, cli_project: Path) -> None:
    """``experiments list`` with none says how to start one, as ``data list`` does;
    ``docs build`` counts "1 dataset", not "1 datasets"; ``webhooks new-secret --json``
    gives the secret it prints."""
    empty = cli("experiments", "list")
    assert empty.code == 0 and empty.stdout.startswith("no experiments yet; start a run")
    assert cli("experiments", "list", "--json").json() == []

    (cli_project / "a.csv").write_text("x\n1\n")
    assert cli("data", "add", "a", "a.csv").code == 0
    built = cli("docs", "build", "-o", "site")
    assert built.code == 0, built.stderr
    assert " 1 dataset, 0 contracts, 0 models, 0 deployments and " in built.stdout

    secret = cli("webhooks", "new-secret", "--json")
    assert secret.code == 0 and secret.json()["secret"].startswith("whsec_")


def test_one_row_reads_singular_and_reports_draw_plain_tables(cli: Cli, cli_project: Path) -> None:
    """Adding a one-row table says "1 row x 1 column", as ``data show`` does; a validation
    report is drawn as the listings are (a header, a rule of dashes, one line per check)
    with no box-drawing characters."""
    (cli_project / "one.csv").write_text("x\n1\n")
    added = cli("data", "add", "one", "one.csv")
    assert added.code == 0, added.stderr
    assert "added one@1: 1 row x 1 column," in added.stdout
    shown = cli("data", "show", "one@1")
    assert shown.code == 0 and "1 row, 1 column, " in shown.stdout

    (cli_project / "people.yaml").write_text(
        "columns:\n  id: {type: int}\n  age: {type: int, max: 120}\n"
    )
    assert cli("contract", "add", "people", "people.yaml").code == 0
    (cli_project / "people.csv").write_text("id,age\n1,30\n2,abc\n3,200\n")
    refused = cli("data", "add", "people", "people.csv", "--contract", "people")
    assert refused.code == 3
    lines = refused.stderr.splitlines()
    head = lines.index("validation against people@1: FAILED on 3 rows")
    assert lines[head + 1].split() == ["column", "check", "failed", "rows", "examples", "message"]
    assert set(lines[head + 2].replace(" ", "")) == {"-"}
    assert lines[head + 3].split()[:4] == ["age", "type", "1", "abc"]
    assert lines[head + 4].split()[:4] == ["age", "max", "1", "200"]
    assert not set("│┃━─┏┗") & set(refused.stderr)
