"""Runs through the team server: the same verbs as :class:`shipyard.tracking.runs.Runs`, and a
:class:`RemoteRun` that logs like :class:`shipyard.tracking.active.ActiveRun`.

Code version and environment are captured here, on the machine that trains, and sent with
the new run. Metric points are checked here (a bad one fails the call that logs it, as on a
local run), buffered, and sent in batches; a point logged without a step is numbered by the
server, which keeps each key's next step with the run.
"""

from __future__ import annotations

import builtins
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal.decode import decode, decode_many
from shipyard._internal.json_numbers import from_json, number_to_json
from shipyard.client.connection import TRANSFER_TIMEOUT, ServerConnection, segment
from shipyard.errors import InvalidInputError
from shipyard.tracking.active import RunLifecycle, check_key, now_ms
from shipyard.tracking.runs import Experiment, RunInfo

if TYPE_CHECKING:
    from shipyard.client.models import RemoteModels
    from shipyard.registry.versions import ModelVersion

__all__ = ["RemoteRun", "RemoteRuns"]

#: Points per request: big enough that a request carries real work, small enough that a
#: batch stays well under any proxy's body limit (about 100 bytes a point).
BATCH_POINTS = 20_000
FLUSH_SECONDS = 2.0

Point = tuple[str, float, int | None, int]  # key, value, step (None: the server numbers), ms
CHUNK = 1 << 20


class RemoteRuns:
    """Runs on the server: ``start``, ``get``, ``list``, plus ``compare``, ``delete``,
    ``restore``, ``metric_history`` and ``experiments``."""

    def __init__(self, conn: ServerConnection, *, models: RemoteModels) -> None:
        self._conn = conn
        self._models = models

    def start(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        system_metrics: bool | float = False,
        capture_code_in: str | os.PathLike[str] | None = None,
    ) -> RemoteRun:
        """Start a run on the server with this machine's code version and environment."""
        from shipyard.tracking.capture import code_of_process, environment_of_process

        body = {
            "experiment": experiment,
            "name": name,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            # Captured once per process, as a local run's are (see tracking/capture.py).
            "code": code_of_process(Path(capture_code_in) if capture_code_in else None),
            "environment": environment_of_process(),
        }
        info = decode(RunInfo, self._conn.json("POST", "/runs", json_body=body))
        run = RemoteRun(self._conn, info.id, info.name, info.experiment, models=self._models)
        if system_metrics:
            run.start_system_metrics(5.0 if system_metrics is True else float(system_metrics))
        return run

    def get(self, run_id: str) -> RunInfo:
        return decode(RunInfo, self._conn.json("GET", f"/runs/{segment(run_id)}"))

    def list(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        include_deleted: bool = False,
    ) -> builtins.list[RunInfo]:
        """Runs matching an MLflow-style filter, searched on the server."""
        params: list[tuple[str, Any]] = [
            ("experiment", experiment),
            ("filter", filter),
            ("limit", limit),
            ("include_deleted", include_deleted),
        ]
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        params += [("order_by", o) for o in orders]
        return decode_many(RunInfo, self._conn.json("GET", "/runs", params=params))

    def compare(self, run_ids: Iterable[str]) -> dict[str, Any]:
        doc: dict[str, Any] = self._conn.json(
            "POST", "/runs/compare", json_body={"runs": list(run_ids)}
        )
        for row in doc.get("metrics", []):  # NaN and infinities come as "NaN", "Infinity"
            row["values"] = [from_json(v) for v in row["values"]]
        return doc

    def metric_history(self, run_id: str, key: str) -> builtins.list[dict[str, Any]]:
        """Every point of one metric, by step (not downsampled)."""
        doc = self._conn.json("GET", f"/runs/{segment(run_id)}/metrics/{segment(key)}")
        points: builtins.list[dict[str, Any]] = doc["points"]
        for p in points:
            p["value"] = from_json(p["value"])
        return points

    def delete(self, run_id: str) -> RunInfo:
        return decode(RunInfo, self._conn.json("DELETE", f"/runs/{segment(run_id)}"))

    def restore(self, run_id: str) -> RunInfo:
        return decode(RunInfo, self._conn.json("POST", f"/runs/{segment(run_id)}/restore"))

    def experiments(self) -> builtins.list[Experiment]:
        return decode_many(Experiment, self._conn.json("GET", "/experiments"))


