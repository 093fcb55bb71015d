"""``/api/v1/features``: online feature values for entities (any user; reads are counted per
view and client), the feature views and the glossary."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from shipyard.features.catalog import GlossaryEntry
from shipyard.features.definitions import FeatureView
from shipyard.features.service import OnlineFeatures
from shipyard.project import Project
from shipyard.server.api._docs import returns
from shipyard.server.auth import acting_project

router = APIRouter(tags=["features"])
Acting = Annotated[Project, Depends(acting_project)]

_ONLINE = {
    "features": ["late_payments"],
    "rows": [
        {
            "entity": {"applicant_id": 17},
            "values": {"late_payments": 2},
            "status": {"late_payments": "present"},
            "event_time": {"late_payments": "2026-05-01T09:00:00+00:00"},
        }
    ],
}
_FEATURE = {
    "name": "late_payments",
    "type": "int",
    "description": "Payments more than 30 days late, to date.",
    "owner": "risk-team",
    "tags": {},
}
_VIEW = {
    "name": "payments",
    "version": 2,
    "source": "payments",
    "entity": "applicant",
    "entity_version": 1,
    "join_keys": ["applicant_id"],
    "timestamp": "paid_at",
    "ttl_seconds": 2592000,
    "features": [_FEATURE],
    "description": "Repayment history.",
    "owner": "risk-team",
    "tags": {},
    "contract": None,
    "digest": "blake3:" + "ab" * 32,
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "alice",
    "ref": "payments@2",
}
_GLOSSARY = {
    "feature": "payments:late_payments",
    "view": "payments@2",
    "entity": "applicant",
    "type": "int",
    "description": "Payments more than 30 days late, to date.",
    "owner": "risk-team",
    "tags": {},
    "source": "payments",
    "ttl": "30d",
}


class OnlineIn(BaseModel):
    """Entities to look up (each a mapping of its join keys) and the features wanted."""

    entities: list[dict[str, Any]] = Field(examples=[[{"applicant_id": 17}]])
    features: list[str] = Field(examples=[["payments:late_payments"]])


@router.post(
    "/features/online",
    summary="Online feature values for entities, with event times and a status per value",
    **returns(OnlineFeatures, example=_ONLINE, errors=(401, 404, 422)),
)
def online_features(project: Acting, body: OnlineIn) -> Any:
    return project.features.online(body.entities, body.features).to_dict()


@router.get(
    "/features/views",
    summary="The latest version of every feature view",
    **returns(FeatureView, many=True, example=[_VIEW], errors=(401,)),
)
def list_views(project: Acting) -> Any:
    return [v.to_dict() for v in project.features.list()]


@router.get(
    "/features/views/{ref}",
    summary="One feature view version (NAME or NAME@N)",
    **returns(FeatureView, example=_VIEW, errors=(401, 404, 422)),
)
def get_view(project: Acting, ref: str) -> Any:
    return project.features.get(ref).to_dict()


@router.get(
    "/features/glossary",
    summary="Every feature with its definition and owner",
    **returns(GlossaryEntry, many=True, example=[_GLOSSARY], errors=(401,)),
)
def glossary(project: Acting) -> Any:
    return [e.to_dict() for e in project.features.glossary()]
