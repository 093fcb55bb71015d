"""The Alembic migrations create exactly the schema that ``tables.metadata`` describes."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from shipyard.stores.db.engine import MIGRATIONS_DIR, SCHEMA_HEAD, Database
from shipyard.stores.db.tables import GENESIS_HASH, metadata


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _migrated(url: str) -> Database:
    """A database built by replaying every migration (a new one is otherwise created whole)."""
    db = Database(url, migrate=False)
    db.upgrade()
    return db


def test_a_new_database_created_whole_equals_the_migrated_one(backend: str) -> None:
    """A new, empty database gets the whole schema at once (tables, the audit chain's genesis,
    the head revision); Alembic finds nothing to change, and the migrations still walk it back
    to the base and up again."""
    from sqlalchemy import select

    from shipyard.stores.db.tables import audit_head

    db = Database(backend)
    try:
        assert db.current_revision() == SCHEMA_HEAD
        with db.read() as conn:
            created = {t: conn.execute(select(metadata.tables[t])).all() for t in metadata.tables}
        insp = inspect(db.engine)
        assert set(insp.get_table_names()) - {"alembic_version"} == set(metadata.tables)
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        with db.read() as conn:
            assert conn.execute(select(audit_head)).all() == [(1, 0, GENESIS_HASH)]
        cfg = _alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.upgrade()  # the migrations, from the base: every row they seed is there too
        with db.read() as conn:
            migrated = {t: conn.execute(select(metadata.tables[t])).all() for t in metadata.tables}
        assert created == migrated
        assert created["webhook_cursor"]  # seeded rows are compared, not only empty tables
    finally:
        db.dispose()


def test_schema_head_is_alembic_head() -> None:
    """``SCHEMA_HEAD`` names the newest migration, and the history has a single head."""
    script = ScriptDirectory.from_config(_alembic_config())
    assert script.get_heads() == [SCHEMA_HEAD]


def test_every_migration_has_a_downgrade() -> None:
    """Each revision can be walked back from the head to the base."""
    script = ScriptDirectory.from_config(_alembic_config())
    revisions = list(script.walk_revisions("base", "heads"))
    assert revisions
    for rev in revisions:
        assert callable(getattr(rev.module, "downgrade", None)), rev.revision


def test_migrated_tables_and_columns_match_the_metadata(backend: str) -> None:
    """The tables and columns the migrations create are those of ``tables.metadata``."""
    db = _migrated(backend)
    try:
        insp = inspect(db.engine)
        tables = set(insp.get_table_names()) - {"alembic_version"}
        assert tables == set(metadata.tables)
        for name, table in metadata.tables.items():
            columns = {c["name"] for c in insp.get_columns(name)}
            assert columns == {c.name for c in table.columns}, name
    finally:
        db.dispose()


def test_migrated_schema_has_no_autogenerate_diff(backend: str) -> None:
    """Alembic's autogenerate finds nothing to change: types, indexes and constraints match."""
    db = _migrated(backend)
    try:
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()


def test_migration_seeds_the_audit_chain(backend: str) -> None:
    """A new database starts with an empty audit chain anchored at the genesis hash."""
    from sqlalchemy import select

    from shipyard.stores.db.tables import audit_head

    db = _migrated(backend)
    try:
        with db.read() as conn:
            assert conn.execute(select(audit_head)).all() == [(1, 0, GENESIS_HASH)]
    finally:
        db.dispose()


def test_downgrade_to_base_removes_every_table(backend: str) -> None:
    """The migrations can be undone completely, leaving only Alembic's bookkeeping."""
    db = _migrated(backend)
    try:
        cfg = _alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        assert db.current_revision() is None
        db.ensure_schema()
        assert db.current_revision() == SCHEMA_HEAD
    finally:
        db.dispose()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://x", "nonsense"])
def test_unsupported_database_url_is_invalid_input(url: str) -> None:
    """A metadata URL for an unsupported database raises InvalidInputError naming it."""
    from shipyard.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unsupported metadata database URL"):
        Database(url)


