"""Runs as remote logging clients read them (the MLflow protocol): each run's experiment id
and the latest point (value, step, time) of each metric, loaded lean for pages of searches.

>>> project.runs.records([run_id])[0].latest_metrics       # doctest: +SKIP
[MetricPoint(key='auc', value=0.91, step=0, timestamp=1778000000000)]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.tracking.active import EXTERNAL_PREFIX

if TYPE_CHECKING:
    from shipyard.stores.artifacts import ArtifactStore

__all__ = ["MetricPoint", "RunRecord", "load_records"]

#: Runs per query: well under SQLite's 32,766 bound parameters.
CHUNK = 2000


@dataclass(frozen=True)
class MetricPoint(ReadModel):
    """One point of a metric series."""

    key: str
    value: float
    step: int
    timestamp: int  # milliseconds since the epoch


@dataclass(frozen=True)
class RunRecord(ReadModel):
    """A run with its experiment's id and each metric's latest point (see
    :meth:`Runs.records`)."""

    id: str
    name: str
    experiment_id: int
    status: str
    lifecycle: str
    start_time: int  # milliseconds since the epoch
    end_time: int | None
    created_by: str
    params: dict[str, str]
    tags: dict[str, str]
    latest_metrics: list[MetricPoint]
    inputs: list[dict[str, str]] = field(default_factory=list)
    #: The descriptions of external inputs (``external:…`` names), by ``name|context``.
    external_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_records(conn: Connection, artifacts: ArtifactStore, ids: Sequence[str]) -> list[RunRecord]:
    """RunRecord for each existing id, in the given order (five queries per 2,000 runs).

    A search page is up to 1,000 runs with about ten rows each in these tables, so the rows
    go straight from the driver (no SQLAlchemy row per result) and the page's ids are one
    bound value (:func:`_in_ids`) rather than one bound parameter each."""
    out: dict[str, RunRecord] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        with closing(conn.connection.dbapi_connection.cursor()) as cursor:  # type: ignore[union-attr]
            out.update(_chunk(cursor, conn.dialect.name, artifacts, chunk))
    return [out[i] for i in ids if i in out]


def _chunk(
    cursor: Any, dialect: str, artifacts: ArtifactStore, chunk: list[str]
) -> dict[str, RunRecord]:
    out: dict[str, RunRecord] = {}
    fetch = _fetcher(cursor, dialect, chunk)
    params: dict[str, dict[str, str]] = {i: {} for i in chunk}
    for run_id, key, value in fetch("run_id, key, value", "run_params", "run_id, key"):
        params[run_id][key] = value
    tags: dict[str, dict[str, str]] = {i: {} for i in chunk}
    for run_id, key, value in fetch("run_id, key, value", "run_tags", "run_id, key"):
        tags[run_id][key] = value
    latest: dict[str, list[MetricPoint]] = {i: [] for i in chunk}
    for run_id, key, value, step, ts in fetch(
        "run_id, key, value, step, timestamp", "run_latest_metrics", "run_id, key"
    ):
        latest[run_id].append(MetricPoint(key, float(value), int(step), int(ts)))
    inputs: dict[str, list[dict[str, str]]] = {i: [] for i in chunk}
    for run_id, dataset, context, digest in fetch(
        "run_id, dataset, context, digest", "run_inputs", "context"
    ):
        inputs[run_id].append({"dataset": dataset, "context": context, "digest": digest})
    for run_id, name, experiment_id, status, lifecycle, start_time, end_time, by in fetch(
        "id, name, experiment_id, status, lifecycle, start_time, end_time, created_by",
        "runs",
        None,
        key="id",
    ):
        out[run_id] = RunRecord(
            id=run_id,
            name=name,
            experiment_id=int(experiment_id),
            status=status,
            lifecycle=lifecycle,
            start_time=int(start_time),
            end_time=None if end_time is None else int(end_time),
            created_by=by,
            params=params[run_id],
            tags=tags[run_id],
            latest_metrics=latest[run_id],
            inputs=inputs[run_id],
            external_inputs=_external(artifacts, run_id, inputs[run_id]),
        )
    return out


def _fetcher(cursor: Any, dialect: str, ids: list[str]) -> Callable[..., list[Any]]:
    """``fetch(columns, table, order_by, key="run_id")``: the rows of ``table`` whose ``key``
    is one of ``ids``, as plain tuples from the driver's ``cursor``."""
    where, value = _in_ids(dialect, ids)

    def fetch(columns: str, table: str, order_by: str | None, key: str = "run_id") -> list[Any]:
        order = f" ORDER BY {order_by}" if order_by else ""
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {key} {where}{order}", (value,))
        return list(cursor.fetchall())

    return fetch


def _in_ids(dialect: str, ids: list[str]) -> tuple[str, Any]:
    """The condition "is one of ``ids``" with a single bound value, and that value: an array
    on PostgreSQL, a JSON list read by ``json_each`` on SQLite."""
    if dialect == "postgresql":
        return "= ANY(%s)", ids
    return "IN (SELECT value FROM json_each(?))", json.dumps(ids)


def _external(
    artifacts: ArtifactStore, run_id: str, inputs: list[dict[str, str]]
) -> dict[str, dict[str, Any]]:
    out = {}
    for i in inputs:
        if i["dataset"].startswith(EXTERNAL_PREFIX):
            described = artifacts.read_bytes(i["digest"], owner=f"run {run_id}")
            out[f"{i['dataset']}|{i['context']}"] = json.loads(described)
    return out
