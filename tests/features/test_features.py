"""The feature store service: versioned definitions with their diff and audit, point-in-time
training data registered with lineage, materialization, online lookups and their read log.
The catalog runs on SQLite and PostgreSQL; the online store on SQLite here and on Redis in
``test_online_redis.py``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import update

import shipyard
from shipyard.errors import CheckFailedError, InvalidInputError, NotFoundError
from shipyard.project import Project
from shipyard.stores.db.tables import feature_views

NOW = datetime.now(UTC).replace(microsecond=0)

DEFINITIONS = """\
entities:
  - name: applicant
    join_keys: [applicant_id]
    description: A person who applied for credit.
    owner: risk-team
feature_views:
  - name: payments
    source: payments
    entity: applicant
    timestamp: paid_at
    ttl: 30d
    owner: risk-team
    description: Repayment history.
    features:
      - {name: late_payments, type: int, description: Payments over 30 days late.}
      - {name: amount, type: float, description: Amount paid., owner: finance}
"""


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Project]:
    """A project on SQLite (the online store tests need no second catalog backend)."""
    with shipyard.init_project(tmp_path / "proj") as project:
        yield project


def payments_frame() -> pl.DataFrame:
    """Applicant 1 paid recently (twice); 2 only 40 days ago (stale for a 30-day TTL); 3
    once, recently, with no late count; 4 never."""
    return pl.DataFrame(
        {
            "applicant_id": [1, 2, 1, 3],
            "paid_at": [NOW - timedelta(days=20), NOW - timedelta(days=40), NOW, NOW],
            "late_payments": [0, 3, 1, None],
            "amount": [10.0, 20.0, 30.0, 5.0],
        }
    )


def set_up(project: Project, tmp_path: Path) -> Path:
    project.datasets.add("payments", payments_frame())
    path = tmp_path / "features.yaml"
    path.write_text(DEFINITIONS, encoding="utf-8")
    return path


def test_apply_versions_only_what_changed_and_audits_it(project: Project, tmp_path: Path) -> None:
    """The first apply creates version 1 of the entity and the view; the same file again
    changes nothing; a changed TTL and a new feature make view version 2 with a diff naming
    both, recorded in the audit log; ``show`` of @1 still gives the old definition."""
    path = set_up(project, tmp_path)
    first = project.features.apply(path)
    assert [(c.kind, c.name, c.version, c.action) for c in first] == [
        ("feature_entity", "applicant", 1, "created"),
        ("feature_view", "payments", 1, "created"),
    ]
    assert [c.action for c in project.features.apply(path)] == ["unchanged", "unchanged"]
    changed = DEFINITIONS.replace("ttl: 30d", "ttl: 7d").replace(
        "      - {name: amount",
        "      - {name: paid_count, type: int}\n      - {name: amount",
    )
    project.datasets.add(
        "payments", payments_frame().with_columns(paid_count=pl.lit(1, dtype=pl.Int64))
    )
    path.write_text(changed, encoding="utf-8")
    dry = project.features.apply(path, dry_run=True)
    assert project.features.get("payments").version == 1
    [entity, view] = project.features.apply(path)
    assert (entity.action, view.action, view.version) == ("unchanged", "updated", 2)
    assert (
        view.changes == dry[1].changes == ["~ ttl_seconds: 30d -> 7d", "+ feature paid_count (int)"]
    )
    assert project.features.get("payments@1").ttl_seconds == 30 * 86400
    assert [v.version for v in project.features.versions("payments")] == [1, 2]
    events = project.audit.list(entity_kind="feature_view", action="feature_view.apply")
    assert [e.entity for e in events] == ["payments@1", "payments@2"]
    assert events[-1].payload["changes"] == view.changes
    glossary = {e.feature: e for e in project.features.glossary()}
    assert glossary["payments:amount"].owner == "finance"
    assert glossary["payments:late_payments"].owner == "risk-team"
    [term] = [t for t in project.docs.catalog().glossary if t.name == "payments:paid_count"]
    assert (term.kind, term.definitions[0]["source"]) == ("feature", "payments@2")
    assert project.audit.verify().ok
    with project.db.write() as conn:  # an edit behind the audit log's back is found
        conn.execute(
            update(feature_views).where(feature_views.c.version == 1).values(spec={"edited": True})
        )
    [mismatch] = project.audit.verify().state
    assert (mismatch.table, mismatch.key) == ("feature definitions", "feature_views/payments@1")


def test_a_view_that_does_not_fit_its_source_is_refused_with_every_problem(
    local: Project, tmp_path: Path
) -> None:
    """A feature missing from the source and one declared with the wrong type are both
    named, and nothing is recorded."""
    path = set_up(local, tmp_path)
    path.write_text(
        DEFINITIONS.replace("name: amount, type: float", "name: amount, type: string").replace(
            "- {name: late_payments", "- {name: nope, type: int}\n      - {name: late_payments"
        ),
        encoding="utf-8",
    )
    with pytest.raises(InvalidInputError) as err:
        local.features.apply(path)
    assert "'nope'" in str(err.value) and "declared string" in str(err.value)
    assert local.features.list() == []


def test_historical_joins_point_in_time_and_registers_a_traced_dataset(
    project: Project, tmp_path: Path
) -> None:
    """Each application gets the values known at its time within the TTL (nulls otherwise,
    every row in order); the result is a dataset version whose lineage names the
    applications, the payments version and the feature view version; the read is logged."""
    project.features.apply(set_up(project, tmp_path))
    apps = pl.DataFrame(
        {
            "applicant_id": [1, 2, 4, 1, 1],
            "applied_at": [
                NOW - timedelta(days=1),
                NOW,
                NOW,
                NOW - timedelta(days=30),
                NOW - timedelta(days=1),
            ],
        }
    )
    project.datasets.add("applications", apps)
    result = project.features.historical(
        "applications@1", ["payments:late_payments", "payments:amount"], output="training"
    )
    frame = result.frame
    assert frame.get_column("late_payments").to_list() == [0, None, None, None, 0]
    assert frame.get_column("amount").to_list() == [10.0, None, None, None, 10.0]
    assert result.dataset is not None and result.dataset.ref == "training@1"
    lineage = project.datasets.lineage("training@1")["upstream"]
    parents = {e["parent"] for e in lineage}
    assert parents == {"dataset:applications@1", "dataset:payments@1", "feature_view:payments@1"}
    assert project.datasets.get("training@1").to_polars().equals(frame)
    [read] = project.audit.list(action="feature_view.read")
    assert (read.actor, read.entity) == ("alice", "payments@1")
    assert read.payload["features"] == ["late_payments", "amount"]


def test_historical_reads_only_the_source_columns_the_join_needs(
    project: Project, tmp_path: Path
) -> None:
    """Asked for one feature, the view's source is read for its join key, its time and that
    feature alone, and the read's log entry names those columns."""
    project.features.apply(set_up(project, tmp_path))
    apps = pl.DataFrame({"applicant_id": [1, 3], "applied_at": [NOW, NOW]})
    result = project.features.historical(apps, ["payments:amount"])
    assert result.frame.get_column("amount").to_list() == [30.0, 5.0]
    [read] = [
        e
        for e in project.audit.list(action="dataset.read")
        if e.entity == "payments@1" and "features.historical" in e.payload["via"]
    ]
    assert read.payload["columns"] == ["applicant_id", "paid_at", "amount"]


