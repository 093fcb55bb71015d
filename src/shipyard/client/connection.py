"""One authenticated HTTP connection to a shipyard server's ``/api/v1``.

Every answer that is not a success becomes the :class:`~shipyard.errors.ShipyardError` the
server's service raised (found by its ``code``), with the same message, details and exit
code, so a command fails the same way through the server as on the database. The token is
sent in ``Authorization: Bearer`` and never shown: not in ``repr``, not in error messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.errors import (
    CheckFailedError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    InvalidReferenceError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    ProjectNotFoundError,
    ShipyardError,
    UnauthenticatedError,
)

__all__ = ["API_PREFIX", "ServerConnection", "ServerUnreachableError", "error_from", "segment"]

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Uploads, downloads and scoring move whole files: reads may wait much longer.
TRANSFER_TIMEOUT = httpx.Timeout(600.0, connect=10.0)

_CLASSES: dict[str, type[ShipyardError]] = {
    cls.code: cls
    for cls in (
        InvalidInputError,
        InvalidReferenceError,
        NotFoundError,
        ProjectNotFoundError,
        ConflictError,
        PermissionDeniedError,
        UnauthenticatedError,
        IntegrityError,
        CheckFailedError,
        MissingDependencyError,
    )
}


class ServerUnreachableError(ShipyardError):
    """The shipyard server named by ``SHIPYARD_SERVER`` (or ``shipyard login``) does not
    answer."""

    code = "unreachable"
    http_status = 503


def segment(value: str) -> str:
    """``value`` as one URL path segment (a reference keeps its ``@``)."""
    return quote(value, safe="@")


def error_from(status: int, body: bytes) -> ShipyardError:
    """The error a server answer stands for: the class named by its ``code`` (exit codes
    included), or a plain :class:`ShipyardError` carrying the code."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("error"), str):
        text = body.decode("utf-8", "replace").strip()[:300]
        return ShipyardError(f"the server answered {status}: {text or 'no details'}")
    code = doc["error"]
    message = str(doc.get("message") or code)
    details = doc.get("details") if isinstance(doc.get("details"), dict) else None
    cls = _CLASSES.get(code)
    if cls is None and code == "untrusted_model":
        from shipyard.registry.flavors import UntrustedModelError

        cls = UntrustedModelError
    if cls is not None:
        return cls(message, details=details)
    exc = ShipyardError(message, details=details)
    exc.code = code  # an error only the server knows (e.g. too_many_failures): keep its code
    exc.http_status = status
    return exc


class ServerConnection:
    """Requests to one server as one token's user.

    >>> conn = ServerConnection("http://127.0.0.1:8000", "shp_…")   # doctest: +SKIP
    >>> conn.json("GET", "/users/me")                              # doctest: +SKIP
    {'name': 'alice', 'role': 'admin', ...}

    ``transport`` replaces the network (an ``httpx.MockTransport`` or an app's transport).
    """

    def __init__(
        self, url: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "User-Agent": _user_agent()},
            timeout=DEFAULT_TIMEOUT,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ServerConnection({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
        content: bytes | Iterator[bytes] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send a request and return the successful response.

        Raises:
            ServerUnreachableError: no answer from the server.
            ShipyardError: the subclass the server's error ``code`` names.
        """
        if json_body is not None:
            # Metric values come as "NaN", "Infinity" (json_numbers). Another NaN (a missing
            # input value, say) is written as Python's json writes it, which the server reads.
            content = json.dumps(json_body).encode("utf-8")
            headers = {**(headers or {}), "Content-Type": "application/json"}
        try:
            response = self._client.request(
                method,
                path,
                params=_params(params),
                content=content,
                data=data,
                files=files,
                headers=headers,
                timeout=timeout or DEFAULT_TIMEOUT,
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            raise error_from(response.status_code, response.content)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON document a successful request answers with."""
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed response (for downloads), checked like :meth:`request`."""
        try:
            with self._client.stream(
                method, path, params=_params(params), timeout=TRANSFER_TIMEOUT
            ) as response:
                if response.is_error:
                    raise error_from(response.status_code, response.read())
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachableError:
        reason = str(exc) or type(exc).__name__
        return ServerUnreachableError(
            f"cannot reach the shipyard server at {self.url}: {reason}; check SHIPYARD_SERVER "
            "(or `shipyard login URL`) and that the server is running"
        )


def _params(
    params: Mapping[str, Any] | list[tuple[str, Any]] | None,
) -> httpx.QueryParams | None:
    """Query parameters without the ``None`` ones; booleans as ``true``/``false``."""
    if params is None:
        return None
    items = params.items() if isinstance(params, Mapping) else params
    out: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in items:
        if value is None:
            continue
        out.append((key, ("true" if value else "false") if isinstance(value, bool) else str(value)))
    return httpx.QueryParams(out)


def _user_agent() -> str:
    from shipyard import __version__

    return f"shipyard-client/{__version__}"
