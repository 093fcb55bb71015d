"""Roles and who may do what: viewer < contributor < approver < admin.

Every service calls :func:`require_role` itself, inside the transaction that makes the change,
so the CLI, the Python API and the servers obey the same rules. An actor with no user record
is a viewer.

>>> require_role(conn, "bob", "approver", "approve models")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard.errors import InvalidInputError, PermissionDeniedError
from shipyard.stores.db.tables import users

__all__ = ["ROLES", "Role", "allows", "check_role", "require_role", "role_of"]

Role = Literal["viewer", "contributor", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "contributor", "approver", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}


def check_role(role: str) -> Role:
    """``role`` as a :data:`Role`.

    Raises:
        InvalidInputError: not one of :data:`ROLES`.
    """
    if role not in _RANK:
        raise InvalidInputError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def allows(have: str, needed: Role) -> bool:
    """Whether the role ``have`` may do what needs ``needed`` (for showing only the actions a
    user may take; the services still check with :func:`require_role`).

    >>> allows("approver", "contributor")
    True
    """
    return _RANK[check_role(have)] >= _RANK[needed]


def role_of(conn: Connection, name: str) -> Role:
    """The role of ``name``; an unknown user is a viewer."""
    row = conn.execute(select(users.c.role).where(users.c.name == name)).first()
    return check_role(row.role) if row else "viewer"


def require_role(conn: Connection, actor: str, needed: Role, doing: str) -> Role:
    """The actor's role, when it is at least ``needed``.

    ``doing`` completes the sentence "user 'x' is a viewer and cannot …".

    Raises:
        PermissionDeniedError: the actor's role is below ``needed``.
    """
    have = role_of(conn, actor)
    if _RANK[have] < _RANK[needed]:
        article = "an" if have[0] in "aeiou" else "a"
        raise PermissionDeniedError(
            f"user '{actor}' is {article} {have} and cannot {doing}: this needs the {needed} "
            f"role or higher; an admin can grant it with "
            f"`shipyard users add {actor} --role {needed}`",
            details={"actor": actor, "role": have, "needed": needed},
        )
    return have
