"""Numbered versions, shared by datasets, contracts, models and policies: picking the version a
reference means, and numbering the next one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.refs import DIGEST_PREFIX, Ref

__all__ = ["next_version", "pick_version"]


def pick_version(
    conn: Connection,
    base: Any,
    table: Table,
    ref: Ref,
    *,
    what: str,
    versions_command: str,
    alias_version: Callable[[str], int] | None = None,
) -> Any:
    """The row of ``base`` (versions of one name) that ``ref``'s selector means.

    ``alias_version`` turns an alias into a version number; without it aliases are refused.

    Raises:
        NotFoundError: no such version or alias; the message names the latest version.
        InvalidInputError: a digest prefix that matches several versions.
    """
    sel = ref.selector
    version = table.c.version
    if sel.kind == "latest":
        row = conn.execute(base.order_by(version.desc()).limit(1)).first()
    elif sel.kind == "version":
        row = conn.execute(base.where(version == int(sel.value))).first()
    elif sel.kind == "digest":
        rows = conn.execute(
            base.where(table.c.digest.startswith(DIGEST_PREFIX + sel.value)).limit(2)
        ).all()
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
    if row is None:
        latest = conn.execute(base.order_by(version.desc()).limit(1)).first()
        if latest is None:
            raise NotFoundError(f"{what} '{ref.name}' has no versions")
        which = f"with digest {sel.value}…" if sel.kind == "digest" else str(sel)
        raise NotFoundError(
            f"{what} '{ref.name}' has no version {which} (latest is {latest.version}); "
            f"see `shipyard {versions_command} {ref.name}`"
        )
    return row


def next_version(conn: Connection, table: Table, where: ColumnElement[bool]) -> int:
    """The number the next version gets (1 for the first)."""
    current = conn.execute(
        select(func.coalesce(func.max(table.c.version), 0)).where(where)
    ).scalar_one()
    return 1 + int(current)
