"""The access log of the online store: reads counted per feature view and client, in memory,
and added to ``feature_online_reads`` by a background thread once a second (and when the
project closes), so a lookup costs no database write.

Historical retrievals and definition changes are audit events instead (one per retrieval,
naming the features read).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard.stores.db.tables import feature_online_reads

if TYPE_CHECKING:
    from shipyard.stores.db.engine import Database

__all__ = ["OnlineReadCount", "ReadCounter", "read_counts"]

FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class OnlineReadCount(ReadModel):
    """How often ``client`` read feature view ``view`` online: requests, entity rows, and
    the first and last time."""

    view: str
    client: str
    requests: int
    rows: int
    first_at: datetime
    last_at: datetime


class ReadCounter:
    """Counts of online reads not yet in the database, shared by every actor of a project.

    A background thread writes them out once a second while there are any, so a lookup
    never waits on the metadata database; :meth:`close` writes the rest."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._rows: Counter[tuple[str, str]] = Counter()
        self._first: dict[tuple[str, str], datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, view: str, client: str, rows: int) -> None:
        """Add one request of ``rows`` entity rows."""
        with self._lock:
            pair = (view, client)
            self._requests[pair] += 1
            self._rows[pair] += rows
            if pair not in self._first:
                self._first[pair] = datetime.now(UTC)
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-feature-reads", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # the database is away: keep counting, write later
                continue

    def close(self) -> None:
        """Stop the background writer and write what is pending."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        self.flush()

    def flush(self) -> None:
        """Add the pending counts to the database (one transaction)."""
        with self._write_lock:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            if not self._requests:
                return
            requests, rows, first = self._requests, self._rows, self._first
            self._requests, self._rows, self._first = Counter(), Counter(), {}
        now = datetime.now(UTC)
        with self._db.write() as conn:
            for (view, client), n in requests.items():
                _upsert(conn, view, client, n, rows[(view, client)], first[(view, client)], now)


def _upsert(
    conn: Any, view: str, client: str, requests: int, rows: int, first: datetime, now: datetime
) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    t = feature_online_reads
    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(t).values(
        view=view, client=client, requests=requests, rows=rows, first_at=first, last_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.c.view, t.c.client],
            set_={"requests": t.c.requests + requests, "rows": t.c.rows + rows, "last_at": now},
        )
    )


def read_counts(db: Database, view: str | None = None) -> list[OnlineReadCount]:
    """The online reads recorded, per view and client (one view's with ``view``)."""
    t = feature_online_reads
    query = select(t).order_by(t.c.view, t.c.client)
    if view is not None:
        query = query.where(t.c.view == view)
    with db.read() as conn:
        return [
            OnlineReadCount(r.view, r.client, int(r.requests), int(r.rows), r.first_at, r.last_at)
            for r in conn.execute(query)
        ]
