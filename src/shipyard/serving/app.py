"""The model server: FastAPI app behind ``shipyard serve NAME@ALIAS``.

Endpoints: ``POST /predict`` (records or MLflow's ``dataframe_split``), the Open Inference
Protocol v2 (``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{name}``,
``/v2/models/{name}/infer``), ``GET /metrics`` for Prometheus, ``POST /feedback`` for ground
truth and ``POST /kpi`` for business events. Bad input gets a 4xx naming the field and the
reason, never a 5xx, and is counted.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import os
import random
import re
import secrets
import sys
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from shipyard.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.registry.compiled import CompiledModel, NotCompiled, compile_predictor
from shipyard.registry.row_checks import request_checks
from shipyard.serving.batching import Batcher, batcher_for
from shipyard.serving.feedback import FEEDBACK_STATUSES
from shipyard.serving.ingest import (
    IngestAuth,
    Unauthorized,
    feedback_body,
    kpi_body,
    store_feedback,
)
from shipyard.serving.inputs import (
    RequestError,
    json_body,
    parse_json,
    read_body,
    request_rows,
    validate_rows,
)
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.openapi import install as install_openapi
from shipyard.serving.predictions import PredictionLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from shipyard.project import Project
    from shipyard.registry.signatures import CheckedPredictor

__all__ = ["ServeConfig", "create_app"]

log = logging.getLogger("shipyard.serving")

MAX_BODY_BYTES = 10 * 1024 * 1024
# Requests with more rows than this are scored by the compiled model off the event loop.
INLINE_ROWS = 256


@dataclass(frozen=True)
class ServeConfig:
    """What to serve: a model name and the aliases that answer, with traffic weights."""

    project: str
    model: str
    routes: dict[str, int]  # alias -> weight
    shadow: str | None = None
    reload_seconds: float = 2.0
    max_body_bytes: int = MAX_BODY_BYTES
    log_queue: int = 100_000
    accuracy_window_seconds: float = 3600.0
    # A file holding the bearer token /feedback and /kpi require (None: open). The path
    # travels to the workers, never the token.
    ingest_token_file: str | None = None
    # How long /feedback waits for the log row of an answer given a moment ago, and how often
    # the log is handed to its writer (so a row reaches the table within about that time).
    feedback_wait_seconds: float = 2.0
    log_flush_seconds: float = 1.0

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


@dataclass
class Slot:
    """One alias being served: the version it points at, its loaded predictor (and its
    compiled form, when the pipeline compiles), and the rules each request is checked with
    (pydantic models for the signature's columns and the contract of the data the model was
    trained on, when it has one; see :func:`request_checks`)."""

    alias: str
    version: int
    ref: str
    predictor: CheckedPredictor
    columns: tuple[str, ...] = ()
    checks: tuple[Any, ...] = ()
    compiled: CompiledModel | None = None
    scoring: str = "scikit-learn"  # how requests are scored, for people reading the log
    batcher: Batcher | None = None


@dataclass
class State:
    project: Project
    config: ServeConfig
    metrics: ServerMetrics
    log: PredictionLog
    slots: dict[str, Slot] = field(default_factory=dict)
    ready: bool = False
    # Request ids: 32 hex digits, a random prefix per process and a counter.
    _id_prefix: str = field(default_factory=lambda: secrets.token_hex(10))
    _id_counter: Iterator[int] = field(default_factory=itertools.count)

    def request_ids(self, n: int) -> list[str]:
        prefix, counter = self._id_prefix, self._id_counter
        return [f"{prefix}{next(counter):012x}" for _ in range(n)]

    def issued(self, request_id: str) -> bool:
        """Whether this process gave out ``request_id``."""
        return request_id.startswith(self._id_prefix)


def create_app(config: ServeConfig) -> FastAPI:
    """The app for ``config``; models load at start-up and follow their aliases.

    Raises:
        InvalidInputError: ``config.ingest_token_file`` cannot be read or is empty.
    """
    from shipyard.project import open_project

    ingest = IngestAuth.from_file(config.ingest_token_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        project = open_project(config.project)
        metrics = ServerMetrics()
        for refresh in ("aliases", "accuracy"):  # exported as 0 from the start, for alerts
            metrics.refresh_errors.labels(config.model, refresh)
        log = PredictionLog(
            project,
            config.model,
            max_queue=config.log_queue,
            flush_seconds=config.log_flush_seconds,
            on_drop=metrics.dropped.inc,
        )
        state = State(project, config, metrics, log)
        app.state.shipyard = state
        try:
            for alias in _aliases(config):
                slot = await asyncio.to_thread(_load, project, config.model, alias)
                state.slots[alias] = slot
                _announce(slot)
        except BaseException:  # a version that cannot load: stop the log's writer too
            await asyncio.to_thread(log.close)
            project.close()
            raise
        # What start-up loaded (libraries, models) lives as long as the server: keep it out
        # of the collector's generations, so that collections only walk request garbage.
        gc.freeze()
        state.ready = True
        metrics.start_resource_sampler()
        watcher = asyncio.create_task(_follow_aliases(state))
        try:
            yield
        finally:
            watcher.cancel()
            metrics.stop()
            await asyncio.to_thread(log.close)
            project.close()

    app = FastAPI(
        title=f"shipyard: {config.model}",
        description="Predictions from the model registry, checked against the signature.",
        lifespan=lifespan,
    )

    install_openapi(app, config.model)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        return await _handle(request, "/predict")

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> Response:
        if name != config.model:
            return _error(404, f"no model {name!r} here; this server serves {config.model!r}")
        return await _handle(request, "/v2/infer")

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready(request: Request) -> Response:
        state: State | None = getattr(request.app.state, "shipyard", None)
        ok = bool(state and state.ready)
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str, request: Request) -> Response:
        state: State = request.app.state.shipyard
        if name != config.model:
            return _error(404, f"no model {name!r} here; this server serves {config.model!r}")
        slot = state.slots[_aliases(config)[0]]
        sig = slot.predictor.signature
        columns = sig.to_dict()["inputs"]["columns"] if sig else {}
        return JSONResponse(
            {
                "name": config.model,
                "versions": [str(s.version) for s in state.slots.values()],
                "platform": "shipyard-sklearn",
                "inputs": [
                    {"name": c, "datatype": _v2_type(spec.get("type")), "shape": [-1]}
                    for c, spec in columns.items()
                ],
                "outputs": [{"name": "prediction", "datatype": "BYTES", "shape": [-1]}],
                "aliases": {a: s.version for a, s in state.slots.items()},
                "parameters": {"scoring": {a: s.scoring for a, s in state.slots.items()}},
            }
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        state: State = request.app.state.shipyard
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/feedback")
    async def post_feedback(request: Request) -> Response:
        state: State = request.app.state.shipyard
        try:
            ingest.check(request.headers.get("authorization"))
            items = feedback_body(await json_body(request, state))
            results = await store_feedback(
                state.project.predictions,
                config.model,
                items,
                log=state.log,
                issued_here=state.issued,
                wait_seconds=config.feedback_wait_seconds,
            )
        except (ShipyardError, RequestError) as exc:
            return _refused_ingest(state, "/feedback", exc)
        counts = Counter(r.status for r in results)
        for r in results:
            if r.status == "stored":  # a request id counts once, however often it is sent
                state.metrics.feedback.labels(config.model, r.model.rpartition("@")[2]).inc()
        if counts["stored"] or counts["replaced"]:
            # The labels are stored: a failure to refresh the gauge must not turn this into
            # an error. The watcher refreshes it again within seconds.
            await asyncio.to_thread(_refresh_accuracy, state)
        return JSONResponse(
            {
                "accepted": len(results),
                **{status: counts[status] for status in FEEDBACK_STATUSES},
                "results": [r.to_dict() for r in results],
            }
        )

    @app.post("/kpi")
    async def post_kpi(request: Request) -> Response:
        state: State = request.app.state.shipyard
        try:
            ingest.check(request.headers.get("authorization"))
            events = kpi_body(await json_body(request, state))
            # Every event is checked (names, values, the limit on names) before any is stored.
            await asyncio.to_thread(state.project.predictions.record_kpis, config.model, events)
        except (ShipyardError, RequestError) as exc:
            return _refused_ingest(state, "/kpi", exc)
        for name, value, _ in events:
            state.metrics.kpi.labels(name).inc()
            state.metrics.kpi_value.labels(name).inc(value)
        return JSONResponse({"accepted": len(events)})

    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --workers``: the config travels in ``SHIPYARD_SERVE_CONFIG``."""
    return create_app(ServeConfig.from_json(os.environ["SHIPYARD_SERVE_CONFIG"]))


