"""Pages: models (versions with status, the alias timeline from alias history), one version
(evaluation with intervals; ROC, precision-recall and calibration curves or residuals;
confusion matrix, per-group fairness and importance charts, all from the stored report; the
model card; the gate result for each protected alias; approvals), and the approve / reject /
promote / rollback forms, shown to approvers only — the services decide again, and a refusal
comes back as a page with their message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shipyard.server.ui import charts
from shipyard.server.ui.rendering import UiRoute, page
from shipyard.server.ui.visitors import PostedBy, ViewedBy

__all__ = ["router"]

router = APIRouter(route_class=UiRoute)

#: The alias gated when a model has no deployment naming any (the default deployment's).
DEFAULT_ALIAS = "production"


@router.get("/models")
def models(request: Request, who: ViewedBy) -> Response:
    return page(request, "models.html", who, models=who.project.models.list())


@router.get("/models/{name}")
def model(request: Request, who: ViewedBy, name: str) -> Response:
    project = who.project
    versions = project.models.versions(name)
    history = project.models.alias_history(name)
    timeline = charts.alias_timeline(history, datetime.now(UTC)) if history else None
    return page(
        request,
        "model.html",
        who,
        name=name,
        versions=versions[::-1],
        aliases=project.models.aliases(name),
        history=history[::-1],
        timeline=timeline,
        protected=sorted(project.deployments.protected(name) | {DEFAULT_ALIAS}),
    )


def _evaluation_charts(report: dict[str, Any]) -> list[dict[str, Any]]:
    figs: list[dict[str, Any]] = []
    if report.get("metrics"):
        figs.append(charts.metric_intervals(report["metrics"]))
    curves = report.get("curves") or {}
    if curves.get("roc"):
        figs.append(charts.roc(curves["roc"]))
    if curves.get("pr"):
        figs.append(charts.precision_recall(curves["pr"]))
    if curves.get("calibration"):
        figs.append(charts.calibration(curves["calibration"]))
    if curves.get("residuals"):
        figs.append(charts.residuals(curves["residuals"]))
    if report.get("confusion_matrix"):
        figs.append(charts.confusion_matrix(report["confusion_matrix"]))
    for column, doc in (report.get("groups") or {}).items():
        if doc.get("metrics"):
            figs.append(charts.fairness(column, doc["metrics"]))
    if report.get("importance"):
        figs.append(charts.importance(report["importance"]))
    return figs


@router.get("/models/{name}/{version}")
def model_version(request: Request, who: ViewedBy, name: str, version: int) -> Response:
    project = who.project
    mv = project.models.get(f"{name}@{version}")
    evaluations = project.evaluations.list(mv.ref)
    latest = evaluations[0] if evaluations else None  # newest first
    aliases = sorted(project.deployments.protected(name) | {DEFAULT_ALIAS})
    return page(
        request,
        "model_version.html",
        who,
        mv=mv,
        evaluation=latest,
        evaluations=evaluations,
        evaluation_charts=_evaluation_charts(latest.report) if latest else [],
        card=project.cards.card(mv.ref),
        gates=[project.promotions.gate(mv.ref, for_alias=a) for a in aliases],
        approvals=project.approvals.list(mv.ref),
        standing=project.approvals.standing(mv.ref),
        protected=aliases,
    )


def _back(name: str, version: int | None = None) -> Response:
    target = f"/models/{name}" + (f"/{version}" if version is not None else "")
    return RedirectResponse(target, status_code=303)


@router.post("/models/{name}/{version}/approve")
def approve(name: str, version: int, posted: PostedBy) -> Response:
    posted.visitor.project.approvals.approve(f"{name}@{version}", comment=posted.field("comment"))
    return _back(name, version)


@router.post("/models/{name}/{version}/reject")
def reject(name: str, version: int, posted: PostedBy) -> Response:
    posted.visitor.project.approvals.reject(f"{name}@{version}", comment=posted.field("comment"))
    return _back(name, version)


@router.post("/models/{name}/{version}/promote")
def promote(name: str, version: int, posted: PostedBy) -> Response:
    posted.visitor.project.promotions.promote(
        f"{name}@{version}",
        to=posted.field("alias", DEFAULT_ALIAS) or DEFAULT_ALIAS,
        comment=posted.field("comment"),
    )
    return _back(name, version)


@router.post("/models/{name}/rollback")
def rollback(name: str, posted: PostedBy) -> Response:
    posted.visitor.project.promotions.rollback(
        name,
        alias=posted.field("alias", DEFAULT_ALIAS) or DEFAULT_ALIAS,
        comment=posted.field("comment"),
    )
    return _back(name)
