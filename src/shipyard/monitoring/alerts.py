"""Alerts: what a monitor opens when its windows stay beyond their thresholds.

The rule (:func:`apply_rule`, run in the transaction that stores each result):

- a breaching result opens an alert when the monitor's last ``consecutive`` results all
  breached, no alert of the monitor is open (one open alert per monitor: later breaches
  update it), and the monitor's last alert resolved at least ``cooldown`` ago;
- an ``ok`` result resolves the open alert; ``insufficient data`` and ``error`` results
  neither open nor resolve one (and break a run of breaches);
- opening and resolving are audit events (``alert.open``, ``alert.resolve``), so the webhook
  queue delivers them as ``alert.opened`` and ``alert.resolved``, to the monitor's
  ``notify`` webhooks when it names some, else to every webhook subscribed to them.

>>> project.alerts.list(open_only=True)             # doctest: +SKIP

Roles: any user (a viewer too) reads alerts.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from shipyard._internal.encode import ReadModel
from shipyard.errors import NotFoundError
from shipyard.stores.db.tables import alerts, monitor_results

if TYPE_CHECKING:
    from shipyard.collaboration.digest import Alert as DigestAlert
    from shipyard.collaboration.digest import AlertSource
    from shipyard.context import ServiceContext
    from shipyard.stores.audit import AuditedTransaction

__all__ = ["Alert", "Alerts", "apply_rule", "close_alerts", "digest_alerts"]


@dataclass(frozen=True)
class Alert(ReadModel):
    """An alert of monitor ``monitor`` (kept after the monitor is removed): ``status`` open
    or resolved, the first and last results that breached, a ``summary`` line and the
    breached thresholds and values in ``details``."""

    id: int
    monitor: str
    deployment: str
    kind: str
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    first_result_id: int
    last_result_id: int
    summary: str
    details: dict[str, Any]


class Alerts:
    """Service for alerts: ``get``, ``list`` (opening and resolving is the monitors' run)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def get(self, alert_id: int) -> Alert:
        """One alert.

        Raises:
            NotFoundError: no such alert.
        """
        row = None
        if 0 < alert_id < 2**31:  # ids are 32-bit integers in the database
            with self._ctx.db.read() as conn:
                row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFoundError(
                f"no alert {alert_id}; list them with `shipyard alerts list`",
            )
        return _to_alert(row)

    def list(
        self,
        *,
        open_only: bool = False,
        monitor: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alerts, newest first: only open ones with ``open_only``, one monitor's, those
        opened at or after ``since`` or still open."""
        query = select(alerts).order_by(alerts.c.id.desc()).limit(max(1, min(limit, 10_000)))
        if open_only:
            query = query.where(alerts.c.status == "open")
        if monitor is not None:
            query = query.where(alerts.c.monitor == monitor)
        if since is not None:
            query = query.where((alerts.c.opened_at >= since) | (alerts.c.status == "open"))
        with self._ctx.db.read() as conn:
            return [_to_alert(r) for r in conn.execute(query)]


def digest_alerts(service: Alerts, has_monitors: Callable[[], bool]) -> AlertSource:
    """The team digest's source of alerts: those opened in the window or still open; None
    ("not available") while the project has no monitor (``has_monitors()`` is false)."""
    from shipyard.collaboration.digest import Alert as DigestAlert

    def source(since: datetime) -> Sequence[DigestAlert] | None:
        found = service.list(since=since, limit=1000)
        if not found and not has_monitors():
            return None
        return [
            DigestAlert(
                name=f"alert {a.id} ({a.monitor})",
                severity=a.status,
                entity=f"deployment:{a.deployment}",
                message=a.summary,
                time=a.resolved_at or a.opened_at,
            )
            for a in found
        ]

    return source


def apply_rule(
    tx: AuditedTransaction,
    monitor: Any,
    result_id: int,
    status: str,
    summary: str,
    details: dict[str, Any],
    now: datetime,
) -> tuple[str | None, int | None]:
    """Open, update or resolve ``monitor``'s alert after its result ``result_id`` (stored in
    ``tx``); returns what happened (``opened``, ``updated``, ``resolved`` or None) and the
    alert's id."""
    conn = tx.conn
    current = conn.execute(
        select(alerts)
        .where(alerts.c.monitor_id == monitor.id)
        .where(alerts.c.status == "open")
        .order_by(alerts.c.id.desc())
        .limit(1)
    ).first()
    if current is not None:
        if status == "breach":
            conn.execute(
                update(alerts)
                .where(alerts.c.id == current.id)
                .values(last_result_id=result_id, details=details)
            )
            return "updated", int(current.id)
        if status != "ok":
            return None, int(current.id)
        text = f"monitor {monitor.name} resolved on deployment {monitor.deployment}: {summary}"
        conn.execute(
            update(alerts)
            .where(alerts.c.id == current.id)
            .values(status="resolved", resolved_at=now)
        )
        tx.record(
            "alert.resolve",
            "alert",
            str(current.id),
            _payload(monitor, text, details, result_id, opened_at=current.opened_at),
        )
        return "resolved", int(current.id)
    if status != "breach":
        return None, None
    k = max(1, int(monitor.consecutive))
    last = conn.execute(
        select(monitor_results.c.id, monitor_results.c.status)
        .where(monitor_results.c.monitor_id == monitor.id)
        .order_by(monitor_results.c.window_end.desc())
        .limit(k)
    ).all()
    if len(last) < k or any(r.status != "breach" for r in last):
        return None, None
    previous = conn.execute(
        select(alerts.c.resolved_at)
        .where(alerts.c.monitor_id == monitor.id)
        .order_by(alerts.c.id.desc())
        .limit(1)
    ).first()
    cooldown = timedelta(seconds=int(monitor.cooldown_seconds))
    resolved_at = previous.resolved_at if previous is not None else None
    if resolved_at is not None and now < resolved_at + cooldown:
        return None, None
    windows = f"{k} window{'s' if k != 1 else ''} in a row"
    text = (
        f"monitor {monitor.name} ({monitor.kind}) on deployment {monitor.deployment}: "
        f"{summary} for {windows}"
    )
    res = conn.execute(
        alerts.insert().values(
            monitor_id=monitor.id,
            monitor=monitor.name,
            deployment=monitor.deployment,
            kind=monitor.kind,
            status="open",
            opened_at=now,
            resolved_at=None,
            first_result_id=int(last[-1].id),
            last_result_id=result_id,
            summary=text,
            details=details,
        )
    )
    alert_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    tx.record("alert.open", "alert", str(alert_id), _payload(monitor, text, details, result_id))
    return "opened", alert_id


def close_alerts(tx: AuditedTransaction, monitor: Any, now: datetime) -> None:
    """Resolve ``monitor``'s open alert because the monitor is being removed (``alert.resolve``
    goes out as for any resolution)."""
    for a in tx.conn.execute(
        select(alerts.c.id, alerts.c.opened_at, alerts.c.last_result_id)
        .where(alerts.c.monitor_id == monitor.id)
        .where(alerts.c.status == "open")
    ).all():
        tx.conn.execute(
            update(alerts).where(alerts.c.id == a.id).values(status="resolved", resolved_at=now)
        )
        text = f"monitor {monitor.name} was removed; its alert {a.id} is closed"
        payload = _payload(
            monitor,
            text,
            {"reason": "monitor removed"},
            int(a.last_result_id),
            opened_at=a.opened_at,
        )
        tx.record("alert.resolve", "alert", str(a.id), payload)


def _payload(
    monitor: Any,
    summary: str,
    details: dict[str, Any],
    result_id: int,
    *,
    opened_at: datetime | None = None,
) -> dict[str, Any]:
    doc = {
        "monitor": monitor.name,
        "deployment": monitor.deployment,
        "kind": monitor.kind,
        "summary": summary,
        "details": details,
        "result_id": result_id,
        "notify": [int(i) for i in monitor.notify or []],
    }
    if opened_at is not None:
        doc["opened_at"] = opened_at.isoformat()
    return doc


def _to_alert(row: Any) -> Alert:
    return Alert(
        int(row.id),
        row.monitor,
        row.deployment,
        row.kind,
        row.status,
        row.opened_at,
        row.resolved_at,
        int(row.first_result_id),
        int(row.last_result_id),
        row.summary,
        dict(row.details or {}),
    )
