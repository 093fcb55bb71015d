"""``/api/v1/audit``: the hash-chained log of every change and data read, and its
verification (which also rebuilds the governance state from the events)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from shipyard.project import Project
from shipyard.server.api._docs import returns
from shipyard.server.auth import acting_project
from shipyard.stores.audit import AuditEvent, ChainReport

router = APIRouter(tags=["audit"])
Acting = Annotated[Project, Depends(acting_project)]

_EVENT = {
    "seq": 42,
    "time": "2026-05-04T09:30:00.123456+00:00",
    "actor": "abe",
    "action": "model.promote",
    "entity_kind": "model",
    "entity": "credit-risk@2",
    "payload": {"alias": "production", "checks": []},
    "prev_hash": "blake3:0d4f1e2a3b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
    "hash": "blake3:7a1c3e5f7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a",
    "token_id": "3f9a0c1b2d4e5f60",
}
_REPORT: dict[str, Any] = {
    "ok": True,
    "events": 42,
    "first_bad_seq": None,
    "reason": None,
    "head_hash": "blake3:7a1c3e5f7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a",
    "state": [],
    "checkpoint": None,
}


@router.get(
    "/audit",
    summary="Audit events, oldest first (newest first with newest_first)",
    **returns(AuditEvent, many=True, example=[_EVENT], errors=(401, 422)),
)
def log(
    project: Acting,
    entity: Annotated[
        str | None,
        Query(description="only events about this: NAME, NAME@N or KIND:NAME"),
    ] = None,
    entity_kind: Annotated[
        str | None, Query(description="only entities of this kind", examples=["model"])
    ] = None,
    action: Annotated[
        str | None,
        Query(description="only actions starting with this", examples=["model.promote"]),
    ] = None,
    actor: Annotated[str | None, Query(description="only events by this user")] = None,
    limit: Annotated[int | None, Query(ge=1, description="at most this many")] = None,
    newest_first: Annotated[bool, Query(description="newest first")] = False,
) -> Any:
    events = project.audit.list(
        entity=entity,
        entity_kind=entity_kind,
        action=action,
        actor=actor,
        limit=limit,
        newest_first=newest_first,
    )
    return [e.to_dict() for e in events]


@router.get(
    "/audit/verify",
    summary="Recompute the hash chain and compare the governance tables with it",
    description=(
        "Answers 200 whether or not the log verifies: `ok` says (the CLI exits 3 when it is "
        "false), `first_bad_seq` and `reason` name the first bad event, `state` every table "
        "row that differs from what the events say."
    ),
    **returns(ChainReport, example=_REPORT),
)
def verify(project: Acting) -> Any:
    return project.audit.verify().to_dict()
