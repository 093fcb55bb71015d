"""A run being recorded: parameters, buffered metric points, tags, inputs, artifacts, models.

Metric points are kept in memory and written in batches (every 20,000 points, every two
seconds, and when the run ends), each batch in one transaction with its audit event. A run this
process started is not written before its first flush or its end (see
:mod:`shipyard.tracking.pending`): a short run is stored whole in one transaction.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Self

from sqlalchemy import String, bindparam, case, func, select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.stores.audit import AuditedTransaction
from shipyard.stores.db.tables import (
    blob_refs,
    run_artifacts,
    run_inputs,
    run_latest_metrics,
    run_params,
    run_tags,
    runs,
)
from shipyard.stores.lineage import add_edge
from shipyard.tracking.blocks import add_points, long_series, series_without_blocks, stored_points
from shipyard.tracking.metric_values import to_stored
from shipyard.tracking.pending import PendingStart, param_conflict

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.registry.models import Models, ModelVersion

__all__ = [
    "ActiveRun",
    "MetricInput",
    "RunLifecycle",
    "StoredArtifact",
    "contributor_tx",
    "now_ms",
    "own_blob",
    "param_text",
]

KIND = "run"
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
FLUSH_POINTS = 20_000
FLUSH_SECONDS = 2.0
MAX_PARAM_LENGTH = 6000
#: The name prefix of inputs that are not shipyard datasets (see log_external_input).
EXTERNAL_PREFIX = "external:"
INT64 = 2**63  # steps and timestamps are stored as signed 64-bit integers


#: A metric point to log: key, value, step (None: the key's next), timestamp in ms (None: now).
MetricInput = tuple[str, Any, int | None, int | None]


@dataclass(frozen=True)
class StoredArtifact(ReadModel):
    """A file stored with a run: its path in the run, digest and size in bytes."""

    path: str
    digest: str
    size: int


def _checked_point(key: str, value: Any, step: Any, timestamp: int) -> tuple[int | None, float]:
    """The step (None when not given) and value of a metric point, checked: a number (NaN
    and infinities included, as MLflow records them), step and timestamp within the 64 bits
    they are stored in.

    Raises:
        InvalidInputError: anything else, naming the metric.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"metric {key!r} must be a number, got {value!r}") from None
    explicit = None if step is None else int(step)
    if not (-INT64 <= timestamp < INT64 and (explicit is None or -INT64 <= explicit < INT64)):
        raise InvalidInputError(
            f"metric {key!r}: step {step} or timestamp {timestamp} is beyond 64 bits"
        )
    return explicit, number


def now_ms() -> int:
    return int(time.time() * 1000)


