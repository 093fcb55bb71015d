"""``/api/v1/users`` and ``/api/v1/tokens``: who may do what, and their API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from shipyard.governance.access import User
from shipyard.governance.tokens import NewToken, Token
from shipyard.project import Project
from shipyard.server.api._docs import returns
from shipyard.server.auth import acting_project

router = APIRouter(tags=["users"])
Acting = Annotated[Project, Depends(acting_project)]

_USER = {
    "name": "alice",
    "role": "approver",
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "admin",
    "registered": True,
}
_TOKEN = {
    "id": "3f9a0c1b2d4e5f60",
    "user": "alice",
    "label": "laptop",
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "alice",
    "expires_at": "2026-08-01T10:00:00+00:00",
    "revoked_at": None,
    "revoked_by": None,
    "active": True,
}


class UserIn(BaseModel):
    """A user to add, or whose role to change."""

    name: str = Field(examples=["alice"])
    role: str = Field("contributor", examples=["approver"])


class TokenIn(BaseModel):
    """A token to make."""

    user: str | None = Field(None, description="default: the token's own user")
    expires: str | None = Field(None, description="a lifetime such as 90d, 12h", examples=["90d"])
    label: str = Field("", examples=["laptop"])


@router.get("/users", summary="List users and roles", **returns(User, many=True, example=[_USER]))
def list_users(project: Acting) -> Any:
    return [u.to_dict() for u in project.users.list()]


@router.get("/users/me", summary="The token's user and role", **returns(User, example=_USER))
def whoami(project: Acting) -> Any:
    return project.users.whoami().to_dict()


@router.post(
    "/users",
    summary="Add a user or change a role (admin)",
    **returns(User, example=_USER, errors=(401, 403, 422)),
)
def add_user(project: Acting, body: UserIn) -> Any:
    return project.users.add(body.name, body.role).to_dict()


@router.get(
    "/tokens",
    summary="List API tokens (yours, or another user's or everyone's as an admin)",
    **returns(Token, many=True, example=[_TOKEN], errors=(401, 403)),
)
def list_tokens(
    project: Acting,
    user: Annotated[str | None, Query(description="whose tokens (default: yours)")] = None,
    all_users: Annotated[bool, Query(alias="all", description="every user's (admin)")] = False,
) -> Any:
    return [t.to_dict() for t in project.tokens.list(user, all_users=all_users)]


@router.post(
    "/tokens",
    summary="Make an API token; the secret is in this response only",
    **returns(
        NewToken,
        example={"token": "shp_3f9a0c1b2d4e5f60_…", **_TOKEN},
        errors=(401, 403, 404, 422),
    ),
)
def create_token(project: Acting, body: TokenIn) -> Any:
    return project.tokens.create(body.user, expires=body.expires, label=body.label).to_dict()


@router.get(
    "/tokens/{token_id}",
    summary="One API token",
    **returns(Token, example=_TOKEN, errors=(401, 404)),
)
def get_token(project: Acting, token_id: str) -> Any:
    return project.tokens.get(token_id).to_dict()


@router.delete(
    "/tokens/{token_id}",
    summary="Revoke an API token",
    **returns(Token, example={**_TOKEN, "active": False}, errors=(401, 404)),
)
def revoke_token(project: Acting, token_id: str) -> Any:
    return project.tokens.revoke(token_id).to_dict()
