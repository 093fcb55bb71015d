"""Monitors: checks of a deployment's recent windows, stored as records, each window's result
kept, and alerts opened when results stay beyond their thresholds (:mod:`.alerts`).

A monitor looks at windows ``window`` long; one ends every ``every`` (window ends are whole
multiples of ``every`` since the epoch, so two processes agree on them). One pass
(:meth:`Monitors.run`) measures the latest complete window, stores its result once (a window
already measured is not measured again) and applies the alert rule. ``watch`` runs the
passes as windows complete. Kinds (see :mod:`.measures` and :mod:`.thresholds`):

- ``quality``: the prediction log's inputs through the answering version's checks (its
  signature and the contracts of its training data), null shares and new categories against
  the reference (the version's training dataset, or the monitor's ``reference``);
- ``performance``: realized accuracy / ROC AUC / RMSE from feedback, with label coverage;
- ``kpi``: a KPI's sum or mean per window against a band;
- ``drift``: the inputs against the reference (:func:`shipyard.monitoring.drift.compare`).

Quality and drift look at the rows of the version that answered most rows of the window
(on a canary, the main route).

>>> project.monitors.add("credit-quality", deployment="credit", kind="quality",
...                      window_seconds=3600, every_seconds=600)   # doctest: +SKIP
>>> project.monitors.run("credit-quality")                           # doctest: +SKIP

Roles: any user (a viewer too) reads monitors and their results; a contributor or higher adds,
enables, disables and runs them; an admin removes them.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.monitoring.alerts import Alert, Alerts, apply_rule, close_alerts
from shipyard.monitoring.measures import Measurement
from shipyard.monitoring.thresholds import (
    DEFAULT_THRESHOLDS,
    KINDS,
    Threshold,
    breaches,
    kpi_band,
    parse_thresholds,
)
from shipyard.monitoring.windows import Estimator, WindowMeasurer
from shipyard.refs import validate_name
from shipyard.stores.db.tables import (
    deployments,
    kpi_events,
    monitor_results,
    monitors,
    prediction_segments,
    webhooks,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shipyard.context import ServiceContext
    from shipyard.monitoring.drift_service import Drift
    from shipyard.registry.models import Models
    from shipyard.serving.predictions import Predictions

__all__ = ["Monitor", "MonitorResult", "Monitors", "RunOutcome"]

log = logging.getLogger("shipyard.monitors")

Clock = Callable[[], datetime]
#: The longest window or cadence (90 days) and the shortest cadence (a minute).
MAX_SECONDS = 90 * 86_400
MIN_EVERY = 60
#: The longest ``watch`` sleeps between two looks at the monitors (new ones are picked up).
WATCH_POLL_SECONDS = 60.0


@dataclass(frozen=True)
class Monitor(ReadModel):
    """A monitor: what it checks (``kind`` on ``deployment``), over which windows, against
    which ``thresholds``, how many breaching windows in a row open an alert
    (``consecutive``), how long after one resolves before another may open (``cooldown``),
    and the webhooks its alerts go to (``notify``; empty: every webhook subscribed to alert
    events). ``options``: the kpi name and aggregation, the minimum rows, the reference."""

    id: int
    name: str
    deployment: str
    kind: str
    window_seconds: int
    every_seconds: int
    thresholds: tuple[Threshold, ...]
    consecutive: int
    cooldown_seconds: int
    notify: tuple[int, ...]
    options: dict[str, Any]
    enabled: bool
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class MonitorResult(ReadModel):
    """A monitor's result for the window ``[window_start, window_end)``: ``status`` ok,
    breach, insufficient data or error, the metric ``values`` and their details, and
    ``breached`` (the thresholds broken, as text)."""

    id: int
    monitor: str
    window_start: datetime
    window_end: datetime
    status: str
    rows: int
    values: dict[str, Any]
    message: str
    breached: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class RunOutcome(ReadModel):
    """One pass of a monitor: its result for the latest complete window (``new`` false when
    that window had been measured before), and the alert it opened, updated or resolved."""

    monitor: str
    result: MonitorResult
    new: bool
    alert_event: str | None = None  # opened | updated | resolved
    alert: Alert | None = None

    @property
    def fired(self) -> bool:
        """Whether this pass opened an alert."""
        return self.alert_event == "opened"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Monitors:
    """Service for monitors: ``add``, ``get``, ``list``, ``remove``, plus ``enable``,
    ``disable``, ``history``, ``run``, ``run_all`` and ``watch``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        predictions: Predictions,
        models: Models,
        drift: Drift,
        alerts: Alerts,
        estimate: Estimator | None = None,
    ) -> None:
        self._ctx = ctx
        self._drift = drift
        self._alerts = alerts
        self._measurer = WindowMeasurer(
            ctx, predictions=predictions, models=models, drift=drift, estimate=estimate
        )

    # -- records --------------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        deployment: str,
        kind: str,
        window_seconds: int = 3600,
        every_seconds: int = 600,
        thresholds: Sequence[str] = (),
        consecutive: int = 1,
        cooldown_seconds: int = 3600,
        notify: Sequence[int] = (),
        kpi: str | None = None,
        aggregation: str = "sum",
        min_value: float | None = None,
        max_value: float | None = None,
        min_rows: int | None = None,
        reference: str | None = None,
    ) -> Monitor:
        """Add a monitor (contributor), e.g. ``add("credit-acc", deployment="credit",
        kind="performance", thresholds=["accuracy>=0.8"], consecutive=3)``.

        Raises:
            InvalidInputError: a bad name, kind, window, threshold, KPI band or count (every
                problem listed).
            NotFoundError: no such deployment, webhook or reference dataset.
            ConflictError: a monitor of that name exists.
            PermissionDeniedError: the actor is a viewer.
        """
        validate_name(name, "monitor name")
        problems: list[str] = []
        if kind not in KINDS:
            problems.append(f"unknown kind {kind!r}: choose {', '.join(KINDS)}")
        for what, value, low in (
            ("the window", window_seconds, 1),
            ("--every", every_seconds, MIN_EVERY),
        ):
            if not low <= value <= MAX_SECONDS:
                problems.append(f"{what} must be between {low} s and 90 days, got {value} s")
        if not 1 <= consecutive <= 1000:
            problems.append(f"--consecutive must be between 1 and 1000, got {consecutive}")
        if not 0 <= cooldown_seconds <= MAX_SECONDS:
            problems.append(f"--cooldown must be between 0 and 90 days, got {cooldown_seconds} s")
        if min_rows is not None and not 0 <= min_rows <= 10_000_000:
            problems.append(f"--min-rows must be between 0 and 10,000,000, got {min_rows}")
        options: dict[str, Any] = {}
        parsed: tuple[Threshold, ...] = ()
        if kind in KINDS:
            try:
                parsed = parse_thresholds(thresholds, kind)
            except InvalidInputError as exc:
                problems.extend(exc.details.get("problems", [str(exc)]))
            band = (min_value, max_value)
            parsed += kpi_band(kind, kpi, aggregation, band, options, problems)
            if not parsed and not problems:
                parsed = DEFAULT_THRESHOLDS[kind]
            if not parsed and not problems:
                problems.append(
                    "a performance monitor needs a --threshold, e.g. accuracy>=0.8 or rmse<=3"
                )
        if problems:
            raise InvalidInputError.from_problems(f"monitor {name!r}", problems)
        if min_rows is not None:
            options["min_rows"] = min_rows
        if reference is not None:
            if kind not in ("quality", "drift"):
                raise InvalidInputError(
                    f"--reference applies to quality and drift monitors, not {kind}"
                )
            options["reference"] = self._drift.reference(reference).source
        ids = sorted({int(i) for i in notify})
        now = _utcnow()
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "add monitors")
            _check_deployment(tx.conn, deployment)
            _check_webhooks(tx.conn, ids)
            if tx.conn.execute(select(monitors.c.id).where(monitors.c.name == name)).first():
                raise ConflictError(
                    f"a monitor named '{name}' exists; see `shipyard monitor show {name}`, or "
                    "remove it first"
                )
            doc = {
                "name": name,
                "deployment": deployment,
                "kind": kind,
                "window_seconds": int(window_seconds),
                "every_seconds": int(every_seconds),
                "thresholds": [t.to_dict() for t in parsed],
                "consecutive": int(consecutive),
                "cooldown_seconds": int(cooldown_seconds),
                "notify": ids,
                "options": options,
            }
            tx.conn.execute(
                monitors.insert().values(
                    **doc, enabled=True, created_at=now, created_by=self._ctx.actor
                )
            )
            tx.record("monitor.add", "monitor", name, doc)
        return self.get(name)

    def get(self, name: str) -> Monitor:
        """One monitor.

        Raises:
            NotFoundError: no such monitor.
        """
        with self._ctx.db.read() as conn:
            return _to_monitor(_row(conn, name))

    def list(self, *, deployment: str | None = None) -> builtins.list[Monitor]:
        """Every monitor (of one deployment), by name."""
        query = select(monitors).order_by(monitors.c.name)
        if deployment is not None:
            query = query.where(monitors.c.deployment == deployment)
        with self._ctx.db.read() as conn:
            return [_to_monitor(r) for r in conn.execute(query)]

    def exists(self) -> bool:
        """Whether the project has any monitor."""
        with self._ctx.db.read() as conn:
            return conn.execute(select(monitors.c.id).limit(1)).first() is not None

    def remove(self, name: str) -> Monitor:
        """Remove a monitor and its results (admin); its open alert is resolved, and its
        alerts stay listed under its name.

        Raises:
            NotFoundError: no such monitor.
            PermissionDeniedError: the actor is not an admin.
        """
        now = _utcnow()
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "remove monitors")
            row = _row(tx.conn, name, lock=True)
            gone = _to_monitor(row)
            close_alerts(tx, row, now)
            tx.conn.execute(delete(monitor_results).where(monitor_results.c.monitor_id == row.id))
            tx.conn.execute(delete(monitors).where(monitors.c.id == row.id))
            tx.record("monitor.remove", "monitor", name, {"deployment": row.deployment})
        return gone

    def enable(self, name: str) -> Monitor:
        """Let ``run_all`` and ``watch`` run the monitor again (contributor)."""
        return self._set_enabled(name, True)

    def disable(self, name: str) -> Monitor:
        """Leave the monitor out of ``run_all`` and ``watch`` (contributor); its results and
        alerts stay."""
        return self._set_enabled(name, False)

    def _set_enabled(self, name: str, enabled: bool) -> Monitor:
        verb = "enable" if enabled else "disable"
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", f"{verb} monitors")
            row = _row(tx.conn, name, lock=True)
            if bool(row.enabled) != enabled:
                tx.conn.execute(
                    update(monitors).where(monitors.c.id == row.id).values(enabled=enabled)
                )
                tx.record(f"monitor.{verb}", "monitor", name, {})
        return self.get(name)

    def history(self, name: str, *, limit: int = 100) -> builtins.list[MonitorResult]:
        """The monitor's results, newest window first.

        Raises:
            NotFoundError: no such monitor.
        """
        with self._ctx.db.read() as conn:
            row = _row(conn, name)
            rows = conn.execute(
                select(monitor_results)
                .where(monitor_results.c.monitor_id == row.id)
                .order_by(monitor_results.c.window_end.desc())
                .limit(max(1, min(limit, 10_000)))
            ).all()
        return [_to_result(name, r) for r in rows]

    # -- running --------------------------------------------------------------------------

    def window(self, name: str, *, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The latest complete window of the monitor at ``now``: its start and end."""
        return _latest_window(self.get(name), now or _utcnow())

    def run(self, name: str, *, now: datetime | None = None) -> RunOutcome:
        """Measure the monitor's latest complete window at ``now`` (default: the current
        time), store the result and apply the alert rule (contributor); a window measured
        before is returned as it was (``new`` false).

        Raises:
            NotFoundError: no such monitor.
            PermissionDeniedError: the actor is a viewer.
        """
        now = (now or _utcnow()).astimezone(UTC)
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "run monitors")
            row = _row(conn, name)
            monitor = _to_monitor(row)
            start, end = _latest_window(monitor, now)
            done = _result_at(conn, row.id, end)
        if done is not None:
            return RunOutcome(name, _to_result(name, done), new=False)
        measurement = self._measurer.measure(monitor, start, end)
        broken: builtins.list[Threshold] = []
        status = measurement.status
        if status == "ok":
            broken = breaches(monitor.thresholds, measurement.values)
            status = "breach" if broken else "ok"
        values = _clean({**measurement.values, "breached": [t.describe() for t in broken]})
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "run monitors")
            row = _row(tx.conn, name, lock=True)
            done = _result_at(tx.conn, row.id, end)
            if done is not None:  # another process measured it meanwhile
                return RunOutcome(name, _to_result(name, done), new=False)
            res = tx.conn.execute(
                monitor_results.insert().values(
                    monitor_id=row.id,
                    window_start=start,
                    window_end=end,
                    status=status,
                    breached=bool(broken),
                    rows=measurement.rows,
                    values=values,
                    message=measurement.message,
                    created_at=now,
                )
            )
            result_id = int(res.inserted_primary_key[0])  # type: ignore[index]
            summary = _summary(monitor, broken, measurement)
            details = {
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "breached": [t.describe() for t in broken],
                "values": {k: v for k, v in values.items() if _scalar(v)},
                "message": measurement.message,
            }
            event, alert_id = apply_rule(tx, row, result_id, status, summary, details, now)
            stored = _result_at(tx.conn, row.id, end)
        alert = self._alerts.get(alert_id) if alert_id is not None else None
        return RunOutcome(name, _to_result(name, stored), True, event, alert)

    def run_all(
        self, *, now: datetime | None = None, deployment: str | None = None
    ) -> builtins.list[RunOutcome]:
        """One pass of every enabled monitor (of one deployment): :meth:`run`, by name."""
        return [self.run(m.name, now=now) for m in self.list(deployment=deployment) if m.enabled]

    def watch(
        self,
        *,
        deployment: str | None = None,
        clock: Clock = _utcnow,
        stop: threading.Event | None = None,
        iterations: int | None = None,
        on_outcome: Callable[[RunOutcome], None] | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> int:
        """Run each enabled monitor (of one deployment) whenever a window of it completes,
        until ``stop`` is set or after ``iterations`` looks (tests bound it; the CLI runs
        until Ctrl-C); returns the number of new results. Between looks it waits (``sleep``,
        default: on ``stop``) until the next window ends, at most a minute so that new
        monitors are picked up. A monitor that fails is logged and tried again at its next
        window; the others go on."""
        stop = stop or threading.Event()
        sleep = sleep or stop.wait
        stored = 0
        looks = 0
        while not stop.is_set() and (iterations is None or looks < iterations):
            looks += 1
            now = clock()
            wait = WATCH_POLL_SECONDS
            for monitor in self.list(deployment=deployment):
                if not monitor.enabled:
                    continue
                try:
                    outcome = self.run(monitor.name, now=now)
                except NotFoundError:
                    continue  # removed meanwhile
                except Exception:
                    log.exception("monitor %s failed; it runs again next window", monitor.name)
                    continue
                if outcome.new:
                    stored += 1
                    if on_outcome is not None:
                        on_outcome(outcome)
                _, end = _latest_window(monitor, now)
                due = end + timedelta(seconds=monitor.every_seconds) - now
                wait = min(wait, max(due.total_seconds(), 0.0))
            if iterations is None or looks < iterations:
                sleep(wait + 0.01)
        return stored

    # -- measuring ------------------------------------------------------------------------


def _latest_window(monitor: Monitor, now: datetime) -> tuple[datetime, datetime]:
    every = monitor.every_seconds
    end_s = int(now.timestamp()) // every * every
    end = datetime.fromtimestamp(end_s, UTC)
    return end - timedelta(seconds=monitor.window_seconds), end


def _summary(monitor: Monitor, broken: Sequence[Threshold], m: Measurement) -> str:
    if not broken:
        return m.message
    parts = []
    for t in broken:
        value = m.values.get(t.metric)
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{t.metric} {shown} (expected {t.describe()})")
    return "; ".join(parts)


def _clean(value: Any) -> Any:
    """``value`` with NumPy numbers as Python ones and non-finite floats as None (JSON, and
    PostgreSQL's json type, hold no NaN)."""
    import math

    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _check_deployment(conn: Connection, name: str) -> None:
    """A monitor watches a deployment that exists, or a name predictions or KPI events were
    logged under (by other clients than ``shipyard serve``)."""
    if conn.execute(select(deployments.c.id).where(deployments.c.name == name)).first():
        return
    for table in (prediction_segments, kpi_events):
        if conn.execute(select(table.c.id).where(table.c.deployment == name).limit(1)).first():
            return
    raise NotFoundError(
        f"no deployment '{name}', and nothing logged under that name; list deployments with "
        "`shipyard deployments list`"
    )


def _check_webhooks(conn: Connection, ids: Sequence[int]) -> None:
    if not ids:
        return
    known = set(
        conn.execute(
            select(webhooks.c.id)
            .where(webhooks.c.id.in_([i for i in ids if 0 < i < 2**31]))
            .where(webhooks.c.removed_at.is_(None))
        ).scalars()
    )
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFoundError(
            f"no webhook {', '.join(map(str, missing))}; an admin lists them with "
            "`shipyard webhooks list`"
        )


def _row(conn: Connection, name: str, *, lock: bool = False) -> Any:
    query = select(monitors).where(monitors.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError(f"no monitor '{name}'; list them with `shipyard monitor list`")
    return row


def _result_at(conn: Connection, monitor_id: int, end: datetime) -> Any:
    return conn.execute(
        select(monitor_results)
        .where(monitor_results.c.monitor_id == monitor_id)
        .where(monitor_results.c.window_end == end)
    ).first()


def _to_monitor(row: Any) -> Monitor:
    return Monitor(
        int(row.id),
        row.name,
        row.deployment,
        row.kind,
        int(row.window_seconds),
        int(row.every_seconds),
        tuple(Threshold.from_dict(t) for t in row.thresholds or []),
        int(row.consecutive),
        int(row.cooldown_seconds),
        tuple(int(i) for i in row.notify or []),
        dict(row.options or {}),
        bool(row.enabled),
        row.created_at,
        row.created_by,
    )


def _to_result(name: str, row: Any) -> MonitorResult:
    values = dict(row.values or {})
    return MonitorResult(
        int(row.id),
        name,
        row.window_start,
        row.window_end,
        row.status,
        int(row.rows),
        values,
        row.message,
        tuple(values.get("breached") or ()),
        row.created_at,
    )
