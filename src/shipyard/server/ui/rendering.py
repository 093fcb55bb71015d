"""Rendering pages: the Jinja2 environment (autoescaped; user text goes through the
``markdown`` filter, which sanitises), and :class:`UiRoute`, the route class of every UI router,
which turns a service's refusal into an HTML page with the service's status and message and a
missing session into the login page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from shipyard._internal.dtypes import readable_dtype
from shipyard._internal.markdown import render_markdown
from shipyard.errors import ShipyardError
from shipyard.server.ui.visitors import CSRF_FIELD, LoginRequiredError, Visitor

__all__ = ["UiRoute", "page", "templates"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: Any) -> str:
    """A time as ``2026-05-03 10:00 UTC`` (datetimes, ISO strings and epoch milliseconds)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def _figure(fig: Mapping[str, Any]) -> Markup:
    """A chart placeholder that static/shipyard.js draws with plotly.js (no inline script:
    the figure travels as JSON in a data attribute, escaped for it)."""
    data = orjson.dumps(fig, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return Markup('<div class="chart" data-figure="{}"></div>').format(data)


env = templates.env
env.filters["markdown"] = lambda text, mentions=(): Markup(
    render_markdown(text, mentions=mentions)
)  # ``{{ c.text|markdown(c.mentions) }}`` highlights a comment's mentions
env.filters["when"] = _when
env.filters["size"] = _size
env.filters["num"] = _num
env.filters["dtype"] = readable_dtype
env.filters["urlpart"] = lambda s: quote(str(s), safe="")
env.globals["chart"] = _figure
env.globals["CSRF_FIELD"] = CSRF_FIELD


def page(
    request: Request, template: str, who: Visitor | None, status: int = 200, **context: Any
) -> Response:
    """The template rendered for ``who`` (None: the login page)."""
    from shipyard import __version__

    return templates.TemplateResponse(
        request, template, {"who": who, "version": __version__, **context}, status_code=status
    )


def _login_redirect(request: Request, message: str) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        # htmx follows a redirect inside the swapped fragment; tell it to load the page.
        return Response(status_code=401, headers={"HX-Redirect": location})
    if request.method == "GET":
        return RedirectResponse(location, status_code=303)
    return page(request, "login.html", None, status=401, message=message, next=target)


class UiRoute(APIRoute):
    """A UI route: errors become pages (or fragments, for htmx) instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequiredError as e:
                return _login_redirect(request, e.message)
            except ShipyardError as e:
                template = "_message.html" if request.headers.get("hx-request") else "error.html"
                who = getattr(request.state, "ui_visitor", None)
                return page(request, template, who, status=e.http_status, error=e, kind="error")

        return handle
