"""The prediction log, ground-truth feedback and business KPIs of a deployment.

Every prediction (request id, time, model version, inputs, output, latency) goes into a bounded
in-memory buffer, handed every second to a writer process (:mod:`shipyard.serving.logwriter`)
that stores the full records as a Parquet segment in the artifact store and a slim index row
per prediction in the metadata database. A full buffer never blocks a request; the record is
dropped and counted. Feedback and KPI events join the predictions by request id.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, insert, select

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.serving.logwriter import frame
from shipyard.stores.db.tables import feedback, kpi_events, prediction_segments, predictions

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.context import ServiceContext
    from shipyard.project import Project

__all__ = ["PredictionLog", "PredictionRecord", "Predictions"]

# Seconds between two hand-overs to the writer, however often a flush is asked for.
MIN_FLUSH_GAP = 0.1


@dataclass(frozen=True)
class PredictionRecord:
    """One answered (or shadowed) row."""

    request_id: str
    time_ms: int
    model: str  # name@version
    shadow: bool
    inputs: dict[str, Any]
    output: Any
    latency_ms: float


# What the server hands the log per request: request ids, time (ms), model (name@version),
# shadow?, the request body (JSON) and the endpoint it was sent to (which says how to read its
# rows), one output per row, and the latency (ms).
Answers = tuple[list[str], int, str, bool, bytes, str, list[Any], float]


class PredictionLog:
    """A bounded buffer of prediction records, handed every ``flush_seconds`` to a writer
    process (:mod:`shipyard.serving.logwriter`) that stores them.

    A request adds its rows with one append under a lock; nothing wakes the shipping thread
    per record. The shipping thread encodes what is buffered, one call per frame, and writes
    it to the pipe; everything else happens in the other process. Rows are dropped, and
    counted, when the buffer is full or the writer fails.

    :meth:`flush` hands the buffer over at once (at most every ``MIN_FLUSH_GAP`` seconds) and
    returns a mark; :meth:`settled` tells when every row buffered before the mark has been
    written or dropped: how ``/feedback`` waits for the row of a request just answered.
    """

    def __init__(
        self,
        project: Project,
        deployment: str,
        *,
        max_queue: int = 100_000,
        batch_rows: int = 5_000,
        flush_seconds: float = 1.0,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.deployment = deployment
        self._max_rows = max_queue
        self._pending: collections.deque[Answers] = collections.deque()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._flush_seconds = flush_seconds
        self._batch_rows = batch_rows
        self._on_drop = on_drop
        self.dropped = 0
        self.written = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Rows taken into the buffer, and rows since written or dropped by the writer (or lost
        # with it): a row is in neither the buffer nor the table while the writer has it.
        self._accepted = 0
        self._settled = 0
        self._progress = threading.Lock()
        self._writer_gone = False
        env = {
            **os.environ,
            "SHIPYARD_DB_URL": project.settings.db_url,
            "SHIPYARD_ARTIFACTS_URI": project.settings.artifacts_uri,
        }
        command = [sys.executable, "-m", "shipyard.serving.logwriter", str(project.root)]
        self._writer = subprocess.Popen(
            [*command, deployment, str(batch_rows)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._reports = threading.Thread(
            target=self._read_reports, name="shipyard-prediction-log-reports", daemon=True
        )
        self._reports.start()
        self._thread = threading.Thread(
            target=self._run, name="shipyard-prediction-log", daemon=True
        )
        self._thread.start()

    def put(self, records: Iterable[PredictionRecord]) -> None:
        """Buffer records; never blocks (when the buffer is full they are dropped and
        counted)."""
        for r in records:
            body = orjson.dumps({"records": [r.inputs]}, default=str)
            ids, outputs = [r.request_id], [r.output]
            answers = (ids, r.time_ms, r.model, r.shadow, body, "/predict", outputs, r.latency_ms)
            self.put_answers(answers)

    def put_answers(self, answers: Answers) -> None:
        """Buffer the rows of one request; never blocks (when the buffer is full they are
        dropped and counted)."""
        rows = len(answers[0])
        with self._lock:
            full = self._pending_rows + rows > self._max_rows
            if not full:
                self._pending_rows += rows
                self._accepted += rows
                self._pending.append(answers)
        if full:
            self._count_dropped(rows)

    def flush(self) -> int:
        """Hand what is buffered to the writer now instead of at the next interval; returns
        the mark to pass to :meth:`settled`."""
        with self._lock:
            mark = self._accepted
        self._wake.set()
        return mark

    def settled(self, mark: int) -> bool:
        """Whether every row buffered before :meth:`flush` returned ``mark`` is written to
        the log or dropped (or the writer is gone, so it never will be)."""
        return self._writer_gone or self._settled >= mark

    def close(self, timeout: float = 30.0) -> None:
        """Hand over what is buffered, wait until the writer has stored it, then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        try:
            self._writer.wait(timeout)
        except subprocess.TimeoutExpired:
            self._writer.kill()
            self._writer.wait()
        self._reports.join(timeout)

    def _count_dropped(self, rows: int) -> None:
        self.dropped += rows
        if self._on_drop:
            self._on_drop(rows)

    def _count_settled(self, rows: int) -> None:
        with self._progress:
            self._settled += rows

    def _run(self) -> None:
        pipe = self._writer.stdin
        assert pipe is not None
        # Flushes on demand make smaller segments: at most one per ``gap``.
        gap = min(MIN_FLUSH_GAP, self._flush_seconds)
        try:
            while True:
                self._wake.wait(self._flush_seconds - gap)
                self._wake.clear()
                stopping = self._stop.is_set()
                self._ship(pipe)
                if stopping:
                    return
                self._stop.wait(gap)
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    def _ship(self, pipe: IO[bytes]) -> None:
        with self._lock:
            pending, self._pending = self._pending, collections.deque()
            self._pending_rows = 0
        # One frame per segment the writer will make (about ``batch_rows`` rows): fewer
        # segments, and encoding a frame holds the interpreter lock for a bounded time.
        chunk: list[Answers] = []
        rows = 0
        for entry in pending:
            chunk.append(entry)
            rows += len(entry[0])
            if rows >= self._batch_rows:
                self._send(pipe, chunk, rows)
                chunk, rows = [], 0
        if chunk:
            self._send(pipe, chunk, rows)

    def _send(self, pipe: IO[bytes], chunk: list[Answers], rows: int) -> None:
        try:
            pipe.write(frame(chunk))
            pipe.flush()
        except (OSError, ValueError, TypeError) as exc:  # the writer is gone; or bad data
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._count_dropped(rows)
            self._count_settled(rows)

    def _read_reports(self) -> None:
        assert self._writer.stdout is not None
        for line in self._writer.stdout:
            verb, _, rest = line.decode(errors="replace").strip().partition(" ")
            count, _, reason = rest.partition(" ")
            if verb == "written" and count.isdigit():
                self.written += int(count)
                self._count_settled(int(count))
            elif verb == "dropped" and count.isdigit():
                self.last_error = reason
                self._count_dropped(int(count))
                self._count_settled(int(count))
        self._writer_gone = True


