"""The audit log: every change and every data read is an event in a hash chain that exposes
any edit, deletion or reordering. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import delete, select, update

import shipyard
from shipyard._internal.hashing import is_digest
from shipyard.project import Project
from shipyard.stores.audit import event_hash
from shipyard.stores.db.tables import GENESIS_HASH, audit_events


def _tamper(project: Project, statement: Any) -> None:
    with project.db.write() as conn:
        conn.execute(statement)


def _rows(project: Project) -> list[Any]:
    with project.db.read() as conn:
        return list(conn.execute(select(audit_events).order_by(audit_events.c.seq)))


def _history(project: Project, sample_csv: Callable[..., Path]) -> None:
    """Give the project a few events to tamper with (2 from init + 6 here)."""
    project.users.add("bob", "contributor")
    project.datasets.add("credit", sample_csv())
    project.datasets.add("credit", pl.DataFrame({"id": [1, 2]}))
    project.datasets.tag("credit@1", {"stage": "raw"})
    project.users.add("bob", "approver")


def test_every_mutation_writes_a_complete_event(
    project: Project, sample_csv: Callable[..., Path]
) -> None:
    """init, users add, data add and data tag each append an event with all its fields."""
    project.users.add("bob", "contributor")
    project.datasets.add("credit", sample_csv(), message="first batch")
    project.datasets.tag("credit@1", {"stage": "raw"})
    events = project.audit.list()
    assert [(e.action, e.entity_kind, e.entity) for e in events] == [
        ("user.add", "user", "alice"),
        ("project.init", "project", "proj"),
        ("user.add", "user", "bob"),
        ("dataset.create", "dataset", "credit"),
        ("dataset.add", "dataset", "credit@1"),
        ("dataset.tag", "dataset", "credit@1"),
    ]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert {e.actor for e in events} == {"alice"}
    assert events[0].payload == {"role": "admin", "via": "init"}
    assert events[2].payload == {"role": "contributor"}
    assert events[4].payload["message"] == "first batch"
    assert events[4].payload["rows"] == 4
    assert events[5].payload["tags"] == {"stage": "raw"}
    prev = GENESIS_HASH
    for event in events:
        assert datetime.fromisoformat(event.time).utcoffset() is not None
        assert event.prev_hash == prev
        assert is_digest(event.hash)
        prev = event.hash
    times = [datetime.fromisoformat(e.time) for e in events]
    assert times == sorted(times)


def test_event_hash_covers_the_stored_content(project: Project) -> None:
    """Each stored hash is the hash of the event's own columns chained to its predecessor."""
    for row in _rows(project):
        assert row.hash == event_hash(
            seq=row.seq,
            time=row.time,
            actor=row.actor,
            action=row.action,
            entity_kind=row.entity_kind,
            entity=row.entity,
            payload=row.payload,
            prev_hash=row.prev_hash,
        )


def test_reads_of_dataset_contents_are_logged(
    project: Project, sample_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """to_polars, to_pandas and export each write a dataset.read event; get() does not."""
    version = project.datasets.add("credit", sample_csv())
    before = len(project.audit.list())
    fetched = project.datasets.get("credit")
    assert len(project.audit.list()) == before
    fetched.to_polars()
    fetched.to_pandas()
    project.datasets.export("credit@1", tmp_path / "out.csv")
    reads = project.audit.list(action="dataset.read")
    assert [e.entity for e in reads] == ["credit@1"] * 3
    assert [e.payload["via"] for e in reads] == ["api", "api", "export"]
    assert all(e.payload["digest"] == version.digest for e in reads)
    assert reads[2].payload["dest"] == str(tmp_path / "out.csv")
    assert project.audit.verify().ok


def test_reads_are_logged_for_the_reader(project: Project, sample_csv: Callable[..., Path]) -> None:
    """The access log records who read the data, including users with no role at all."""
    project.datasets.add("credit", sample_csv())
    project.as_actor("carol").datasets.get("credit@1").to_polars()
    (read,) = project.audit.list(action="dataset.read")
    assert read.actor == "carol"


def test_list_filters_by_entity_action_and_actor(
    project: Project, sample_csv: Callable[..., Path]
) -> None:
    """Events can be filtered by entity (with or without version or kind), action and actor."""
    _history(project, sample_csv)
    assert [e.entity for e in project.audit.list(entity="credit")] == [
        "credit",
        "credit@1",
        "credit@2",
        "credit@1",
    ]
    assert [e.action for e in project.audit.list(entity="credit@1")] == [
        "dataset.add",
        "dataset.tag",
    ]
    assert [e.entity for e in project.audit.list(entity="user:bob")] == ["bob", "bob"]
    assert len(project.audit.list(action="dataset")) == 4
    assert project.audit.list(actor="nobody") == []
    newest = project.audit.list(newest_first=True, limit=2)
    assert [e.action for e in newest] == ["user.role", "dataset.tag"]


def test_intact_chain_verifies(project: Project, sample_csv: Callable[..., Path]) -> None:
    """An untouched log verifies, reporting how many events it holds and the head hash."""
    _history(project, sample_csv)
    report = project.audit.verify()
    assert report.ok
    assert report.events == 8
    assert report.head_hash == _rows(project)[-1].hash
    doc = report.to_dict()
    assert (doc["ok"], doc["events"], doc["head_hash"]) == (True, 8, report.head_hash)
    assert (doc["first_bad_seq"], doc["reason"], doc["state"]) == (None, None, [])


def test_edited_payload_is_detected(project: Project, sample_csv: Callable[..., Path]) -> None:
    """Changing an event's payload in the database breaks the chain at that event."""
    _history(project, sample_csv)
    _tamper(
        project,
        update(audit_events).where(audit_events.c.seq == 5).values(payload='{"rows":1}'),
    )
    report = project.audit.verify()
    assert not report.ok
    assert report.first_bad_seq == 5
    assert "altered" in (report.reason or "")
    assert report.to_dict()["first_bad_seq"] == 5


def test_edited_actor_is_detected(project: Project, sample_csv: Callable[..., Path]) -> None:
    """Rewriting who did something breaks the chain at that event."""
    _history(project, sample_csv)
    _tamper(project, update(audit_events).where(audit_events.c.seq == 3).values(actor="mallory"))
    report = project.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 3)


