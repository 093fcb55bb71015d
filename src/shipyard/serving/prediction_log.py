"""The prediction log of a running server: every prediction (request id, time, model version,
inputs, output, latency) goes into a bounded in-memory buffer, handed every second to a writer
process (:mod:`shipyard.serving.logwriter`) that stores the full records as a Parquet segment
in the artifact store and a slim index row per prediction in the metadata database. A full
buffer never blocks a request; the record is dropped and counted.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import orjson

from shipyard.serving.logwriter import frame

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.serving.live_drift import Window

__all__ = ["MIN_FLUSH_GAP", "Answers", "PredictionLog", "PredictionRecord"]

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

    With ``live_drift``, the writer also counts the rows in the drift window
    (:mod:`shipyard.serving.live_drift`).

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
        live_drift: Window | None = None,
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
        command += [deployment, str(batch_rows)]
        if live_drift is not None:  # the writer also counts the live drift window
            command += [live_drift.folder, repr(live_drift.seconds)]
        self._writer = subprocess.Popen(
            command,
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
