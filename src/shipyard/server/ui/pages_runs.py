"""Pages of runs: the runs table (any experiments, filtered with the grammar of ``runs list``,
sorted on any column, a metric on its last, lowest or highest value, paged, with chosen
columns and a CSV export), the comparison of 2 to 20 runs, and one run's page: parameters,
metrics, tags, inputs, artifacts with previews, metric and system-metric charts.

The table's state lives in its URL (:class:`~.runs_view.RunsView`), so a view can be shared;
sorting, filtering and paging swap only the table's part of the page (HTMX), and only the
page's rows are read and rendered, whatever the number of runs.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.server.ui import charts, comparison_charts
from shipyard.server.ui.previews import IMAGE_TYPES, preview_of
from shipyard.server.ui.rendering import UiRoute, page
from shipyard.server.ui.runs_view import ATTRIBUTE_COLUMNS, PAGE_SIZES, RunsView, column_id
from shipyard.server.ui.visitors import ViewedBy
from shipyard.tracking.comparison import MAX_RUNS, RunComparison
from shipyard.tracking.table import MAX_PAGE, Column, Kind, parse_columns

__all__ = ["router"]

router = APIRouter(route_class=UiRoute)

#: Artifacts previewed on a run's page (the rest are listed with a download link).
MAX_PREVIEWS = 10
#: Metrics drawn on a run's page, and the points each series keeps (downsampled on the server).
MAX_CHARTS = 12
MAX_POINTS = 1000
#: Metrics charted by a comparison when none is chosen (the first, by name, that are not
#: system metrics); the page offers the others.
DEFAULT_COMPARED_METRICS = 6

Names = Annotated[list[str] | None, Query()]
#: The id of the part of /runs that HTMX swaps (the form, the table and its pager).
RUNS_VIEW = "runs-view"


def _view(
    experiment: list[str] | None,
    filter: str,
    order: str,
    stat: Literal["last", "min", "max"],
    col: list[str] | None,
    offset: int = 0,
    limit: int = 50,
) -> RunsView:
    return RunsView(
        experiments=tuple(e for e in experiment or () if e),
        filter=filter.strip(),
        order=order.strip(),
        stat=stat,
        columns=tuple(c for c in col or () if c),
        offset=offset,
        limit=limit,
    )


def _swaps_view(request: Request) -> bool:
    """Whether HTMX asks for the table's part only (and not for a whole page, as it does
    when it restores a page from history)."""
    h = request.headers
    return (
        h.get("hx-request") == "true"
        and h.get("hx-target") == RUNS_VIEW
        and not h.get("hx-history-restore-request")
    )


@router.get("/runs")
def runs(
    request: Request,
    who: ViewedBy,
    experiment: Names = None,
    filter: str = "",
    order: str = "",
    stat: Literal["last", "min", "max"] = "last",
    col: Names = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Response:
    """The runs table. A filter, sort term or column the service refuses shows its message
    above the form (with the status of the refusal on a whole page; HTMX swaps only 2xx
    answers, so its fragment comes with 200)."""
    view = _view(experiment, filter, order, stat, col, offset, limit)
    table, error = None, None
    try:
        table = who.project.runs.table(
            experiments=view.experiments or None,
            filter=view.filter or None,
            order_by=view.order or None,
            stat=view.stat,
            columns=view.columns or None,
            offset=view.offset,
            limit=view.limit,
        )
    except (InvalidInputError, NotFoundError) as e:
        error = e
    fragment = _swaps_view(request)
    return page(
        request,
        "_runs_view.html" if fragment else "runs.html",
        who,
        status=error.http_status if error is not None and not fragment else 200,
        view=view,
        table=table,
        error=error,
        experiments=who.project.runs.experiments(),
        page_sizes=PAGE_SIZES,
        max_compared=MAX_RUNS,
        ATTRIBUTE_COLUMNS=ATTRIBUTE_COLUMNS,
        column_id=column_id,
    )


@router.get("/runs/columns")
def run_columns(
    request: Request, who: ViewedBy, experiment: Names = None, col: Names = None
) -> Response:
    """The column chooser's choices: every param, metric and tag key of the experiments'
    runs, the columns shown ticked. Loaded when the chooser is first opened (it reads a row
    per run and key, which the table's first screen does not wait for)."""
    view = _view(experiment, "", "", "last", col)
    keys = who.project.runs.table_columns(view.experiments or None)
    chosen = {column_id(c) for c in parse_columns(view.columns)}
    kinds: tuple[Kind, ...] = ("params", "metrics", "tags")
    choices = {
        kind: [(column_id(Column(kind, k)), k) for k in keys.get(kind, [])] for kind in kinds
    }
    return page(request, "_runs_columns.html", who, choices=choices, chosen=chosen)


@router.get("/runs/export.csv")
def export_csv(
    who: ViewedBy,
    experiment: Names = None,
    filter: str = "",
    order: str = "",
    stat: Literal["last", "min", "max"] = "last",
    col: Names = None,
) -> Response:
    """Every run of the filtered table (not only a page), in its order, as CSV, streamed."""
    view = _view(experiment, filter, order, stat, col)
    lines = who.project.runs.table_csv(
        experiments=view.experiments or None,
        filter=view.filter or None,
        order_by=view.order or None,
        stat=view.stat,
        columns=view.columns or None,
    )
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="runs.csv"'},
    )


def _default_metrics(overview: RunComparison) -> list[str]:
    keys = [m.key for m in overview.metrics if not m.key.startswith("system.")]
    return keys[:DEFAULT_COMPARED_METRICS]


@router.get("/runs/compare")
def compare(
    request: Request,
    who: ViewedBy,
    run: Names = None,
    metric: Names = None,
    group_by: str = "",
) -> Response:
    """2 to 20 runs side by side: parameters (those that differ first), metrics, each
    chosen metric over steps (a line per run), with ``group_by`` a band of mean ± std per
    group of runs, and a parallel-coordinates chart. Without ``metric``, the first
    :data:`DEFAULT_COMPARED_METRICS` metrics (system metrics aside) are charted."""
    run_ids = [r for r in run or () if r]
    chosen = list(dict.fromkeys(m for m in metric or () if m))
    project = who.project
    try:
        if not chosen:  # a first read without series, to know the metrics there are
            chosen = _default_metrics(project.runs.comparison(run_ids, metrics=[]))
        comparison = project.runs.comparison(run_ids, metrics=chosen, group_by=group_by or None)
    except InvalidInputError as e:
        return page(
            request,
            "runs_compare.html",
            who,
            status=e.http_status,
            error=e,
            asked=len(run_ids),
            max_compared=MAX_RUNS,
        )
    colours = comparison_charts.run_colors(len(comparison.runs))
    overlays = [comparison_charts.metric_overlay(k, comparison) for k in chosen]
    bands = []
    if group_by:
        for k in chosen:
            groups = [g for g in comparison.groups if g.key == k]
            bands.append(comparison_charts.group_bands(k, group_by, groups))
    return page(
        request,
        "runs_compare.html",
        who,
        comparison=comparison,
        runs=list(zip(comparison.runs, colours, strict=True)),
        chosen=chosen,
        group_by=group_by,
        differing=[p for p in comparison.params if p.differs],
        same=[p for p in comparison.params if not p.differs],
        overlays=overlays,
        bands=bands,
        parallel=comparison_charts.parallel_coordinates(comparison),
        max_compared=MAX_RUNS,
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
