"""The metadata database, the same on SQLite and PostgreSQL: migrations on open, transactions,
time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

import shipyard
from shipyard.errors import InvalidInputError, ShipyardError
from shipyard.stores.db.engine import SCHEMA_HEAD, SQLITE_BUSY_TIMEOUT_MS, Database
from shipyard.stores.db.tables import users


def test_migrations_are_applied_on_open(backend: str) -> None:
    """Opening an empty database brings it to the newest schema revision."""
    bare = Database(backend, migrate=False)
    try:
        assert bare.current_revision() is None
    finally:
        bare.dispose()
    db = Database(backend)
    try:
        assert db.current_revision() == SCHEMA_HEAD
    finally:
        db.dispose()


def test_reopening_is_idempotent(backend: str) -> None:
    """Opening a migrated database again changes nothing and keeps its rows."""
    first = Database(backend)
    with first.write() as conn:
        conn.execute(
            users.insert().values(
                name="bob", role="viewer", created_at=datetime.now(UTC), created_by="alice"
            )
        )
    first.dispose()
    again = Database(backend)
    try:
        assert again.current_revision() == SCHEMA_HEAD
        assert again.upgrade() == (SCHEMA_HEAD, SCHEMA_HEAD)
        with again.read() as conn:
            assert conn.execute(select(users.c.name)).scalars().all() == ["bob"]
    finally:
        again.dispose()


def test_project_reopens_with_its_data(project: shipyard.Project) -> None:
    """A project opened again on the same database sees the same users and history."""
    project.users.add("bob", "contributor")
    events = len(project.audit.list())
    with shipyard.open_project(project.root, db_url=project.settings.db_url) as again:
        assert [u.name for u in again.users.list()] == ["alice", "bob"]
        assert len(again.audit.list()) == events
        assert again.audit.verify().ok


def test_failed_write_rolls_back(backend: str) -> None:
    """An error inside a write transaction leaves no trace of its statements."""
    db = Database(backend)
    try:
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.execute(
                users.insert().values(
                    name="ghost", role="viewer", created_at=datetime.now(UTC), created_by="x"
                )
            )
            raise RuntimeError("boom")
        with db.read() as conn:
            assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 0
    finally:
        db.dispose()


def test_times_come_back_as_aware_utc(backend: str) -> None:
    """A time stored from any zone reads back as the same instant in UTC."""
    db = Database(backend)
    when = datetime(2024, 5, 3, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    try:
        with db.write() as conn:
            conn.execute(
                users.insert().values(name="bob", role="viewer", created_at=when, created_by="a")
            )
        with db.read() as conn:
            stored = conn.execute(select(users.c.created_at)).scalar_one()
        assert stored == when
        assert stored.tzinfo == UTC
    finally:
        db.dispose()


def test_naive_times_are_refused(backend: str) -> None:
    """Storing a time without a zone fails instead of guessing one."""
    db = Database(backend)
    try:
        with pytest.raises(Exception, match="naive datetime"), db.write() as conn:
            conn.execute(
                users.insert().values(
                    name="bob", role="viewer", created_at=datetime(2024, 1, 1), created_by="a"
                )
            )
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    """SQLite connections use WAL and wait for the write lock instead of failing at once."""
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()


def test_sqlite_database_folder_is_created(tmp_path: Path) -> None:
    """A SQLite database in a folder that does not exist yet is created with its folder."""
    db = Database(f"sqlite:///{tmp_path / 'a' / 'b' / 'meta.db'}")
    db.dispose()
    assert (tmp_path / "a" / "b" / "meta.db").is_file()


def test_safe_url_hides_the_password() -> None:
    """The URL shown in messages masks the password."""
    db = Database("postgresql+psycopg://shipyard:s3cret@127.0.0.1:1/meta", migrate=False)
    try:
        assert "s3cret" not in db.safe_url
        assert "shipyard" in db.safe_url
        assert db.dialect == "postgresql"
    finally:
        db.dispose()


def test_unreachable_database_raises_a_shipyard_error() -> None:
    """Opening a database that cannot be reached raises a ShipyardError naming it safely."""
    with pytest.raises(ShipyardError) as info:
        Database("postgresql+psycopg://shipyard:s3cret@127.0.0.1:1/meta")
    assert "127.0.0.1:1" in info.value.message
    assert "s3cret" not in info.value.message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://shipyard:s3cret@127.0.0.1:1/meta",
        "postgresql+psycopg://shipyard@127.0.0.1:1/meta?password=s3cret",
    ],
)
def test_init_never_writes_a_database_password_to_shipyard_toml(tmp_path: Path, url: str) -> None:
    """shipyard.toml is meant to be committed: a database URL holding a password is refused
    with a message pointing at SHIPYARD_DB_URL (and not repeating the password), no file
    holds the password, and the folder can still be made a project."""
    root = tmp_path / "proj"
    with pytest.raises(InvalidInputError) as info:
        shipyard.init_project(root, db_url=url)
    assert "SHIPYARD_DB_URL" in info.value.message
    assert "password" in info.value.message
    assert "s3cret" not in info.value.message
    assert not (root / "shipyard.toml").exists()
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]
    assert leaked == []
    project = shipyard.init_project(root)
    try:
        assert "s3cret" not in (root / "shipyard.toml").read_text(encoding="utf-8")
    finally:
        project.close()
