"""``/api/v1/deployments``: what serves behind a name, governed as ``shipyard deployments``
(approvers change it; every alias it routes to or shadows must be held by an approved version
that passes its policy, else 422 ``check_failed`` with every check in ``details``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from shipyard.governance.deployments import Deployment, DeploymentChange, DeploymentStatus
from shipyard.project import Project
from shipyard.server.api._docs import returns
from shipyard.server.auth import acting_project

router = APIRouter(tags=["deployments"])
Acting = Annotated[Project, Depends(acting_project)]

_DEPLOYMENT = {
    "name": "credit-risk",
    "model": "credit-risk",
    "routes": {"production": 90, "challenger": 10},
    "shadow": None,
    "version": 2,
    "stored": True,
    "updated_at": "2026-05-05T08:00:00+00:00",
    "updated_by": "abe",
}
_STATUS = {
    **_DEPLOYMENT,
    "serving": [
        {
            "alias": "production",
            "version": 1,
            "ref": "credit-risk@1",
            "reasons": [],
            "servable": True,
        },
        {
            "alias": "challenger",
            "version": 2,
            "ref": "credit-risk@2",
            "reasons": [],
            "servable": True,
        },
    ],
}
_CHANGE = {
    "deployment": "credit-risk",
    "version": 2,
    "from_routes": {"production": 100},
    "to_routes": {"production": 90, "challenger": 10},
    "from_shadow": None,
    "to_shadow": None,
    "actor": "abe",
    "time": "2026-05-05T08:00:00+00:00",
    "comment": "canary for v2",
}


class DeploymentIn(BaseModel):
    """What a deployment serves: aliases with traffic weights, and an optional shadow."""

    routes: dict[str, int] = Field(
        description="alias → whole traffic weight (at least one above 0)",
        examples=[{"production": 90, "challenger": 10}],
    )
    shadow: str | None = Field(
        None, description="an alias that scores every request without answering"
    )
    model: str | None = Field(
        None, description="the model it serves (default: the deployment's name)"
    )
    comment: str = Field("", examples=["canary for v2"])


@router.get(
    "/deployments",
    summary="Every stored deployment (a model without one serves production alone)",
    **returns(Deployment, many=True, example=[_DEPLOYMENT]),
)
def list_deployments(project: Acting) -> Any:
    return [d.to_dict() for d in project.deployments.list()]


@router.get(
    "/deployments/{name}",
    summary="A deployment and the version each of its aliases holds now (a model's name "
    "without a stored deployment: its default, production alone)",
    **returns(DeploymentStatus, example=_STATUS, errors=(401, 404)),
)
def show(project: Acting, name: str) -> Any:
    return project.deployments.show(name).to_dict()


@router.put(
    "/deployments/{name}",
    summary="Create or change a deployment (approver)",
    description=(
        "As `shipyard deployments set`. Every alias it names becomes protected: it then moves "
        "only through promotion and rollback. Setting what is already there changes nothing."
    ),
    **returns(Deployment, example=_DEPLOYMENT, errors=(401, 403, 404, 422)),
)
def set_deployment(project: Acting, name: str, body: DeploymentIn) -> Any:
    return project.deployments.set(
        name, body.routes, shadow=body.shadow, model=body.model, comment=body.comment
    ).to_dict()


@router.get(
    "/deployments/{name}/history",
    summary="Every change of a deployment, oldest first",
    **returns(DeploymentChange, many=True, example=[_CHANGE], errors=(401, 404)),
)
def history(project: Acting, name: str) -> Any:
    return [c.to_dict() for c in project.deployments.history(name)]
