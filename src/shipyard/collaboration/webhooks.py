"""Webhooks: tell other tools (any HTTP receiver, Slack, Jira, Trello) what changed.

A webhook subscribes a URL to events (:data:`~shipyard.collaboration.webhook_events.EVENTS`);
deliveries go through a durable queue in the metadata database, retried with backoff, every
attempt recorded (:mod:`~shipyard.collaboration.webhook_delivery`). The team server sends in
a background thread; an embedded project runs ``shipyard webhooks deliver [--watch]``.

>>> project.webhooks.add("https://ci.example.com/hook", ["model.promoted"],
...                      secret_file="/etc/shipyard/hook.secret")          # doctest: +SKIP

Roles: only an admin adds, lists, tests, enables or removes webhooks and sees deliveries
(a URL can be a credential, as Slack's are). Secrets are never stored, only the file or
environment variable to read them from when sending; they are never shown.
"""

from __future__ import annotations

import base64
import builtins
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from shipyard._internal.encode import ReadModel
from shipyard.authz import Role, require_role
from shipyard.collaboration.webhook_addresses import check_url, display_url, origin
from shipyard.collaboration.webhook_delivery import (
    Clock,
    DeliveryWorker,
    RunSummary,
    cancel_pending,
    enqueue,
    utcnow,
)
from shipyard.collaboration.webhook_events import TEST_EVENT, check_events
from shipyard.collaboration.webhook_formats import check_options, secret_source_problem
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.stores.db.tables import audit_head, webhook_attempts, webhook_deliveries, webhooks

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.engine import Connection

    from shipyard.context import ServiceContext

__all__ = ["Attempt", "Delivery", "Webhook", "Webhooks", "new_secret"]


