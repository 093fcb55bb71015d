"""Approvals: an approver's decision on a model version, never by its author.

A decision counts only when the audit event that recorded it confirms it: the approvals table
row and its event must agree (who, what, which version, the comment) and the event must sit
in the hash chain. A row edited or added by hand, outside shipyard, is listed as unconfirmed
and counts for nothing: not for the policy's ``approvals`` check, not for serving, not on
the model card.

>>> project.approvals.approve("credit-risk@3", comment="reviewed")   # doctest: +SKIP
>>> project.approvals.standing("credit-risk@3")                       # doctest: +SKIP
'approved'
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import PermissionDeniedError
from shipyard.refs import parse_ref
from shipyard.registry.versions import authors_of, resolve_version
from shipyard.stores.audit import row_hash
from shipyard.stores.db.tables import approvals, audit_events, audit_head, model_versions

if TYPE_CHECKING:
    from shipyard.context import ServiceContext

__all__ = ["Approval", "Approvals", "Standing", "standing_of"]

Standing = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True)
class Approval(ReadModel):
    """One approver's decision on a model version; ``confirmed`` when its audit event agrees
    with it (only confirmed decisions count)."""

    model: str
    approver: str
    decision: str
    comment: str
    time: datetime
    confirmed: bool = True
    event_seq: int | None = None  # the audit event that recorded it


def standing_of(decisions: Iterable[tuple[str, str]]) -> Standing:
    """Where a version stands after ``(approver, decision)`` pairs in time order: each
    approver's latest decision counts; any standing rejection makes it ``rejected``, else one
    approval ``approved``, else ``pending``. The service, serving and ``audit verify`` all use
    this one rule."""
    latest: dict[str, str] = {}
    for approver, decision in decisions:
        latest[approver] = decision
    if "reject" in latest.values():
        return "rejected"
    return "approved" if latest else "pending"


class Approvals:
    """Service for decisions on model versions: ``approve``, ``reject``, ``list``, plus
    ``standing`` and ``request`` (ask approvers for a review)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def approve(self, ref: str, *, comment: str = "") -> Approval:
        """Approve a version (approver role; never the version's author).

        Raises:
            PermissionDeniedError: the actor is not an approver, or is an author of it.
        """
        return self._decide(ref, "approve", comment)

    def reject(self, ref: str, *, comment: str = "") -> Approval:
        """Reject a version (approver role; never the version's author). A standing rejection
        keeps the version from serving, whatever its approvals.

        Raises:
            PermissionDeniedError: the actor is not an approver, or is an author of it.
        """
        return self._decide(ref, "reject", comment)

    def request(self, ref: str, *, comment: str = "") -> dict[str, Any]:
        """Ask approvers to review a version (contributor): an audit event
        ``model.approval_request``, which webhooks subscribed to ``approval.requested`` hear
        of. It changes no state: a version needs no request to be approved.

        Raises:
            NotFoundError: no such version.
            PermissionDeniedError: the actor is a viewer.
        """
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "request approvals")
            row = resolve_version(tx.conn, parse_ref(ref))
            model = f"{row.name}@{row.version}"
            event = tx.record("model.approval_request", "model", model, {"comment": comment})
        return {
            "model": model,
            "requested_by": self._ctx.actor,
            "comment": comment,
            "event_seq": event.seq,
        }

    def _decide(self, ref: str, decision: str, comment: str) -> Approval:
        now = datetime.now(UTC)
        actor = self._ctx.actor
        with self._ctx.audited() as tx:
            require_role(tx.conn, actor, "approver", f"{decision} models")
            row = resolve_version(tx.conn, parse_ref(ref))
            authors = authors_of(tx.conn, row)
            if actor in authors:
                raise PermissionDeniedError(
                    f"user '{actor}' cannot {decision} {row.name}@{row.version}: they "
                    "registered it or ran the run that produced it, and an author never approves "
                    "their own model (separation of duties); ask another approver",
                    details={"actor": actor, "authors": sorted(authors)},
                )
            res = tx.conn.execute(
                approvals.insert().values(
                    model_id=row.model_id,
                    version=row.version,
                    approver=actor,
                    decision=decision,
                    comment=comment,
                    time=now,
                )
            )
            approval_id = int(res.inserted_primary_key[0])  # type: ignore[index]
            event = tx.record(
                f"model.{decision}",
                "model",
                f"{row.name}@{row.version}",
                {"id": approval_id, "decision": decision, "comment": comment},
            )
            tx.conn.execute(
                update(approvals).where(approvals.c.id == approval_id).values(event_seq=event.seq)
            )
            standing = _standing(tx.conn, row)
            status = "candidate" if standing == "pending" else standing
            if row.status in ("candidate", "approved", "rejected") and row.status != status:
                tx.conn.execute(
                    update(model_versions)
                    .where(model_versions.c.id == row.id)
                    .values(status=status)
                )
        return Approval(
            f"{row.name}@{row.version}", actor, decision, comment, now, event_seq=event.seq
        )

    def list(self, ref: str) -> builtins.list[Approval]:
        """Every decision recorded on a version, oldest first, each marked ``confirmed`` or
        not (see the module's docstring)."""
        with self._ctx.db.read() as conn:
            row = resolve_version(conn, parse_ref(ref))
            return decisions(conn, row)

    def standing(self, ref: str) -> Standing:
        """``approved``, ``rejected`` or ``pending``, from the confirmed decisions only, in
        the order of their audit events (:func:`standing_of`)."""
        with self._ctx.db.read() as conn:
            return _standing(conn, resolve_version(conn, parse_ref(ref)))

    def servable(self, ref: str, conn: Connection | None = None) -> builtins.list[str]:
        """Why the version ``ref`` may not take or shadow traffic; empty when it may. The one
        rule for every move of a protected alias (promotion, rollback), every deployment
        change and the model server: approved by confirmed decisions with no standing
        rejection, not archived, no decision on it that the audit log does not confirm
        (a row edited or added by hand, which could hide a rejection: fail closed), and for
        a custom code model, its code digest approved (``models approve-code``).

        ``conn``: read in that connection (a caller's write transaction) instead of a new one.
        """
        if conn is None:
            with self._ctx.db.read() as own:
                return self.servable(ref, own)
        row = resolve_version(conn, parse_ref(ref))
        name = f"{row.name}@{row.version}"
        if row.status == "archived":
            return [f"{name} is archived"]
        found = decisions(conn, row)
        forged = [d for d in found if not d.confirmed]
        if forged:
            return [
                f"{len(forged)} decision{'s' if len(forged) != 1 else ''} on {name} "
                "not confirmed by the audit log (edited or added outside shipyard); run "
                "`shipyard audit verify`"
            ]
        standing = _standing_of(found)
        if standing == "approved":
            return self._code_reasons(conn, row, name)
        if standing == "rejected":
            who = sorted({d.approver for d in found if d.confirmed and d.decision == "reject"})
            return [f"{name} was rejected (by {', '.join(who)})"]
        return [f"{name} is not approved (no confirmed approval)"]

    def _code_reasons(self, conn: Connection, row: Any, name: str) -> builtins.list[str]:
        """Why the custom code model ``row`` may not serve: its code digest has no confirmed
        approval (the code runs when the server loads it). Empty for other flavors."""
        if row.flavor != "code":
            return []
        from shipyard.registry.code_approvals import confirmed_approvals, registered_code_digest

        digest = registered_code_digest(conn, name)
        if digest is None:
            from shipyard.registry.flavors import file_code_digest

            with self._ctx.artifacts.local_copy(row.digest, owner=f"model '{name}'") as path:
                digest = file_code_digest(path)
        if digest is not None and confirmed_approvals(conn, digest):
            return []
        return [
            f"{name} is custom Python code ({digest}) that no approver has approved; an "
            f"approver reads it with `shipyard models code {name}` and approves it with "
            f"`shipyard models approve-code {name}`"
        ]


