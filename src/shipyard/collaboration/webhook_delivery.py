"""The webhook queue's two workers: the dispatcher and the sender.

- The **dispatcher** reads audit events after its cursor (``webhook_cursor``), turns each into
  webhook events (:func:`~shipyard.collaboration.webhook_events.events_of`) and queues one
  delivery per subscribed webhook, in one transaction with the cursor's move. The audit log
  is the outbox: a change and its event commit together, so nothing is added to the request
  that made the change, and a process that dies mid-way loses nothing (the cursor did not
  move, or the deliveries were queued). A unique (webhook, event) key makes a second queueing
  of the same event impossible.
- The **sender** claims due deliveries one at a time with a conditional ``UPDATE`` (pending
  and due, or a lease that ran out), so any number of workers (several server processes on
  one PostgreSQL database) never send a delivery twice while its lease holds, then sends it
  outside any transaction and records the attempt.

Retries: about 5 s, 5 min, 30 min, 2 h and 5 h after a timeout, a connection error, a 429 or a
5xx (a ``Retry-After`` header wins when longer); any other answer is final. A webhook whose
deliveries fail :data:`DISABLE_AFTER` times in a row is disabled, and says why.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import and_, or_, select, update

from shipyard._internal.encode import ReadModel
from shipyard.collaboration.webhook_addresses import check_url, display_url, origin
from shipyard.collaboration.webhook_events import events_of
from shipyard.collaboration.webhook_formats import (
    SecretUnavailableError,
    read_secret,
    render_request,
)
from shipyard.errors import ShipyardError
from shipyard.stores.audit import query_events
from shipyard.stores.db.tables import (
    audit_head,
    webhook_attempts,
    webhook_cursor,
    webhook_deliveries,
    webhooks,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shipyard.context import ServiceContext

__all__ = [
    "DISABLE_AFTER",
    "RETRY_DELAYS",
    "Clock",
    "DeliveryWorker",
    "RunSummary",
    "WorkerThread",
    "new_message_id",
    "utcnow",
]

log = logging.getLogger("shipyard.webhooks")

Clock = Callable[[], datetime]
#: The waits before each retry; a delivery is tried at most ``len(RETRY_DELAYS) + 1`` times.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
)
#: Consecutive failed deliveries (each after all its retries) that disable a webhook.
DISABLE_AFTER = 5
RESPONSE_EXCERPT_BYTES = 1024
MAX_RETRY_AFTER = timedelta(hours=24)
_DISPATCH_BATCH = 500
_SEND_BATCH = 50


def new_message_id() -> str:
    """A delivery's id, also its ``webhook-id`` header: the same for every attempt."""
    return f"msg_{uuid.uuid4().hex}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunSummary(ReadModel):
    """What rounds of the queue did: deliveries queued, delivered, left to retry, failed."""

    queued: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def plus(self, other: RunSummary) -> RunSummary:
        """The sum of two summaries."""
        return RunSummary(
            self.queued + other.queued,
            self.delivered + other.delivered,
            self.retrying + other.retrying,
            self.failed + other.failed,
        )


@dataclass(frozen=True)
class _Outcome:
    outcome: str  # delivered | retry | failed
    status_code: int | None
    latency_ms: float
    response: str
    error: str | None
    retry_after: timedelta | None = None


