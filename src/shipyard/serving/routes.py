"""The server's endpoints: predictions (``/predict`` and v2 infer), health, model metadata,
``/metrics``, ``/feedback`` and ``/kpi``.

Every request that is refused gets a 4xx naming the problem, counted in
``shipyard_prediction_errors_total{reason}``; a failure of the server gets a 500 carrying its
request id and a generic sentence (:mod:`shipyard.serving.failures`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from shipyard.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.registry.compiled import NotCompiled
from shipyard.serving import v2
from shipyard.serving.batching import batcher_for
from shipyard.serving.failures import (
    internal_error_message,
    log_internal_error,
    unscorable,
)
from shipyard.serving.feedback import FEEDBACK_STATUSES
from shipyard.serving.ingest import Unauthorized, feedback_body, kpi_body, store_feedback
from shipyard.serving.inputs import (
    RequestError,
    json_body,
    parse_json,
    predict_body,
    read_body,
    validate_rows,
)

if TYPE_CHECKING:
    from shipyard.serving.app import State
    from shipyard.serving.reload import Slot

__all__ = ["install", "refresh_accuracy"]

PREDICT, INFER = "/predict", "/v2/infer"
# Requests with more rows than this are scored by the compiled model off the event loop.
INLINE_ROWS = 256
# What the compiled arithmetic may raise on a row it does not cover: scikit-learn decides.
NOT_COVERED = (NotCompiled, ArithmeticError, ValueError)

Handler = Callable[[Request], Awaitable[Response]]


def install(app: FastAPI, name: str) -> None:
    """Add the endpoints of the server for the deployment ``name`` to ``app``.

    The two prediction endpoints are plain Starlette routes: they read their bodies
    themselves, so FastAPI's parameter handling would only add work to every request (about
    a sixth of a single-row request's time). :mod:`shipyard.serving.openapi` describes them.
    """

    async def predict(request: Request) -> Response:
        return await handle(request, PREDICT)

    async def infer(request: Request) -> Response:
        if request.path_params["name"] != name:
            return _unknown_model(request.path_params["name"], name)
        return await handle(request, INFER)

    app.add_route("/predict", predict, methods=["POST"])
    app.add_route("/v2/models/{name}/infer", infer, methods=["POST"])

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready(request: Request) -> Response:
        state: State | None = getattr(request.app.state, "shipyard", None)
        ok = bool(state and state.ready and state.plan.answering)
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def model_metadata(request: Request) -> Response:
        if request.path_params["name"] != name:
            return _unknown_model(request.path_params["name"], name)
        state: State = request.app.state.shipyard
        doc = v2.metadata(name, state.plan)
        if doc is None:
            return _error(503, _nothing_serves(state))
        return JSONResponse(doc)

    async def metrics(request: Request) -> Response:
        state: State = request.app.state.shipyard
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    app.get("/v2/models/{name}")(_guarded("/v2/metadata", model_metadata))
    app.get("/metrics")(_guarded("/metrics", metrics))
    app.post("/feedback")(_guarded("/feedback", _feedback))
    app.post("/kpi")(_guarded("/kpi", _kpi))


# -- predictions ----------------------------------------------------------------------------------


async def handle(request: Request, endpoint: str) -> Response:
    """Answer a prediction request to ``endpoint`` (``/predict`` or ``/v2/infer``)."""
    state: State = request.app.state.shipyard
    start = time.perf_counter()
    metrics = state.metrics
    name = state.config.deployment
    plan = state.plan  # this request keeps the plan of the moment
    slot = plan.route()
    if slot is None:
        return _refused(state, endpoint, RequestError(503, "unservable", _nothing_serves(state)))
    version = slot.label
    metrics.started()
    ids: list[str] = []
    try:
        body = await read_body(request, state)
        doc = parse_json(body)
        if endpoint == INFER:
            rows = v2.infer_body(doc)
            if slot.predictor.signature is not None:
                v2.check_datatypes(doc, slot.predictor.signature)
        else:
            rows = predict_body(doc)
        logged, logged_as = body, endpoint
        if slot.features is not None:
            rows = slot.features.fill(state.project, rows, metrics, name)
            # The log (and live drift) keeps the rows as scored, the looked-up values in.
            logged, logged_as = orjson.dumps({"records": rows}), PREDICT
        checked = validate_rows(slot, rows)
        ids = state.request_ids(len(rows))
        outputs = await _score(slot, checked)
        elapsed = time.perf_counter() - start
        _log(state, slot, ids, logged, logged_as, outputs, elapsed, shadow=False)
        shadow = plan.shadow
        if shadow is not None:
            state.shadow_pool.submit(_shadow, state, shadow, ids, logged, logged_as, checked)
        metrics.predicted(name, version, len(rows))
        if endpoint == INFER:
            answer = v2.answer(name, slot, ids, outputs, doc)
        else:
            answer = _predict_answer(plan.deployment.model, name, slot, ids, outputs)
        code = 200
        response = Response(
            orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )
    except RequestError as exc:
        code = exc.status
        metrics.errors.labels(name, version, exc.reason).inc()
        if isinstance(exc.details, dict) and "errors" in exc.details:  # the row checks'
            metrics.violated(name, version, exc.details["errors"], slot.checks.columns)
        response = _error(exc.status, exc.message, exc.details)
    except Exception as exc:
        reason = unscorable(exc)
        if reason is not None:  # the values of the rows: the client's to fix
            code = 422
            metrics.errors.labels(name, version, "invalid_input").inc()
            response = _error(422, reason)
        else:  # the server's failure: 500 with the request id, the details in the log
            code = 500
            metrics.errors.labels(name, version, "model_error").inc()
            response = _internal_error(ids[0] if ids else state.request_ids(1)[0], endpoint, exc)
    finally:
        metrics.finished()
    metrics.answered(name, version, endpoint, code, time.perf_counter() - start)
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
        except NOT_COVERED:
            pass  # e.g. a missing value with no imputer: scikit-learn decides
    return await batcher_for(slot).submit(rows)


def _predict_answer(
    model: str, name: str, slot: Slot, ids: list[str], outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "predictions": [o["prediction"] for o in outputs],
        "model": model,
        "version": slot.version,
        "alias": slot.alias,
        "deployment": name,
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
    """Score checked ``rows`` with the shadow version (on the shadow pool's thread) and log
    the answers as shadow scores; a failure is counted, never raised."""
    start = time.perf_counter()
    name = state.config.deployment
    try:
        try:
            if slot.compiled is None:
                raise NotCompiled("no compiled model")
            outputs = slot.compiled.score(rows)
        except NOT_COVERED:
            outputs = slot.predictor.answer(slot.predictor.frame_from_records(rows))
    except Exception:
        state.metrics.errors.labels(name, slot.label, "shadow_error").inc()
        return
    _log(state, slot, ids, body, endpoint, outputs, time.perf_counter() - start, shadow=True)
    state.metrics.predicted(name, slot.label, len(rows))


# -- feedback and KPIs ----------------------------------------------------------------------------


async def _feedback(request: Request) -> Response:
    state: State = request.app.state.shipyard
    name = state.config.deployment
    try:
        state.ingest.check(request.headers.get("authorization"))
        items = feedback_body(await json_body(request, state))
        results = await store_feedback(
            state.project.predictions,
            name,
            items,
            log=state.log,
            issued_here=state.issued,
            wait_seconds=state.config.feedback_wait_seconds,
        )
    except (ShipyardError, RequestError) as exc:
        return _refused_ingest(state, "/feedback", exc)
    counts = Counter(r.status for r in results)
    for r in results:
        if r.status == "stored":  # a request id counts once, however often it is sent
            state.metrics.feedback.labels(name, r.model.rpartition("@")[2]).inc()
    if counts["stored"] or counts["replaced"]:
        # The labels are stored: a failure to refresh the gauge must not turn this into an
        # error. The watcher refreshes it again within seconds.
        await asyncio.to_thread(refresh_accuracy, state)
    return JSONResponse(
        {
            "accepted": len(results),
            **{status: counts[status] for status in FEEDBACK_STATUSES},
            "results": [r.to_dict() for r in results],
        }
    )


async def _kpi(request: Request) -> Response:
    state: State = request.app.state.shipyard
    try:
        state.ingest.check(request.headers.get("authorization"))
        events = kpi_body(await json_body(request, state))
        # Every event is checked (names, values, the limit on names) before any is stored.
        await asyncio.to_thread(
            state.project.predictions.record_kpis, state.config.deployment, events
        )
    except (ShipyardError, RequestError) as exc:
        return _refused_ingest(state, "/kpi", exc)
    for name, value, _ in events:
        state.metrics.kpi.labels(name).inc()
        state.metrics.kpi_value.labels(name).observe(value)
    return JSONResponse({"accepted": len(events)})


def refresh_accuracy(state: State) -> None:
    """Set the accuracy gauge from the log; a failure is logged and counted, never raised
    (the feedback that triggered it is already stored)."""
    from shipyard.serving.reload import refresh_failed

    name = state.config.deployment
    try:
        values = state.project.predictions.accuracy(
            name, window_seconds=state.config.accuracy_window_seconds
        )
    except Exception as exc:
        refresh_failed(state, "accuracy", "cannot refresh the accuracy gauge", exc)
        return
    for ref, value in values.items():
        state.metrics.accuracy.labels(name, ref.split("@")[1]).set(value)


# -- answers that are not predictions -------------------------------------------------------------


def _guarded(endpoint: str, handler: Handler) -> Handler:
    """``handler``, with a failure of the server answered as a 500 carrying a request id
    (logged with the error) instead of the exception's text."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            state: State = request.app.state.shipyard
            rid = state.request_ids(1)[0]
            state.metrics.errors.labels(state.config.deployment, "-", "server_error").inc()
            state.metrics.requests.labels(state.config.deployment, "-", endpoint, "500").inc()
            return _internal_error(rid, endpoint, exc)

    guarded.__name__ = handler.__name__.strip("_")
    guarded.__doc__ = handler.__doc__
    return guarded


def _internal_error(request_id: str, endpoint: str, exc: BaseException) -> Response:
    log_internal_error(request_id, endpoint, exc)
    body = {"error": internal_error_message(request_id), "request_id": request_id}
    return JSONResponse(body, status_code=500)


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
    state.metrics.errors.labels(state.config.deployment, "-", exc.reason).inc()
    state.metrics.requests.labels(state.config.deployment, "-", endpoint, str(exc.status)).inc()
    return _error(exc.status, exc.message, exc.details)


def _error(status: int, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status)


def _unknown_model(asked: str, name: str) -> Response:
    return _error(404, f"no model {asked!r} here; this server serves {name!r}")


def _nothing_serves(state: State) -> str:
    name = state.config.deployment
    return (
        f"no version of {name} may serve now ({state.plan.describe()}; the server's log says "
        f"why): an approver promotes or rolls back a servable version, or changes the "
        f"deployment with `shipyard deployments set {name}`"
    )