def _standing(conn: Connection, row: Any) -> Standing:
    """The standing of the version ``row`` from its confirmed decisions."""
    return _standing_of(decisions(conn, row))


def _standing_of(found: Sequence[Approval]) -> Standing:
    confirmed = sorted((d for d in found if d.confirmed), key=lambda d: d.event_seq or 0)
    return standing_of((d.approver, d.decision) for d in confirmed)


def decisions(conn: Connection, row: Any) -> builtins.list[Approval]:
    """The decisions on the version ``row``, oldest first, each checked against its event."""
    rows = conn.execute(
        select(approvals)
        .where(approvals.c.model_id == row.model_id)
        .where(approvals.c.version == row.version)
        .order_by(approvals.c.id)
    ).all()
    ref = f"{row.name}@{row.version}"
    confirmed = _confirmed(conn, ref, rows)
    return [
        Approval(
            ref,
            a.approver,
            a.decision,
            a.comment,
            a.time,
            confirmed=a.id in confirmed,
            event_seq=None if a.event_seq is None else int(a.event_seq),
        )
        for a in rows
    ]


def _confirmed(conn: Connection, ref: str, rows: Sequence[Any]) -> set[int]:
    """The ids of the approval rows whose audit event agrees with them and is linked into the
    chain (its hash recomputes, and the next event, or the head, points at it). An event
    confirms one row at most: a copy of a row pointing at the same event is not confirmed."""
    seqs = {int(r.event_seq) for r in rows if r.event_seq is not None}
    if not seqs:
        return set()
    wanted = seqs | {s + 1 for s in seqs}
    # The head first: an event committed after it is then read too, if it follows one of ours.
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    events = {
        int(e.seq): e
        for e in conn.execute(select(audit_events).where(audit_events.c.seq.in_(wanted)))
    }
    out: set[int] = set()
    used: set[int] = set()
    for r in rows:
        event = events.get(int(r.event_seq)) if r.event_seq is not None else None
        if event is None or int(event.seq) in used or not _agrees(event, r, ref):
            continue
        following = events.get(int(event.seq) + 1)
        linked = (
            following.prev_hash == event.hash
            if following is not None
            else (int(head.seq) == int(event.seq) and head.hash == event.hash)
        )
        if linked:
            out.add(int(r.id))
            used.add(int(event.seq))
    return out


def _agrees(event: Any, row: Any, ref: str) -> bool:
    try:
        payload = json.loads(event.payload)
    except ValueError:
        return False
    return bool(
        row_hash(event) == event.hash
        and event.action == f"model.{row.decision}"
        and event.entity == ref
        and event.actor == row.approver
        and payload.get("comment", "") == row.comment
        and payload.get("decision", row.decision) == row.decision
        and payload.get("id", row.id) == row.id
    )
