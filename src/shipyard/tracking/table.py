"""The runs table: one page of runs with chosen columns, sorted on any metric's last, lowest or
highest value, a parameter, a tag or an attribute, plus the count of every run that passes the
filter; and the whole filtered result as CSV, streamed.

>>> page = project.runs.table(experiments=["credit"], filter="params.model = 'gbm'",
...                           order_by="metrics.loss ASC", stat="min", limit=50)  # doctest: +SKIP
>>> page.total, page.rows[0].metrics["loss"].min                                   # doctest: +SKIP
(4210, 0.1132)

Sorting and filtering read ``run_latest_metrics`` (one row per run and metric, with its range
kept at write time) and never the metric points, so a page costs the same at 100 or 10,000
runs: one ordered id query, one count, and four small queries for the page's cells.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.stores.db.tables import experiments, run_latest_metrics, run_params, run_tags, runs
from shipyard.tracking.search import parse_order_by
from shipyard.tracking.search_sql import METRIC_STATS, search_runs_stmt

__all__ = [
    "MAX_PAGE",
    "Column",
    "MetricCell",
    "RunRow",
    "RunTable",
    "TableQuery",
    "parse_columns",
]

#: The most rows one page may hold.
MAX_PAGE = 1000
#: Runs loaded per query when exporting.
EXPORT_CHUNK = 500

Stat = Literal["last", "min", "max"]
Kind = Literal["params", "metrics", "tags"]
_ENTITY_KIND: dict[str, Kind] = {"param": "params", "metric": "metrics", "tag": "tags"}


@dataclass(frozen=True)
class MetricCell(ReadModel):
    """A metric in a runs table: its last value (at ``step``), lowest and highest value."""

    last: float
    min: float
    max: float
    step: int


@dataclass(frozen=True)
class RunRow(ReadModel):
    """One run in a runs table, with the chosen columns only."""

    id: str
    name: str
    experiment: str
    status: str
    start_time: int = field(metadata={"json": "epoch_ms"})
    end_time: int | None = field(metadata={"json": "epoch_ms"})
    created_by: str
    params: dict[str, str]
    metrics: dict[str, MetricCell]
    tags: dict[str, str]


@dataclass(frozen=True)
class Column(ReadModel):
    """A chosen column: ``kind`` (params, metrics or tags) and key."""

    kind: Kind
    key: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.key}"


@dataclass(frozen=True)
class RunTable(ReadModel):
    """One page of a runs table: ``total`` runs pass the filter, ``rows`` are those from
    ``offset`` on, in order, with the ``columns`` chosen (or, when none were, every key the
    page's runs have). What a column chooser offers is :func:`available_keys`."""

    total: int
    offset: int
    limit: int
    order_by: str
    stat: str
    columns: list[Column]
    rows: list[RunRow]


def parse_columns(specs: Sequence[str]) -> list[Column]:
    """Columns from ``params.KEY``, ``metrics.KEY`` or ``tags.KEY`` texts (the identifiers of
    the filter grammar, so a key with spaces is written ``metrics.`my loss```).

    >>> [str(c) for c in parse_columns(["metrics.auc", "params.lr"])]
    ['metrics.auc', 'params.lr']

    Raises:
        InvalidInputError: a text is not a param, metric or tag identifier.
    """
    out: list[Column] = []
    for spec in specs:
        (term,) = parse_order_by([spec])
        if term.entity not in _ENTITY_KIND or term.descending:
            raise InvalidInputError(
                f"invalid column {spec!r}: choose params.KEY, metrics.KEY or tags.KEY "
                "(run attributes are always shown)"
            )
        column = Column(_ENTITY_KIND[term.entity], term.key)
        if column not in out:
            out.append(column)
    return out


@dataclass(frozen=True)
class TableQuery:
    """What a runs table shows: which runs (experiments by name, filter text, lifecycle),
    in which order (one order-by term of the filter grammar and the metric statistic it
    sorts on), and which columns (None: every param and metric key the runs shown have)."""

    experiments: tuple[str, ...] | None = None
    filter: str | None = None
    order_by: str | None = None
    stat: Stat = "last"
    columns: tuple[str, ...] | None = None
    include_deleted: bool = False

    def statement(self, conn: Connection) -> Any:
        """The ordered SELECT of the matching run ids.

        Raises:
            NotFoundError: an experiment does not exist.
            FilterSyntaxError: the filter or the order-by term does not parse.
            InvalidInputError: more than one order-by term, or ``stat`` on a non-metric.
        """
        terms = parse_order_by(self.order_by)
        if len(terms) > 1:
            raise InvalidInputError(
                f"a runs table sorts on one term, got {len(terms)}: {self.order_by!r}"
            )
        if self.stat not in METRIC_STATS:
            raise InvalidInputError(f"stat must be last, min or max, not {self.stat!r}")
        if self.stat != "last" and (not terms or terms[0].entity != "metric"):
            raise InvalidInputError(
                f"stat {self.stat!r} applies to sorting on a metric; order by metrics.KEY"
            )
        return search_runs_stmt(
            self.filter,
            [str(t) for t in terms],
            experiment_ids=self.experiment_ids(conn),
            include_deleted=self.include_deleted,
            metric_stat=self.stat,
        )

    def experiment_ids(self, conn: Connection) -> list[int] | None:
        if self.experiments is None:
            return None
        found = {
            r.name: int(r.id)
            for r in conn.execute(
                select(experiments.c.id, experiments.c.name).where(
                    experiments.c.name.in_(list(self.experiments))
                )
            )
        }
        missing = [n for n in self.experiments if n not in found]
        if missing:
            raise NotFoundError(f"no experiment '{missing[0]}'; see `shipyard experiments list`")
        return list(found.values())

    def chosen_columns(self) -> list[Column] | None:
        """The columns asked for, or None for "every param and metric key"."""
        return None if self.columns is None else parse_columns(self.columns)


def build_table(conn: Connection, query: TableQuery, *, offset: int, limit: int) -> RunTable:
    """One page of the runs table (see the module docstring).

    Raises:
        InvalidInputError: ``offset`` below 0 or ``limit`` outside 1..MAX_PAGE.
    """
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(
            f"a runs table page starts at offset 0 or more and holds 1 to {MAX_PAGE} rows, "
            f"not offset {offset}, limit {limit}"
        )
    stmt = query.statement(conn)
    total = conn.execute(select(func.count()).select_from(stmt.order_by(None).subquery()))
    ids = [r[0] for r in conn.execute(stmt.offset(offset).limit(limit))]
    columns = query.chosen_columns()
    rows = load_rows(conn, ids, columns)
    if columns is None:
        columns = [Column("params", k) for k in sorted({k for r in rows for k in r.params})]
        columns += [Column("metrics", k) for k in sorted({k for r in rows for k in r.metrics})]
    terms = parse_order_by(query.order_by)
    return RunTable(
        total=int(total.scalar_one()),
        offset=offset,
        limit=limit,
        order_by=str(terms[0]) if terms else "attributes.start_time DESC",
        stat=query.stat,
        columns=columns,
        rows=rows,
    )


def available_keys(conn: Connection, experiment_ids: list[int] | None) -> dict[str, list[str]]:
    """Every param, metric and tag key of the runs (active and deleted) of the experiments
    (None: of all runs): the columns a runs table can show. It reads a row per run and key,
    so it is asked for apart from a page (a column chooser loads it once)."""
    out: dict[str, list[str]] = {}
    for kind, table in (
        ("params", run_params),
        ("metrics", run_latest_metrics),
        ("tags", run_tags),
    ):
        stmt = select(table.c.key).distinct().order_by(table.c.key)
        if experiment_ids is not None:
            stmt = stmt.where(
                table.c.run_id.in_(
                    select(runs.c.id).where(runs.c.experiment_id.in_(experiment_ids))
                )
            )
        out[kind] = [r[0] for r in conn.execute(stmt)]
    return out


def load_rows(conn: Connection, ids: list[str], columns: list[Column] | None) -> list[RunRow]:
    """RunRow for each id, in the given order, with the chosen columns' cells (None: every
    param and metric)."""
    if not ids:
        return []
    wanted: dict[Kind, list[str] | None] = {"params": [], "metrics": [], "tags": []}
    if columns is None:
        wanted["params"] = wanted["metrics"] = None
    else:
        for c in columns:
            wanted[c.kind].append(c.key)  # type: ignore[union-attr]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, MetricCell]] = {i: {} for i in ids}
    texts: tuple[tuple[Kind, Any, dict[str, dict[str, str]]], ...] = (
        ("params", run_params, params),
        ("tags", run_tags, tags),
    )
    for kind, table, into in texts:
        keys = wanted[kind]
        if keys != []:
            stmt = select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(ids))
            if keys is not None:
                stmt = stmt.where(table.c.key.in_(keys))
            for t in conn.execute(stmt):
                into[t.run_id][t.key] = t.value
    keys = wanted["metrics"]
    if keys != []:
        m = run_latest_metrics.c
        mstmt = select(m.run_id, m.key, m.value, m.min_value, m.max_value, m.step).where(
            m.run_id.in_(ids)
        )
        if keys is not None:
            mstmt = mstmt.where(m.key.in_(keys))
        for r in conn.execute(mstmt):
            low, high = r.min_value, r.max_value
            if low > high:  # the empty range of a series that logged NaN alone
                low = high = math.nan
            metrics[r.run_id][r.key] = MetricCell(float(r.value), low, high, int(r.step))
    base = {
        r.id: r
        for r in conn.execute(
            select(
                runs.c.id,
                runs.c.name,
                runs.c.status,
                runs.c.start_time,
                runs.c.end_time,
                runs.c.created_by,
                experiments.c.name.label("experiment"),
            )
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .where(runs.c.id.in_(ids))
        )
    }
    return [
        RunRow(
            id=i,
            name=base[i].name,
            experiment=base[i].experiment,
            status=base[i].status,
            start_time=int(base[i].start_time),
            end_time=None if base[i].end_time is None else int(base[i].end_time),
            created_by=base[i].created_by,
            params=params[i],
            metrics=metrics[i],
            tags=tags[i],
        )
        for i in ids
        if i in base
    ]


