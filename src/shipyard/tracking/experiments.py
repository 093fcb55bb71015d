"""Deleting and restoring an experiment: hidden from ``experiments list`` with its runs, which
are marked deleted as ``runs delete`` marks one (so every search hides them), and brought back
together. The runs an experiment delete hid are named in its audit event, so a restore brings
back exactly those and not the runs someone had deleted on their own before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from shipyard.authz import require_role
from shipyard.errors import ConflictError, NotFoundError
from shipyard.stores.db.tables import audit_events, experiments, runs

if TYPE_CHECKING:
    from shipyard.context import ServiceContext

__all__ = ["delete_experiment", "restore_experiment"]

KIND = "experiment"


def delete_experiment(ctx: ServiceContext, name: str, *, reason: str = "") -> list[str]:
    """Delete experiment ``name`` and hide its active runs; returns the runs hidden.

    Raises:
        NotFoundError: no such experiment.
        ConflictError: it is already deleted.
        PermissionDeniedError: the actor is not a contributor.
    """
    with ctx.audited() as tx:
        require_role(tx.conn, ctx.actor, "contributor", "delete experiments")
        row = tx.conn.execute(select(experiments).where(experiments.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no experiment '{name}'; see `shipyard experiments list`")
        if row.deleted_at is not None:
            raise ConflictError(f"experiment '{name}' is already deleted")
        hidden = [
            r.id
            for r in tx.conn.execute(
                select(runs.c.id)
                .where(runs.c.experiment_id == row.id)
                .where(runs.c.lifecycle == "active")
                .order_by(runs.c.start_time)
            )
        ]
        if hidden:
            tx.conn.execute(update(runs).where(runs.c.id.in_(hidden)).values(lifecycle="deleted"))
        tx.conn.execute(
            update(experiments)
            .where(experiments.c.id == row.id)
            .values(deleted_at=datetime.now(UTC), deleted_by=ctx.actor, deleted_reason=reason)
        )
        tx.record("experiment.delete", KIND, name, {"reason": reason, "runs": hidden})
    return hidden


def restore_experiment(ctx: ServiceContext, name: str) -> list[str]:
    """Restore a deleted experiment and the runs its deletion hid; returns those runs.

    Raises:
        NotFoundError: no such experiment.
        ConflictError: it is not deleted.
    """
    with ctx.audited() as tx:
        require_role(tx.conn, ctx.actor, "contributor", "restore experiments")
        row = tx.conn.execute(select(experiments).where(experiments.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no experiment '{name}'; see `shipyard experiments list`")
        if row.deleted_at is None:
            raise ConflictError(f"experiment '{name}' is not deleted")
        event = tx.conn.execute(
            select(audit_events.c.payload)
            .where(audit_events.c.action == "experiment.delete")
            .where(audit_events.c.entity == name)
            .order_by(audit_events.c.seq.desc())
            .limit(1)
        ).first()
        hidden = list(json.loads(event.payload).get("runs", [])) if event else []
        if hidden:
            tx.conn.execute(
                update(runs)
                .where(runs.c.id.in_(hidden))
                .where(runs.c.experiment_id == row.id)
                .values(lifecycle="active")
            )
        tx.conn.execute(
            update(experiments)
            .where(experiments.c.id == row.id)
            .values(deleted_at=None, deleted_by=None, deleted_reason=None)
        )
        tx.record("experiment.restore", KIND, name, {"runs": hidden})
    return hidden
