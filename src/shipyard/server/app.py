"""The team server's application: health and version, the REST API under ``/api/v1`` and the
MLflow tracking protocol under ``/api/2.0/mlflow`` (and ``/ajax-api/2.0/mlflow``), every route
but health and version behind a bearer token (:mod:`shipyard.server.auth`), and the web UI at
``/`` behind a login session (:mod:`shipyard.server.ui`).

>>> app = create_app(open_project("."))      # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import ShipyardError
from shipyard.project import Project
from shipyard.server.auth import FailureThrottle
from shipyard.server.responses import JSON

__all__ = ["API_PREFIX", "MLFLOW_PREFIXES", "app_from_env", "create_app"]

log = logging.getLogger("shipyard.server")

API_PREFIX = "/api/v1"
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/2.0/mlflow-artifacts")
#: The environment variable naming the project folder for worker processes.
PROJECT_ENV = "SHIPYARD_SERVER_PROJECT"

_STATUS_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "permission",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_input",
}


def _is_mlflow(request: Request) -> bool:
    return request.url.path.startswith(MLFLOW_PREFIXES)


def _error(request: Request, status: int, code: str, message: str, **extra: Any) -> Response:
    if _is_mlflow(request):
        from shipyard.server.mlflow_api.errors import mlflow_error_response

        return mlflow_error_response(status, code, message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSON({"error": code, "message": message, **extra}, status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ShipyardError)
    async def shipyard_error(request: Request, exc: ShipyardError) -> Response:
        extra = {"details": exc.details} if exc.details else {}
        return _error(request, exc.http_status, exc.code, exc.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        message = f"invalid request: {'; '.join(problems)}"
        return _error(request, 422, "invalid_input", message, details={"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return _error(request, exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(
            request, 500, "internal", f"unexpected {type(exc).__name__}; see the server's log"
        )


def _webhook_lifespan(project: Project) -> Any:
    """Runs the webhook queue (dispatch and send) in a background thread while the app runs,
    stopped on shutdown; every worker process of the server runs one, and claims keep them
    from sending a delivery twice."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from shipyard.collaboration.webhook_delivery import DeliveryWorker, WorkerThread

        thread = WorkerThread(DeliveryWorker(project.context))
        thread.start()
        try:
            yield
        finally:
            thread.stop()

    return lifespan


def create_app(project: Project, *, ui_actor: str | None = None) -> FastAPI:
    """The server over ``project``'s stores; each request acts as its token's user (and each
    page of the UI as its session's user, or as ``ui_actor`` without login: ``shipyard ui``);
    the webhook queue runs in the background while the app runs (:func:`_webhook_lifespan`)."""
    from shipyard import __version__
    from shipyard.server.api import router as api_router
    from shipyard.server.mlflow_api import routers as mlflow_routers
    from shipyard.server.ui import mount_ui
    from shipyard.stores.db.engine import SCHEMA_HEAD

    app = FastAPI(
        title="shipyard",
        version=__version__,
        description=(
            "The shipyard team server. Every route but /health and /version needs "
            "`Authorization: Bearer <token>`; make a token with `shipyard users token create`. "
            'Errors are `{"error": CODE, "message": ...}` with the CLI\'s codes.'
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        default_response_class=JSON,
        lifespan=_webhook_lifespan(project),
    )
    app.state.project = project
    app.state.throttle = FailureThrottle()
    _install_error_handlers(app)

    @app.get("/health", tags=["server"], summary="Liveness and database reachability")
    def health() -> dict[str, str]:
        with project.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    @app.get("/version", tags=["server"], summary="Versions of the server and its API")
    def version() -> dict[str, str]:
        return {"shipyard": __version__, "api": "v1", "schema": SCHEMA_HEAD}

    app.include_router(api_router, prefix=API_PREFIX)
    for router in mlflow_routers():
        app.include_router(router)
    mount_ui(app, project, local_actor=ui_actor)
    return app


def app_from_env() -> FastAPI:
    """The app for one worker of a multi-process server (uvicorn's factory): the project
    folder is in ``SHIPYARD_SERVER_PROJECT``."""
    from shipyard.project import open_project

    return create_app(open_project(os.environ[PROJECT_ENV]))
