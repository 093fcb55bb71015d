"""Pipeline runs and their steps in the metadata store: the read models, and the queries and
writes the pipelines service makes (each write in the caller's audited transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.data.lock import LockedInputs
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.pipelines.cache import KeyChange
from shipyard.stores.db.tables import pipeline_runs, pipeline_steps

__all__ = ["PipelineRun", "StepExplanation", "StepRun"]

#: What a step's ``cache`` says: reused (hit, resumed) or computed (the others).
REUSED = ("hit", "resumed")


@dataclass(frozen=True)
class StepRun(ReadModel):
    """One step of a pipeline run.

    ``status``: pending, succeeded, failed or skipped (an upstream step failed). ``cache``:
    hit (outputs reused from ``run_id``, an earlier run), resumed (reused from the run this
    one resumes), miss, volatile (always runs), expired (the cached result was older than the
    step's TTL), disabled (``--no-cache``). ``run_id`` is the tracked run that computed the
    outputs."""

    name: str
    step: str
    status: str
    cache: str
    upstream: list[str]
    key: str | None
    run_id: str | None
    outputs: dict[str, Any] | None
    attempts: int
    started_at: int | None = field(metadata={"json": "epoch_ms"})
    ended_at: int | None = field(metadata={"json": "epoch_ms"})
    error: str | None = None

    json_properties = ("duration_seconds",)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at) / 1000


@dataclass(frozen=True)
class PipelineRun(ReadModel):
    """A run of a pipeline: its id is the id of its tracked run (``shipyard runs show``)."""

    id: str
    pipeline: str
    source: str
    status: str
    executor: str
    params: dict[str, Any]
    started_at: int = field(metadata={"json": "epoch_ms"})
    ended_at: int | None = field(metadata={"json": "epoch_ms"})
    created_by: str
    resumed_from: str | None
    error: str | None
    steps: list[StepRun]
    #: What the run did with the project's ``shipyard.lock`` (None: it had none, or the
    #: run's inputs were given, as a resume's are).
    lock: LockedInputs | None = None

    json_properties = ("duration_seconds", "cache_hits")

    @property
    def duration_seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at) / 1000

    @property
    def cache_hits(self) -> int:
        return sum(1 for s in self.steps if s.cache in REUSED)

    def step(self, name: str) -> StepRun:
        for s in self.steps:
            if s.name == name:
                return s
        raise NotFoundError(
            f"pipeline run {self.id[:12]} has no step {name!r} "
            f"(steps: {', '.join(s.name for s in self.steps)})"
        )

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart, each step with its state and cache result."""
        ids = {s.name: f"s{i}" for i, s in enumerate(self.steps)}
        lines = ["flowchart LR"]
        for s in self.steps:
            took = "" if s.duration_seconds is None else f" {s.duration_seconds:.2f}s"
            label = f"{s.name}<br/>{s.status}, {s.cache}{took}".replace('"', "'")
            lines.append(f'    {ids[s.name]}["{label}"]:::{s.status}')
        for s in self.steps:
            lines.extend(f"    {ids[u]} --> {ids[s.name]}" for u in s.upstream if u in ids)
        lines += [
            "    classDef succeeded fill:#d4edda,stroke:#28a745",
            "    classDef failed fill:#f8d7da,stroke:#dc3545",
            "    classDef skipped fill:#eeeeee,stroke:#999999",
            "    classDef pending fill:#fff3cd,stroke:#ffc107",
        ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StepExplanation(ReadModel):
    """Why a step hit or missed the cache: for a miss, each part of its key that differs
    from the step's last successful run (``compared_to``, a pipeline run id)."""

    name: str
    status: str
    cache: str
    key: str | None
    reason: str
    compared_to: str | None = None
    changes: list[KeyChange] = field(default_factory=list)


# -- writes -------------------------------------------------------------------------------------


def insert_run(conn: Connection, row: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    conn.execute(pipeline_runs.insert().values(**row))
    conn.execute(
        pipeline_steps.insert(),
        [
            {
                "pipeline_run_id": row["id"],
                "name": s["name"],
                "status": "pending",
                "cache": "",
                "cache_key": None,
                "components": {},
                "attempts": 0,
            }
            for s in steps
        ],
    )


def update_step(conn: Connection, run_id: str, name: str, values: dict[str, Any]) -> None:
    conn.execute(
        update(pipeline_steps)
        .where(pipeline_steps.c.pipeline_run_id == run_id)
        .where(pipeline_steps.c.name == name)
        .values(**values)
    )


def finish_run(conn: Connection, run_id: str, status: str, ended: int, error: str | None) -> None:
    conn.execute(
        update(pipeline_runs)
        .where(pipeline_runs.c.id == run_id)
        .values(status=status, ended_at=ended, error=error)
    )


# -- reads --------------------------------------------------------------------------------------


def resolve_pipeline_run(conn: Connection, run_id: str) -> str:
    if not run_id or len(run_id) > 32 or any(c not in "0123456789abcdef" for c in run_id):
        raise NotFoundError(
            f"no pipeline run {run_id!r}: ids are hexadecimal; see `shipyard pipeline runs`"
        )
    rows = conn.execute(
        select(pipeline_runs.c.id).where(pipeline_runs.c.id.startswith(run_id)).limit(2)
    ).all()
    if not rows:
        raise NotFoundError(f"no pipeline run {run_id!r}; see `shipyard pipeline runs`")
    if len(rows) > 1:
        raise InvalidInputError(f"pipeline run id prefix {run_id!r} is ambiguous")
    return str(rows[0].id)


def load_run(conn: Connection, run_id: str) -> PipelineRun:
    row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_id)).one()
    dag = row.dag or {}
    graph = dag.get("steps", {})
    steps = [
        StepRun(
            name=s.name,
            step=graph.get(s.name, {}).get("step", s.name),
            status=s.status,
            cache=s.cache,
            upstream=list(graph.get(s.name, {}).get("upstream", [])),
            key=s.cache_key,
            run_id=s.run_id,
            outputs=s.outputs,
            attempts=int(s.attempts),
            started_at=s.started_at,
            ended_at=s.ended_at,
            error=s.error,
        )
        for s in conn.execute(
            select(pipeline_steps)
            .where(pipeline_steps.c.pipeline_run_id == run_id)
            .order_by(pipeline_steps.c.id)
        )
    ]
    return PipelineRun(
        id=row.id,
        pipeline=row.pipeline,
        source=row.source,
        status=row.status,
        executor=row.executor,
        params=dict(row.params or {}),
        started_at=int(row.started_at),
        ended_at=None if row.ended_at is None else int(row.ended_at),
        created_by=row.created_by,
        resumed_from=row.resumed_from,
        error=row.error,
        steps=steps,
        lock=LockedInputs.from_dict(dag["lock"]) if dag.get("lock") else None,
    )


def list_runs(conn: Connection, pipeline: str | None, limit: int) -> list[PipelineRun]:
    stmt = select(pipeline_runs.c.id).order_by(pipeline_runs.c.started_at.desc()).limit(limit)
    if pipeline is not None:
        stmt = stmt.where(pipeline_runs.c.pipeline == pipeline)
    return [load_run(conn, r.id) for r in conn.execute(stmt)]


def pinned_inputs(conn: Connection, run_id: str) -> dict[str, dict[str, str]]:
    """The exact dataset and model versions a pipeline run read, by the reference its graph
    gave (``dataset:credit@latest`` → ``{"kind", "ref": "credit@3", "digest"}``)."""
    dag = conn.execute(select(pipeline_runs.c.dag).where(pipeline_runs.c.id == run_id)).scalar()
    return dict((dag or {}).get("inputs") or {})


def find_cached(conn: Connection, key: str) -> Any:
    """The latest succeeded step, of any pipeline run, that computed this key (its row)."""
    return conn.execute(
        select(pipeline_steps)
        .where(pipeline_steps.c.cache_key == key)
        .where(pipeline_steps.c.status == "succeeded")
        .where(pipeline_steps.c.run_id.is_not(None))
        .order_by(pipeline_steps.c.ended_at.desc(), pipeline_steps.c.id.desc())
        .limit(1)
    ).first()


def step_row(conn: Connection, run_id: str, name: str) -> Any:
    return conn.execute(
        select(pipeline_steps)
        .where(pipeline_steps.c.pipeline_run_id == run_id)
        .where(pipeline_steps.c.name == name)
    ).first()


def previous_step(conn: Connection, pipeline: str, name: str, before: int, run_id: str) -> Any:
    """The last succeeded run of step ``name`` of ``pipeline`` in a pipeline run other than
    ``run_id`` started no later than ``before`` (ms): what a miss is compared with."""
    return conn.execute(
        select(pipeline_steps, pipeline_runs.c.id.label("pipeline_run"))
        .join(pipeline_runs, pipeline_runs.c.id == pipeline_steps.c.pipeline_run_id)
        .where(pipeline_runs.c.pipeline == pipeline)
        .where(pipeline_runs.c.started_at <= before)
        .where(pipeline_runs.c.id != run_id)
        .where(pipeline_steps.c.name == name)
        .where(pipeline_steps.c.status == "succeeded")
        .order_by(pipeline_runs.c.started_at.desc(), pipeline_steps.c.id.desc())
        .limit(1)
    ).first()
