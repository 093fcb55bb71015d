"""Model aliases: which ones are protected, and the one mechanism that moves any alias.

An alias is protected when traffic depends on it: ``production`` always, and every alias a
deployment of the model routes to or shadows. A protected alias moves only through promotion
or rollback (:mod:`shipyard.governance.promotion`), which check the policy inside the
transaction that calls :func:`move_alias`; :meth:`Models.set_alias` refuses protected ones.
Both rules live here, so the registry and governance cannot disagree on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard.errors import (
    ConflictError,
    InvalidInputError,
    InvalidReferenceError,
    PermissionDeniedError,
)
from shipyard.refs import parse_ref
from shipyard.stores.audit import AuditedTransaction
from shipyard.stores.db.tables import alias_events, deployments, model_aliases

__all__ = [
    "ALWAYS_PROTECTED",
    "check_alias",
    "holder",
    "move_alias",
    "protected_aliases",
    "refuse_protected",
]

#: Aliases protected for every model, whether or not a deployment uses them.
ALWAYS_PROTECTED = frozenset({"production"})


def check_alias(alias: str) -> None:
    """Raise InvalidInputError unless ``alias`` can name an alias (a word, not 'latest')."""
    try:
        kind = parse_ref(f"x@{alias}").selector.kind if isinstance(alias, str) else None
    except InvalidReferenceError:
        kind = None
    if kind != "alias" or alias == "latest":
        raise InvalidInputError(
            f"invalid alias {alias!r}: an alias is a word starting with a letter (not a number, "
            "'latest' or a digest)"
        )


def protected_aliases(conn: Connection, model_id: int) -> frozenset[str]:
    """``production`` and every alias a deployment of the model routes to or shadows."""
    found = set(ALWAYS_PROTECTED)
    for routes, shadow in conn.execute(
        select(deployments.c.routes, deployments.c.shadow).where(deployments.c.model_id == model_id)
    ):
        found.update(routes or {})
        if shadow:
            found.add(shadow)
    return frozenset(found)


def holder(conn: Connection, model_id: int, alias: str) -> int | None:
    """The version ``alias`` points at, or None."""
    row = conn.execute(
        select(model_aliases.c.version)
        .where(model_aliases.c.model_id == model_id)
        .where(model_aliases.c.alias == alias)
    ).first()
    return None if row is None else int(row.version)


def move_alias(
    tx: AuditedTransaction, row: Any, alias: str, *, reason: str, comment: str = ""
) -> int | None:
    """Point ``alias`` at the version ``row`` (a model version row), recording the move in the
    alias history and the audit log within ``tx``. Returns the previous holder. Callers check
    who may move it (and, for a protected alias, the policy) first.

    Raises:
        ConflictError: the version is archived.
    """
    check_alias(alias)
    if row.status == "archived":
        raise ConflictError(
            f"model '{row.name}@{row.version}' is archived; aliases cannot point at it"
        )
    before = holder(tx.conn, row.model_id, alias)
    if before == row.version:
        return before
    if before is None:
        tx.conn.execute(
            model_aliases.insert().values(model_id=row.model_id, alias=alias, version=row.version)
        )
    else:
        tx.conn.execute(
            update(model_aliases)
            .where(model_aliases.c.model_id == row.model_id)
            .where(model_aliases.c.alias == alias)
            .values(version=row.version)
        )
    tx.conn.execute(
        alias_events.insert().values(
            model_id=row.model_id,
            alias=alias,
            from_version=before,
            to_version=row.version,
            actor=tx.actor,
            time=datetime.now(UTC),
            reason=reason,
            comment=comment,
        )
    )
    tx.record(
        f"model.alias.{reason}",
        "model",
        f"{row.name}@{row.version}",
        {"alias": alias, "from": before, "to": row.version, "comment": comment},
    )
    return before


def refuse_protected(conn: Any, model_id: int, name: str, alias: str, ref: str | None) -> None:
    """Refuse a plain move (set or remove) of ``alias`` when it is protected; the message
    says how it moves instead (``ref``: the version it was to point at).

    Raises:
        PermissionDeniedError: ``alias`` is protected.
    """
    if alias not in protected_aliases(conn, model_id):
        return
    why = "" if alias in ALWAYS_PROTECTED else f", since a deployment of '{name}' serves it"
    fix = (
        f"use `shipyard models promote {ref} --to {alias}`"
        if ref
        else f"use `shipyard models rollback {name} --alias {alias}`"
    )
    raise PermissionDeniedError(
        f"alias '{alias}' is protected{why}: it moves only through promotion, which runs the "
        f"policy checks and counts approvals, or rollback; {fix}",
        details={"alias": alias, "model": name},
    )
