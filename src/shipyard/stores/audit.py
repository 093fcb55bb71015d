"""The audit log: a hash chain of events stored in the metadata database.

Every mutation goes through an :class:`AuditedTransaction`, which writes the change and its
event in one database transaction. Event ``n`` stores ``prev_hash`` (the hash of event ``n-1``)
and ``hash`` = BLAKE3 of its own canonical content, so editing, deleting or reordering any
event breaks the chain at that point, which :func:`verify_chain` reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import canonical_json, digest_bytes
from shipyard.stores.db.engine import Database
from shipyard.stores.db.tables import GENESIS_HASH, audit_events, audit_head

if TYPE_CHECKING:
    from shipyard.stores.checkpoints import CheckpointCheck

__all__ = [
    "AuditEvent",
    "AuditedTransaction",
    "ChainReport",
    "StateMismatch",
    "audited",
    "event_hash",
    "query_events",
    "row_hash",
    "verify_chain",
]


@dataclass(frozen=True)
class AuditEvent(ReadModel):
    """One entry of the audit log."""

    seq: int
    time: str
    actor: str
    action: str
    entity_kind: str
    entity: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    token_id: str | None = None  # the API token the change was made with (team server)


@dataclass(frozen=True)
class StateMismatch(ReadModel):
    """A row of ``table`` (identified by ``key``) that differs from what the audit events say:
    ``expected`` from the events, ``found`` in the table (None when absent)."""

    table: str
    key: str
    problem: str
    expected: Any = None
    found: Any = None


@dataclass(frozen=True)
class ChainReport(ReadModel):
    """The outcome of recomputing the audit chain, and of any further check made with it.

    ``first_bad_seq``, ``reason`` and ``head_hash`` are about the chain itself; each further
    check (``state``: the governance tables compared with the events, see
    :mod:`shipyard.governance.audit_state`; ``checkpoint``: see
    :mod:`shipyard.stores.checkpoints`) is a section of its own,
    added with a ``with_…`` method, and ``ok`` is true only when the chain and every section
    pass.
    """

    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None
    state: tuple[StateMismatch, ...] = ()
    checkpoint: CheckpointCheck | None = None

    @property
    def chain_ok(self) -> bool:
        """Whether the chain itself verified, whatever the other sections say."""
        return self.first_bad_seq is None

    def with_state(self, mismatches: Sequence[StateMismatch]) -> ChainReport:
        """This report with the tables compared with the events (every row that differs)."""
        return replace(self, ok=self.ok and not mismatches, state=tuple(mismatches))

    def with_checkpoint(self, check: CheckpointCheck) -> ChainReport:
        """This report with the result of a checkpoint check added."""
        return replace(self, ok=self.ok and check.ok, checkpoint=check)


def event_hash(
    *,
    seq: int,
    time: str,
    actor: str,
    action: str,
    entity_kind: str,
    entity: str,
    payload: str,
    prev_hash: str,
    token_id: str | None = None,
) -> str:
    """The hash of an event's content, chained to its predecessor (the token id counts only
    when there is one, so events from before tokens keep their hashes)."""
    doc: dict[str, Any] = {
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": action,
        "entity_kind": entity_kind,
        "entity": entity,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    if token_id is not None:
        doc["token_id"] = token_id
    return digest_bytes(canonical_json(doc))


def row_hash(row: Any) -> str:
    """The hash a stored event row should carry, recomputed from its columns."""
    return event_hash(
        seq=int(row.seq),
        time=row.time,
        actor=row.actor,
        action=row.action,
        entity_kind=row.entity_kind,
        entity=row.entity,
        payload=row.payload,
        prev_hash=row.prev_hash,
        token_id=getattr(row, "token_id", None),
    )


# Built once: building a statement costs more than running it, and every write records events.
_INSERT_EVENT = audit_events.insert()
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1)


class AuditedTransaction:
    """A write transaction that records audit events as part of the same commit.

    The audit head row is locked first, so concurrent writers (which all update it) are
    serialised and the chain never forks.
    """

    def __init__(self, conn: Connection, actor: str, token_id: str | None = None) -> None:
        self.conn = conn
        self.actor = actor
        self.token_id = token_id
        row = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash)
            .where(audit_head.c.id == 1)
            .with_for_update()
        ).one()
        self._seq = int(row.seq)
        self._hash = str(row.hash)
        self.events: list[AuditEvent] = []

    def record(
        self, action: str, entity_kind: str, entity: str, payload: dict[str, Any] | None = None
    ) -> AuditEvent:
        """Append one event to the chain (committed with the rest of the transaction)."""
        seq = self._seq + 1
        time = datetime.now(UTC).isoformat(timespec="microseconds")
        body = json.dumps(payload or {}, sort_keys=True, default=str, separators=(",", ":"))
        h = event_hash(
            seq=seq,
            time=time,
            actor=self.actor,
            action=action,
            entity_kind=entity_kind,
            entity=entity,
            payload=body,
            prev_hash=self._hash,
            token_id=self.token_id,
        )
        self.conn.execute(
            _INSERT_EVENT,
            {
                "seq": seq,
                "time": time,
                "actor": self.actor,
                "action": action,
                "entity_kind": entity_kind,
                "entity": entity,
                "payload": body,
                "prev_hash": self._hash,
                "hash": h,
                "token_id": self.token_id,
            },
        )
        self.conn.execute(_MOVE_HEAD, {"seq": seq, "hash": h})
        event = AuditEvent(
            seq,
            time,
            self.actor,
            action,
            entity_kind,
            entity,
            payload or {},
            self._hash,
            h,
            self.token_id,
        )
        self._seq, self._hash = seq, h
        self.events.append(event)
        return event


@contextmanager
def audited(db: Database, actor: str, token_id: str | None = None) -> Iterator[AuditedTransaction]:
    """Open a write transaction with an audit recorder; commits when the block succeeds.
    ``token_id`` names the API token the actor acts with (team server)."""
    with db.write() as conn:
        yield AuditedTransaction(conn, actor, token_id)


def _row_to_event(row: Any) -> AuditEvent:
    try:
        payload = json.loads(row.payload)
    except ValueError:
        payload = {"_raw": row.payload}
    return AuditEvent(
        int(row.seq),
        row.time,
        row.actor,
        row.action,
        row.entity_kind,
        row.entity,
        payload,
        row.prev_hash,
        row.hash,
        row.token_id,
    )


def query_events(
    conn: Connection,
    *,
    entity: str | None = None,
    entity_kind: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    since: datetime | None = None,
    actions: Sequence[str] | None = None,
    after: int | None = None,
) -> list[AuditEvent]:
    """Events matching the filters. ``entity`` matches ``name`` and every ``name@…``;
    ``since`` keeps events at or after that (aware) time; ``actions`` keeps exactly those
    actions; ``after``: only events with a higher ``seq``."""
    stmt = select(audit_events)
    if after is not None:
        stmt = stmt.where(audit_events.c.seq > after)
    if since is not None:
        # Event times are ISO 8601 UTC text with a fixed width, so text order is time order.
        stamp = since.astimezone(UTC).isoformat(timespec="microseconds")
        stmt = stmt.where(audit_events.c.time >= stamp)
    if actions is not None:
        stmt = stmt.where(audit_events.c.action.in_(list(actions)))
    if entity_kind:
        stmt = stmt.where(audit_events.c.entity_kind == entity_kind)
    if entity:
        if "@" in entity:
            stmt = stmt.where(audit_events.c.entity == entity)
        else:
            stmt = stmt.where(
                (audit_events.c.entity == entity)
                | audit_events.c.entity.startswith(entity + "@", autoescape=True)
            )
    if action:
        stmt = stmt.where(audit_events.c.action.startswith(action, autoescape=True))
    if actor:
        stmt = stmt.where(audit_events.c.actor == actor)
    stmt = stmt.order_by(audit_events.c.seq.desc() if newest_first else audit_events.c.seq)
    if limit:
        stmt = stmt.limit(limit)
    return [_row_to_event(r) for r in conn.execute(stmt)]


def verify_chain(conn: Connection) -> ChainReport:
    """Recompute every hash in order and compare with the stored chain and head."""
    expected_seq = 1
    prev = GENESIS_HASH
    count = 0
    result = conn.execution_options(yield_per=2000).execute(
        select(audit_events).order_by(audit_events.c.seq)
    )
    for row in result:
        seq = int(row.seq)
        if seq != expected_seq:
            return ChainReport(
                False, count, expected_seq, f"event {expected_seq} is missing (next is {seq})"
            )
        if row.prev_hash != prev:
            return ChainReport(
                False, count, seq, f"event {seq} does not follow event {seq - 1} (prev_hash)"
            )
        if row_hash(row) != row.hash:
            return ChainReport(False, count, seq, f"event {seq} was altered (hash mismatch)")
        prev = row.hash
        expected_seq += 1
        count += 1
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    if int(head.seq) != count:
        return ChainReport(
            False,
            count,
            count + 1,
            f"the log ends at event {count} but the head records event {head.seq}",
        )
    if head.hash != prev:
        return ChainReport(
            False,
            count,
            count,
            f"event {count} does not match the hash the head records (it was edited and re-hashed)",
        )
    return ChainReport(True, count, head_hash=prev)


def count_events(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())