def test_rehashed_edit_is_detected_at_the_next_event(
    project: Project, sample_csv: Callable[..., Path]
) -> None:
    """An edit whose own hash is recomputed still breaks the link to the following event."""
    _history(project, sample_csv)
    row = _rows(project)[3]  # seq 4
    forged = dict(row._mapping, payload='{"forged":true}')
    forged["hash"] = event_hash(**{k: forged[k] for k in forged if k != "hash"})
    _tamper(project, update(audit_events).where(audit_events.c.seq == 4).values(**forged))
    report = project.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 5)
    assert "does not follow" in (report.reason or "")


def test_rehashed_edit_of_the_newest_event_is_detected_by_the_head(
    project: Project, sample_csv: Callable[..., Path]
) -> None:
    """An edit of the newest event whose own hash is recomputed has no next event to break,
    but no longer matches the hash the head records: the chain is reported broken."""
    _history(project, sample_csv)
    row = _rows(project)[-1]  # seq 8, the newest
    forged = dict(row._mapping, actor="mallory", payload='{"role":"viewer"}')
    forged["hash"] = event_hash(**{k: forged[k] for k in forged if k != "hash"})
    _tamper(project, update(audit_events).where(audit_events.c.seq == 8).values(**forged))
    assert [(e.seq, e.actor) for e in project.audit.list()][-1] == (8, "mallory")
    report = project.audit.verify()
    assert not report.ok
    assert report.head_hash is None
    assert report.first_bad_seq == 8
    assert report.reason == (
        "event 8 does not match the hash the head records (it was edited and re-hashed)"
    )


def test_deleted_middle_event_is_detected(
    project: Project, sample_csv: Callable[..., Path]
) -> None:
    """Deleting an event from the middle is reported at the missing sequence number."""
    _history(project, sample_csv)
    _tamper(project, delete(audit_events).where(audit_events.c.seq == 4))
    report = project.audit.verify()
    assert (report.ok, report.first_bad_seq, report.events) == (False, 4, 3)
    assert "event 4 is missing" in (report.reason or "")


def test_deleted_last_event_is_detected(project: Project, sample_csv: Callable[..., Path]) -> None:
    """Deleting the newest event is caught by the head record."""
    _history(project, sample_csv)
    _tamper(project, delete(audit_events).where(audit_events.c.seq == 8))
    report = project.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 8)
    assert "head records event 8" in (report.reason or "")


def test_reordered_events_are_detected(project: Project, sample_csv: Callable[..., Path]) -> None:
    """Swapping the contents of two events is reported at the earlier one."""
    _history(project, sample_csv)
    rows = {r.seq: dict(r._mapping) for r in _rows(project)}
    for seq, other in ((3, 6), (6, 3)):
        values = {k: v for k, v in rows[other].items() if k != "seq"}
        _tamper(project, update(audit_events).where(audit_events.c.seq == seq).values(**values))
    report = project.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 3)


def test_failed_mutation_writes_no_event(project: Project) -> None:
    """A change that is refused leaves the log exactly as it was."""
    before = _rows(project)
    with pytest.raises(shipyard.PermissionDeniedError):
        project.as_actor("mallory").users.add("mallory", "admin")
    assert _rows(project) == before
    assert project.audit.verify().ok


def test_concurrent_writers_keep_one_valid_chain(project: Project) -> None:
    """Four writers adding and tagging datasets at once leave an unbroken chain, one event per
    change."""
    project.users.add("bob", "contributor")
    base = len(project.audit.list())
    start = threading.Barrier(4)

    def work(worker: int) -> None:
        with shipyard.open_project(
            project.root, actor="bob", db_url=project.settings.db_url
        ) as mine:
            start.wait(timeout=30)
            for i in range(3):
                name = f"w{worker}-d{i}"
                mine.datasets.add(name, pl.DataFrame({"worker": [worker], "i": [i]}))
                mine.datasets.tag(f"{name}@1", {"by": str(worker)})

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(work, w) for w in range(4)]:
            future.result()
    report = project.audit.verify()
    assert report.ok, report.reason
    # per dataset: dataset.create, dataset.add, dataset.tag
    assert report.events == base + 4 * 3 * 3
    assert len(project.datasets.list()) == 12


def test_concurrent_versions_of_one_dataset_are_numbered_once(project: Project) -> None:
    """Writers adding versions of the same dataset at once get distinct, gapless numbers."""
    start = threading.Barrier(4)

    def work(worker: int) -> list[int]:
        mine = project.as_actor("alice")
        start.wait(timeout=30)
        return [
            mine.datasets.add("shared", pl.DataFrame({"w": [worker], "i": [i]})).version
            for i in range(3)
        ]

    with ThreadPoolExecutor(4) as pool:
        results = [f.result() for f in [pool.submit(work, w) for w in range(4)]]
    numbers = sorted(n for r in results for n in r)
    assert numbers == list(range(1, 13))
    assert [v.version for v in project.datasets.versions("shared")] == numbers
    report = project.audit.verify()
    assert report.ok, report.reason
    assert len(project.audit.list(action="dataset.add")) == 12
