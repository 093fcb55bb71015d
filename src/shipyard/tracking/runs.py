"""Experiment tracking: runs with parameters, metric series, tags, inputs and artifacts.

>>> with project.start_run(experiment="credit", name="gbm") as run:    # doctest: +SKIP
...     run.log_params({"max_depth": 3})
...     run.log_metric("auc", 0.91)
...     run.log_input("credit.train@1", context="train")

Metric points are buffered and written in batches; code version, environment and command
line are captured when the run starts, and an exception inside the ``with`` block marks the
run failed with its error.
"""

from __future__ import annotations

import builtins
import io
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.refs import validate_name
from shipyard.stores.db.tables import (
    experiments,
    run_artifacts,
    run_inputs,
    run_latest_metrics,
    run_metrics,
    run_params,
    run_tags,
    runs,
)
from shipyard.tracking.active import (
    INT64,
    ActiveRun,
    check_key,
    contributor_tx,
    now_ms,
    param_text,
    write_tags,
)
from shipyard.tracking.metric_values import from_stored
from shipyard.tracking.pending import ensure_experiment as _ensure_experiment
from shipyard.tracking.records import RunRecord, load_records
from shipyard.tracking.series import MetricPoint, MetricSeries, series_of

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.registry.models import Models
    from shipyard.tracking.comparison import RunComparison
    from shipyard.tracking.notebook import NotebookCapture
    from shipyard.tracking.table import RunTable, TableQuery

__all__ = ["ActiveRun", "Experiment", "MetricSeries", "RunInfo", "Runs"]

KIND = "run"


@dataclass(frozen=True)
class Experiment(ReadModel):
    """A named group of runs."""

    id: int
    name: str
    runs: int
    created_by: str
    last_run: int | None = field(metadata={"json": "epoch_ms"})  # milliseconds since the epoch