class Predictions:
    """Service for what deployments answered: ``list``, ``record_feedback``,
    ``record_kpi``, ``metrics``, ``accuracy``."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def list(
        self, deployment: str, *, since: float | None = None, include_shadow: bool = False
    ) -> pd.DataFrame:
        """The logged predictions of a deployment (``since``: epoch seconds), with feedback
        labels joined by request id."""
        import pandas as pd
        import pyarrow.parquet as pq

        since_ms = 0 if since is None else int(since * 1000)
        with self._ctx.db.read() as conn:
            segs = conn.execute(
                select(prediction_segments.c.digest)
                .where(prediction_segments.c.deployment == deployment)
                .where(prediction_segments.c.last_time >= since_ms)
                .order_by(prediction_segments.c.id)
            ).all()
            labels = {
                r.request_id: json.loads(r.label)
                for r in conn.execute(
                    select(feedback.c.request_id, feedback.c.label)
                    .where(feedback.c.deployment == deployment)
                    .where(feedback.c.time >= since_ms)
                )
            }
        frames = []
        for s in segs:
            with self._ctx.artifacts.local_copy(
                s.digest, owner=f"deployment '{deployment}'"
            ) as path:
                frames.append(pq.read_table(path).to_pandas())
        if not frames:
            return pd.DataFrame(
                columns=[
                    "request_id",
                    "time_ms",
                    "model",
                    "shadow",
                    "inputs",
                    "output",
                    "latency_ms",
                    "label",
                ]
            )
        df = pd.concat(frames, ignore_index=True)
        df = df[df["time_ms"] >= since_ms]
        if not include_shadow:
            df = df[~df["shadow"]]
        df = df.assign(
            inputs=df["inputs"].map(json.loads),
            output=df["output"].map(json.loads),
            label=df["request_id"].map(labels),
        )
        return df.reset_index(drop=True)

    def record_feedback(
        self, deployment: str, items: builtins.list[tuple[str, Any]]
    ) -> builtins.list[dict[str, Any]]:
        """Store ground-truth labels; returns, per item, the model that answered and whether
        it was right (None when the prediction is not logged yet)."""
        if not items:
            raise InvalidInputError("no feedback given")
        for i, (rid, _) in enumerate(items):
            _check_request_id(rid, f"feedback item {i}")
        now = int(time.time() * 1000)
        with self._ctx.db.write() as conn:
            known = {
                r.request_id: r
                for r in conn.execute(
                    select(
                        predictions.c.request_id, predictions.c.model, predictions.c.prediction
                    ).where(predictions.c.request_id.in_([i[0] for i in items]))
                )
            }
            conn.execute(
                insert(feedback),
                [
                    {
                        "request_id": rid,
                        "deployment": deployment,
                        "label": json.dumps(label, default=str),
                        "time": now,
                    }
                    for rid, label in items
                ],
            )
        out = []
        for rid, label in items:
            row = known.get(rid)
            out.append(
                {
                    "request_id": rid,
                    "model": row.model if row else None,
                    "correct": None if row is None else _same(json.loads(row.prediction), label),
                }
            )
        return out

    def record_kpi(
        self, deployment: str, name: str, value: float, request_id: str | None = None
    ) -> None:
        """Store a business KPI event (e.g. revenue), optionally tied to a prediction."""
        self.record_kpis(deployment, [(name, value, request_id)])

    def record_kpis(
        self, deployment: str, events: builtins.list[tuple[str, float, str | None]]
    ) -> None:
        """Store KPI events in one write, after checking every one of them.

        Raises:
            InvalidInputError: an empty name, a name over 128 characters, a value that is not
                finite, or a malformed request id (nothing is stored).
        """
        if not events:
            raise InvalidInputError("no KPI events given")
        for i, (name, value, rid) in enumerate(events):
            if not isinstance(name, str) or not name or len(name) > 128:
                raise InvalidInputError(f"kpi item {i}: a KPI needs a name of 1 to 128 characters")
            if not math.isfinite(value):
                raise InvalidInputError(f"kpi item {i}: value must be a finite number, got {value}")
            if rid is not None:
                _check_request_id(rid, f"kpi item {i}")
        now = int(time.time() * 1000)
        with self._ctx.db.write() as conn:
            conn.execute(
                insert(kpi_events),
                [
                    {
                        "deployment": deployment,
                        "name": name,
                        "value": float(value),
                        "request_id": rid,
                        "time": now,
                    }
                    for name, value, rid in events
                ],
            )

    def accuracy(self, deployment: str, *, window_seconds: float = 3600) -> dict[str, float]:
        """Share of correct answers per model version among predictions with feedback in the
        window."""
        since = int((time.time() - window_seconds) * 1000)
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(predictions.c.model, predictions.c.prediction, feedback.c.label)
                .join(feedback, feedback.c.request_id == predictions.c.request_id)
                .where(predictions.c.deployment == deployment)
                .where(feedback.c.time >= since)
            ).all()
        totals: dict[str, list[int]] = {}
        for r in rows:
            t = totals.setdefault(r.model, [0, 0])
            t[0] += int(_same(json.loads(r.prediction), json.loads(r.label)))
            t[1] += 1
        return {m: c / n for m, (c, n) in sorted(totals.items()) if n}

    def metrics(self, deployment: str, *, window_seconds: float = 3600) -> dict[str, Any]:
        """Throughput, latency percentiles, accuracy and KPIs over a window, from the log —
        for teams without Prometheus. Errors are counted only by Prometheus (refused requests
        have no prediction to log)."""
        since = int((time.time() - window_seconds) * 1000)
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(predictions.c.model, predictions.c.latency_ms, predictions.c.time)
                .where(predictions.c.deployment == deployment)
                .where(predictions.c.time >= since)
            ).all()
            kpis = conn.execute(
                select(kpi_events.c.name, func.count(), func.sum(kpi_events.c.value))
                .where(kpi_events.c.deployment == deployment)
                .where(kpi_events.c.time >= since)
                .group_by(kpi_events.c.name)
            ).all()
            fb = conn.execute(
                select(func.count())
                .select_from(feedback)
                .where(feedback.c.deployment == deployment)
                .where(feedback.c.time >= since)
            ).scalar_one()
        if not rows and not kpis:
            known = self._known(deployment)
            if not known:
                raise NotFoundError(
                    f"no deployment '{deployment}' has logged anything; start one with "
                    f"`shipyard serve {deployment}`"
                )
        by_model: dict[str, list[float]] = {}
        for r in rows:
            by_model.setdefault(r.model, []).append(r.latency_ms)
        span = max(
            1.0,
            (
                max((r.time for r in rows), default=since)
                - min((r.time for r in rows), default=since)
            )
            / 1000,
        )
        accuracy = self.accuracy(deployment, window_seconds=window_seconds)
        return {
            "deployment": deployment,
            "window_seconds": window_seconds,
            "predictions": len(rows),
            "throughput_per_second": len(rows) / span if rows else 0.0,
            "latency_ms": _percentiles([r.latency_ms for r in rows]),
            "by_model": {
                m: {
                    "predictions": len(v),
                    "latency_ms": _percentiles(v),
                    "accuracy": accuracy.get(m),
                }
                for m, v in sorted(by_model.items())
            },
            "feedback": int(fb),
            "accuracy": accuracy,
            "kpis": {name: {"events": int(n), "sum": float(total or 0)} for name, n, total in kpis},
        }

    def _known(self, deployment: str) -> bool:
        with self._ctx.db.read() as conn:
            return (
                conn.execute(
                    select(prediction_segments.c.id)
                    .where(prediction_segments.c.deployment == deployment)
                    .limit(1)
                ).first()
                is not None
            )


def _same(prediction: Any, label: Any) -> bool:
    if isinstance(prediction, int | float) and isinstance(label, int | float):
        return float(prediction) == float(label)
    return str(prediction) == str(label)


def _percentiles(values: builtins.list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    import numpy as np

    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def _check_request_id(value: Any, where: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 32:
        raise InvalidInputError(
            f"{where}: request_id must be the text of a request id (at most 32 characters), "
            f"got {str(value)[:40]!r}"
        )
