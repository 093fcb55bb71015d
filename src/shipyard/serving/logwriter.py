"""The prediction log's writer process: Parquet segments and the prediction index, written
outside the server's process.

The server hands its buffered answers over a pipe every second, as length-prefixed JSON
frames (:func:`frame`) that carry each request's body as it came. This process reads the rows
out of the bodies again, turns them into columns, writes each batch of rows as
one Parquet segment in the artifact store plus one index row per answer in the metadata
database, and reports on its standard output, one line per batch: ``written N`` or
``dropped N REASON``. It ends when the pipe closes, after writing what it was given.

Writing in the server's process, a thread doing this much Python work holds the interpreter
lock for milliseconds at a time, and every socket call of the event loop then waits for it:
about a tenth of a single-row server's throughput, and its tail latency.

It also counts the rows in the bins of each served version's drift reference
(:mod:`shipyard.serving.live_drift`), after each frame's rows are written.

Run by :class:`shipyard.serving.predictions.PredictionLog` as ``python -m
shipyard.serving.logwriter PROJECT_ROOT DEPLOYMENT BATCH_ROWS [DRIFT_FOLDER WINDOW_SECONDS]``;
the stores come from the environment (``SHIPYARD_DB_URL``, ``SHIPYARD_ARTIFACTS_URI``), never
from the command line, which other users of the machine can read.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.serving.live_drift import LiveCounts
    from shipyard.serving.prediction_log import Answers

__all__ = ["Columns", "frame", "main", "read_frames", "write_segment"]

HEADER_BYTES = 8

# (model reference, input row) -> the row as stored
Redact = Callable[[str, dict[str, Any]], dict[str, Any]]


def frame(entries: list[Answers]) -> bytes:
    """One frame: the JSON of ``entries`` after its length in 8 bytes. Request bodies go in
    as they are (they were parsed as JSON when the request came in)."""
    documents = [
        (ids, when, model, shadow, orjson.Fragment(body), endpoint, outputs, latency)
        for ids, when, model, shadow, body, endpoint, outputs, latency in entries
    ]
    payload = orjson.dumps(documents, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
    return len(payload).to_bytes(HEADER_BYTES, "big") + payload


def read_frames(stream: IO[bytes]) -> Iterator[list[Any]]:
    """The frames on ``stream`` until it ends."""
    while True:
        header = stream.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            return
        size = int.from_bytes(header, "big")
        payload = stream.read(size)
        if len(payload) < size:
            return  # the server stopped in the middle of a frame
        yield orjson.loads(payload)


class Columns(
    tuple[list[str], list[int], list[str], list[bool], list[str], list[str], list[float]]
):
    """A batch of the log as columns: request id, time (ms), model, shadow, inputs and output
    (JSON text), latency (ms)."""

    __slots__ = ()

    def __new__(cls) -> Columns:
        return super().__new__(cls, ([], [], [], [], [], [], []))

    def add(
        self,
        ids: list[str],
        time_ms: int,
        model: str,
        shadow: bool,
        document: Any,
        endpoint: str,
        outputs: list[Any],
        latency_ms: float,
        *,
        redact: Redact | None = None,
    ) -> list[dict[str, Any]]:
        """Add the rows of one request: ``document`` is its body, sent to ``endpoint``.
        Returns the rows read from it; what is stored went through ``redact`` (personal data
        replaced by its keyed hash, :func:`shipyard.data.pii.pii_redactor`)."""
        from shipyard.serving.inputs import request_rows

        inputs = request_rows(endpoint, document)
        n = len(ids)
        if len(inputs) != n or len(outputs) != n:
            raise ValueError(f"{n} request ids for {len(inputs)} rows and {len(outputs)} outputs")
        stored = inputs if redact is None else [redact(model, row) for row in inputs]
        self[0].extend(ids)
        self[1].extend([time_ms] * n)
        self[2].extend([model] * n)
        self[3].extend([shadow] * n)
        self[4].extend(_json(v) for v in stored)
        self[5].extend(_json(v) for v in outputs)
        self[6].extend([latency_ms] * n)
        return inputs

    @classmethod
    def batches(
        cls,
        entries: Iterable[list[Any]],
        rows: int,
        refused: Callable[[int, str], None],
        observe: Callable[[str, int, list[dict[str, Any]]], None] | None = None,
        redact: Redact | None = None,
    ) -> Iterator[Columns]:
        """``entries`` as columns of about ``rows`` rows each; an entry that cannot be read
        is left out and passed to ``refused`` (its row count and why). ``observe`` gets the
        model, time and rows of every entry read (the live drift counts); ``redact`` hashes
        the personal data of what is stored."""
        columns = cls()
        for entry in entries:
            try:
                inputs = columns.add(*entry, redact=redact)
            except Exception as exc:
                refused(len(entry[0]) if entry and isinstance(entry[0], list) else 1, _why(exc))
                continue
            if observe is not None:
                observe(entry[2], entry[1], inputs)
            if len(columns[0]) >= rows:
                yield columns
                columns = cls()
        if columns[0]:
            yield columns


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def write_segment(project: Project, deployment: str, batch: Columns) -> None:
    """``batch`` as one Parquet segment and its index rows, in one transaction."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlalchemy import insert

    from shipyard._internal.hashing import digest_file
    from shipyard.stores.db.tables import blob_refs, prediction_segments, predictions

    ids, times, models, shadows, inputs, outputs, latencies = batch
    table = pa.table(
        {
            "request_id": ids,
            "time_ms": times,
            "model": models,
            "shadow": shadows,
            "inputs": inputs,
            "output": outputs,
            "latency_ms": latencies,
        }
    )
    staging = project.artifacts.new_staging_path(".parquet")
    try:
        pq.write_table(table, staging, compression="zstd")
        digest, _ = digest_file(staging)
        project.artifacts.put_file(staging, move=True, digest=digest)
    finally:
        staging.unlink(missing_ok=True)
    # Traffic is operational data, not a change to the registry: it is not audited.
    with project.db.write() as conn:
        inserted = conn.execute(
            insert(prediction_segments).values(
                deployment=deployment,
                digest=digest,
                rows=len(ids),
                first_time=min(times),
                last_time=max(times),
            )
        )
        segment = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        # The blob's owner, so that `shipyard gc` keeps it and `shipyard verify` names it.
        conn.execute(
            insert(blob_refs).values(
                digest=digest,
                owner_kind="prediction_segment",
                owner=f"{deployment}#{segment}",
                role="predictions",
            )
        )
        # The index holds answers; shadow scores stay in segments. Rows go straight to the
        # driver: SQLAlchemy's per-row parameter handling costs more than the insert.
        answered = [
            (rid, deployment, model, output, when, latency)
            for rid, model, shadow, output, when, latency in zip(
                ids, models, shadows, outputs, times, latencies, strict=True
            )
            if not shadow
        ]
        if answered:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            conn.exec_driver_sql(
                f"INSERT INTO {predictions.name} (request_id, deployment, model, "
                f"prediction, time, latency_ms) VALUES ({', '.join([mark] * 6)})",
                answered,
            )


