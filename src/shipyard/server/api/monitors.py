"""``/api/v1/monitors`` and ``/api/v1/alerts``: monitors of deployments, their results per
window, one pass on demand, and the alerts they opened (roles as in the service: viewers read,
contributors add and run, admins remove)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from shipyard.monitoring.alerts import Alert
from shipyard.monitoring.monitors import Monitor, MonitorResult, RunOutcome
from shipyard.project import Project
from shipyard.server.api._docs import returns
from shipyard.server.auth import acting_project

router = APIRouter(tags=["monitors"])
Acting = Annotated[Project, Depends(acting_project)]

_MONITOR = {
    "id": 1,
    "name": "credit-accuracy",
    "deployment": "credit-risk",
    "kind": "performance",
    "window_seconds": 3600,
    "every_seconds": 600,
    "thresholds": [{"metric": "accuracy", "min": 0.8, "max": None}],
    "consecutive": 3,
    "cooldown_seconds": 3600,
    "notify": [2],
    "options": {},
    "enabled": True,
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "alice",
}
_RESULT = {
    "id": 41,
    "monitor": "credit-accuracy",
    "window_start": "2026-05-04T08:20:00+00:00",
    "window_end": "2026-05-04T09:20:00+00:00",
    "status": "breach",
    "rows": 812,
    "values": {"accuracy": 0.74, "label_coverage": 0.61, "labelled": 495},
    "message": "accuracy 0.74 on 495 labelled answers (label coverage 61%)",
    "breached": ["accuracy >= 0.8"],
    "created_at": "2026-05-04T09:20:03+00:00",
}
_ALERT = {
    "id": 7,
    "monitor": "credit-accuracy",
    "deployment": "credit-risk",
    "kind": "performance",
    "status": "open",
    "opened_at": "2026-05-04T09:20:03+00:00",
    "resolved_at": None,
    "first_result_id": 39,
    "last_result_id": 41,
    "summary": "monitor credit-accuracy (performance) on deployment credit-risk: accuracy "
    "0.74 (expected accuracy >= 0.8) for 3 windows in a row",
    "details": {"breached": ["accuracy >= 0.8"], "values": {"accuracy": 0.74}},
}


class MonitorIn(BaseModel):
    """A monitor to add (durations in seconds)."""

    name: str = Field(examples=["credit-accuracy"])
    deployment: str = Field(examples=["credit-risk"])
    kind: str = Field(examples=["performance"], description="drift, quality, performance, kpi")
    window_seconds: int = 3600
    every_seconds: int = 600
    thresholds: list[str] = Field(default_factory=list, examples=[["accuracy>=0.8"]])
    consecutive: int = 1
    cooldown_seconds: int = 3600
    notify: list[int] = Field(default_factory=list, description="webhook ids")
    kpi: str | None = None
    aggregation: str = "sum"
    min_value: float | None = None
    max_value: float | None = None
    min_rows: int | None = None
    reference: str | None = Field(None, examples=["credit.train@1"])


@router.get(
    "/monitors",
    summary="List monitors",
    **returns(Monitor, many=True, example=[_MONITOR], errors=(401,)),
)
def list_monitors(project: Acting, deployment: str | None = None) -> Any:
    return [m.to_dict() for m in project.monitors.list(deployment=deployment)]


@router.post(
    "/monitors",
    summary="Add a monitor (contributor)",
    status_code=201,
    **returns(Monitor, example=_MONITOR, errors=(401, 403, 404, 409, 422), status=201),
)
def add_monitor(project: Acting, body: MonitorIn) -> Any:
    return project.monitors.add(**body.model_dump()).to_dict()


@router.get(
    "/monitors/{name}",
    summary="One monitor",
    **returns(Monitor, example=_MONITOR, errors=(401, 404)),
)
def get_monitor(project: Acting, name: str) -> Any:
    return project.monitors.get(name).to_dict()


@router.delete(
    "/monitors/{name}",
    summary="Remove a monitor and its results; its alerts stay (admin)",
    **returns(Monitor, example=_MONITOR, errors=(401, 403, 404)),
)
def remove_monitor(project: Acting, name: str) -> Any:
    return project.monitors.remove(name).to_dict()


@router.get(
    "/monitors/{name}/history",
    summary="A monitor's results, one per window, newest first",
    **returns(MonitorResult, many=True, example=[_RESULT], errors=(401, 404)),
)
def monitor_history(
    project: Acting, name: str, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> Any:
    return [r.to_dict() for r in project.monitors.history(name, limit=limit)]


@router.post(
    "/monitors/{name}/run",
    summary="Measure the latest complete window and apply the alert rule (contributor)",
    **returns(
        RunOutcome,
        example={
            "monitor": "credit-accuracy",
            "result": _RESULT,
            "new": True,
            "alert_event": "opened",
            "alert": _ALERT,
        },
        errors=(401, 403, 404),
    ),
)
def run_monitor(project: Acting, name: str) -> Any:
    return project.monitors.run(name).to_dict()


@router.post(
    "/monitors/{name}/enable",
    summary="Let run-all and watch run a monitor again (contributor)",
    **returns(Monitor, example=_MONITOR, errors=(401, 403, 404)),
)
def enable_monitor(project: Acting, name: str) -> Any:
    return project.monitors.enable(name).to_dict()


@router.post(
    "/monitors/{name}/disable",
    summary="Leave a monitor out of run-all and watch (contributor)",
    **returns(Monitor, example={**_MONITOR, "enabled": False}, errors=(401, 403, 404)),
)
def disable_monitor(project: Acting, name: str) -> Any:
    return project.monitors.disable(name).to_dict()


@router.get(
    "/alerts",
    summary="Alerts, newest first",
    **returns(Alert, many=True, example=[_ALERT], errors=(401,)),
)
def list_alerts(
    project: Acting,
    open: bool = False,
    monitor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    return [a.to_dict() for a in project.alerts.list(open_only=open, monitor=monitor, limit=limit)]


@router.get(
    "/alerts/{alert_id}",
    summary="One alert",
    **returns(Alert, example=_ALERT, errors=(401, 404)),
)
def get_alert(project: Acting, alert_id: int) -> Any:
    return project.alerts.get(alert_id).to_dict()
