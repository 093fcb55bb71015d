"""The web UI at ``/``: server-rendered Jinja2 pages with HTMX, charts drawn by the plotly.js
that ships in the ``plotly`` wheel, every script a static file served by the server itself
(no CDN, no build step, works offline).

On the team server everyone logs in with an API token (:mod:`.sessions`); ``shipyard ui``
serves a project on 127.0.0.1 as the OS user, with no login (:func:`mount_ui` with
``local_actor``). Every page is a thin route: call service methods as the visitor, render.

>>> mount_ui(app, project)                    # doctest: +SKIP
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.project import Project

__all__ = ["SECURITY_HEADERS", "mount_ui", "plotly_js"]

STATIC = Path(__file__).parent / "static"

#: Headers on every UI response. Scripts come only from this server and never inline (the
#: pages pass chart data in data attributes). plotly.js writes <style> rules for its charts,
#: so styles allow 'unsafe-inline'; that admits no script.
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
_API_PATHS = ("/api/", "/ajax-api/")
#: The host names the local UI answers to.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response outside the REST and MLflow APIs
    (whose interactive docs load their own scripts)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_API_PATHS):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def plotly_js() -> Path:
    """The minified plotly.js inside the installed ``plotly`` package."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        from shipyard.errors import MissingDependencyError

        raise MissingDependencyError("the web UI needs the plotly package: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def mount_ui(app: FastAPI, project: Project, *, local_actor: str | None = None) -> None:
    """Serve the UI on ``app``: pages at ``/``, scripts and styles under ``/static``. With
    ``local_actor`` every request acts as that user without logging in (``shipyard ui``)."""
    import secrets

    from shipyard.config import STATE_DIR
    from shipyard.server.ui import (
        pages_comments,
        pages_data,
        pages_models,
        pages_ops,
        pages_runs,
        session_routes,
    )
    from shipyard.server.ui.sessions import SessionSigner, load_secret
    from shipyard.server.ui.visitors import UiState

    app.state.ui = UiState(
        SessionSigner(load_secret(project.root / STATE_DIR)),
        local_actor,
        secrets.token_urlsafe(24) if local_actor is not None else "",
    )
    app.add_middleware(SecurityHeaders)
    if local_actor is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        # No login here, so no page of another site may reach it through a host name it
        # controls that resolves to 127.0.0.1 (DNS rebinding).
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(LOCAL_HOSTS))
    plotly = plotly_js()

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_script() -> Response:
        return FileResponse(
            plotly, media_type="text/javascript", headers={"cache-control": "max-age=86400"}
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (session_routes, pages_ops, pages_data, pages_models, pages_runs, pages_comments):
        app.include_router(module.router, include_in_schema=False)
