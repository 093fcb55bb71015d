"""API tokens: how a user proves who they are to the team server.

A token reads ``shp_<id>_<secret>``. The id is public (it names the token in lists, audit
events and revocations); the secret is 32 random bytes shown once, when the token is made, and
stored only as a salted scrypt hash. A stolen copy of the database therefore gives no working
token, and comparing hashes is constant-time.

Anyone may make, list and revoke their own tokens; an admin may do so for every user. A token
acts with its user's role at the time of each request (changing the role changes what the
token may do), until it expires or is revoked.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import digest_bytes
from shipyard.authz import role_of
from shipyard.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from shipyard.refs import validate_name
from shipyard.stores.db.tables import api_tokens, users

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.stores.db.engine import Database

__all__ = [
    "Identity",
    "NewToken",
    "Token",
    "Tokens",
    "authenticate",
    "parse_duration",
    "still_valid",
    "token_fingerprint",
]

PREFIX = "shp_"
_TOKEN = re.compile(r"^shp_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# scrypt with n=2**14, r=8: about 16 MiB and a few tens of milliseconds per check. Tokens are
# random, so the cost only matters against a stolen database; a verified token is remembered
# by its SHA-256 in memory, so each server process pays it once per token.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_LABEL = 128


@dataclass(frozen=True)
class Token(ReadModel):
    """A token as listed: never its secret."""

    id: str
    user: str
    label: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    json_properties = ("active",)

    @property
    def active(self) -> bool:
        now = datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class NewToken(ReadModel):
    """A token just made: ``token`` is the secret, shown this once."""

    token: str = field(repr=False)
    info: Token = field(metadata={"json": "flatten"})


@dataclass(frozen=True)
class Identity:
    """Who a request acts as: the token's user and the token's id."""

    user: str
    token_id: str


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``2w`` or ``45s`` as a duration.

    Raises:
        InvalidInputError: not a positive number followed by s, m, h, d or w.
    """
    m = _DURATION.match(text)
    if not m or int(m.group(1)) <= 0:
        raise InvalidInputError(
            f"invalid duration {text!r}: write a positive number and a unit, e.g. 90d, 12h, 30m, 2w"
        )
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def token_fingerprint(salt: str, stored_hash: str) -> str:
    """A digest of a token's stored salt and hash, recorded in its audit event so that a hash
    replaced in the table (to take over the token) is caught by ``audit verify``; it reveals
    nothing about the secret."""
    return digest_bytes(f"{salt}:{stored_hash}".encode())


def _hash(secret: str, salt: str) -> str:
    return hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex()