class RemoteRun(RunLifecycle):
    """A run being recorded on the server; use it as a context manager."""

    def __init__(
        self,
        conn: ServerConnection,
        run_id: str,
        name: str,
        experiment: str,
        *,
        models: RemoteModels,
    ) -> None:
        self._conn = conn
        self._models = models
        self.id = run_id
        self.name = name
        self.experiment = experiment
        self._path = f"/runs/{segment(run_id)}"
        self._points: list[Point] = []
        # Guards the buffer: the system-metrics thread logs (and may flush) while the
        # training thread does. Never held during a request.
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._ended = False
        self._sampler: Any = None

    # -- parameters and tags ------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyper-parameters in one request (the server stores them as text).

        Raises:
            ConflictError: a parameter was already logged with another value.
        """
        if params:
            body = {"params": {k: _param_value(v) for k, v in params.items()}}
            self._conn.json("POST", f"{self._path}/params", json_body=body)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            body = {"tags": {k: str(v) for k, v in tags.items()}}
            self._conn.json("POST", f"{self._path}/tags", json_body=body)

    # -- metrics ------------------------------------------------------------------------------

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point for each metric; points are sent in batches.

        Raises:
            InvalidInputError: a key is empty or a value is not a number (NaN and
                infinities are numbers, recorded as MLflow records them).
        """
        ts = now_ms() if timestamp is None else int(timestamp)
        batch: list[Point] = []
        # Check the whole call first: a refused call buffers none of its points.
        for key, value in metrics.items():
            check_key(key, "metric")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InvalidInputError(f"metric {key!r} must be a number, got {value!r}") from None
            batch.append((key, number, None if step is None else int(step), ts))
        with self._lock:
            self._points.extend(batch)
            due = (
                len(self._points) >= BATCH_POINTS
                or time.monotonic() - self._last_flush > FLUSH_SECONDS
            )
        if due:
            self.flush()

    def flush(self) -> int:
        """Send buffered metric points now; returns how many were sent."""
        with self._lock:
            points, self._points = self._points, []
            self._last_flush = time.monotonic()
        sent = 0
        try:
            while sent < len(points):
                batch = points[sent : sent + BATCH_POINTS]
                body = {
                    "metrics": [
                        {"key": k, "value": number_to_json(v), "step": s, "timestamp": t}
                        for k, v, s, t in batch
                    ]
                }
                self._conn.json("POST", f"{self._path}/metrics", json_body=body)
                sent += len(batch)
        except BaseException:
            with self._lock:  # keep what was not sent for the next attempt
                self._points = points[sent:] + self._points
            raise
        return len(points)

    # -- inputs, artifacts, models ------------------------------------------------------------

    def log_input(self, dataset: str, context: str = "train") -> None:
        """Record that this run read a dataset version."""
        self._conn.json(
            "POST", f"{self._path}/inputs", json_body={"dataset": dataset, "context": context}
        )

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> list[str]:
        """Upload a file (or every file of a folder) to the run; returns the stored paths."""
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
            doc = self._conn.json(
                "PUT",
                f"{self._path}/artifacts/{'/'.join(segment(p) for p in rel.split('/'))}",
                content=_chunks(f),
                headers={"Content-Type": "application/octet-stream"},
                timeout=TRANSFER_TIMEOUT,
            )
            stored.append(str(doc.get("path", rel)))
        return stored

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        input_example: Any = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Save a model in its flavor's format here and register it on the server as a new
        version of ``name``, with lineage to this run (a custom code model's signature is
        inferred here from ``input_example``; see :meth:`RemoteModels.upload`)."""
        self.flush()
        return self._models.upload(
            name,
            model,
            run_id=self.id,
            input_example=input_example,
            description=description,
            tags=tags,
        )

    # -- ending -------------------------------------------------------------------------------

    def _record_end(self, status: str, error: str | None) -> None:
        self._conn.json("POST", f"{self._path}/end", json_body={"status": status, "error": error})


def _param_value(value: Any) -> Any:
    """A parameter as JSON: numbers, text and booleans as they are (the server writes them as
    a local run does); anything else as its ``repr``, which is what a local run stores."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf": the text a local run stores, and valid JSON
    if isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
