"""The user directory: who is registered, with which role (the rules are in
:mod:`shipyard.authz`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.authz import check_role, require_role
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.refs import validate_name
from shipyard.stores.db.tables import api_tokens, audit_events, users

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

    def remove(self, name: str, *, reason: str = "") -> User:
        """Remove ``name`` from the directory (admin): from now on an unregistered viewer,
        with every API token revoked. What they did stays in the history under their name;
        :meth:`restore` brings them back with their role. Returns the user as they were.

        Raises:
            NotFoundError: no such user.
            InvalidInputError: the last admin.
        """
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "manage users")
            row = tx.conn.execute(select(users).where(users.c.name == name)).first()
            if row is None:
                raise NotFoundError(f"no user '{name}'; see `shipyard users list`")
            if row.role == "admin" and self._admins(tx.conn) == 1:
                raise InvalidInputError(
                    f"'{name}' is the last admin; make another user admin first"
                )
            tokens = [
                r.id
                for r in tx.conn.execute(
                    select(api_tokens.c.id)
                    .where(api_tokens.c.user == name)
                    .where(api_tokens.c.revoked_at.is_(None))
                    .order_by(api_tokens.c.id)
                )
            ]
            for token_id in tokens:
                tx.conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == token_id)
                    .values(revoked_at=now, revoked_by=self._ctx.actor)
                )
                tx.record("token.revoke", "token", token_id, {"user": name, "via": "user.remove"})
            tx.conn.execute(delete(users).where(users.c.name == name))
            tx.record(
                "user.remove", "user", name, {"role": row.role, "reason": reason, "tokens": tokens}
            )
        return User(row.name, row.role, row.created_at, row.created_by, registered=False)

    def restore(self, name: str) -> User:
        """Register a removed user again with the role they had when removed (admin). Their
        revoked tokens stay revoked.

        Raises:
            ConflictError: ``name`` is registered, or was never removed.
        """
        import json

        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "manage users")
            if tx.conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise ConflictError(f"user '{name}' is registered; nothing to restore")
            last = tx.conn.execute(
                select(audit_events.c.payload)
                .where(audit_events.c.action == "user.remove")
                .where(audit_events.c.entity_kind == "user")
                .where(audit_events.c.entity == name)
                .order_by(audit_events.c.seq.desc())
                .limit(1)
            ).first()
            if last is None:
                raise ConflictError(
                    f"user '{name}' was never removed; add them with `shipyard users add {name}`"
                )
            role = check_role(json.loads(last.payload).get("role", "viewer"))
            tx.conn.execute(
                users.insert().values(
                    name=name, role=role, created_at=datetime.now(UTC), created_by=self._ctx.actor
                )
            )
            tx.record("user.add", "user", name, {"role": role, "via": "restore"})
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
