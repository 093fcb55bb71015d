"""Numbered versions, shared by datasets, contracts, models and policies: picking the version a
reference means, and numbering the next one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from shipyard.errors import DeletedError, InvalidInputError, NotFoundError
from shipyard.refs import DIGEST_PREFIX, Ref

__all__ = ["deleted_error", "next_version", "pick_version"]


def pick_version(
    conn: Connection,
    base: Any,
    table: Table,
    ref: Ref,
    *,
    what: str,
    versions_command: str,
    alias_version: Callable[[str], int] | None = None,
    include_deleted: bool = False,
) -> Any:
    """The row of ``base`` (versions of one name) that ``ref``'s selector means.

    ``alias_version`` turns an alias into a version number; without it aliases are refused.
    In a table with soft deletion (a ``deleted_at`` column), ``latest`` means the latest
    version that is not deleted, and a reference to a deleted version is refused with who
    deleted it, when and why (``include_deleted`` returns it instead).

    Raises:
        NotFoundError: no such version or alias; the message names the latest version.
        DeletedError: the version was deleted.
        InvalidInputError: a digest prefix that matches several versions.
    """
    sel = ref.selector
    version = table.c.version
    soft = "deleted_at" in table.c
    live = base.where(table.c.deleted_at.is_(None)) if soft else base
    if sel.kind == "latest":
        row = conn.execute(
            (base if include_deleted else live).order_by(version.desc()).limit(1)
        ).first()
    elif sel.kind == "version":
        row = conn.execute(base.where(version == int(sel.value))).first()
    elif sel.kind == "digest":
        match = table.c.digest.startswith(DIGEST_PREFIX + sel.value)
        # The same content may be a deleted version and a live one added again later, or
        # (contracts) an earlier content set again: one content, the latest version of it.
        rows = conn.execute(
            (base if include_deleted else live).where(match).order_by(version.desc())
        ).all()
        if not rows and soft and not include_deleted:
            rows = conn.execute(base.where(match).order_by(version.desc()).limit(1)).all()
        if len({r.digest for r in rows}) == 1:
            rows = rows[:1]
        if len(rows) > 1:
            raise InvalidInputError(
                f"digest prefix {sel.value!r} matches several versions of {what} '{ref.name}'; "
                "give more digits"
            )
        row = rows[0] if rows else None
    elif alias_version is None:
        raise NotFoundError(
            f"{what} '{ref.name}' has no alias {sel.value!r}: {what} references take a version "
            "number, 'latest' or a digest prefix"
        )
    else:
        row = conn.execute(base.where(version == alias_version(sel.value))).first()
    if row is not None and soft and row.deleted_at is not None and not include_deleted:
        raise deleted_error(what, f"{ref.name}@{row.version}", row)
    if row is None:
        latest = conn.execute(live.order_by(version.desc()).limit(1)).first()
        if latest is None:
            if soft and conn.execute(base.limit(1)).first() is not None:
                raise DeletedError(
                    f"every version of {what} '{ref.name}' is deleted; see "
                    f"`shipyard {versions_command} {ref.name} --deleted`",
                    details={"name": ref.name},
                )
            raise NotFoundError(f"{what} '{ref.name}' has no versions")
        which = f"with digest {sel.value}…" if sel.kind == "digest" else str(sel)
        raise NotFoundError(
            f"{what} '{ref.name}' has no version {which} (latest is {latest.version}); "
            f"see `shipyard {versions_command} {ref.name}`"
        )
    return row


def deleted_error(what: str, ref: str, row: Any) -> DeletedError:
    """The error for a reference to the deleted version ``ref`` (``row`` has its
    ``deleted_at``, ``deleted_by`` and ``deleted_reason``)."""
    at = row.deleted_at.strftime("%Y-%m-%d %H:%M UTC")
    why = f": {row.deleted_reason}" if row.deleted_reason else " (no reason given)"
    purged = getattr(row, "purged_at", None)
    state = "deleted and purged" if purged is not None else "deleted"
    return DeletedError(
        f"{what} '{ref}' was {state} by {row.deleted_by} on {at}{why}",
        details={
            "ref": ref,
            "deleted_by": row.deleted_by,
            "deleted_at": row.deleted_at.isoformat(),
            "reason": row.deleted_reason or "",
            "purged": purged is not None,
        },
    )


def next_version(conn: Connection, table: Table, where: ColumnElement[bool]) -> int:
    """The number the next version gets (1 for the first)."""
    current = conn.execute(
        select(func.coalesce(func.max(table.c.version), 0)).where(where)
    ).scalar_one()
    return 1 + int(current)