def main(argv: list[str] | None = None) -> int:
    root, deployment, batch_rows, *drift = argv or sys.argv[1:]
    # Ctrl-C reaches the whole process group: the server decides when the log ends, by
    # closing the pipe once it has handed over everything.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from shipyard.project import open_project

    out = sys.stdout

    def report(verb: str, rows: int, reason: str = "") -> None:
        # Without a server to read the report, go on storing what was handed over.
        with contextlib.suppress(OSError, ValueError):
            out.write(f"{verb} {rows} {reason}".rstrip() + "\n")
            out.flush()

    def refused(rows: int, reason: str) -> None:
        report("dropped", rows, reason)

    # Loaded now, while the server starts, rather than on the first batch: a label sent right
    # after the first answer waits for that batch to be written.
    import pyarrow.parquet  # noqa: F401

    with open_project(root) as project:
        live = _live_counts(project, drift)
        observe = None if live is None else live.observe
        redact = _redactor(project)
        for entries in read_frames(sys.stdin.buffer):
            for batch in Columns.batches(entries, int(batch_rows), refused, observe, redact):
                try:
                    write_segment(project, deployment, batch)
                except Exception as exc:  # the rows are lost, and counted by the server
                    report("dropped", len(batch[0]), _why(exc))
                else:
                    report("written", len(batch[0]))
            if live is not None:
                # After the rows are written: a label waiting for them is not held up.
                _count(live)
    return 0


def _redactor(project: Project) -> Redact:
    """Personal-data inputs (``pii: true`` in the contracts a model's inputs must pass) are
    logged as their keyed hash, never as values."""
    from shipyard.data.pii import pii_columns, pii_redactor
    from shipyard.errors import InvalidInputError, NotFoundError

    def columns_of(model: str) -> list[str]:
        try:
            return pii_columns(project.models.input_contracts(model))
        except (NotFoundError, InvalidInputError):  # no registered version or training data:
            return []  # no contract says what is personal

    return pii_redactor(project.settings, columns_of)


def _live_counts(project: Project, drift: list[str]) -> LiveCounts | None:
    """The live drift counts when the server asked for them (``FOLDER SECONDS``)."""
    if not drift:
        return None
    from shipyard.serving.live_drift import LiveCounts, Window, served_reference

    folder, seconds = drift
    return LiveCounts(Window(folder, float(seconds)), lambda ref: served_reference(project, ref))


def _count(live: LiveCounts) -> None:
    import time

    try:
        live.flush(int(time.time() * 1000))
    except Exception as exc:  # the drift gauges lag; the log goes on
        print(f"shipyard serve: live drift counts not updated: {_why(exc)}", file=sys.stderr)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]


if __name__ == "__main__":
    sys.exit(main())