def test_upgrade_gives_earlier_prediction_segments_an_owner(backend: str) -> None:
    """A prediction log segment stored under revision 0005 (no ``blob_refs`` row) is owned
    after the upgrade, so ``shipyard gc`` no longer takes it for garbage."""
    from sqlalchemy import insert, select

    from shipyard.stores.db.tables import blob_refs, prediction_segments

    db = _migrated(backend)
    try:
        cfg = _alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        with db.engine.begin() as conn:
            conn.execute(
                insert(prediction_segments).values(
                    id=7, deployment="credit-risk", digest="blake3:" + "ab" * 32, rows=3,
                    first_time=1, last_time=2,
                )
            )  # fmt: skip
        db.ensure_schema()
        assert db.current_revision() == SCHEMA_HEAD
        with db.read() as conn:
            owners = conn.execute(select(blob_refs)).all()
        assert [(o.digest, o.owner_kind, o.owner) for o in owners] == [
            ("blake3:" + "ab" * 32, "prediction_segment", "credit-risk#7")
        ]
    finally:
        db.dispose()


def test_upgrade_ties_earlier_approvals_to_their_events_and_keeps_one_label(
    backend: str,
) -> None:
    """Under revision 0007, decisions stored earlier point at the audit events that recorded
    them (in order, per version), a model version gets the library versions its register
    event named, and a request id labelled twice keeps its newest label, recording the one it
    replaced."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from shipyard.stores.db.tables import (
        approvals,
        audit_events,
        feedback,
        model_versions,
        registered_models,
    )

    db = _migrated(backend)
    now = datetime.now(UTC)
    try:
        cfg = _alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006")
        # fmt: off
        with db.engine.begin() as conn:
            conn.execute(insert(registered_models).values(
                id=1, name="m", description="", created_at=now, created_by="alice"))
            conn.execute(model_versions.insert().values(
                id=1, model_id=1, version=1, digest="blake3:" + "cd" * 32, flavor="sklearn",
                signature={}, status="approved", description="", metrics={},
                created_at=now, created_by="alice"))
            for seq, action, entity, payload in [
                (1, "model.register", "m@1", '{"versions": {"sklearn": "1.6.1"}}'),
                (2, "model.approve", "m@1", '{"comment": ""}'),
                (3, "model.approve", "m@2", '{"comment": ""}'),
                (4, "model.reject", "m@1", '{"comment": "no"}'),
            ]:
                conn.execute(insert(audit_events).values(
                    seq=seq, time=now.isoformat(), actor="bob", action=action,
                    entity_kind="model", entity=entity, payload=payload,
                    prev_hash="x", hash="y"))
            for approval_id, decision in [(10, "approve"), (11, "reject")]:
                conn.execute(approvals.insert().values(
                    id=approval_id, model_id=1, version=1, approver="bob", decision=decision,
                    comment="", time=now))
            for row_id, label in [(1, "1"), (2, "0")]:
                conn.execute(feedback.insert().values(
                    id=row_id, request_id="r1", deployment="m", label=label, time=row_id))
        # fmt: on
        db.ensure_schema()
        with db.read() as conn:
            seqs = conn.execute(
                select(approvals.c.id, approvals.c.event_seq).order_by(approvals.c.id)
            ).all()
            environment = conn.execute(select(model_versions.c.environment)).scalar_one()
            labels = conn.execute(
                select(
                    feedback.c.request_id,
                    feedback.c.label,
                    feedback.c.replaced_label,
                    feedback.c.time,
                    feedback.c.replaced_at,
                )
            ).all()
        assert [tuple(r) for r in seqs] == [(10, 2), (11, 4)]
        assert environment == {"sklearn": "1.6.1"}
        assert [tuple(r) for r in labels] == [("r1", "0", "1", 1, 2)]
    finally:
        db.dispose()