def new_secret() -> str:
    """A new Standard Webhooks signing secret, ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Webhook(ReadModel):
    """A subscription. ``url`` is shown without what may be a credential (a query string, a
    Slack path); ``secret`` says where the secret is read from, never what it is."""

    id: int
    url: str
    events: tuple[str, ...]
    format: str
    options: dict[str, Any]
    secret: str | None
    enabled: bool
    disabled_reason: str | None
    failures: int
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Attempt(ReadModel):
    """One try of a delivery: the HTTP status (None when no answer came), the time it took,
    the first 1 KB of the answer, and the error, if any."""

    number: int
    time: datetime
    status_code: int | None
    latency_ms: float
    response: str
    error: str | None
    outcome: str  # delivered | retry | failed


@dataclass(frozen=True)
class Delivery(ReadModel):
    """One event queued for one webhook; ``status`` is pending, sending, delivered, failed or
    cancelled, ``next_attempt_at`` when it is tried next (if pending)."""

    id: str
    webhook_id: int
    event: str
    status: str
    attempts: tuple[Attempt, ...]
    next_attempt_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]
    redelivery_of: str | None = None


class Webhooks:
    """Service for webhooks: ``add``, ``get``, ``list``, ``remove``, plus ``enable``, ``test``,
    ``deliveries``, ``redeliver`` and ``deliver`` (one round of the queue)."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._ctx = ctx
        self._clock = clock or utcnow
        self._worker = DeliveryWorker(ctx, clock=self._clock, transport=transport)

    def add(
        self,
        url: str,
        events: builtins.list[str],
        *,
        format: str = "generic",
        secret_file: str | None = None,
        secret_env: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> Webhook:
        """Subscribe ``url`` to ``events`` (admin). It hears of events from now on.

        Raises:
            InvalidInputError: a bad URL, event, format, option or secret source.
            PermissionDeniedError: the actor is not an admin, or the URL's host is a private
                address not on the project's allow-list.
        """
        chosen = check_events(events)
        if secret_file and secret_env:
            raise InvalidInputError("give the secret with --secret-file or --secret-env, not both")
        opts = check_options(format, dict(options or {}), bool(secret_file or secret_env))
        if secret_file:
            secret_file = str(Path(secret_file).expanduser().resolve())
        problem = secret_source_problem(
            secret_file, secret_env, self._ctx.settings.webhook_secret_dirs
        )
        if problem is not None:
            raise InvalidInputError(problem)
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "admin", "manage webhooks")
        check_url(url, allow=self._ctx.settings.webhooks_allow)
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "manage webhooks")
            after = int(tx.conn.execute(select(audit_head.c.seq)).scalar_one())
            res = tx.conn.execute(
                webhooks.insert().values(
                    url=url,
                    events=chosen,
                    format=format,
                    options=opts,
                    secret_file=secret_file,
                    secret_env=secret_env,
                    after_seq=after,
                    enabled=True,
                    disabled_reason=None,
                    failures=0,
                    created_at=now,
                    created_by=self._ctx.actor,
                    removed_at=None,
                )
            )
            webhook_id = int(res.inserted_primary_key[0])  # type: ignore[index]
            tx.record(
                "webhook.add",
                "webhook",
                str(webhook_id),
                {"url": origin(url), "events": chosen, "format": format, "options": opts},
            )
        return self.get(webhook_id)

    def get(self, webhook_id: int) -> Webhook:
        """One webhook (admin).

        Raises:
            NotFoundError: no such webhook (or it was removed).
        """
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "admin", "see webhooks")
            return _to_webhook(_row(conn, webhook_id))

    def list(self) -> builtins.list[Webhook]:
        """Every webhook, with whether it is enabled and, if not, why (admin)."""
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "admin", "see webhooks")
            rows = conn.execute(
                select(webhooks).where(webhooks.c.removed_at.is_(None)).order_by(webhooks.c.id)
            ).all()
        return [_to_webhook(r) for r in rows]

    def remove(self, webhook_id: int) -> Webhook:
        """Remove a webhook (admin); its queued deliveries are cancelled, its history kept.

        Raises:
            NotFoundError: no such webhook.
        """
        return self._set_state(webhook_id, "webhook.remove", enabled=False, removed=True)

    def enable(self, webhook_id: int) -> Webhook:
        """Enable a webhook again, e.g. after it was disabled for failing (admin); it hears
        of events from now on.

        Raises:
            NotFoundError: no such webhook.
        """
        return self._set_state(webhook_id, "webhook.enable", enabled=True, removed=False)

    def _set_state(self, webhook_id: int, action: str, *, enabled: bool, removed: bool) -> Webhook:
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "manage webhooks")
            row = _row(tx.conn, webhook_id)
            values: dict[str, Any] = {"enabled": enabled}
            if removed:
                values["removed_at"] = now
            else:
                head = int(tx.conn.execute(select(audit_head.c.seq)).scalar_one())
                values.update(disabled_reason=None, failures=0, after_seq=head)
            tx.conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
            if not enabled:
                cancel_pending(tx.conn, webhook_id)
            tx.record(action, "webhook", str(webhook_id), {"url": origin(row.url)})
            updated = _row(tx.conn, webhook_id, removed_too=True)
        return _to_webhook(updated)

    def test(self, webhook_id: int) -> Delivery:
        """Send a ``webhook.test`` event to one webhook now (admin) and return the delivery
        with its attempt; a retryable failure stays queued like any delivery.

        Raises:
            NotFoundError: no such webhook.
        """
        data = {
            "actor": self._ctx.actor,
            "summary": f"test delivery from shipyard project {self._ctx.settings.name}",
            "project": self._ctx.settings.name,
        }
        return self._send_now(webhook_id, TEST_EVENT, data, "admin", "test webhooks")

    def post(self, webhook_id: int, event: str, data: dict[str, Any]) -> Delivery:
        """Send a message of the project's own (``event``, such as ``digest``) to one webhook
        now, through the delivery queue (contributor): ``data["summary"]`` is its one-line
        text, and ``data["slack"]``, when present, the whole Slack message for a Slack
        webhook. A retryable failure stays queued like any delivery.

        Raises:
            NotFoundError: no such webhook.
        """
        return self._send_now(webhook_id, event, data, "contributor", "post to webhooks")

    def _send_now(
        self, webhook_id: int, event: str, data: dict[str, Any], role: Role, doing: str
    ) -> Delivery:
        now = self._clock()
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, role, doing)
            _row(tx.conn, webhook_id)
            payload = {
                "type": event,
                "timestamp": now.isoformat(timespec="microseconds"),
                "data": data,
            }
            delivery_id = enqueue(tx.conn, webhook_id, event, payload, now)
            action = "webhook.test" if event == TEST_EVENT else "webhook.post"
            tx.record(action, "webhook", str(webhook_id), {"delivery": delivery_id, "event": event})
        self._worker.send(delivery_id)
        # The delivery this call made, whoever made it (delivery() is for admins: any one).
        with self._ctx.db.read() as conn:
            return _to_delivery(conn, _delivery_row(conn, delivery_id))

    def redeliver(self, delivery_id: str) -> Delivery:
        """Queue a delivery's event again, as a new delivery, and try it now (admin).

        Raises:
            NotFoundError: no such delivery.
        """
        now = self._clock()
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "redeliver webhooks")
            old = _delivery_row(tx.conn, delivery_id)
            _row(tx.conn, int(old.webhook_id))
            new_id = enqueue(
                tx.conn,
                int(old.webhook_id),
                old.event,
                dict(old.payload),
                now,
                redelivery_of=delivery_id,
            )
            tx.record(
                "webhook.redeliver",
                "webhook",
                str(old.webhook_id),
                {"delivery": new_id, "of": delivery_id},
            )
        self._worker.send(new_id)
        return self.delivery(new_id)

    def deliveries(self, webhook_id: int, *, limit: int = 50) -> builtins.list[Delivery]:
        """A webhook's latest deliveries, newest first, with their attempts (admin).

        Raises:
            NotFoundError: no such webhook.
        """
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "admin", "see webhook deliveries")
            _row(conn, webhook_id, removed_too=True)
            rows = conn.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id == webhook_id)
                .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id)
                .limit(limit)
            ).all()
            return [_to_delivery(conn, r) for r in rows]

    def delivery(self, delivery_id: str) -> Delivery:
        """One delivery with its attempts (admin).

        Raises:
            NotFoundError: no such delivery.
        """
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "admin", "see webhook deliveries")
            return _to_delivery(conn, _delivery_row(conn, delivery_id))

    def deliver(self) -> RunSummary:
        """One round of the queue: queue deliveries for new events, send those that are due.
        The team server does this in the background; an embedded project runs it with
        ``shipyard webhooks deliver`` (any user who can open the project: it only sends what
        an admin subscribed)."""
        return self._worker.run_once()


