"""``shipyard features``: apply with its diff, show, glossary, historical, materialize and
online, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.features.test_features import DEFINITIONS, payments_frame


@pytest.mark.slow
def test_the_feature_commands_from_definitions_to_online_values(
    cli: Cli, cli_project: Path
) -> None:
    """apply prints what it created; show, glossary, historical, materialize and online
    answer with one JSON document each; bad input exits 1 or 2 with a message."""
    payments_frame().write_parquet(cli_project / "payments.parquet")
    assert cli("data", "add", "payments", "payments.parquet").code == 0
    apps = cli_project / "apps.csv"
    apps.write_text("applicant_id,applied_at\n1,2020-01-01T00:00:00\n2,2999-01-01T00:00:00\n")
    assert cli("data", "add", "apps", apps).code == 0
    (cli_project / "features.yaml").write_text(DEFINITIONS, encoding="utf-8")

    applied = cli("features", "apply", "features.yaml")
    assert applied.code == 0, applied.stderr
    assert "feature view payments@1: created" in applied.stdout
    assert "+ feature late_payments (int)" in applied.stdout
    again = cli("features", "apply", "features.yaml", "--json")
    assert [c["action"] for c in again.json()] == ["unchanged", "unchanged"]

    shown = cli("features", "show", "payments@1", "--json").json()
    assert (shown["ref"], shown["join_keys"], shown["ttl_seconds"]) == (
        "payments@1",
        ["applicant_id"],
        30 * 86400,
    )
    glossary = cli("features", "glossary", "--json").json()
    assert {e["feature"]: e["owner"] for e in glossary} == {
        "payments:late_payments": "risk-team",
        "payments:amount": "finance",
    }

    made = cli(
        "features", "historical", "--entities", "apps@1", "--features",
        "payments:late_payments", "-o", "training", "--json",
    )  # fmt: skip
    assert made.code == 0, made.stderr
    doc = made.json()
    assert (doc["rows"], doc["views"], doc["dataset"]["ref"]) == (2, ["payments@1"], "training@1")

    [done] = cli("features", "materialize", "--json").json()
    assert (done["view"], done["rows"]) == ("payments@1", 3)
    online = cli(
        "features", "online", "--entity", "applicant_id=1", "--features", "payments:amount",
        "--json",
    )  # fmt: skip
    assert online.code == 0, online.stderr
    [row] = online.json()["rows"]
    assert (row["values"], row["status"]) == ({"amount": 30.0}, {"amount": "present"})
    [reads] = cli("features", "reads", "--json").json()
    assert (reads["view"], reads["requests"]) == ("payments", 1)

    assert cli("features", "show", "nope").code == 1
    bad = cli("features", "online", "--entity", "applicant_id", "--features", "payments:amount")
    assert bad.code == 2