# -- request handling -----------------------------------------------------------------------------


async def _handle(request: Request, endpoint: str) -> Response:
    state: State = request.app.state.shipyard
    start = time.perf_counter()
    metrics = state.metrics
    model = state.config.model
    metrics.inflight.inc()
    slot = _route(state)
    version = str(slot.version)
    try:
        body = await read_body(request, state)
        frame_rows = request_rows(endpoint, parse_json(body))
        checked = validate_rows(slot, frame_rows)
        outputs = await _score(slot, checked)
        elapsed = time.perf_counter() - start
        ids = state.request_ids(len(frame_rows))
        _log(state, slot, ids, body, endpoint, outputs, elapsed, shadow=False)
        if state.config.shadow and state.config.shadow in state.slots:
            asyncio.get_running_loop().run_in_executor(
                None, _shadow, state, state.slots[state.config.shadow], ids, body, endpoint, checked
            )
        metrics.predicted(model, version, len(frame_rows))
        answer = _answer(endpoint, slot, ids, outputs, model)
        code = 200
        response = Response(
            orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )
    except RequestError as exc:
        code = exc.status
        metrics.errors.labels(model, version, exc.reason).inc()
        response = _error(exc.status, exc.message, exc.details)
    except Exception as exc:  # a model failure is the server's fault: 500, counted
        code = 500
        metrics.errors.labels(model, version, "model_error").inc()
        response = _error(500, f"the model failed: {type(exc).__name__}: {exc}")
    finally:
        metrics.inflight.dec()
    metrics.answered(model, version, endpoint, code, time.perf_counter() - start)
    return response


