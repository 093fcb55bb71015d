"""Representation checks in contracts: the share of each group of a sensitive column, and the
label rate per group, judged on the whole batch like any other dataset-level check: in the
validation report, by ``data validate``, and at ingestion, where a failing batch is refused
(it cannot be quarantined row by row)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from shipyard.data.contracts import Contract
from shipyard.data.validation import row_failures, validate
from shipyard.errors import InvalidInputError
from tests.cli.conftest import Cli

CONTRACT = """
description: Loan applicants
columns:
  id: {type: int, unique: true}
  gender: {type: category, allowed: [F, M, X]}
  region: {type: int}
  default: {type: bool}
checks:
  representation:
    gender: {min_share: 0.1}
    region: {groups: {1: {min_share: 0.3}, 2: {max_share: 0.8}}}
  label_rate: {label: default, column: gender, max_gap: 0.1}
"""


def _batch(women: int, *, n: int = 200, x: int = 20, default_women: float = 0.2) -> pl.DataFrame:
    """``n`` applicants: ``women`` F, ``x`` X, the rest M; 20% of M and X default, and
    ``default_women`` of the women."""
    gender = ["F"] * women + ["X"] * x + ["M"] * (n - women - x)
    defaults = [i < int(women * default_women) for i in range(women)]
    defaults += [i % 5 == 0 for i in range(n - women)]
    return pl.DataFrame(
        {
            "id": list(range(n)),
            "gender": gender,
            "region": [1 if i % 2 else 2 for i in range(n)],
            "default": defaults,
        }
    )


def test_a_balanced_batch_passes_and_an_unbalanced_one_names_group_and_share() -> None:
    contract = Contract.from_yaml(CONTRACT)
    assert validate(contract, _batch(80)).passed

    report = validate(contract, _batch(10, default_women=0.6))
    by_check = {f.check: f for f in report.failures}
    assert set(by_check) == {"representation", "label_rate"}
    rep = by_check["representation"]
    assert rep.column == "gender"
    assert rep.message == "group 'F' is 5.0% of rows (10 of 200); at least 10.0% required"
    assert rep.examples == [{"group": "F", "share": 0.05, "rows": 10}]
    rate = by_check["label_rate"]
    assert "'F' 60.0%" in rate.message and "gap between groups is 40.0 points" in rate.message
    assert "gender representation" in report.summary()
    # Dataset-level: no row is to blame, so none would be quarantined.
    assert row_failures(contract, _batch(10)).height == 0


def test_absent_groups_and_per_value_bounds() -> None:
    contract = Contract.from_yaml(CONTRACT)
    # No X at all: an allowed value that is absent is a group of share 0.
    report = validate(contract, _batch(80, x=0))
    assert [f.message for f in report.failures] == [
        "group 'X' is 0.0% of rows (0 of 200); at least 10.0% required"
    ]
    frame = _batch(80).with_columns(region=pl.lit(2))
    messages = [f.message for f in validate(contract, frame).failures]
    assert messages == [
        "group 1 is 0.0% of rows (0 of 200); at least 30.0% required; "
        "group 2 is 100.0% of rows (200 of 200); at most 80.0% required"
    ]


def test_a_sensitive_column_without_any_value_fails_a_minimum_share() -> None:
    """Entirely null, the column has no group that reaches its share: the batch fails, and
    the message says why rather than listing shares of 0 rows; with no minimum it passes."""
    contract = Contract.from_yaml(
        "columns: {id: {type: int}, gender: {type: string}}\n"
        "checks: {representation: {gender: {min_share: 0.1}}}\n"
    )
    frame = pl.DataFrame({"id": [1, 2, 3], "gender": [None, None, None]}).cast(
        {"gender": pl.String}
    )
    [failure] = validate(contract, frame).failures
    assert (failure.column, failure.check) == ("gender", "representation")
    assert failure.message == (
        "no group reaches its share: gender is null in every row (3 rows); "
        "shares count rows with a value"
    )
    assert validate(contract, frame.with_columns(gender=pl.lit("F"))).passed
    at_most = Contract.from_yaml(
        "columns: {id: {type: int}, gender: {type: string}}\n"
        "checks: {representation: {gender: {max_share: 0.9}}}\n"
    )
    assert validate(at_most, frame).passed
    # With allowed values the message is the same, not a share of 0 of 0 per group.
    allowed = Contract.from_yaml(CONTRACT)
    nulls = _batch(80).with_columns(gender=pl.lit(None, pl.String))
    messages = [f.message for f in validate(allowed, nulls).failures if f.column == "gender"]
    assert messages == [
        "no group reaches its share: gender is null in every row (200 rows); "
        "shares count rows with a value"
    ]


def test_the_checks_round_trip_and_mistakes_are_named() -> None:
    contract = Contract.from_yaml(CONTRACT)
    # Stored as JSON (group keys become text) and read back unchanged.
    assert Contract.from_dict(json.loads(json.dumps(contract.to_dict()))) == contract
    bad = """
columns: {score: {type: float}, city: {type: string}, y: {type: string}}
checks:
  representation: {score: {min_share: 0.1}, city: {min_shar: 0.1}, town: {min_share: 2}}
  label_rate: [{label: y, column: city, max_gap: 0.1}, {label: y, column: city}]
"""
    with pytest.raises(InvalidInputError) as err:
        Contract.from_yaml(bad)
    message = err.value.message
    assert (
        "checks.representation.score: groups are the values of an int, bool, string or "
        "category column, 'score' is float" in message
    )
    assert "checks.representation.city.min_shar: unknown key; did you mean 'min_share'?" in message
    assert "checks.representation.town: 'town' is not a column" in message
    assert (
        "checks.label_rate[0]: label 'y' is string: say which value counts with 'positive'"
        in message
    )
    assert "checks.label_rate[1]: needs min, max, max_gap or min_ratio" in message


@pytest.mark.slow
def test_ingestion_refuses_an_under_representing_batch(cli_project: Path, cli: Cli) -> None:
    (cli_project / "loans.yaml").write_text(CONTRACT)
    assert cli("contract", "add", "loans", "loans.yaml").code == 0
    assert cli("contract", "bind", "loans", "loans", "--new").code == 0
    _batch(80).write_csv(cli_project / "good.csv")
    _batch(10).write_csv(cli_project / "bad.csv")
    assert cli("data", "add", "loans", "good.csv").code == 0

    refused = cli("data", "add", "loans", "bad.csv")
    assert refused.code == 3
    assert "gender: representation (group 'F' is 5.0% of rows (10 of 200)" in refused.stderr
    # Quarantine cannot help: no row fails, the batch as a whole does.
    quarantined = cli("data", "add", "loans", "bad.csv", "--quarantine")
    assert quarantined.code == 3
    assert "group 'F' is 5.0% of rows" in quarantined.stderr
    assert "no row fails on its own" in quarantined.stderr
    listed = cli("data", "versions", "loans", "--json").json()
    assert len(listed) == 1

    # Checked later against a stricter contract: reported like any other check.
    stricter = CONTRACT.replace("min_share: 0.1}", "min_share: 0.45}")
    (cli_project / "strict.yaml").write_text(stricter)
    assert cli("contract", "add", "strict", "strict.yaml").code == 0
    checked = cli("data", "validate", "loans", "--contract", "strict", "--json")
    assert checked.code == 3
    failure = checked.json()["failures"][0]
    assert failure["check"] == "representation" and failure["column"] == "gender"
    assert "group 'M' is 50.0% of rows" not in failure["message"]
    assert "group 'F' is 40.0% of rows (80 of 200); at least 45.0% required" in failure["message"]