@dataclass(frozen=True)
class RunInfo(ReadModel):
    """Everything recorded about one run."""

    id: str
    name: str
    experiment: str
    status: str
    lifecycle: str
    start_time: int = field(metadata={"json": "epoch_ms"})  # milliseconds since the epoch
    end_time: int | None = field(metadata={"json": "epoch_ms"})
    created_by: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    inputs: list[dict[str, str]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    code: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    json_properties = ("duration_seconds",)
    #: What ``runs list --json`` leaves out (``to_dict(exclude=RunInfo.DETAILS)``).
    DETAILS = ("inputs", "artifacts", "code", "environment", "error")

    @property
    def duration_seconds(self) -> float | None:
        return None if self.end_time is None else (self.end_time - self.start_time) / 1000


class Runs:
    """Service for runs: ``start``, ``get``, ``list``, plus ``attach``, ``compare``,
    ``delete``, ``restore``, ``metric_history``, ``metric_series``, ``experiments`` and the
    views a web UI needs: ``table`` (and its CSV export ``table_csv``) and ``comparison``."""

    def __init__(self, ctx: ServiceContext, *, datasets: Datasets, models: Models) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._models = models
        self._may_start = False

    def start(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        system_metrics: bool | float = False,
        capture_code_in: str | os.PathLike[str] | None = None,
        code: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> ActiveRun:
        """Start a run in ``experiment`` (created on first use), with ``params`` logged in
        the same write when given.

        The git commit, dirty flag and diff digest of ``capture_code_in`` (default: the current
        directory), Python and package versions, host and command line are recorded.
        ``code`` and ``environment``, when given, are recorded as they are instead: what a
        remote client captured on its own machine (a server must not record its own).
        ``system_metrics=True`` (or an interval in seconds) samples CPU and memory.

        A run of this process (no ``code`` or ``environment`` given) captures them once per
        process and folder, and is not written to the store before its first flush or its
        end: a short run is stored whole, in one transaction with one ``run.record`` audit
        event, and a process killed before then leaves nothing (see
        :mod:`shipyard.tracking.pending`).

        Raises:
            PermissionDeniedError: the actor is not a contributor.
        """
        from shipyard.data.lock import LOCK_TAG, lock_digest

        validate_name(experiment, "experiment name")
        run_id = uuid.uuid4().hex
        run_name = name or f"run-{run_id[:8]}"
        param_items = {check_key(k, "parameter"): param_text(v) for k, v in (params or {}).items()}
        if code is None and environment is None:
            return self._start_here(
                experiment, run_id, run_name, tags, system_metrics, capture_code_in, param_items
            )
        notebook: NotebookCapture | None = None
        if code is None:
            from shipyard.tracking.capture import capture_code

            code = capture_code(Path(capture_code_in) if capture_code_in else None)
            notebook = _notebook_of_kernel()
            if notebook is not None:
                code = {**code, "notebook": notebook.record}
            pinned = lock_digest(self._ctx.settings.root)
            if pinned is not None and LOCK_TAG not in (tags or {}):
                tags = {**(tags or {}), LOCK_TAG: pinned}
        else:
            code = _client_document(code, "code")
        if environment is None:
            from shipyard.tracking.capture import capture_environment

            env = capture_environment()
        else:
            env = _client_document(environment, "environment")
        with contributor_tx(self._ctx, "start runs") as tx:
            exp_id = _ensure_experiment(tx, experiment)
            tx.conn.execute(
                runs.insert().values(
                    id=run_id,
                    experiment_id=exp_id,
                    name=run_name,
                    status="RUNNING",
                    lifecycle="active",
                    start_time=now_ms(),
                    created_by=self._ctx.actor,
                    code=dict(code),
                    environment=env,
                )
            )
            if tags:
                write_tags(tx.conn, run_id, {check_key(k, "tag"): str(v) for k, v in tags.items()})
            tx.record(
                "run.start",
                KIND,
                run_id,
                {"experiment": experiment, "name": run_name, "git": dict(code).get("git")},
            )
            if param_items:
                tx.conn.execute(
                    run_params.insert(),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in param_items.items()],
                )
                tx.record("run.params", KIND, run_id, {"params": param_items})
        run = ActiveRun(
            self._ctx,
            run_id,
            run_name,
            experiment,
            datasets=self._datasets,
            models=self._models,
            blocks_complete=True,
        )
        _store_notebook(run, notebook)
        if system_metrics:
            interval = 5.0 if system_metrics is True else float(system_metrics)
            run.start_system_metrics(interval)
        return run

    def _start_here(
        self,
        experiment: str,
        run_id: str,
        run_name: str,
        tags: Mapping[str, Any] | None,
        system_metrics: bool | float,
        capture_code_in: str | os.PathLike[str] | None,
        params: dict[str, str],
    ) -> ActiveRun:
        """A run of this process: held in memory until its first write (see
        :mod:`shipyard.tracking.pending`), with code and environment captured once per
        process."""
        from shipyard.authz import require_role
        from shipyard.data.lock import LOCK_TAG, lock_digest
        from shipyard.tracking.capture import code_of_process, environment_of_process
        from shipyard.tracking.pending import PendingStart, write_at_exit

        checked_tags = {check_key(k, "tag"): str(v) for k, v in (tags or {}).items()}
        if not self._may_start:  # a viewer is refused now, not at the run's end
            with self._ctx.db.read() as conn:
                require_role(conn, self._ctx.actor, "contributor", "start runs")
            # Checked once per service: the run's write checks the role again, in its
            # transaction, so a role taken away later still stops it.
            self._may_start = True
        code = code_of_process(Path(capture_code_in) if capture_code_in else None)
        # A notebook changes between the runs of one kernel: read it at each run's start.
        notebook = _notebook_of_kernel()
        if notebook is not None:
            code = {**code, "notebook": notebook.record}
        # The lock file pins the data this commit uses: its digest links the run (and the
        # models it logs) to both. Only here: a remote client's project is not ours.
        pinned = lock_digest(self._ctx.settings.root)
        if pinned is not None and LOCK_TAG not in checked_tags:
            checked_tags[LOCK_TAG] = pinned
        pending = PendingStart(
            experiment,
            check_key(run_name, "run"),
            now_ms(),
            self._ctx.actor,
            code,
            environment_of_process(),
            tags=checked_tags,
            params=dict(params),
        )
        run = ActiveRun(
            self._ctx,
            run_id,
            run_name,
            experiment,
            datasets=self._datasets,
            models=self._models,
            pending=pending,
        )
        write_at_exit(run)
        _store_notebook(run, notebook)
        if system_metrics:
            interval = 5.0 if system_metrics is True else float(system_metrics)
            run.start_system_metrics(interval)
        return run

    def create(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        start_time: int | None = None,
    ) -> ActiveRun:
        """Start a run for a remote client (the MLflow protocol): the start time is the
        client's, and nothing about the server's own code or environment is captured.

        Raises:
            PermissionDeniedError: the actor is not a contributor.
        """
        validate_name(experiment, "experiment name")
        run_id = uuid.uuid4().hex
        run_name = name or f"run-{run_id[:8]}"
        with contributor_tx(self._ctx, "start runs") as tx:
            exp_id = _ensure_experiment(tx, experiment)
            tx.conn.execute(
                runs.insert().values(
                    id=run_id,
                    experiment_id=exp_id,
                    name=check_key(run_name, "run"),
                    status="RUNNING",
                    lifecycle="active",
                    start_time=now_ms() if start_time is None else int(start_time),
                    created_by=self._ctx.actor,
                    code={},
                    environment={},
                )
            )
            if tags:
                write_tags(tx.conn, run_id, {check_key(k, "tag"): str(v) for k, v in tags.items()})
            tx.record("run.start", KIND, run_id, {"experiment": experiment, "name": run_name})
        return ActiveRun(
            self._ctx,
            run_id,
            run_name,
            experiment,
            datasets=self._datasets,
            models=self._models,
            blocks_complete=True,
        )

    def attach(self, run_id: str) -> ActiveRun:
        """An existing run to log to, from any process: what a stateless server uses for each
        request about a run. Points without a step carry on from the run's highest step per
        key; a run that has ended stays ended (``end`` does nothing).

        >>> project.runs.attach(run_id).log_params({"C": 1.0})   # doctest: +SKIP

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is deleted (restore it first).
        """
        with self._ctx.db.read() as conn:
            full = resolve_run_id(conn, run_id)
            row = conn.execute(
                select(
                    runs.c.name, runs.c.status, runs.c.lifecycle, experiments.c.name.label("exp")
                )
                .join(experiments, experiments.c.id == runs.c.experiment_id)
                .where(runs.c.id == full)
            ).one()
            if row.lifecycle == "deleted":
                raise ConflictError(
                    f"run {full} is deleted; restore it with `shipyard runs restore {full}` "
                    "before logging to it"
                )
            next_steps = {
                r.key: int(r.step) + 1
                for r in conn.execute(
                    select(run_latest_metrics.c.key, run_latest_metrics.c.step).where(
                        run_latest_metrics.c.run_id == full
                    )
                )
            }
        return ActiveRun(
            self._ctx,
            full,
            row.name,
            row.exp,
            datasets=self._datasets,
            models=self._models,
            next_steps=next_steps,
            ended=row.status != "RUNNING",
        )

    def records(self, run_ids: Iterable[str]) -> builtins.list[RunRecord]:
        """Runs by full id, in the given order, each with its experiment's id and the latest
        point (value, step, time) of every metric: what the MLflow protocol returns.

        Raises:
            NotFoundError: one of the runs does not exist.
        """
        ids = builtins.list(run_ids)
        with self._ctx.db.read() as conn:
            found = load_records(conn, self._ctx.artifacts, ids)
        if len(found) < len(set(ids)):
            have = {r.id for r in found}
            missing = next(i for i in ids if i not in have)
            raise NotFoundError(f"Run with id={missing} not found")
        return found

    def search(
        self,
        *,
        experiment_ids: Iterable[int] | None = None,
        filter: str | None = None,
        order_by: Iterable[str] | None = None,
        lifecycle: str = "active",
        offset: int = 0,
        limit: int = 1000,
    ) -> builtins.list[RunRecord]:
        """One page of :meth:`list` as :meth:`records`: runs of some experiments
        (``lifecycle``: ``active``, ``deleted`` or ``all``) from ``offset`` on; only the
        page's runs are loaded. As in MLflow, a bare attribute name (``status``) needs no
        ``attributes.`` prefix.

        Raises:
            FilterSyntaxError: the filter or an order-by term does not parse.
        """
        from shipyard.tracking.search_sql import search_runs_stmt

        if lifecycle not in ("active", "deleted", "all"):
            raise InvalidInputError(f"lifecycle must be active, deleted or all, not {lifecycle!r}")
        stmt = search_runs_stmt(
            filter,
            builtins.list(order_by or ()),
            experiment_ids=None if experiment_ids is None else builtins.list(experiment_ids),
            include_deleted=lifecycle != "active",
            limit=limit,
            bare_attributes=True,
        )
        if lifecycle == "deleted":
            stmt = stmt.where(runs.c.lifecycle == "deleted")
        if offset:
            stmt = stmt.offset(offset)
        with self._ctx.db.read() as conn:
            ids = [r[0] for r in conn.execute(stmt)]
            return load_records(conn, self._ctx.artifacts, ids)

    def experiment(self, *, name: str | None = None, id: int | None = None) -> Experiment:
        """One experiment, by name or id.

        Raises:
            NotFoundError: no such experiment.
        """
        cond = experiments.c.name == name if name is not None else experiments.c.id == id
        with self._ctx.db.read() as conn:
            row = conn.execute(select(experiments).where(cond)).first()
            if row is None:
                what = f"name '{name}'" if name is not None else f"ID {id}"
                raise NotFoundError(
                    f"Could not find experiment with {what}; see `shipyard experiments list`"
                )
            n, last = conn.execute(
                select(func.count(), func.max(runs.c.start_time))
                .where(runs.c.experiment_id == row.id)
                .where(runs.c.lifecycle == "active")
            ).one()
        return Experiment(row.id, row.name, int(n or 0), row.created_by, last)

    def create_experiment(self, name: str) -> Experiment:
        """A new, empty experiment.

        Raises:
            ConflictError: an experiment of that name exists.
            PermissionDeniedError: the actor is not a contributor.
        """
        validate_name(name, "experiment name")
        with contributor_tx(self._ctx, "create experiments") as tx:
            row = tx.conn.execute(select(experiments.c.id).where(experiments.c.name == name))
            if row.first() is not None:
                raise ConflictError(f"Experiment(name={name}) already exists.")
            _ensure_experiment(tx, name)
        return self.experiment(name=name)

    def get(self, run_id: str) -> RunInfo:
        """One run, by id or unique id prefix.

        Raises:
            NotFoundError: no such run.
        """
        with self._ctx.db.read() as conn:
            full = resolve_run_id(conn, run_id)
            return _load(conn, [full])[0]

    def list(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        include_deleted: bool = False,
    ) -> builtins.list[RunInfo]:
        """Runs matching an MLflow-style filter (see docs/search.md), newest first by default.

        Raises:
            FilterSyntaxError: the filter or order-by does not parse (the message points at
                the position).
            NotFoundError: no such experiment.
        """
        from shipyard.tracking.search_sql import search_runs_stmt

        with self._ctx.db.read() as conn:
            exp_ids = None
            if experiment is not None:
                exp_ids = [_experiment_id(conn, experiment)]
            stmt = search_runs_stmt(
                filter,
                list(order_by)
                if order_by is not None and not isinstance(order_by, str)
                else order_by,
                experiment_ids=exp_ids,
                include_deleted=include_deleted,
                limit=limit,
            )
            ids = [r[0] for r in conn.execute(stmt)]
            return _load(conn, ids)

    def table(
        self,
        *,
        experiments: Iterable[str] | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        stat: str = "last",
        columns: Iterable[str] | None = None,
        include_deleted: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> RunTable:
        """One page of the runs table: the runs of ``experiments`` (names; None: all) that
        pass ``filter`` (the grammar of :meth:`list`), sorted on one ``order_by`` term (a
        metric on its ``stat``: last, min or max value; default newest first), with the
        ``columns`` chosen (``params.KEY``, ``metrics.KEY``, ``tags.KEY``; None: every param
        and metric key of the page's runs) and the count of all matching runs.

        >>> project.runs.table(order_by="metrics.loss ASC", stat="min", limit=50)  # doctest: +SKIP

        Raises:
            NotFoundError: an experiment does not exist.
            FilterSyntaxError: the filter, the order-by term or a column does not parse.
            InvalidInputError: a bad page, stat or column.
        """
        from shipyard.tracking.table import build_table

        query = _table_query(experiments, filter, order_by, stat, columns, include_deleted)
        with self._ctx.db.read() as conn:
            return build_table(conn, query, offset=offset, limit=limit)

    def table_csv(
        self,
        *,
        experiments: Iterable[str] | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        stat: str = "last",
        columns: Iterable[str] | None = None,
        include_deleted: bool = False,
    ) -> Iterator[str]:
        """The whole filtered runs table (as :meth:`table` selects and orders it) as CSV
        text, produced in chunks as it is read; a metric gives three columns (last value,
        ``min(...)``, ``max(...)``). The query is checked before the first chunk is asked
        for, so errors raise here.

        Raises:
            the errors of :meth:`table`.
        """
        from shipyard.tracking.table import csv_lines

        query = _table_query(experiments, filter, order_by, stat, columns, include_deleted)
        with self._ctx.db.read() as conn:
            query.statement(conn)  # raise a bad query now, not in the middle of a stream
            query.chosen_columns()
        return csv_lines(self._ctx.db.read, query)

    def table_columns(
        self, experiments: Iterable[str] | None = None
    ) -> dict[str, builtins.list[str]]:
        """Every param, metric and tag key the runs of ``experiments`` (names; None: all)
        have: what a runs table's column chooser offers, by kind.

        Raises:
            NotFoundError: an experiment does not exist.
        """
        from shipyard.tracking.table import available_keys

        query = _table_query(experiments, None, None, "last", None, True)
        with self._ctx.db.read() as conn:
            return available_keys(conn, query.experiment_ids(conn))

    def compare(self, run_ids: Iterable[str]) -> dict[str, Any]:
        """Parameters and metrics of several runs side by side; ``differs`` marks the keys
        whose values are not all equal."""
        from shipyard.tracking.comparison import side_by_side

        infos = [self.get(r) for r in run_ids]
        if len(infos) < 2:
            raise InvalidInputError("compare needs at least two runs")
        return {
            "runs": [
                {"id": i.id, "name": i.name, "experiment": i.experiment, "status": i.status}
                for i in infos
            ],
            "params": [d.to_dict() for d in side_by_side([i.params for i in infos])],
            "metrics": [d.to_dict() for d in side_by_side([i.metrics for i in infos])],
        }

    def comparison(
        self,
        run_ids: Iterable[str],
        *,
        metrics: Iterable[str] | None = None,
        group_by: str | None = None,
        max_points: int = 2000,
    ) -> RunComparison:
        """What a comparison page of 2 to 20 runs draws: parameter differences, each metric's
        last/min/max, the series of ``metrics`` (None: every metric the runs have) downsampled
        to ``max_points`` each (see :meth:`metric_series`), with ``group_by`` a parameter,
        the mean ± std band per step of each group's runs, and parallel-coordinates axes.

        >>> project.runs.comparison(ids, metrics=["loss"], group_by="model")  # doctest: +SKIP

        Raises:
            NotFoundError: a run does not exist.
            InvalidInputError: fewer than 2 or more than 20 runs, a run given twice, or
                ``max_points`` outside 2..2000.
        """
        from shipyard.tracking.comparison import MAX_POINTS, MAX_RUNS, build_comparison
        from shipyard.tracking.series import MIN_POINTS
        from shipyard.tracking.table import load_rows

        given = builtins.list(run_ids)
        if not 2 <= len(given) <= MAX_RUNS:
            raise InvalidInputError(
                f"a comparison holds 2 to {MAX_RUNS} runs, not {len(given)}; pick fewer runs"
                if len(given) > MAX_RUNS
                else f"a comparison holds 2 to {MAX_RUNS} runs, not {len(given)}"
            )
        if not MIN_POINTS <= max_points <= MAX_POINTS:
            raise InvalidInputError(
                f"max_points must be between {MIN_POINTS} and {MAX_POINTS}, not {max_points}"
            )
        with self._ctx.db.snapshot() as conn:  # the counts and the kept points agree
            ids = [resolve_run_id(conn, r) for r in given]
            if len(set(ids)) < len(ids):
                raise InvalidInputError("a run is given twice; compare distinct runs")
            rows = load_rows(conn, ids, None)
            keys = (
                sorted({k for r in rows for k in r.metrics})
                if metrics is None
                else builtins.list(dict.fromkeys(metrics))
            )
            series = {
                (r.id, key): series_of(conn, r.id, key, max_points)
                for key in keys
                for r in rows
                if key in r.metrics
            }
        return build_comparison(rows, series, keys, group_by, max_points)

    def metric_history(
        self, run_id: str, key: str, *, offset: int = 0, limit: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Every point of one metric, by step (``offset``/``limit``: one page of them)."""
        return [p.to_dict() for p in self._points(run_id, key, offset=offset, limit=limit)]

    def metric_series(
        self, run_id: str, key: str, *, max_points: int | None = None
    ) -> MetricSeries:
        """One metric's points in step order; with ``max_points``, at most that many, chosen
        by :func:`~shipyard.tracking.series.downsample` (first, last, and the minimum and
        maximum of each step bucket, so spikes survive).

        Raises:
            NotFoundError: no such run.
            InvalidInputError: ``max_points`` below 2.
        """
        if max_points is None:
            points = self._points(run_id, key)
            return MetricSeries(key, points, downsampled=False, total=len(points))
        with self._ctx.db.snapshot() as conn:  # the count and the kept points agree
            full = resolve_run_id(conn, run_id)
            return series_of(conn, full, key, max_points)

    def _points(
        self, run_id: str, key: str, *, offset: int = 0, limit: int | None = None
    ) -> builtins.list[MetricPoint]:
        with self._ctx.db.read() as conn:
            full = resolve_run_id(conn, run_id)
            stmt = (
                select(run_metrics.c.step, run_metrics.c.timestamp, run_metrics.c.value)
                .where(run_metrics.c.run_id == full)
                .where(run_metrics.c.key == key)
                .order_by(run_metrics.c.step, run_metrics.c.timestamp, run_metrics.c.id)
            )
            if offset:
                stmt = stmt.offset(offset)
            if limit is not None:
                stmt = stmt.limit(limit)
            rows = conn.execute(stmt).all()
        return [MetricPoint(int(r.step), int(r.timestamp), from_stored(r.value)) for r in rows]

    def delete(self, run_id: str) -> RunInfo:
        """Hide a run from searches (restorable); its history stays."""
        return self._set_lifecycle(run_id, "deleted")

    def restore(self, run_id: str) -> RunInfo:
        """Bring back a deleted run."""
        return self._set_lifecycle(run_id, "active")

    def _set_lifecycle(self, run_id: str, lifecycle: str) -> RunInfo:
        with contributor_tx(self._ctx, "delete or restore runs") as tx:
            full = resolve_run_id(tx.conn, run_id)
            tx.conn.execute(update(runs).where(runs.c.id == full).values(lifecycle=lifecycle))
            tx.record(f"run.{'delete' if lifecycle == 'deleted' else 'restore'}", KIND, full, {})
        return self.get(full)

    def delete_experiment(self, name: str, *, reason: str = "") -> builtins.list[str]:
        """Delete an experiment (restorable): hidden from :meth:`experiments`, its runs
        hidden from searches; returns the ids of the runs hidden. See
        :mod:`shipyard.tracking.experiments`."""
        from shipyard.tracking.experiments import delete_experiment

        return delete_experiment(self._ctx, name, reason=reason)

    def restore_experiment(self, name: str) -> builtins.list[str]:
        """Undo :meth:`delete_experiment`; returns the ids of the runs brought back."""
        from shipyard.tracking.experiments import restore_experiment

        return restore_experiment(self._ctx, name)

    def experiments(self) -> builtins.list[Experiment]:
        """Every experiment that is not deleted, with its number of (active) runs."""
        counts = (
            select(
                runs.c.experiment_id,
                func.count().label("n"),
                func.max(runs.c.start_time).label("last"),
            )
            .where(runs.c.lifecycle == "active")
            .group_by(runs.c.experiment_id)
            .subquery()
        )
        stmt = (
            select(experiments, counts.c.n, counts.c.last)
            .outerjoin(counts, counts.c.experiment_id == experiments.c.id)
            .where(experiments.c.deleted_at.is_(None))
            .order_by(experiments.c.name)
        )
        with self._ctx.db.read() as conn:
            return [
                Experiment(r.id, r.name, int(r.n or 0), r.created_by, r.last)
                for r in conn.execute(stmt)
            ]


# -- helpers --------------------------------------------------------------------------------------


def _notebook_of_kernel() -> NotebookCapture | None:
    """The notebook of the Jupyter kernel this process is, or None (not a kernel)."""
    from shipyard.tracking.notebook import capture_notebook

    return capture_notebook()


def _store_notebook(run: ActiveRun, notebook: NotebookCapture | None) -> None:
    """The stripped notebook as the run's code artifact (``code/NAME.ipynb``)."""
    if notebook is None or notebook.stripped is None:
        return
    run.put_artifact(
        str(notebook.record["artifact"]), io.BytesIO(notebook.stripped.encode("utf-8"))
    )


#: Bounds on a code or environment document sent by a client (a capture is far smaller).
MAX_DOCUMENT_DEPTH = 16
MAX_DOCUMENT_ITEMS = 100_000


def _client_document(doc: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``doc`` as plain JSON values that every reader can take back (integers within 64 bits,
    finite numbers, text keys), or InvalidInputError naming the first offending place."""
    budget = [MAX_DOCUMENT_ITEMS]

    def clean(value: Any, where: str, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DOCUMENT_DEPTH:
            raise InvalidInputError(
                f"the run's {what} is too large or too deeply nested (at most "
                f"{MAX_DOCUMENT_ITEMS:,} values, {MAX_DOCUMENT_DEPTH} levels)"
            )
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(f"the run's {what} at {where} is not UTF-8 text") from None
            return value
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if not -INT64 <= value < INT64:
                raise InvalidInputError(f"the run's {what} at {where} is beyond 64 bits")
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInputError(f"the run's {what} at {where} is {value}")
            return value
        if isinstance(value, Mapping):
            return {
                clean(str(k), where, depth): clean(v, f"{where}.{k}", depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [clean(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        raise InvalidInputError(
            f"the run's {what} at {where} is a {type(value).__name__}, not a JSON value"
        )

    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"the run's {what} must be a JSON object")
    return dict(clean(doc, what, 0))


def _table_query(
    experiments: Iterable[str] | None,
    filter: str | None,
    order_by: str | None,
    stat: str,
    columns: Iterable[str] | None,
    include_deleted: bool,
) -> TableQuery:
    from shipyard.tracking.table import TableQuery

    return TableQuery(
        experiments=None if experiments is None else tuple(experiments),
        filter=filter,
        order_by=order_by,
        stat=stat,  # type: ignore[arg-type]  # TableQuery.statement checks it
        columns=None if columns is None else tuple(columns),
        include_deleted=include_deleted,
    )


def _experiment_id(conn: Connection, name: str) -> int:
    row = conn.execute(select(experiments.c.id).where(experiments.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no experiment '{name}'; see `shipyard experiments list`")
    return int(row.id)


def resolve_run_id(conn: Connection, run_id: str) -> str:
    if not run_id or len(run_id) > 32 or any(c not in "0123456789abcdef" for c in run_id):
        raise NotFoundError(f"no run {run_id!r}: run ids are hexadecimal; see `shipyard runs list`")
    rows = conn.execute(select(runs.c.id).where(runs.c.id.startswith(run_id)).limit(2)).all()
    if not rows:
        raise NotFoundError(f"no run {run_id!r}; see `shipyard runs list`")
    if len(rows) > 1:
        raise InvalidInputError(f"run id prefix {run_id!r} is ambiguous; give more characters")
    return str(rows[0].id)


def _load(conn: Connection, ids: builtins.list[str]) -> builtins.list[RunInfo]:
    """RunInfo for each id, in the given order (a handful of queries for any number of runs)."""
    if not ids:
        return []
    out: dict[str, RunInfo] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        base = {
            r.id: r
            for r in conn.execute(
                select(runs, experiments.c.name.label("experiment"))
                .join(experiments, experiments.c.id == runs.c.experiment_id)
                .where(runs.c.id.in_(chunk))
            )
        }
        params: dict[str, dict[str, str]] = {i: {} for i in chunk}
        for r in conn.execute(select(run_params).where(run_params.c.run_id.in_(chunk))):
            params[r.run_id][r.key] = r.value
        tags: dict[str, dict[str, str]] = {i: {} for i in chunk}
        for r in conn.execute(select(run_tags).where(run_tags.c.run_id.in_(chunk))):
            tags[r.run_id][r.key] = r.value
        metrics: dict[str, dict[str, float]] = {i: {} for i in chunk}
        for r in conn.execute(
            select(run_latest_metrics).where(run_latest_metrics.c.run_id.in_(chunk))
        ):
            metrics[r.run_id][r.key] = from_stored(r.value)
        inputs: dict[str, list[dict[str, str]]] = {i: [] for i in chunk}
        for r in conn.execute(
            select(run_inputs).where(run_inputs.c.run_id.in_(chunk)).order_by(run_inputs.c.context)
        ):
            inputs[r.run_id].append(
                {"dataset": r.dataset, "context": r.context, "digest": r.digest}
            )
        arts: dict[str, list[dict[str, Any]]] = {i: [] for i in chunk}
        for r in conn.execute(
            select(run_artifacts)
            .where(run_artifacts.c.run_id.in_(chunk))
            .order_by(run_artifacts.c.path)
        ):
            arts[r.run_id].append({"path": r.path, "digest": r.digest, "size": int(r.size)})
        for i in chunk:
            row = base.get(i)
            if row is None:
                continue
            out[i] = RunInfo(
                id=row.id,
                name=row.name,
                experiment=row.experiment,
                status=row.status,
                lifecycle=row.lifecycle,
                start_time=int(row.start_time),
                end_time=None if row.end_time is None else int(row.end_time),
                created_by=row.created_by,
                params=dict(sorted(params[i].items())),
                metrics=dict(sorted(metrics[i].items())),
                tags=dict(sorted(tags[i].items())),
                inputs=inputs[i],
                artifacts=arts[i],
                code=dict(row.code or {}),
                environment=dict(row.environment or {}),
                error=row.error,
            )
    return [out[i] for i in ids if i in out]
