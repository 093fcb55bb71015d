"""Pages: home (recent activity, candidates waiting for a decision, deployments, open alerts),
deployments (routes, shadow, and the prediction log's figures over a chosen window) and the
audit log (filters, and ``verify`` from a button)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from shipyard.errors import NotFoundError
from shipyard.server.ui.rendering import UiRoute, page
from shipyard.server.ui.visitors import PostedBy, ViewedBy, Visitor

__all__ = ["router"]

router = APIRouter(route_class=UiRoute)

#: Windows the deployment page offers, in seconds.
WINDOWS = {"15 minutes": 900, "1 hour": 3600, "24 hours": 86_400, "7 days": 604_800}
#: Actions left out of the home page's activity: reads fill the access log, not the news.
_QUIET = (".read", ".load")


def _home(who: Visitor) -> dict[str, Any]:
    project = who.project
    recent = project.audit.list(limit=200, newest_first=True)
    activity = [e for e in recent if not e.action.endswith(_QUIET)][:25]
    waiting = []
    for model in project.models.list():
        for v in project.models.versions(model.name):
            if v.status == "candidate":
                waiting.append(v)
    return {
        "activity": activity,
        "waiting": waiting,
        "deployments": project.deployments.list(),
        "alerts": project.alerts.list(open_only=True, limit=20),
    }


@router.get("/")
def home(request: Request, who: ViewedBy) -> Response:
    return page(request, "home.html", who, **_home(who))


@router.get("/deployments")
def deployments(request: Request, who: ViewedBy) -> Response:
    return page(request, "deployments.html", who, deployments=who.project.deployments.list())


def _metrics(who: Visitor, name: str, window: int) -> dict[str, Any] | None:
    try:
        return who.project.predictions.metrics(name, window_seconds=window)
    except NotFoundError:
        return None  # nothing logged yet


@router.get("/deployments/{name}")
def deployment(
    request: Request, who: ViewedBy, name: str, window: Annotated[int, Query(gt=0)] = 3600
) -> Response:
    project = who.project
    current = project.deployments.show(name)
    history = project.deployments.history(name) if current.deployment.stored else []
    return page(
        request,
        "deployment.html",
        who,
        current=current,
        history=history,
        metrics=_metrics(who, name, window),
        windows=WINDOWS,
        window=window,
    )


@router.get("/deployments/{name}/metrics")
def deployment_metrics(
    request: Request, who: ViewedBy, name: str, window: Annotated[int, Query(gt=0)] = 3600
) -> Response:
    """The figures alone, for the window selector (an htmx swap)."""
    return page(
        request, "_deployment_metrics.html", who, metrics=_metrics(who, name, window), name=name
    )


@router.get("/audit")
def audit(
    request: Request,
    who: ViewedBy,
    actor: str = "",
    action: str = "",
    entity: str = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    events = who.project.audit.list(
        actor=actor or None,
        action=action or None,
        entity=entity or None,
        limit=limit,
        newest_first=True,
    )
    filters = {"actor": actor, "action": action, "entity": entity, "limit": limit}
    return page(request, "audit.html", who, events=events, filters=filters)


@router.post("/audit/verify")
def verify(request: Request, posted: PostedBy) -> Response:
    report = posted.visitor.project.audit.verify()
    return page(request, "_verify.html", posted.visitor, report=report)
