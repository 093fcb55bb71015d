"""Who a request acts as: the user of its bearer token, checked on every request.

``Authorization: Bearer shp_…`` is the way in. The MLflow client's basic auth
(``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``) is accepted too, with the token as
the password and its user as the user name. Anything else is a 401.

Failed attempts are counted per client address: after a few in a minute, each further failure
is answered late (the delay doubles, up to a few seconds), and past a limit at once with a 429,
so guessing tokens is slow. The count is per server process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from shipyard.errors import ShipyardError, UnauthenticatedError
from shipyard.project import Project

if TYPE_CHECKING:
    from shipyard.governance.tokens import Identity

__all__ = ["FailureThrottle", "TooManyFailuresError", "acting_project", "bearer"]

#: Declares the scheme in the OpenAPI document; the check itself is :func:`acting_project`.
bearer = HTTPBearer(auto_error=False, description="An API token: `shipyard users token create`")

WINDOW_SECONDS = 60.0
FREE_FAILURES = 5  # failures per address and window answered without delay
REFUSE_AFTER = 30  # failures per address and window after which requests get a 429
MAX_DELAY_SECONDS = 4.0


class TooManyFailuresError(ShipyardError):
    """Too many failed authentications from one address: wait and retry."""

    code = "too_many_failures"
    http_status = 429


class FailureThrottle:
    """Failed authentications per client address over the last minute."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        q = self._failures.setdefault(address, deque())
        while q and q[0] < now - WINDOW_SECONDS:
            q.popleft()
        return q

    def count(self, address: str) -> int:
        with self._lock:
            return len(self._recent(address, time.monotonic()))

    def fail(self, address: str) -> float:
        """Count a failure; the delay (seconds) to answer it with."""
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # forget quiet addresses
                self._failures = {a: q for a, q in self._failures.items() if q and q[-1] > now - 60}
            q = self._recent(address, now)
            q.append(now)
            n = len(q)
        if n <= FREE_FAILURES:
            return 0.0
        return float(min(MAX_DELAY_SECONDS, 0.25 * 2 ** (n - FREE_FAILURES - 1)))


def _token_from(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise UnauthenticatedError("malformed basic credentials") from None
        request.state.basic_user = user
        return password
    raise UnauthenticatedError("unsupported Authorization scheme: send `Bearer <token>`")


def _authenticate(project: Project, token: str) -> Identity:
    from shipyard.governance.tokens import authenticate

    return authenticate(project.db, token)


async def acting_project(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Project:
    """The server's project acting as the request's user (a FastAPI dependency).

    Raises:
        UnauthenticatedError: no token, or not a valid one (401).
        TooManyFailuresError: this address failed too often in the last minute (429).
    """
    base: Project = request.app.state.project
    throttle: FailureThrottle = request.app.state.throttle
    address = request.client.host if request.client else "unknown"
    if throttle.count(address) >= REFUSE_AFTER:
        raise TooManyFailuresError(
            f"too many failed authentications from {address}; retry in a minute"
        )
    try:
        token = _token_from(request)
        if token is None:
            raise UnauthenticatedError(
                "this API needs a token: send `Authorization: Bearer <token>` (make one with "
                "`shipyard users token create`)"
            )
        identity = await run_in_threadpool(_authenticate, base, token)
        basic_user = getattr(request.state, "basic_user", None)
        if basic_user and basic_user != identity.user:
            raise UnauthenticatedError("the basic-auth user name is not the token's user")
    except UnauthenticatedError:
        delay = throttle.fail(address)
        if delay:
            await asyncio.sleep(delay)
        raise
    request.state.actor = identity.user
    request.state.token_id = identity.token_id
    return base.as_actor(identity.user, token_id=identity.token_id)