async def _score(slot: Slot, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers for checked rows: from the compiled model when it covers them (inline for a
    few rows, in a thread for many), else from scikit-learn through the batcher."""
    compiled = slot.compiled
    if compiled is not None:
        try:
            if len(rows) <= INLINE_ROWS:
                return compiled.score(rows)
            return await asyncio.to_thread(compiled.score, rows)
        except NotCompiled:
            pass  # e.g. a missing value with no imputer: scikit-learn decides
    return await batcher_for(slot).submit(rows)


def _answer(
    endpoint: str, slot: Slot, ids: list[str], outputs: list[dict[str, Any]], model: str
) -> dict[str, Any]:
    if endpoint == "/v2/infer":
        return {
            "model_name": model,
            "model_version": str(slot.version),
            "id": ids[0] if len(ids) == 1 else uuid.uuid4().hex,
            "outputs": [
                {
                    "name": "prediction",
                    "shape": [len(outputs)],
                    "datatype": "BYTES",
                    "data": [o["prediction"] for o in outputs],
                },
            ],
            "parameters": {"request_ids": ids},
        }
    body: dict[str, Any] = {
        "predictions": [o["prediction"] for o in outputs],
        "model": model,
        "version": slot.version,
        "alias": slot.alias,
        "request_ids": ids,
    }
    if outputs and "probabilities" in outputs[0]:
        body["probabilities"] = [o["probabilities"] for o in outputs]
    return body


def _log(
    state: State,
    slot: Slot,
    ids: list[str],
    body: bytes,
    endpoint: str,
    outputs: list[dict[str, Any]],
    elapsed: float,
    *,
    shadow: bool,
) -> None:
    """Hand the answers to the prediction log, with the request body they came from (its
    rows are read again in the writer process, not kept here as objects)."""
    now = int(time.time() * 1000)
    predictions = [o["prediction"] for o in outputs]
    state.log.put_answers((ids, now, slot.ref, shadow, body, endpoint, predictions, elapsed * 1000))


def _shadow(
    state: State,
    slot: Slot,
    ids: list[str],
    body: bytes,
    endpoint: str,
    rows: list[dict[str, Any]],
) -> None:
    """Score checked ``rows`` with the shadow slot and log the answers as shadow scores."""
    start = time.perf_counter()
    try:
        try:
            if slot.compiled is None:
                raise NotCompiled("no compiled model")
            outputs = slot.compiled.score(rows)
        except NotCompiled:
            outputs = slot.predictor.answer(slot.predictor.frame_from_records(rows))
    except Exception:
        state.metrics.errors.labels(state.config.model, str(slot.version), "shadow_error").inc()
        return
    _log(state, slot, ids, body, endpoint, outputs, time.perf_counter() - start, shadow=True)
    state.metrics.predicted(state.config.model, str(slot.version), len(rows))


def _refused_ingest(state: State, endpoint: str, exc: ShipyardError | RequestError) -> Response:
    """The answer to a refused /feedback or /kpi request: 401 with its challenge, 404 for
    request ids the log does not hold, 422 for values the service refused."""
    if isinstance(exc, NotFoundError):
        exc = RequestError(404, "unknown_request_id", exc.message, exc.details)
    elif isinstance(exc, ShipyardError):
        status = 422 if isinstance(exc, InvalidInputError) else exc.http_status
        exc = RequestError(status, exc.code, exc.message, exc.details)
    response = _refused(state, endpoint, exc)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = exc.challenge
    return response


def _refused(state: State, endpoint: str, exc: RequestError) -> Response:
    state.metrics.errors.labels(state.config.model, "-", exc.reason).inc()
    state.metrics.requests.labels(state.config.model, "-", endpoint, str(exc.status)).inc()
    return _error(exc.status, exc.message, exc.details)


def _error(status: int, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status)


def _v2_type(kind: str | None) -> str:
    return {"int": "INT64", "float": "FP64", "bool": "BOOL"}.get(kind or "", "BYTES")


# -- models and aliases ---------------------------------------------------------------------------


def _aliases(config: ServeConfig) -> list[str]:
    names = list(config.routes)
    if config.shadow and config.shadow not in names:
        names.append(config.shadow)
    return names


def _load(project: Project, model: str, alias: str) -> Slot:
    mv = project.models.get(f"{model}@{alias}")
    predictor = project.models.load(mv.ref)
    columns = tuple(predictor.signature.columns) if predictor.signature else ()
    compiled, scoring = compile_predictor(predictor)
    checks = request_checks(predictor.signature, project.models.input_contracts(mv.ref))
    return Slot(alias, mv.version, mv.ref, predictor, columns, checks, compiled, scoring)


def _announce(slot: Slot) -> None:
    """Say how a loaded version answers: compiled arithmetic or scikit-learn, and why."""
    print(f"shipyard serve: {slot.alias} is {slot.ref}, {slot.scoring}", file=sys.stderr)


def _route(state: State) -> Slot:
    routes = state.config.routes
    if len(routes) == 1:
        return state.slots[next(iter(routes))]
    alias = random.choices(list(routes), weights=list(routes.values()))[0]
    return state.slots[alias]


async def _follow_aliases(state: State) -> None:
    """Hot reload: when an alias moves, load the new version and swap it in. Requests in
    flight keep the slot they started with, so none fails during the switch. Also refreshes
    the accuracy gauge from logged predictions and feedback every ~10 seconds.

    A round that fails (the database unreachable for a moment, a version that does not load)
    is logged and counted in ``shipyard_refresh_errors_total``; the loaded versions keep
    answering and the next round tries again."""
    rounds = 0
    while True:
        await asyncio.sleep(state.config.reload_seconds)
        rounds += 1
        if rounds * state.config.reload_seconds >= 10:
            rounds = 0
            await asyncio.to_thread(_refresh_accuracy, state)
        for alias, slot in list(state.slots.items()):
            try:
                current = await asyncio.to_thread(
                    state.project.models.get, f"{state.config.model}@{alias}"
                )
                if current.version != slot.version:
                    state.slots[alias] = await asyncio.to_thread(
                        _load, state.project, state.config.model, alias
                    )
                    _announce(state.slots[alias])
                    if slot.batcher is not None:
                        # Requests already queued on the old version finish first.
                        asyncio.get_running_loop().call_later(30, slot.batcher.task.cancel)
            except Exception as exc:  # keep serving the loaded version; try again next round
                _refresh_failed(state, "aliases", f"cannot follow alias {alias!r}", exc)


def _refresh_accuracy(state: State) -> None:
    """Set the accuracy gauge from the log; a failure is logged and counted, never raised
    (the feedback that triggered it is already stored)."""
    try:
        values = state.project.predictions.accuracy(
            state.config.model, window_seconds=state.config.accuracy_window_seconds
        )
    except Exception as exc:
        _refresh_failed(state, "accuracy", "cannot refresh the accuracy gauge", exc)
        return
    for ref, value in values.items():
        version = ref.split("@")[1]
        state.metrics.accuracy.labels(state.config.model, version).set(value)


def _refresh_failed(state: State, refresh: str, what: str, exc: BaseException) -> None:
    state.metrics.refresh_errors.labels(state.config.model, refresh).inc()
    log.warning("shipyard serve: %s; will try again: %s", what, _describe(exc))


# user:password@ in a URL a driver may quote in its message
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def _describe(exc: BaseException) -> str:
    """The error's type and the first line of its message, for a log: a database error is
    described by the driver's error (not the SQL statement and parameters SQLAlchemy adds),
    and credentials in a URL are masked."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    shown = orig if isinstance(orig, BaseException) else exc
    text = shown.message if isinstance(shown, ShipyardError) else str(shown)
    first = (text.strip().splitlines() or [""])[0][:300]
    return f"{type(shown).__name__}: {_CREDENTIALS.sub('***@', first)}"


def prepare_multiprocess_dir(root: Path) -> Path:
    """An empty folder for the workers' shared metric files."""
    import shutil

    folder = root / ".shipyard" / "prometheus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