def test_materialized_values_come_back_online_with_a_status_each(
    local: Project, tmp_path: Path
) -> None:
    """After materialize, a lookup gives each entity's latest values with their event time:
    present, missing (null, or never materialized) or outside the TTL (withheld); keys given
    as text match integer keys; reads are counted per view and client."""
    local.features.apply(set_up(local, tmp_path))
    [done] = local.features.materialize()
    assert (done.view, done.rows, done.store) == ("payments@1", 3, "sqlite")
    found = local.features.online(
        [{"applicant_id": "1"}, {"applicant_id": 2}, {"applicant_id": 3}, {"applicant_id": 4}],
        "payments:late_payments,payments:amount",
    )
    assert found.features == ["late_payments", "amount"]
    rows = [(r.values, r.status) for r in found.rows]
    assert rows[0] == (
        {"late_payments": 1, "amount": 30.0},
        {"late_payments": "present", "amount": "present"},
    )
    assert rows[1] == (
        {"late_payments": None, "amount": None},
        {"late_payments": "outside_ttl", "amount": "outside_ttl"},
    )
    assert rows[2][1] == {"late_payments": "missing", "amount": "present"}
    assert rows[3][1] == {"late_payments": "missing", "amount": "missing"}
    assert found.rows[0].event_time["amount"] == NOW
    [count] = local.features.online_reads()
    assert (count.view, count.client, count.requests, count.rows) == ("payments", "alice", 1, 4)
    with pytest.raises(InvalidInputError, match="join key"):
        local.features.online([{"id": 1}], ["payments:amount"])
    with pytest.raises(NotFoundError):
        local.features.online([{"applicant_id": 1}], ["nope:amount"])


