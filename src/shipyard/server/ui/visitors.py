"""Who is looking at a page: the session's user on the team server, or the OS user on the
local UI of ``shipyard ui``; and the CSRF check every POST goes through.

Routes take a :class:`Visitor` (pages) or a :class:`Posted` (form posts) as a FastAPI
dependency; both act through ``visitor.project``, the server's project acting as the user,
so the services check the user's role exactly as for the CLI and the REST API.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shipyard.authz import Role, allows, check_role
from shipyard.errors import ShipyardError, UnauthenticatedError
from shipyard.project import Project
from shipyard.server.ui.sessions import SESSION_COOKIE, Session, SessionSigner

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "CsrfRefusedError",
    "LoginRequiredError",
    "Posted",
    "PostedBy",
    "UiState",
    "ViewedBy",
    "Visitor",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: The cookie of a local UI (``shipyard ui``): the launch key it printed, which another user
#: of the same machine does not have (the port alone lets anyone on it connect).
LOCAL_COOKIE = "shipyard_local"


class LoginRequiredError(UnauthenticatedError):
    """No valid session: the page answers with the login page."""


class CsrfRefusedError(ShipyardError):
    """A POST without the CSRF token of its session."""

    code = "csrf"
    http_status = 403


@dataclass(frozen=True)
class UiState:
    """What the UI keeps on the app: the signer, and the OS user of a local UI (None on the
    team server, where everyone logs in) with the random key of this launch, which the
    address ``shipyard ui`` prints carries once (``/local-login?key=…``)."""

    signer: SessionSigner
    local_actor: str | None = None
    local_key: str = ""

    def local_key_ok(self, key: str | None) -> bool:
        return bool(self.local_key and key) and hmac.compare_digest(
            str(key).encode(), self.local_key.encode()
        )


@dataclass(frozen=True)
class Visitor:
    """The user a page is shown to, with the project acting as them."""

    project: Project
    user: str
    role: Role
    csrf: str
    local: bool

    def may(self, needed: Role) -> bool:
        """Whether to show an action that needs ``needed`` (the service checks again)."""
        return allows(self.role, needed)


@dataclass(frozen=True)
class Posted:
    """A form post whose CSRF token matched: who sent it and the form's fields."""

    visitor: Visitor
    form: dict[str, str]

    def field(self, name: str, default: str = "") -> str:
        return self.form.get(name, default).strip()


def ui_state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


def _session_of(request: Request) -> Session | None:
    return ui_state(request).signer.read(request.cookies.get(SESSION_COOKIE))


def _role(project: Project) -> Role:
    return check_role(project.users.whoami().role)


def _identify(request: Request) -> Visitor:
    base: Project = request.app.state.project
    ui = ui_state(request)
    if ui.local_actor is not None:
        key = request.cookies.get(LOCAL_COOKIE)
        if not ui.local_key_ok(key):
            raise LoginRequiredError(
                "open the address `shipyard ui` printed: it carries this launch's key"
            )
        project = base.as_actor(ui.local_actor)
        return Visitor(
            project, ui.local_actor, _role(project), ui.signer.csrf(f"local|{key}"), True
        )
    session = _session_of(request)
    if session is None:
        raise LoginRequiredError("log in with an API token to see this page")
    from shipyard.governance.tokens import still_valid

    try:
        identity = still_valid(base.db, session.token_id)
    except UnauthenticatedError as e:
        raise LoginRequiredError(f"your session ended: {e.message}") from None
    project = base.as_actor(identity.user, token_id=identity.token_id)
    return Visitor(
        project, identity.user, _role(project), ui.signer.csrf(session.cookie), local=False
    )


async def visitor(request: Request) -> Visitor:
    """The page's visitor (a FastAPI dependency).

    Raises:
        LoginRequiredError: no session, or its token was revoked or has expired.
    """
    who = await run_in_threadpool(_identify, request)
    request.state.ui_visitor = who  # for the error page, which names the user too
    return who


def csrf_binding(request: Request) -> str:
    """What the CSRF token of this request's session is bound to."""
    if ui_state(request).local_actor is not None:
        return f"local|{request.cookies.get(LOCAL_COOKIE, '')}"
    session = _session_of(request)
    return session.cookie if session else ""


async def posted(request: Request, who: Annotated[Visitor, Depends(visitor)]) -> Posted:
    """A form post checked against CSRF (a FastAPI dependency): the token comes in the
    ``csrf_token`` field of a form or the ``X-CSRF-Token`` header of an HTMX request.

    Raises:
        LoginRequiredError: no valid session.
        CsrfRefusedError: the token is missing or not this session's.
    """
    form = await request.form()
    fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    sent = request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD)
    if not ui_state(request).signer.csrf_ok(csrf_binding(request), sent):
        raise CsrfRefusedError(
            "this form's security token is missing or out of date; reload the page and try again"
        )
    return Posted(who, fields)


ViewedBy = Annotated[Visitor, Depends(visitor)]
PostedBy = Annotated[Posted, Depends(posted)]
