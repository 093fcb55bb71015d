"""Users and roles: viewer < contributor < approver < admin.

Roles are enforced here, in the services, so the CLI, the Python API and the server obey the
same rules. An actor with no user record is a viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.refs import validate_name
from shipyard.stores.audit import audited
from shipyard.stores.db.tables import users

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["ROLES", "Role", "User", "Users", "require_role", "role_of"]

Role = Literal["viewer", "contributor", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "contributor", "approver", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}


@dataclass(frozen=True)
class User:
    """A user and their role."""

    name: str
    role: str
    created_at: datetime | None
    created_by: str | None
    registered: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "registered": self.registered,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
        }


def check_role(role: str) -> Role:
    if role not in _RANK:
        raise InvalidInputError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def role_of(conn: Connection, name: str) -> Role:
    """The role of ``name``; an unknown user is a viewer."""
    row = conn.execute(select(users.c.role).where(users.c.name == name)).first()
    return check_role(row.role) if row else "viewer"


def require_role(conn: Connection, actor: str, needed: Role, doing: str) -> Role:
    """Raise PermissionDeniedError unless ``actor`` has at least the ``needed`` role.

    ``doing`` completes the sentence "user 'x' is a viewer and cannot …".
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


class Users:
    """The user directory of a project."""

    def __init__(self, project: Project) -> None:
        self._p = project

    def add(self, name: str, role: str) -> User:
        """Register ``name`` with ``role``, or change the role of an existing user (admin only).

        Raises:
            PermissionDeniedError: the actor is not an admin.
            InvalidInputError: bad name or role.
        """
        validate_name(name, "user name")
        new_role = check_role(role)
        now = datetime.now(UTC)
        with audited(self._p.db, self._p.actor) as tx:
            require_role(tx.conn, self._p.actor, "admin", "manage users")
            row = tx.conn.execute(select(users).where(users.c.name == name)).first()
            if row is None:
                tx.conn.execute(
                    users.insert().values(
                        name=name, role=new_role, created_at=now, created_by=self._p.actor
                    )
                )
                tx.record("user.add", "user", name, {"role": new_role})
            elif row.role != new_role:
                if row.role == "admin" and name == self._p.actor and self._admins(tx.conn) == 1:
                    raise InvalidInputError(
                        f"'{name}' is the last admin; make another user admin first"
                    )
                tx.conn.execute(update(users).where(users.c.name == name).values(role=new_role))
                tx.record("user.role", "user", name, {"from": row.role, "to": new_role})
        return self.get(name)

    def _admins(self, conn: Connection) -> int:
        return len(conn.execute(select(users.c.name).where(users.c.role == "admin")).all())

    def get(self, name: str) -> User:
        """The user ``name``; unknown users are reported as unregistered viewers."""
        with self._p.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            return User(name, "viewer", None, None, registered=False)
        return User(row.name, row.role, row.created_at, row.created_by)

    def require_exists(self, name: str) -> User:
        user = self.get(name)
        if not user.registered:
            raise NotFoundError(f"no user '{name}'; see `shipyard users list`")
        return user

    def list(self) -> list[User]:
        """Every registered user, by name."""
        with self._p.db.read() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [User(r.name, r.role, r.created_at, r.created_by) for r in rows]

    def whoami(self) -> User:
        return self.get(self._p.actor)
