"""The user directory: who is registered, with which role (the rules are in
:mod:`shipyard.authz`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.authz import check_role, require_role
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.refs import validate_name
from shipyard.stores.db.tables import users

if TYPE_CHECKING:
    from shipyard.context import ServiceContext

__all__ = ["User", "Users"]


@dataclass(frozen=True)
class User(ReadModel):
    """A user and their role."""

    name: str
    role: str
    created_at: datetime | None
    created_by: str | None
    registered: bool = True


class Users:
    """The user directory of a project."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def add(self, name: str, role: str) -> User:
        """Register ``name`` with ``role``, or change the role of an existing user (admin only).

        Raises:
            PermissionDeniedError: the actor is not an admin.
            InvalidInputError: bad name or role.
        """
        validate_name(name, "user name")
        new_role = check_role(role)
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "manage users")
            row = tx.conn.execute(select(users).where(users.c.name == name)).first()
            if row is None:
                tx.conn.execute(
                    users.insert().values(
                        name=name, role=new_role, created_at=now, created_by=self._ctx.actor
                    )
                )
                tx.record("user.add", "user", name, {"role": new_role})
            elif row.role != new_role:
                if row.role == "admin" and name == self._ctx.actor and self._admins(tx.conn) == 1:
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
        with self._ctx.db.read() as conn:
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
        with self._ctx.db.read() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [User(r.name, r.role, r.created_at, r.created_by) for r in rows]

    def whoami(self) -> User:
        return self.get(self._ctx.actor)