def test_incremental_materialization_writes_only_newer_events(
    local: Project, tmp_path: Path
) -> None:
    """An incremental run after new events writes only the entities with later events."""
    local.features.apply(set_up(local, tmp_path))
    local.features.materialize("payments")
    later = pl.concat(
        [
            payments_frame(),
            pl.DataFrame(
                {
                    "applicant_id": [2],
                    "paid_at": [NOW + timedelta(seconds=1)],
                    "late_payments": [7],
                    "amount": [1.0],
                }
            ),
        ]
    )
    local.datasets.add("payments", later)
    [done] = local.features.materialize("payments", incremental=True)
    assert (done.rows, done.incremental, done.source) == (1, True, "payments@2")
    [row] = local.features.online([{"applicant_id": 2}], ["payments:late_payments"]).rows
    assert (row.values, row.status) == ({"late_payments": 7}, {"late_payments": "present"})


def test_a_contract_bound_to_the_view_stops_bad_values_from_going_online(
    local: Project, tmp_path: Path
) -> None:
    """Materializing values that break the view's contract fails with a check error and
    writes nothing."""
    path = set_up(local, tmp_path)
    contract = tmp_path / "c.yaml"
    contract.write_text("columns:\n  amount: {type: float, max: 25}\n", encoding="utf-8")
    local.contracts.add("payment-values", contract)
    path.write_text(
        DEFINITIONS.replace("    ttl: 30d\n", "    ttl: 30d\n    contract: payment-values\n"),
        encoding="utf-8",
    )
    local.features.apply(path)
    with pytest.raises(CheckFailedError, match="amount"):
        local.features.materialize()
    [row] = local.features.online([{"applicant_id": 1}], ["payments:amount"]).rows
    assert row.status == {"amount": "missing"}


def test_definitions_in_a_python_file_apply_like_yaml(local: Project, tmp_path: Path) -> None:
    """A .py file's top-level definitions are applied; a dry run reports without recording."""
    local.datasets.add("payments", payments_frame())
    path = tmp_path / "features.py"
    path.write_text(
        "from shipyard.features import EntityDefinition, Feature, FeatureViewDefinition\n"
        "applicant = EntityDefinition('applicant', ['applicant_id'])\n"
        "payments = FeatureViewDefinition('payments', source='payments', entity='applicant',\n"
        "    timestamp='paid_at', ttl='30d', features=[Feature('amount', 'float')])\n",
        encoding="utf-8",
    )
    dry = local.features.apply(path, dry_run=True)
    assert [(c.name, c.action) for c in dry] == [("applicant", "created"), ("payments", "created")]
    assert local.features.list() == []
    assert [c.version for c in local.features.apply(path)] == [1, 1]
