"""Logging in with an API token and logging out.

The login form posts the token once; the server checks it like a bearer token (failures go
through the server's failure throttle, as for the API) and answers with a session cookie
(HttpOnly, SameSite=Strict, Secure over https) that holds the token's id, never the token.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from shipyard.errors import UnauthenticatedError
from shipyard.project import Project
from shipyard.server.auth import REFUSE_AFTER, FailureThrottle
from shipyard.server.ui.rendering import UiRoute, page
from shipyard.server.ui.sessions import LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS
from shipyard.server.ui.visitors import LOCAL_COOKIE, CsrfRefusedError, PostedBy, ui_state

__all__ = ["router"]

router = APIRouter(route_class=UiRoute)


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never ``//host`` or a full URL (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, next_path: str, message: str = "", status: int = 200) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    csrf = ui_state(request).signer.csrf(f"login|{nonce}")
    response = page(
        request, "login.html", None, status=status, csrf=csrf, next=next_path, message=message
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if ui_state(request).local_actor is not None:
        refusal = UnauthenticatedError(
            "this local UI answers to the address `shipyard ui` printed when it started, "
            "which carries a key of this launch: open that one"
        )
        return page(request, "error.html", None, status=401, error=refusal, kind="error")
    return _login_page(request, _safe_next(next))


@router.get("/local-login")
def local_login(request: Request, key: str = "") -> Response:
    """The local UI's way in: the address ``shipyard ui`` prints carries this launch's key,
    which becomes an HttpOnly cookie; any other key is refused."""
    ui = ui_state(request)
    if ui.local_actor is None or not ui.local_key_ok(key):
        return RedirectResponse("/login", status_code=303)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(LOCAL_COOKIE, key, httponly=True, samesite="strict")
    return response


def _open_session(project: Project, token: str) -> tuple[str, int]:
    """The token id of a valid token and how long its session may last (seconds)."""
    from shipyard.governance.tokens import authenticate

    identity = authenticate(project.db, token)
    info = project.as_actor(identity.user, token_id=identity.token_id).tokens.get(identity.token_id)
    lifetime = SESSION_SECONDS
    if info.expires_at is not None:
        lifetime = min(lifetime, int((info.expires_at - datetime.now(UTC)).total_seconds()))
    return identity.token_id, max(lifetime, 1)


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    ui = ui_state(request)
    target = _safe_next(next)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not ui.signer.csrf_ok(f"login|{nonce}", csrf_token):
        raise CsrfRefusedError("the login form is out of date; reload the page and try again")
    throttle: FailureThrottle = request.app.state.throttle
    address = request.client.host if request.client else "unknown"
    if throttle.count(address) >= REFUSE_AFTER:
        return _login_page(
            request, target, "too many failed logins from this address; wait a minute", 429
        )
    try:
        token_id, lifetime = await run_in_threadpool(
            _open_session, request.app.state.project, token.strip()
        )
    except UnauthenticatedError as e:
        delay = throttle.fail(address)
        if delay:
            await asyncio.sleep(delay)
        return _login_page(request, target, f"login refused: {e.message}", 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        ui.signer.issue(token_id, lifetime_seconds=lifetime),
        max_age=lifetime,
        expires=int(time.time()) + lifetime,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, posted: PostedBy) -> Response:
    del posted  # checked: a page of another site cannot log the user out
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response