def _row(conn: Connection, webhook_id: int, *, removed_too: bool = False) -> Any:
    # Ids are 32-bit integers in the database; a larger number names no webhook.
    in_range = 0 < webhook_id < 2**31
    row = in_range and conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
    if not row or (row.removed_at is not None and not removed_too):
        raise NotFoundError(f"no webhook {webhook_id}; see `shipyard webhooks list`")
    return row


def _delivery_row(conn: Connection, delivery_id: str) -> Any:
    row = conn.execute(
        select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
    ).first()
    if row is None:
        raise NotFoundError(
            f"no webhook delivery {delivery_id!r}; see `shipyard webhooks deliveries ID`"
        )
    return row


def _to_webhook(row: Any) -> Webhook:
    secret = None
    if row.secret_file:
        secret = f"file {row.secret_file}"
    elif row.secret_env:
        secret = f"env {row.secret_env}"
    return Webhook(
        int(row.id),
        display_url(row.url),
        tuple(row.events),
        row.format,
        dict(row.options or {}),
        secret,
        bool(row.enabled),
        row.disabled_reason,
        int(row.failures),
        row.created_at,
        row.created_by,
    )


def _to_delivery(conn: Connection, row: Any) -> Delivery:
    attempts = conn.execute(
        select(webhook_attempts)
        .where(webhook_attempts.c.delivery_id == row.id)
        .order_by(webhook_attempts.c.number)
    ).all()
    return Delivery(
        row.id,
        int(row.webhook_id),
        row.event,
        row.status,
        tuple(
            Attempt(
                int(a.number),
                a.time,
                a.status_code,
                float(a.latency_ms),
                a.response,
                a.error,
                a.outcome,
            )
            for a in attempts
        ),
        row.next_attempt_at if row.status == "pending" else None,
        row.created_at,
        dict(row.payload),
        row.redelivery_of,
    )