class DeliveryWorker:
    """Dispatches audit events to the queue and sends due deliveries, with ``clock`` as the
    time (tests pass a clock they move) and ``transport`` as httpx's (None: the network)."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        clock: Clock = utcnow,
        transport: httpx.BaseTransport | None = None,
        lease: timedelta | None = None,
    ) -> None:
        self._ctx = ctx
        self._clock = clock
        self._transport = transport
        timeout = ctx.settings.webhooks_timeout
        self._lease = lease or timedelta(seconds=max(60.0, 3 * timeout))

    # -- dispatching ----------------------------------------------------------------------

    def dispatch(self) -> int:
        """Queue the deliveries for audit events after the cursor; returns how many."""
        db = self._ctx.db
        with db.read() as conn:
            head = int(conn.execute(select(audit_head.c.seq)).scalar_one())
            cursor = int(conn.execute(select(webhook_cursor.c.seq)).scalar_one())
        if head <= cursor:
            return 0
        queued = 0
        with db.write() as conn:
            # The row lock serialises dispatchers on PostgreSQL (SQLite's write lock already
            # does), so two never read the same events at once.
            cursor = int(
                conn.execute(
                    select(webhook_cursor.c.seq).where(webhook_cursor.c.id == 1).with_for_update()
                ).scalar_one()
            )
            subs = conn.execute(
                select(webhooks.c.id, webhooks.c.events, webhooks.c.after_seq)
                .where(webhooks.c.enabled.is_(True))
                .where(webhooks.c.removed_at.is_(None))
            ).all()
            if not subs:  # nothing to queue: skip to the head
                last = int(conn.execute(select(audit_head.c.seq)).scalar_one())
                conn.execute(
                    update(webhook_cursor).where(webhook_cursor.c.id == 1).values(seq=last)
                )
                return 0
            # A webhook hears only of events after it was added.
            start = max(cursor, min(int(s.after_seq) for s in subs))
            events = query_events(conn, after=start, limit=_DISPATCH_BATCH)
            last = events[-1].seq if events else start
            now = self._clock()
            for event in events:
                for hook_event in events_of(event):
                    payload = {
                        "type": hook_event.type,
                        "timestamp": event.time,
                        "data": {
                            **hook_event.data,
                            "summary": hook_event.summary,
                            "project": self._ctx.settings.name,
                        },
                    }
                    for sub in subs:
                        wanted = hook_event.goes_to(int(sub.id), sub.events)
                        if wanted and event.seq > int(sub.after_seq):
                            enqueue(conn, int(sub.id), hook_event.type, payload, now, event.seq)
                            queued += 1
            conn.execute(update(webhook_cursor).where(webhook_cursor.c.id == 1).values(seq=last))
        return queued

    # -- sending --------------------------------------------------------------------------

    def send_due(self, *, limit: int = _SEND_BATCH) -> RunSummary:
        """Claim and send the deliveries that are due; returns what happened."""
        now = self._clock()
        with self._ctx.db.read() as conn:
            ids = list(
                conn.execute(
                    select(webhook_deliveries.c.id)
                    .where(_claimable(now))
                    .order_by(webhook_deliveries.c.next_attempt_at)
                    .limit(limit)
                ).scalars()
            )
        counts = {"delivered": 0, "retry": 0, "failed": 0}
        for delivery_id in ids:
            outcome = self.send(delivery_id)
            if outcome is not None:
                counts[outcome] += 1
        return RunSummary(0, counts["delivered"], counts["retry"], counts["failed"])

    def send(self, delivery_id: str) -> str | None:
        """Claim one delivery and try it once, if it is due and no other worker holds it;
        returns the outcome (``delivered``, ``retry``, ``failed``) or None when not claimed."""
        now = self._clock()
        claim = uuid.uuid4().hex
        with self._ctx.db.write() as conn:
            res = conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .where(_claimable(now))
                .values(status="sending", claim=claim, lease_until=now + self._lease)
            )
            if res.rowcount != 1:
                return None
            row = conn.execute(
                select(webhook_deliveries, webhooks.c.url, webhooks.c.format, webhooks.c.options)
                .add_columns(webhooks.c.secret_file, webhooks.c.secret_env)
                .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                .where(webhook_deliveries.c.id == delivery_id)
            ).one()
        result = self._attempt(row, now)
        self._record(row, claim, result)
        return result.outcome

    def _attempt(self, row: Any, now: datetime) -> _Outcome:
        """Send one attempt of a claimed delivery (no transaction is open meanwhile)."""
        secret: str | None = None
        start = time.perf_counter()
        try:
            check_url(row.url, allow=self._ctx.settings.webhooks_allow)
            secret = read_secret(
                row.secret_file, row.secret_env, self._ctx.settings.webhook_secret_dirs
            )
            request = render_request(
                row.format,
                row.url,
                dict(row.options or {}),
                message_id=row.id,
                payload=dict(row.payload),
                secret=secret,
                now=now,
            )
        except (ShipyardError, SecretUnavailableError) as exc:
            return _Outcome("failed", None, 0.0, "", _scrub(str(exc), row.url, secret))
        try:
            with httpx.Client(
                timeout=self._ctx.settings.webhooks_timeout,
                follow_redirects=False,
                transport=self._transport,
                trust_env=False,
            ) as client:
                response = client.request(
                    request.method, request.url, headers=request.headers, content=request.body
                )
                excerpt = response.content[:RESPONSE_EXCERPT_BYTES]
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - start) * 1000
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
            error = f"request {what}: {type(exc).__name__}: {exc}"
            return _Outcome("retry", None, latency, "", _scrub(error, row.url, secret))
        latency = (time.perf_counter() - start) * 1000
        text = _scrub(excerpt.decode("utf-8", "replace"), row.url, secret)
        code = response.status_code
        if 200 <= code < 300:
            return _Outcome("delivered", code, latency, text, None)
        if code == 429 or code >= 500:
            after = _retry_after(response.headers.get("retry-after"), now)
            return _Outcome("retry", code, latency, text, f"HTTP {code}", after)
        why = " (redirects are not followed)" if 300 <= code < 400 else ""
        return _Outcome("failed", code, latency, text, f"HTTP {code}{why}")

    def _record(self, row: Any, claim: str, result: _Outcome) -> None:
        """Store the attempt and the delivery's new state; disable a webhook that keeps
        failing."""
        now = self._clock()
        number = int(row.attempts) + 1
        outcome = result.outcome
        next_at = now
        if outcome == "retry":
            if number > len(RETRY_DELAYS):
                outcome = "failed"
            else:
                wait = RETRY_DELAYS[number - 1]
                if result.retry_after is not None and result.retry_after > wait:
                    wait = min(result.retry_after, MAX_RETRY_AFTER)
                next_at = now + wait
        status = {"delivered": "delivered", "retry": "pending", "failed": "failed"}[outcome]
        with self._ctx.audited() as tx:
            conn = tx.conn
            conn.execute(
                webhook_attempts.insert().values(
                    delivery_id=row.id,
                    number=number,
                    time=now,
                    status_code=result.status_code,
                    latency_ms=round(result.latency_ms, 3),
                    response=result.response,
                    error=result.error,
                    outcome=outcome,
                )
            )
            done = conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == row.id)
                .where(webhook_deliveries.c.claim == claim)
                .values(
                    status=status,
                    attempts=number,
                    next_attempt_at=next_at,
                    claim=None,
                    lease_until=None,
                )
            )
            if done.rowcount != 1 or row.event == "webhook.test" or outcome == "retry":
                return
            if outcome == "delivered":
                conn.execute(
                    update(webhooks).where(webhooks.c.id == row.webhook_id).values(failures=0)
                )
                return
            _count_failure(tx, int(row.webhook_id), result.error)

    # -- both -----------------------------------------------------------------------------

    def run_once(self) -> RunSummary:
        """Dispatch new events, then send what is due."""
        queued = self.dispatch()
        sent = self.send_due()
        return RunSummary(queued, sent.delivered, sent.retrying, sent.failed)


def enqueue(
    conn: Connection,
    webhook_id: int,
    event: str,
    payload: dict[str, Any],
    now: datetime,
    event_seq: int | None = None,
    redelivery_of: str | None = None,
) -> str:
    """Queue one delivery, due now; returns its id."""
    delivery_id = new_message_id()
    conn.execute(
        webhook_deliveries.insert().values(
            id=delivery_id,
            webhook_id=webhook_id,
            event=event,
            event_seq=event_seq,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            claim=None,
            lease_until=None,
            created_at=now,
            redelivery_of=redelivery_of,
        )
    )
    return delivery_id


def cancel_pending(conn: Connection, webhook_id: int) -> None:
    """Drop a webhook's queued deliveries (it was disabled or removed)."""
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.webhook_id == webhook_id)
        .where(webhook_deliveries.c.status == "pending")
        .values(status="cancelled", claim=None, lease_until=None)
    )


