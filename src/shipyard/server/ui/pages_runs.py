"""Pages: a plain list of recent runs (the sortable runs table and the comparison pages build
on the runs search data) and one run's page: parameters, metrics, tags, inputs, artifacts with
previews, metric and system-metric charts."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from shipyard.server.ui import charts
from shipyard.server.ui.previews import IMAGE_TYPES, preview_of
from shipyard.server.ui.rendering import UiRoute, page
from shipyard.server.ui.visitors import ViewedBy

__all__ = ["router"]

router = APIRouter(route_class=UiRoute)

#: Artifacts previewed on a run's page (the rest are listed with a download link).
MAX_PREVIEWS = 10
#: Metrics drawn on a run's page, and the points each series keeps (downsampled on the server).
MAX_CHARTS = 12
MAX_POINTS = 1000


@router.get("/runs")
def runs(
    request: Request,
    who: ViewedBy,
    experiment: str = "",
    filter: str = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    found = who.project.runs.list(experiment=experiment or None, filter=filter or None, limit=limit)
    return page(
        request,
        "runs.html",
        who,
        runs=found,
        experiments=who.project.runs.experiments(),
        filters={"experiment": experiment, "filter": filter, "limit": limit},
    )


def _artifact_path(who: ViewedBy, run_id: str, rel: str) -> tuple[str, str]:
    """The run's full id and the artifact-tree path of its artifact ``rel``."""
    from shipyard.tracking.artifact_tree import run_artifact_path

    info = who.project.runs.get(run_id)
    experiment = who.project.runs.experiment(name=info.experiment)
    return info.id, run_artifact_path(experiment.id, info.id, rel)


@router.get("/runs/{run_id}")
def run(request: Request, who: ViewedBy, run_id: str) -> Response:
    project = who.project
    info = project.runs.get(run_id)
    tree = project.artifact_tree
    previews = []
    if info.artifacts:
        _, root = _artifact_path(who, info.id, "")
        for art in info.artifacts[:MAX_PREVIEWS]:
            suffix = PurePosixPath(art["path"]).suffix.lower()
            if suffix in IMAGE_TYPES:  # drawn by the browser from the artifact route
                previews.append(preview_of(art["path"], art["size"], ()))
                continue
            file = tree.get(f"{root}/{art['path']}")
            previews.append(preview_of(art["path"], art["size"], tree.read(file)))
    system = [k for k in info.metrics if k.startswith("system.")]
    others = [k for k in info.metrics if not k.startswith("system.")]
    figures = []
    for key in [*others, *system][:MAX_CHARTS]:
        series = project.runs.metric_series(info.id, key, max_points=MAX_POINTS)
        if series.total > 1:
            points = [p.to_dict() for p in series.points]
            figures.append((key.startswith("system."), charts.metric_lines(key, {key: points})))
    return page(
        request,
        "run.html",
        who,
        run=info,
        previews=[p for p in previews if p.kind != "none" or p.note],
        metric_charts=[f for is_system, f in figures if not is_system],
        system_charts=[f for is_system, f in figures if is_system],
    )


@router.get("/runs/{run_id}/artifacts/{path:path}")
def artifact(who: ViewedBy, run_id: str, path: str) -> Response:
    """An artifact's bytes: images inline (for their previews), anything else as a download."""
    tree = who.project.artifact_tree
    _, full = _artifact_path(who, run_id, path)
    file = tree.get(full)
    suffix = PurePosixPath(path).suffix.lower()
    name = PurePosixPath(path).name.replace('"', "")
    if suffix in IMAGE_TYPES:
        media, disposition = IMAGE_TYPES[suffix], "inline"
    else:
        media, disposition = "application/octet-stream", "attachment"
    return StreamingResponse(
        tree.read(file),
        media_type=media,
        headers={
            "content-length": str(file.size),
            "content-disposition": f'{disposition}; filename="{name}"',
        },
    )
