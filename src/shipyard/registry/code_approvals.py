"""Approvals of custom model code, by the digest of the code.

A model of the code flavor (:mod:`shipyard.registry.flavors.code`) runs its source when it
loads, so :meth:`Models.load <shipyard.registry.models.Models.load>` loads it only when an
approver has approved that code: a row of ``code_approvals`` whose audit event
(``code.approve``, entity the digest) confirms it. A row added by hand counts for nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.stores.db.tables import audit_events, code_approvals

__all__ = ["ACTION", "CodeApproval", "CodeSource", "confirmed_approvals", "registered_code_digest"]

ACTION = "code.approve"


@dataclass(frozen=True)
class CodeApproval(ReadModel):
    """One approver's approval of a code digest, through version ``model``."""

    digest: str
    model: str
    approver: str
    comment: str
    time: datetime
    event_seq: int | None


@dataclass(frozen=True)
class CodeSource(ReadModel):
    """The code of a custom model version, for review: its digest, class and source, the
    confirmed approvals of that digest, how its arrays are stored (``npz`` or
    ``safetensors``) and the models of other flavors among its weights (name to flavor)."""

    model: str
    digest: str
    class_name: str
    source: str
    approvals: list[CodeApproval]
    weights_format: str = "npz"
    models: dict[str, str] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return bool(self.approvals)

    json_properties = ("approved",)


def confirmed_approvals(conn: Connection, digest: str) -> list[CodeApproval]:
    """The approvals of ``digest`` that their audit events confirm, oldest first."""
    rows = conn.execute(
        select(code_approvals)
        .where(code_approvals.c.digest == digest)
        .order_by(code_approvals.c.id)
    ).all()
    out = []
    for r in rows:
        if r.event_seq is None:
            continue
        event = conn.execute(
            select(audit_events.c.action, audit_events.c.entity, audit_events.c.actor).where(
                audit_events.c.seq == r.event_seq
            )
        ).first()
        if event is None or (event.action, event.entity, event.actor) != (
            ACTION,
            digest,
            r.approver,
        ):
            continue
        out.append(CodeApproval(r.digest, r.model, r.approver, r.comment, r.time, r.event_seq))
    return out


def registered_code_digest(conn: Connection, ref: str) -> str | None:
    """The code digest that the ``model.register`` event of version ``ref`` (``NAME@N``)
    recorded, or None when it recorded none (then read it from the model file)."""
    row = conn.execute(
        select(audit_events.c.payload)
        .where(audit_events.c.action == "model.register")
        .where(audit_events.c.entity_kind == "model")
        .where(audit_events.c.entity == ref)
        .order_by(audit_events.c.seq.desc())
    ).first()
    if row is None:
        return None
    try:
        payload = json.loads(row.payload)
    except ValueError:
        return None
    found = payload.get("code_digest") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None