def _count_failure(tx: Any, webhook_id: int, error: str | None) -> None:
    conn = tx.conn
    conn.execute(
        update(webhooks).where(webhooks.c.id == webhook_id).values(failures=webhooks.c.failures + 1)
    )
    sub = conn.execute(
        select(webhooks.c.failures, webhooks.c.enabled, webhooks.c.url).where(
            webhooks.c.id == webhook_id
        )
    ).one()
    if sub.enabled and int(sub.failures) >= DISABLE_AFTER:
        reason = (
            f"disabled after {sub.failures} deliveries in a row failed (last error: "
            f"{error or 'unknown'}); fix the receiver, then `shipyard webhooks enable "
            f"{webhook_id}`"
        )
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id == webhook_id)
            .values(enabled=False, disabled_reason=reason)
        )
        cancel_pending(conn, webhook_id)
        tx.record(
            "webhook.disable",
            "webhook",
            str(webhook_id),
            {"reason": reason, "url": origin(sub.url)},
        )


def _claimable(now: datetime) -> Any:
    d = webhook_deliveries.c
    return or_(
        and_(d.status == "pending", d.next_attempt_at <= now),
        and_(d.status == "sending", d.lease_until < now),
    )


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a wait."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def _scrub(text: str, url: str, secret: str | None) -> str:
    """``text`` without the secret (or its parts) or the full URL, which may hold one."""
    if secret:
        for part in {secret, *secret.split(":")}:
            if len(part) >= 4:
                text = text.replace(part, "***")
    return text.replace(url, display_url(url))


class WorkerThread:
    """Runs a :class:`DeliveryWorker` every ``interval`` seconds in a daemon thread until
    :meth:`stop` (the team server starts one in its lifespan)."""

    def __init__(self, worker: DeliveryWorker, *, interval: float = 1.0) -> None:
        self._worker = worker
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipyard-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop and wait for the attempt in flight (bounded by ``timeout``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._worker.run_once()
            except Exception:  # a bad round must not end delivery for the server's lifetime
                log.exception("webhook delivery round failed; retrying")
            self._stop.wait(self._interval)