class RunLifecycle:
    """What a run being recorded does around its logging, locally or through a server: CPU
    and memory sampling, and the ``with`` block that ends the run (FINISHED, KILLED on an
    interrupt, FAILED with the traceback)."""

    _sampler: Any = None
    _ended: bool = False
    id: str
    name: str
    experiment: str

    def __repr__(self) -> str:
        fields = f"id={self.id!r}, name={self.name!r}, experiment={self.experiment!r}"
        return f"{type(self).__name__}({fields})"

    def log_param(self, key: str, value: Any) -> None:
        """Record one hyper-parameter (stored as text). Re-logging a different value fails."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def set_tag(self, key: str, value: Any) -> None:
        """Set (or replace) a tag."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point of a metric series. Without ``step``, steps count up per key."""
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        raise NotImplementedError

    def flush(self) -> int:
        raise NotImplementedError

    def _record_end(self, status: str, error: str | None) -> None:
        """Store the run's end (status, time, error)."""
        raise NotImplementedError

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Write what is buffered and close the run with ``status`` (FINISHED, FAILED or
        KILLED); a run already ended stays as it is."""
        if self._ended:
            return
        if status not in STATUSES[1:]:
            raise InvalidInputError(f"status must be FINISHED, FAILED or KILLED, not {status!r}")
        self.stop_system_metrics()
        try:
            self.flush()
        finally:
            self._ended = True
            from shipyard.registry.autolog import deactivate

            deactivate(self)
            self._record_end(status, error)

    def start_system_metrics(self, interval: float = 5.0) -> None:
        """Sample CPU and memory of this process every ``interval`` seconds as metrics."""
        from shipyard.tracking.capture import SystemMetricsSampler

        if self._sampler is None:
            self._sampler = SystemMetricsSampler(
                interval, lambda values, step: self.log_metrics(values, step=step)
            )
            self._sampler.start()

    def stop_system_metrics(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("KILLED", "interrupted")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb))[-4000:]
            self.end("FAILED", text)


class ActiveRun(RunLifecycle):
    """A run being recorded; use it as a context manager (see :meth:`Runs.start`)."""

    def __init__(
        self,
        ctx: ServiceContext,
        run_id: str,
        name: str,
        experiment: str,
        *,
        datasets: Datasets,
        models: Models,
        next_steps: Mapping[str, int] | None = None,
        ended: bool = False,
        pending: PendingStart | None = None,
        blocks_complete: bool = False,
    ) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._models = models
        self.id = run_id
        self.name = name
        self.experiment = experiment
        self._points: list[tuple[str, str, int, int, float]] = []
        # Guards the buffer and the step counters: the system-metrics thread logs (and may
        # flush) while the training thread does. Never held during a database write.
        self._buffer_lock = threading.Lock()
        self._last_flush = time.monotonic()
        # The next step per key for points logged without one (a resumed run carries on).
        self._step: dict[str, int] = dict(next_steps or {})
        self._ended = ended
        self._sampler: Any = None
        # Not in the store yet: what its first write records. Guarded by _start_lock, which
        # is held during that write (the sampler thread may flush while this one logs).
        self._pending = pending
        self._start_lock = threading.RLock()
        # Whether every series of the run in the store has its blocks (a run this handle
        # created, and wrote before its end): then writes need not look for short series
        # without them (see shipyard.tracking.blocks).
        self._blocks_complete = blocks_complete

    @property
    def pending(self) -> bool:
        """Whether the run is still held in this process, not written to the store yet."""
        return self._pending is not None

    # -- parameters and tags ------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyper-parameters in one write.

        Raises:
            ConflictError: a parameter was already logged with another value.
        """
        items = {check_key(k, "parameter"): param_text(v) for k, v in params.items()}
        if not items:
            return
        if self._pending is not None:
            with self._start_lock:
                if self._pending is not None:
                    self._pending.add_params(self.id, items)
                    return
        with self._tx() as tx:
            fresh = _new_params(tx.conn, self.id, items)
            if fresh:
                tx.conn.execute(run_params.insert(), fresh)
                tx.record("run.params", KIND, self.id, {"params": dict(items)})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set (or replace) several tags in one write."""
        items = {check_key(k, "tag"): str(v) for k, v in tags.items()}
        if not items:
            return
        if self._pending is not None:
            with self._start_lock:
                if self._pending is not None:
                    self._pending.tags.update(items)
                    return
        with self._tx() as tx:
            write_tags(tx.conn, self.id, items)
            tx.record("run.tags", KIND, self.id, {"tags": items})

    # -- metrics ------------------------------------------------------------------------------

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point for each metric. Points are buffered and written in batches.

        Raises:
            InvalidInputError: a key is empty or a value is not a number.
        """
        ts = now_ms() if timestamp is None else int(timestamp)
        self._buffer([(key, value, step, ts) for key, value in metrics.items()])

    def log_points(self, points: Iterable[MetricInput]) -> int:
        """Record many points, each ``(key, value, step, timestamp)`` with its own step (None:
        the key's next) and timestamp (None: now, in milliseconds), and write them at once
        (with anything buffered before); returns how many points were given. A refused batch
        writes none of them.

        >>> run.log_points([("loss", 0.9, 0, None), ("loss", 0.7, 1, None)])  # doctest: +SKIP
        2

        Raises:
            InvalidInputError: a key is empty or a value is not a number.
        """
        now = now_ms()
        batch = [(k, v, s, now if t is None else int(t)) for k, v, s, t in points]
        self._buffer(batch, flush=True)
        return len(batch)

    def _buffer(
        self, batch: list[tuple[str, Any, int | None, int]], *, flush: bool = False
    ) -> None:
        """Check every point of ``batch`` (each with its timestamp), then buffer them all,
        numbering the points without a step; flush when asked or when due."""
        counters = self._step
        run_id = self.id
        checked: list[tuple[str, str, int | None, int, float]] = []
        new_keys: list[str] = []
        # Check the whole call first: a refused call buffers none of its points.
        for key, value, step, ts in batch:
            if key not in counters and key not in new_keys:
                check_key(key, "metric")
                new_keys.append(key)
            explicit, number = _checked_point(key, value, step, ts)
            checked.append((run_id, key, explicit, ts, number))
        with self._buffer_lock:
            for key in new_keys:
                counters.setdefault(key, 0)
            points = self._points
            for _, key, explicit, ts, number in checked:
                if explicit is None:
                    s = counters[key]
                    counters[key] = s + 1
                else:
                    s = explicit
                    if s >= counters[key]:
                        counters[key] = s + 1
                points.append((run_id, key, s, ts, number))
            due = (
                flush
                or len(points) >= FLUSH_POINTS
                or time.monotonic() - self._last_flush > FLUSH_SECONDS
            )
        if due:
            self.flush()

    def flush(self) -> int:
        """Write buffered metric points now (and the run itself, when it is not in the store
        yet); returns how many points were written."""
        with self._buffer_lock:
            points, self._points = self._points, []
            self._last_flush = time.monotonic()
        try:
            if self._pending is not None and self._write_pending(points):
                return len(points)
            if not points:
                return 0
            with self._tx() as tx:
                _insert_points(tx, self.id, points, blocks_complete=self._blocks_complete)
        except BaseException:
            with self._buffer_lock:
                self._points = points + self._points  # keep them for the next attempt
            raise
        return len(points)

    def _write_pending(
        self,
        points: list[tuple[str, str, int, int, float]],
        end: tuple[str, str | None] | None = None,
    ) -> bool:
        """Write the pending run with ``points`` (and, with ``end``, its end status and error)
        in one transaction with one audit event; False when the run was already written."""
        with self._start_lock:
            pending = self._pending
            if pending is None:
                return False
            with contributor_tx(self._ctx, "log to runs") as tx:
                if end is not None:
                    status, error = end
                    payload = pending.write(
                        tx, self.id, status=status, end_time=now_ms(), error=error
                    )
                    payload.update(status=status, error=error)
                else:
                    payload = pending.write(tx, self.id)
                if points:
                    _insert_points(tx, self.id, points, record=False, whole=end is not None)
                    payload["points"] = len(points)
                    payload["keys"] = sorted({p[1] for p in points})
                tx.record("run.start" if end is None else "run.record", KIND, self.id, payload)
            # Written before its end, every series the run stores gets its blocks.
            self._blocks_complete = end is None
            self._pending = None
        return True

    def log_batch(
        self,
        metrics: Sequence[tuple[str, Any, int, int]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metric points ``(key, value, timestamp ms, step)``, parameters and tags now,
        unbuffered, in one transaction with one audit event (what remote clients send).

        Raises:
            InvalidInputError: a key is empty or too long, or a value is not a finite number.
            ConflictError: a parameter was already logged with another value.
        """
        run_id = self.id
        checked: set[str] = set()
        points: list[tuple[str, str, int, int, float]] = []
        for key, value, timestamp, step in metrics:
            if key not in checked:
                check_key(key, "metric")
                checked.add(key)
            explicit, number = _checked_point(key, value, step, int(timestamp))
            points.append(
                (run_id, key, int(step) if explicit is None else explicit, int(timestamp), number)
            )
        param_items = {check_key(k, "parameter"): param_text(v) for k, v in (params or {}).items()}
        tag_items = {check_key(k, "tag"): str(v) for k, v in (tags or {}).items()}
        if not (points or param_items or tag_items):
            return
        with self._tx() as tx:
            payload: dict[str, Any] = {}
            if param_items:
                fresh = _new_params(tx.conn, run_id, param_items)
                if fresh:
                    tx.conn.execute(run_params.insert(), fresh)
                payload["params"] = param_items
            if tag_items:
                write_tags(tx.conn, run_id, tag_items)
                payload["tags"] = tag_items
            if points:
                _insert_points(
                    tx, run_id, points, record=False, blocks_complete=self._blocks_complete
                )
                payload["points"] = len(points)
                payload["keys"] = sorted(checked)
            tx.record("run.batch", KIND, run_id, payload)

    def delete_tag(self, key: str) -> None:
        """Remove a tag.

        Raises:
            NotFoundError: the run has no such tag.
        """
        with self._tx() as tx:
            gone = tx.conn.execute(
                run_tags.delete().where(run_tags.c.run_id == self.id).where(run_tags.c.key == key)
            )
            if not gone.rowcount:
                raise NotFoundError(f"No tag with name: {key} in run with id {self.id}")
            tx.record("run.tag_delete", KIND, self.id, {"key": key})

    def update(
        self, *, status: str | None = None, end_time: int | None = None, name: str | None = None
    ) -> None:
        """Change the status (any of RUNNING, FINISHED, FAILED, KILLED, as MLflow allows), the
        end time or the name of the run, flushing buffered points first."""
        values: dict[str, Any] = {}
        if status is not None:
            if status not in STATUSES:
                raise InvalidInputError(
                    f"status must be one of {', '.join(STATUSES)}, not {status!r}"
                )
            values["status"] = status
        if end_time is not None:
            values["end_time"] = int(end_time)
        elif status is not None and status != "RUNNING":
            values["end_time"] = now_ms()
        if name:
            values["name"] = check_key(name, "run")
        if not values:
            return
        self.flush()
        with self._tx() as tx:
            tx.conn.execute(update(runs).where(runs.c.id == self.id).values(**values))
            tx.record("run.update", KIND, self.id, values)
        if name:
            self.name = name
        if status is not None:
            self._ended = status != "RUNNING"

    # -- inputs, artifacts, models ------------------------------------------------------------

    def log_input(self, dataset: str, context: str = "train") -> None:
        """Record that this run read a dataset version (lineage dataset → run)."""
        v = self._datasets.get(dataset)
        context = check_key(context, "input context")
        with self._tx() as tx:
            if _has_input(tx.conn, self.id, v.ref, context):
                return
            tx.conn.execute(
                run_inputs.insert().values(
                    run_id=self.id, dataset=v.ref, context=context, digest=v.digest
                )
            )
            add_edge(tx.conn, ("dataset", v.ref), (KIND, self.id), f"input:{context}")
            tx.record("run.input", KIND, self.id, {"dataset": v.ref, "context": context})

    def log_output(self, dataset: str) -> None:
        """Record that this run made a dataset version (lineage run → dataset), as a
        pipeline step does with the table it returns; recording it twice is a no-op."""
        from shipyard.stores.lineage import children_of

        v = self._datasets.get(dataset)
        with self._tx() as tx:
            if any(
                c["kind"] == "dataset" and c["ref"] == v.ref
                for c in children_of(tx.conn, KIND, self.id)
            ):
                return
            add_edge(tx.conn, (KIND, self.id), ("dataset", v.ref), "produced")
            tx.record("run.output", KIND, self.id, {"dataset": v.ref, "digest": v.digest})

    def log_external_input(
        self, name: str, digest: str, description: Mapping[str, Any], context: str = ""
    ) -> str:
        """Record that this run read a dataset shipyard does not hold, as a remote client
        describes it (MLflow: name, digest, source type, source, schema, profile, tags).

        The description is stored as a JSON blob owned by the run; the input's name is
        ``external:<name>@<digest>`` and its digest the blob's. Returns the input's name.
        """
        import json

        ref = f"{EXTERNAL_PREFIX}{name}@{digest}"[:300]
        context = check_key(context, "input context") if context else ""
        data = json.dumps(description, sort_keys=True, separators=(",", ":")).encode()
        with self._ctx.db.read() as conn:  # before the blob, so a viewer stores nothing
            require_role(conn, self._ctx.actor, "contributor", "log to runs")
        blob, _ = self._ctx.artifacts.put_bytes(data)
        with self._tx() as tx:
            if _has_input(tx.conn, self.id, ref, context):
                return ref
            tx.conn.execute(
                run_inputs.insert().values(
                    run_id=self.id, dataset=ref, context=context, digest=blob.digest
                )
            )
            own_blob(tx.conn, blob.digest, self.id, f"inputs/{ref}/{context}", role="input")
            tx.record("run.input", KIND, self.id, {"dataset": ref, "context": context})
        return ref

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> list[str]:
        """Store a file (or every file of a folder) with the run; returns the stored paths."""
        src = Path(path)
        if not src.exists():
            raise InvalidInputError(f"{src}: no such file or folder")
        base = name or src.name
        if src.is_dir():
            files = [
                (f, f"{base}/{f.relative_to(src).as_posix()}")
                for f in sorted(src.rglob("*"))
                if f.is_file()
            ]
        else:
            files = [(src, base)]
        stored = []
        for f, rel in files:
            blob, _ = self._ctx.artifacts.put_file(f)
            stored.append((rel, blob.digest, blob.size))
        self._record_artifacts(stored)
        return [s[0] for s in stored]

    def put_artifact(self, path: str, stream: BinaryIO) -> StoredArtifact:
        """Store what ``stream`` holds as the run's artifact ``path`` (a relative path such as
        ``plots/roc.png``; an artifact already at that path is replaced).

        Raises:
            InvalidInputError: the path is empty, absolute or climbs out with ``..``.
        """
        rel = check_artifact_path(path)
        with self._ctx.db.read() as conn:  # refuse a viewer before storing any bytes
            require_role(conn, self._ctx.actor, "contributor", "log to runs")
        blob, _ = self._ctx.artifacts.put_stream(stream)
        self._record_artifacts([(rel, blob.digest, blob.size)])
        return StoredArtifact(rel, blob.digest, blob.size)

    def _record_artifacts(self, stored: list[tuple[str, str, int]]) -> None:
        with self._tx() as tx:
            for rel, digest, size in stored:
                tx.conn.execute(
                    run_artifacts.delete()
                    .where(run_artifacts.c.run_id == self.id)
                    .where(run_artifacts.c.path == rel)
                )
                tx.conn.execute(
                    run_artifacts.insert().values(
                        run_id=self.id, path=rel, digest=digest, size=size
                    )
                )
                own_blob(tx.conn, digest, self.id, rel)
            tx.record("run.artifacts", KIND, self.id, {"paths": [s[0] for s in stored]})

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        input_example: Any = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Save a model in its flavor's format and register it as a new version of ``name``,
        with its signature inferred from ``input_example`` and lineage to this run: a
        scikit-learn estimator or pipeline (skops), an XGBoost or LightGBM model alone or
        ending a pipeline, or an ONNX model (a ``.onnx`` path, an ``onnx.ModelProto`` or an
        :class:`~shipyard.registry.flavors.onnx.OnnxModel`): ``docs/models.md``."""
        self.flush()
        return self._models.register_model(
            name,
            model,
            run_id=self.id,
            input_example=input_example,
            description=description,
            tags=tags,
        )

    # -- ending -------------------------------------------------------------------------------

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Write what is buffered and close the run with ``status`` (FINISHED, FAILED or
        KILLED); a run not in the store yet is written whole, in one transaction."""
        if self._ended or self._pending is None:
            super().end(status, error)
            return
        if status not in STATUSES[1:]:
            raise InvalidInputError(f"status must be FINISHED, FAILED or KILLED, not {status!r}")
        self.stop_system_metrics()
        with self._buffer_lock:
            points, self._points = self._points, []
        try:
            written = self._write_pending(points, (status, error))
        except BaseException:
            with self._buffer_lock:
                self._points = points + self._points  # a later end or flush writes them
            raise
        if written:
            self._ended = True
        else:  # written meanwhile by another thread's flush: end as a stored run does
            with self._buffer_lock:
                self._points = points + self._points
            super().end(status, error)

    def _record_end(self, status: str, error: str | None) -> None:
        with self._tx() as tx:
            tx.conn.execute(
                update(runs)
                .where(runs.c.id == self.id)
                .values(status=status, end_time=now_ms(), error=error)
            )
            tx.record("run.end", KIND, self.id, {"status": status, "error": error})

    def _tx(self) -> Any:
        if self._pending is not None:
            self.flush()  # every later write refers to the stored run
        return contributor_tx(self._ctx, "log to runs")


class _ContributorTx:
    def __init__(self, ctx: ServiceContext, doing: str) -> None:
        self._cm = ctx.audited()
        self._actor = ctx.actor
        self._doing = doing

    def __enter__(self) -> AuditedTransaction:
        tx = self._cm.__enter__()
        try:
            require_role(tx.conn, self._actor, "contributor", self._doing)
        except BaseException as exc:
            self._cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return tx

    def __exit__(self, *exc: Any) -> Any:
        return self._cm.__exit__(*exc)


def contributor_tx(ctx: ServiceContext, doing: str) -> _ContributorTx:
    return _ContributorTx(ctx, doing)


def check_artifact_path(path: str) -> str:
    """``path`` as a clean relative artifact path (``a/b.txt``), or InvalidInputError."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or path.startswith(("/", "\\")) or ".." in parts or len(path) > 1000:
        raise InvalidInputError(
            f"invalid artifact path {path!r}: give a relative path such as 'plots/roc.png', "
            "without '..'"
        )
    return "/".join(parts)


def check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > 250:
        raise InvalidInputError(f"invalid {what} name {key!r}: use 1 to 250 characters")
    return key


def param_text(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else repr(value)
        if not isinstance(value, int | float | bool)
        else str(value)
    )
    if len(text) > MAX_PARAM_LENGTH:
        raise InvalidInputError(
            f"parameter value is {len(text)} characters; the limit is {MAX_PARAM_LENGTH} "
            "(log large values as artifacts)"
        )
    return text


def write_tags(conn: Connection, run_id: str, tags: dict[str, str]) -> None:
    conn.execute(
        run_tags.delete().where(run_tags.c.run_id == run_id).where(run_tags.c.key.in_(list(tags)))
    )
    conn.execute(
        run_tags.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
    )


def _new_params(conn: Connection, run_id: str, items: dict[str, str]) -> list[dict[str, str]]:
    """The rows to insert for ``items``; re-logging an equal value is a no-op.

    Raises:
        ConflictError: a parameter was already logged with another value.
    """
    existing = {
        r.key: r.value
        for r in conn.execute(
            select(run_params.c.key, run_params.c.value)
            .where(run_params.c.run_id == run_id)
            .where(run_params.c.key.in_(list(items)))
        )
    }
    changed = {k: (existing[k], v) for k, v in items.items() if existing.get(k, v) != v}
    if changed:
        k, (old, new) = next(iter(changed.items()))
        raise param_conflict(run_id, k, old, new)
    return [{"run_id": run_id, "key": k, "value": v} for k, v in items.items() if k not in existing]


def _insert_points(
    tx: AuditedTransaction,
    run_id: str,
    points: list[tuple[str, str, int, int, float]],
    *,
    record: bool = True,
    whole: bool = False,
    blocks_complete: bool = False,
) -> None:
    """Write ``points`` of one run with its latest values and blocks. ``whole``: they are all
    the run will hold when written (a run stored at its end), so short series get no blocks;
    ``blocks_complete``: the caller knows that every series of the run already stored has its
    blocks (see :mod:`shipyard.tracking.blocks`)."""
    # Plain tuples straight to the driver: building a parameter dict per point would cost
    # more than the insert itself.
    mark = "?" if tx.conn.dialect.paramstyle == "qmark" else "%s"
    # NaN is a value that equals nothing, itself included.
    finite = [p for p in points if p[4] == p[4]]
    unblocked: set[str] = set()
    if not (whole or blocks_complete):
        unblocked = series_without_blocks(tx.conn, run_id, {p[1] for p in finite})
    rows: list[tuple[str, str, int, int, float | str]] = list(points)
    if len(finite) < len(points):
        dialect = tx.conn.dialect.name
        rows = [(*p[:4], to_stored(p[4], dialect)) for p in points]
    tx.conn.exec_driver_sql(
        "INSERT INTO run_metrics (run_id, key, step, timestamp, value) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
        rows,  # type: ignore[arg-type]
    )
    _upsert_latest(tx.conn, points)
    # A chart has no place for NaN: the blocks that draw long series leave it out.
    if whole:
        finite = long_series(finite)
    elif unblocked:  # their blocks from every point they hold now, these included
        finite = [p for p in finite if p[1] not in unblocked]
        finite += stored_points(tx.conn, run_id, unblocked)
    add_points(tx.conn, finite)
    if record:
        keys = sorted({p[1] for p in points})
        tx.record("run.metrics", KIND, run_id, {"points": len(points), "keys": keys})


def _upsert_latest(conn: Connection, points: list[tuple[str, str, int, int, float]]) -> None:
    """Keep run_latest_metrics at the point with the highest (step, timestamp) per key, and
    at the lowest and highest value ever logged for it.

    One upsert per batch: the range is folded in by the database (``min``/``max`` of the
    stored and the new value inside ON CONFLICT DO UPDATE), which reads the row it locked,
    so concurrent writers to one run never lose a point's value from the range."""
    best: dict[tuple[str, str], list[Any]] = {}
    for run_id, key, step, ts, value in points:
        # The range leaves NaN out; a series of NaN alone has the empty range (inf, -inf).
        low, high = (value, value) if value == value else (math.inf, -math.inf)
        cur = best.get((run_id, key))
        if cur is None:
            best[(run_id, key)] = [run_id, key, step, ts, value, low, high]
            continue
        if (step, ts) >= (cur[2], cur[3]):
            cur[2], cur[3], cur[4] = step, ts, value
        if low < cur[5]:
            cur[5] = low
        if high > cur[6]:
            cur[6] = high
    fields = ("run_id", "key", "step", "timestamp", "value", "min_value", "max_value")
    dialect = conn.dialect.name
    rows = [dict(zip(fields, row, strict=True)) for row in best.values()]
    for row in rows:
        row["stored_value"] = to_stored(row.pop("value"), dialect)
    conn.execute(_latest_upsert(dialect), rows)


_LATEST_UPSERT: dict[str, Any] = {}
_LATEST_FIELDS = ("run_id", "key", "step", "timestamp", "value", "min_value", "max_value")


def _latest_upsert(dialect: str) -> Any:
    """The upsert statement of :func:`_upsert_latest` for ``dialect``, built once: building
    it (and its cache key) cost more than running it for a run's few keys."""
    stmt = _LATEST_UPSERT.get(dialect)
    if stmt is not None:
        return stmt
    target = run_latest_metrics.c
    ins: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        ins = pg_insert(run_latest_metrics)
        lowest = func.least(target.min_value, ins.excluded.min_value)
        highest = func.greatest(target.max_value, ins.excluded.max_value)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        ins = sqlite_insert(run_latest_metrics)
        # SQLite's min() and max() with two arguments are scalar functions.
        lowest = func.min(target.min_value, ins.excluded.min_value)
        highest = func.max(target.max_value, ins.excluded.max_value)
    # On SQLite the value goes to the driver as it is: as a Float parameter, SQLAlchemy
    # would turn its 'NaN' (see tracking/metric_values.py) back into a float, stored as NULL.
    stored = bindparam("stored_value", type_=String() if dialect == "sqlite" else None)
    ins = ins.values({f: stored if f == "value" else bindparam(f) for f in _LATEST_FIELDS})
    newer = (ins.excluded.step > target.step) | (
        (ins.excluded.step == target.step) & (ins.excluded.timestamp >= target.timestamp)
    )
    stmt = ins.on_conflict_do_update(
        index_elements=[target.run_id, target.key],
        set_={
            # Every SET expression reads the row as it was, so ``newer`` holds for all three.
            "step": case((newer, ins.excluded.step), else_=target.step),
            "timestamp": case((newer, ins.excluded.timestamp), else_=target.timestamp),
            "value": case((newer, ins.excluded.value), else_=target.value),
            "min_value": lowest,
            "max_value": highest,
        },
    )
    _LATEST_UPSERT[dialect] = stmt
    return stmt


def _has_input(conn: Connection, run_id: str, dataset: str, context: str) -> bool:
    return (
        conn.execute(
            select(run_inputs.c.run_id)
            .where(run_inputs.c.run_id == run_id)
            .where(run_inputs.c.dataset == dataset)
            .where(run_inputs.c.context == context)
        ).first()
        is not None
    )


def own_blob(
    conn: Connection, digest: str, run_id: str, rel: str, *, role: str = "artifact"
) -> None:
    owner = f"{run_id}/{rel}"[:300]
    exists = conn.execute(
        select(blob_refs.c.digest)
        .where(blob_refs.c.digest == digest)
        .where(blob_refs.c.owner_kind == KIND)
        .where(blob_refs.c.owner == owner)
    ).first()
    if exists is None:
        conn.execute(
            blob_refs.insert().values(digest=digest, owner_kind=KIND, owner=owner, role=role)
        )