# -- CSV ------------------------------------------------------------------------------------------

_ATTRIBUTE_HEADER = ["id", "name", "experiment", "status", "start_time", "end_time", "created_by"]


def csv_header(columns: list[Column]) -> list[str]:
    """The CSV header: run attributes, then each column (a metric as its last value,
    ``min(...)`` and ``max(...)``)."""
    out = list(_ATTRIBUTE_HEADER)
    for c in columns:
        out.append(str(c))
        if c.kind == "metrics":
            out += [f"min({c})", f"max({c})"]
    return out


def csv_cells(row: RunRow, columns: list[Column]) -> list[Any]:
    cells: list[Any] = [
        row.id,
        _text(row.name),
        _text(row.experiment),
        row.status,
        _iso(row.start_time),
        _iso(row.end_time),
        _text(row.created_by),
    ]
    for c in columns:
        if c.kind == "metrics":
            m = row.metrics.get(c.key)
            cells += ["", "", ""] if m is None else [repr(m.last), repr(m.min), repr(m.max)]
        else:
            cells.append(_text(getattr(row, c.kind).get(c.key, "")))
    return cells


def csv_lines(read: Any, query: TableQuery) -> Iterator[str]:
    """The whole filtered table as CSV text, in chunks of :data:`EXPORT_CHUNK` runs.
    ``read`` opens a read connection (``Database.read``); the ids are taken in one read
    and each chunk's cells in another, so the export never holds a transaction while the
    client reads."""
    with read() as conn:
        ids = [r[0] for r in conn.execute(query.statement(conn))]
        columns = query.chosen_columns()
        if columns is None:
            keys = available_keys(conn, query.experiment_ids(conn))
            columns = [Column("params", k) for k in keys["params"]]
            columns += [Column("metrics", k) for k in keys["metrics"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(csv_header(columns))
    yield _drain(buffer)
    for start in range(0, len(ids), EXPORT_CHUNK):
        with read() as conn:
            rows = load_rows(conn, ids[start : start + EXPORT_CHUNK], columns)
        writer.writerows(csv_cells(r, columns) for r in rows)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


# A cell a spreadsheet would run as a formula (OWASP's "CSV injection"): text starting with
# one of these gets a leading apostrophe. Numbers (a param "-1") are left as they are.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    if value.startswith(_FORMULA_STARTS):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
