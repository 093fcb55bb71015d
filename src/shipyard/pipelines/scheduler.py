"""Triggers without a daemon: run pipelines on cron schedules, when a watched dataset gets a
new version, and when a monitor's alert opens.

Triggers are declared in ``schedule.yaml`` at the project root::

    triggers:
      nightly:
        pipeline: pipeline.py:train_credit
        cron: "0 3 * * *"            # croniter syntax, in UTC
        params: {C: 0.5}
      new-data:
        pipeline: pipeline.py:train_credit
        dataset: credit.train        # a new version of it
      drift:
        pipeline: pipeline.py:train_credit
        alert: credit-drift          # an alert of this monitor opens ("*": any monitor)

What each trigger already handled (the cron fire, the dataset version, the alert id) is kept
in the metadata store, and a trigger fires only for the scheduler whose compare-and-set of
that value commits (the write lock of an audited transaction orders them), so a restart or a
second scheduler never runs it twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import MissingDependencyError, NotFoundError, ShipyardError
from shipyard.stores.db.tables import scheduler_triggers

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.governance.promotion import Promotions
    from shipyard.monitoring.alerts import Alerts
    from shipyard.pipelines.service import Pipelines

__all__ = ["SCHEDULE_FILE", "Firing", "Scheduler", "Trigger", "parse_schedule"]

SCHEDULE_FILE = "schedule.yaml"
KINDS = ("cron", "dataset", "alert")
_KEYS = ("pipeline", "params", "executor", *KINDS)


@dataclass(frozen=True)
class Trigger(ReadModel):
    """One trigger of the schedule: ``kind`` cron, dataset or alert, and ``on`` its cron
    expression, dataset name or monitor name (``*``: any monitor)."""

    name: str
    kind: str
    on: str
    pipeline: str
    params: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"


@dataclass(frozen=True)
class Firing(ReadModel):
    """What one pass did for one trigger: ``fired`` (a pipeline run started; ``reason`` says
    why), else ``reason`` says what was seen (a first pass records where things stand and
    runs nothing). ``promoted`` lists the automatic promotions of the versions it
    registered."""

    trigger: str
    kind: str
    fired: bool
    reason: str
    pipeline_run: str | None = None
    status: str | None = None
    error: str | None = None
    cache_hits: int | None = None
    models: list[str] = field(default_factory=list)
    promoted: list[dict[str, Any]] = field(default_factory=list)


def parse_schedule(doc: Any) -> list[Trigger]:
    """The triggers of a schedule document.

    Raises:
        InvalidInputError: every problem listed (an unknown key, no pipeline, not exactly one
            of cron, dataset and alert, a bad cron expression).
    """
    from shipyard.data.contract_parsing import Problems, check_keys, got

    p = Problems()
    triggers: list[Trigger] = []
    if not isinstance(doc, Mapping) or not isinstance(doc.get("triggers"), Mapping):
        p.add("triggers", "expected a mapping of trigger names to triggers")
        p.raise_if_any("schedule")
    for name, raw in doc["triggers"].items():
        at = f"triggers.{name}"
        if not isinstance(raw, Mapping):
            p.add(
                at,
                f"expected a mapping with pipeline and one of cron, dataset, alert, got {got(raw)}",
            )
            continue
        check_keys(raw, _KEYS, at, p)
        kinds = [k for k in KINDS if k in raw]
        if len(kinds) != 1:
            p.add(
                at, f"give exactly one of cron, dataset, alert (got {', '.join(kinds) or 'none'})"
            )
            continue
        kind = kinds[0]
        on, pipeline = raw[kind], raw.get("pipeline")
        if not isinstance(pipeline, str) or not pipeline:
            p.add(f"{at}.pipeline", "expected FILE[:NAME] of a pipeline")
        if not isinstance(on, str) or not on:
            p.add(f"{at}.{kind}", f"expected text, got {got(on, expected_text=True)}")
            continue
        if kind == "cron" and not _cron().is_valid(on):
            p.add(f"{at}.cron", f"{on!r} is not a cron expression (such as '0 3 * * *')")
        params = raw.get("params") or {}
        if not isinstance(params, Mapping):
            p.add(f"{at}.params", f"expected a mapping, got {got(params)}")
            params = {}
        executor = raw.get("executor", "local")
        if not isinstance(executor, str):
            p.add(f"{at}.executor", "expected local, dask or dask://HOST:PORT")
            executor = "local"
        if isinstance(pipeline, str) and pipeline:
            triggers.append(Trigger(str(name), kind, on, pipeline, dict(params), executor))
    p.raise_if_any("schedule")
    return triggers


class Scheduler:
    """Service for triggers: ``load`` the schedule, ``run_once`` (one pass), ``serve`` (passes
    until stopped)."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        pipelines: Pipelines,
        datasets: Datasets,
        alerts: Alerts,
        promotions: Promotions,
    ) -> None:
        self._ctx = ctx
        self._pipelines = pipelines
        self._datasets = datasets
        self._alerts = alerts
        self._promotions = promotions

    def load(self, path: str | Path | None = None) -> list[Trigger]:
        """The triggers of ``path`` (default: ``schedule.yaml`` at the project root).

        Raises:
            NotFoundError: no schedule file.
            InvalidInputError: the schedule has problems.
        """
        from shipyard.data.contract_parsing import load_yaml, read_document

        file = Path(path) if path is not None else self._ctx.settings.root / SCHEDULE_FILE
        if not file.is_file():
            raise NotFoundError(
                f"no schedule file {file}; write one with triggers (see docs/pipelines.md, "
                "section Scheduler)"
            )
        return parse_schedule(load_yaml(read_document(file, "schedule"), "schedule", ""))

    def run_once(self, triggers: list[Trigger], *, now: datetime | None = None) -> list[Firing]:
        """One pass: check each trigger at ``now`` (default: the current time) and run the
        pipeline of each that fires, recording what triggered it (tags
        ``shipyard.trigger``, ``shipyard.trigger.name``, ``shipyard.trigger.reason``) and
        promoting the versions it registered to the aliases their policy's
        ``auto_promote`` lists when every check passes.

        Raises:
            PermissionDeniedError: the actor is not a contributor.
        """
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "run scheduled pipelines")
        at = now or datetime.now(UTC)
        return [self._check(t, at) for t in triggers]

    def serve(
        self,
        triggers: list[Trigger],
        *,
        interval: float = 30.0,
        stop: threading.Event,
        report: Callable[[list[Firing]], None] = lambda _: None,
    ) -> None:
        """Passes every ``interval`` seconds until ``stop`` is set (a pass under way ends
        first); ``report`` receives each pass's firings."""
        while not stop.is_set():
            started = time.monotonic()
            report(self.run_once(triggers))
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    # -- one trigger ---------------------------------------------------------------------------

    def _check(self, trigger: Trigger, now: datetime) -> Firing:
        seen = self._seen(trigger)
        try:
            if trigger.kind == "cron":
                new, reason = self._cron_due(trigger, seen, now)
            elif trigger.kind == "dataset":
                new, reason = self._dataset_new(trigger, seen)
            else:
                new, reason = self._alert_opened(trigger, seen)
        except ShipyardError as exc:
            return Firing(trigger.name, trigger.kind, False, f"not checked: {exc.message}")
        if new is None:
            return Firing(trigger.name, trigger.kind, False, reason or "")
        if not self._claim(trigger, seen, new, first=reason is None and seen is None):
            return Firing(
                trigger.name, trigger.kind, False, "handled by another scheduler meanwhile"
            )
        if seen is None and trigger.kind != "alert":
            return Firing(trigger.name, trigger.kind, False, f"first pass: recorded {new}")
        assert reason is not None
        return self._fire(trigger, reason)

    def _cron_due(
        self, trigger: Trigger, seen: str | None, now: datetime
    ) -> tuple[str | None, str | None]:
        croniter = _cron()
        if seen is None:
            return now.isoformat(), None
        nxt = croniter(trigger.on, datetime.fromisoformat(seen)).get_next(datetime)
        if nxt > now:
            return None, f"next fire at {nxt.isoformat()}"
        # Fires missed while no scheduler ran are one fire, at the latest due time.
        due = croniter(trigger.on, now).get_prev(datetime)
        if croniter.match(trigger.on, now):
            due = now.replace(second=0, microsecond=0)
        return due.isoformat(), f"cron {trigger.on}: due at {due.isoformat()}"

    def _dataset_new(self, trigger: Trigger, seen: str | None) -> tuple[str | None, str | None]:
        latest = self._datasets.get(trigger.on)
        if seen is None:
            return latest.ref, None
        if latest.ref == seen:
            return None, f"no new version of {trigger.on} (latest is {latest.ref})"
        return latest.ref, f"new dataset version {latest.ref} (after {seen})"

    def _alert_opened(self, trigger: Trigger, seen: str | None) -> tuple[str | None, str | None]:
        monitor = None if trigger.on == "*" else trigger.on
        after = int(seen or 0)
        opened = [a for a in self._alerts.list(open_only=True, monitor=monitor) if a.id > after]
        if not opened:
            return None, "no alert opened since the last pass"
        newest = max(opened, key=lambda a: a.id)
        return str(newest.id), f"alert {newest.id} of monitor {newest.monitor}: {newest.summary}"

    def _fire(self, trigger: Trigger, reason: str) -> Firing:
        from shipyard.pipelines.records import REUSED

        tags = {
            "shipyard.trigger": trigger.kind,
            "shipyard.trigger.name": trigger.name,
            "shipyard.trigger.reason": reason,
        }
        try:
            # A trigger reacts to new data: its run resolves the inputs afresh and leaves the
            # project's lock file alone.
            run = self._pipelines.run(
                trigger.pipeline,
                params=trigger.params,
                executor=trigger.executor,
                tags=tags,
                lock=False,
            )
        except ShipyardError as exc:
            return Firing(trigger.name, trigger.kind, True, reason, error=exc.message)
        with self._ctx.audited() as tx:
            tx.conn.execute(
                scheduler_triggers.update()
                .where(scheduler_triggers.c.name == trigger.name)
                .values(pipeline_run_id=run.id, updated_at=_now_ms())
            )
            tx.record(
                "scheduler.run",
                "scheduler_trigger",
                trigger.name,
                {"pipeline_run": run.id, "status": run.status, "reason": reason},
            )
        models = [
            str(s.outputs["ref"])
            for s in run.steps
            if s.outputs and s.outputs.get("kind") == "model" and s.cache not in REUSED
        ]
        promoted: list[dict[str, Any]] = []
        for ref in models:
            try:
                outcomes = self._promotions.auto_promote(
                    ref, comment=f"scheduler trigger {trigger.name}: {reason}"
                )
            except ShipyardError as exc:  # the run stands; the candidate waits for a human
                outcomes = [{"alias": "", "promoted": False, "detail": exc.message, "checks": []}]
            promoted.extend({"model": ref, **outcome} for outcome in outcomes)
        return Firing(
            trigger.name,
            trigger.kind,
            True,
            reason,
            pipeline_run=run.id,
            status=run.status,
            error=run.error,
            cache_hits=run.cache_hits,
            models=models,
            promoted=promoted,
        )

    # -- state ---------------------------------------------------------------------------------

    def _seen(self, trigger: Trigger) -> str | None:
        with self._ctx.db.read() as conn:
            row = conn.execute(
                select(scheduler_triggers.c.seen, scheduler_triggers.c.kind).where(
                    scheduler_triggers.c.name == trigger.name
                )
            ).first()
        if row is None or row.kind != trigger.kind:
            return None  # a trigger renamed to another kind starts afresh
        return None if row.seen is None else str(row.seen)

    def _claim(self, trigger: Trigger, seen: str | None, new: str, *, first: bool) -> bool:
        """Record ``new`` as handled if what is recorded is still ``seen``; False when
        another scheduler got there first."""
        with self._ctx.audited() as tx:
            row = tx.conn.execute(
                select(scheduler_triggers).where(scheduler_triggers.c.name == trigger.name)
            ).first()
            current = None if row is None or row.kind != trigger.kind else row.seen
            if current != seen:
                return False
            values = {"kind": trigger.kind, "seen": new, "updated_at": _now_ms()}
            if row is None:
                tx.conn.execute(scheduler_triggers.insert().values(name=trigger.name, **values))
            else:
                tx.conn.execute(
                    scheduler_triggers.update()
                    .where(scheduler_triggers.c.name == trigger.name)
                    .values(**values)
                )
            tx.record(
                "scheduler.seen",
                "scheduler_trigger",
                trigger.name,
                {"kind": trigger.kind, "from": seen, "to": new, "first": first},
            )
        return True


def _cron() -> Any:
    try:
        from croniter import croniter
    except ImportError:
        raise MissingDependencyError.for_extra("croniter", "scheduler", "a cron trigger") from None
    return croniter


def _now_ms() -> int:
    return int(time.time() * 1000)