class Tokens:
    """Make, list and revoke API tokens (see the module documentation for the rules)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def create(
        self, user: str | None = None, *, expires: str | timedelta | None = None, label: str = ""
    ) -> NewToken:
        """A new token for ``user`` (default: the actor). The secret is in the result only.

        Raises:
            PermissionDeniedError: a token for another user, by someone who is not an admin.
            NotFoundError: ``user`` is not registered.
            InvalidInputError: a bad label or duration.
        """
        name = self._ctx.actor if user is None else validate_name(user, "user name")
        if len(label) > MAX_LABEL or any(ord(c) < 32 for c in label):
            raise InvalidInputError(f"token label must be at most {MAX_LABEL} printable characters")
        ttl = parse_duration(expires) if isinstance(expires, str) else expires
        if ttl is not None and ttl <= timedelta(0):
            raise InvalidInputError("a token's lifetime must be positive")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        digest = _hash(secret, salt)  # before the transaction: it holds the write lock
        now = datetime.now(UTC)
        expires_at = None if ttl is None else now + ttl
        with self._ctx.audited() as tx:
            self._check_may_manage(tx.conn, name, "make tokens")
            registered = tx.conn.execute(select(users.c.name).where(users.c.name == name)).first()
            if registered is None:
                raise NotFoundError(
                    f"no user '{name}'; register them first with `shipyard users add {name}`"
                )
            row = {
                "id": token_id,
                "user": name,
                "label": label,
                "salt": salt,
                "hash": digest,
                "created_at": now,
                "created_by": self._ctx.actor,
                "expires_at": expires_at,
            }
            tx.conn.execute(api_tokens.insert().values(**row))
            tx.record(
                "token.create",
                "token",
                token_id,
                {
                    "user": name,
                    "label": label,
                    "expires_at": None if expires_at is None else expires_at.isoformat(),
                    "fingerprint": token_fingerprint(salt, digest),
                },
            )
        return NewToken(f"{PREFIX}{token_id}_{secret}", self.get(token_id))

    def get(self, token_id: str) -> Token:
        """One token by id (its own user or an admin).

        Raises:
            NotFoundError: no such token (or one the actor may not see).
        """
        with self._ctx.db.read() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
            if row is None or not self._may_manage(conn, row.user):
                raise NotFoundError(f"no token '{token_id}'; see `shipyard users token list`")
        return _token(row)

    def list(self, user: str | None = None, *, all_users: bool = False) -> builtins.list[Token]:
        """Tokens of ``user`` (default: the actor), or of everyone with ``all_users`` (admin),
        newest first.

        Raises:
            PermissionDeniedError: another user's tokens, asked by someone who is not an admin.
        """
        name = self._ctx.actor if user is None else user
        with self._ctx.db.read() as conn:
            stmt = select(api_tokens).order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
            if all_users:
                self._check_admin(conn, "list every user's tokens")
            else:
                self._check_may_manage(conn, name, "list tokens")
                stmt = stmt.where(api_tokens.c.user == name)
            return [_token(r) for r in conn.execute(stmt)]

    def revoke(self, token_id: str) -> Token:
        """Revoke a token now; requests carrying it are refused from the next one on.
        Revoking a revoked token changes nothing.

        Raises:
            NotFoundError: no such token (or one the actor may not manage).
        """
        with self._ctx.audited() as tx:
            row = tx.conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
            if row is None or not self._may_manage(tx.conn, row.user):
                raise NotFoundError(f"no token '{token_id}'; see `shipyard users token list`")
            if row.revoked_at is None:
                tx.conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == token_id)
                    .values(revoked_at=datetime.now(UTC), revoked_by=self._ctx.actor)
                )
                tx.record("token.revoke", "token", token_id, {"user": row.user})
        return self.get(token_id)

    def _may_manage(self, conn: Connection, user: str) -> bool:
        return user == self._ctx.actor or role_of(conn, self._ctx.actor) == "admin"

    def _check_may_manage(self, conn: Connection, user: str, doing: str) -> None:
        if not self._may_manage(conn, user):
            raise PermissionDeniedError(
                f"{self._ctx.actor} may not {doing} for {user}: only {user} or an admin may"
            )

    def _check_admin(self, conn: Connection, doing: str) -> None:
        if role_of(conn, self._ctx.actor) != "admin":
            raise PermissionDeniedError(f"{self._ctx.actor} may not {doing}: needs admin")


def _token(r: Row[Any]) -> Token:
    return Token(
        r.id, r.user, r.label, r.created_at, r.created_by, r.expires_at, r.revoked_at, r.revoked_by
    )


class _Verified:
    """SHA-256 of tokens this process has checked against their scrypt hash, by token id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, bytes] = {}

    def seen(self, token_id: str, fingerprint: bytes) -> bool:
        with self._lock:
            known = self._known.get(token_id)
        return known is not None and hmac.compare_digest(known, fingerprint)

    def remember(self, token_id: str, fingerprint: bytes) -> None:
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[token_id] = fingerprint


_VERIFIED = _Verified()


def authenticate(db: Database, token: str) -> Identity:
    """The user and token id a bearer token stands for, checked now: the token exists, is
    neither revoked nor expired, and its secret matches the stored hash.

    Raises:
        UnauthenticatedError: anything else; the message never repeats the token.
    """
    m = _TOKEN.match(token.strip())
    if not m:
        raise UnauthenticatedError(
            "malformed token: expected shp_<id>_<secret>; make one with "
            "`shipyard users token create`"
        )
    token_id, secret = m.group(1), m.group(2)
    with db.read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    if row is None:
        raise UnauthenticatedError(f"unknown token {token_id}")
    fingerprint = hashlib.sha256(token.strip().encode()).digest()
    if not _VERIFIED.seen(token_id, fingerprint):
        if not hmac.compare_digest(_hash(secret, row.salt), row.hash):
            raise UnauthenticatedError(f"token {token_id} does not match its stored hash")
        _VERIFIED.remember(token_id, fingerprint)
    return _usable(row)


def still_valid(db: Database, token_id: str) -> Identity:
    """The user of the token ``token_id`` if it is still neither revoked nor expired: how a
    web UI session, made by logging in with that token (whose secret was checked then), is
    re-checked on every request.

    Raises:
        UnauthenticatedError: no such token, or revoked or expired.
    """
    with db.read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    if row is None:
        raise UnauthenticatedError(f"unknown token {token_id}")
    return _usable(row)


def _usable(row: Row[Any]) -> Identity:
    if row.revoked_at is not None:
        raise UnauthenticatedError(f"token {row.id} was revoked")
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        raise UnauthenticatedError(
            f"token {row.id} expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; make a new one "
            "with `shipyard users token create`"
        )
    return Identity(row.user, row.id)
