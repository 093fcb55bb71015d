"""``/api/v1/runs/table`` and ``/api/v1/runs/comparison``: what the runs pages of a web UI
read. A table page sorts on a metric's last, lowest or highest value (kept at write time) and
filters with the grammar of ``runs list`` (docs/search.md); its CSV export streams every
matching run. A comparison of 2 to 20 runs carries its charts' data, downsampled on the server.

This router is included before the one of ``runs.py``, whose ``/runs/{run_id}`` would
otherwise take ``table`` for a run id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from shipyard.project import Project
from shipyard.server.api._docs import error_responses, returns, returns_json
from shipyard.server.auth import acting_project
from shipyard.server.responses import JSON
from shipyard.tracking.comparison import MAX_POINTS, MAX_RUNS, RunComparison
from shipyard.tracking.table import MAX_PAGE, RunTable

router = APIRouter(tags=["runs"])
Acting = Annotated[Project, Depends(acting_project)]

_A = "63dfdc6e3b7849d5b4b2a480c1559d52"
_B = "9a1c0e5b2f7d4c3e8a6b1d0f2e4c6a8b"
_ROW = {
    "id": _A,
    "name": "gbm-depth-6",
    "experiment": "credit",
    "status": "FINISHED",
    "start_time": "2026-05-03T10:00:00.000+00:00",
    "end_time": "2026-05-03T10:04:12.500+00:00",
    "created_by": "carol",
    "params": {"model": "gbm", "max_depth": "6"},
    "metrics": {"val_loss": {"last": 0.241, "min": 0.213, "max": 0.693, "step": 99}},
    "tags": {},
}
_TABLE = {
    "total": 4210,
    "offset": 0,
    "limit": 50,
    "order_by": "metrics.val_loss ASC",
    "stat": "min",
    "columns": [
        {"kind": "params", "key": "model"},
        {"kind": "params", "key": "max_depth"},
        {"kind": "metrics", "key": "val_loss"},
    ],
    "rows": [_ROW],
}
_COLUMNS_SCHEMA = {
    "type": "object",
    "required": ["params", "metrics", "tags"],
    "properties": {
        kind: {"type": "array", "items": {"type": "string"}}
        for kind in ("params", "metrics", "tags")
    },
}
_COLUMNS = {"params": ["max_depth", "model"], "metrics": ["val_loss"], "tags": ["team"]}
_CSV = (
    "id,name,experiment,status,start_time,end_time,created_by,params.model,"
    "metrics.val_loss,min(metrics.val_loss),max(metrics.val_loss)\n"
    f"{_A},gbm-depth-6,credit,FINISHED,2026-05-03T10:00:00.000+00:00,"
    "2026-05-03T10:04:12.500+00:00,carol,gbm,0.241,0.213,0.693\n"
)
_COMPARISON = {
    "runs": [
        {"id": _A, "name": "gbm-depth-6", "experiment": "credit", "status": "FINISHED"},
        {"id": _B, "name": "lr", "experiment": "credit", "status": "FINISHED"},
    ],
    "params": [
        {"key": "max_depth", "values": ["6", None], "differs": True},
        {"key": "model", "values": ["gbm", "lr"], "differs": True},
    ],
    "metrics": [
        {
            "key": "val_loss",
            "cells": [
                {"last": 0.241, "min": 0.213, "max": 0.693, "step": 99},
                {"last": 0.301, "min": 0.298, "max": 0.693, "step": 99},
            ],
            "differs": True,
        }
    ],
    "series": [
        {
            "run_id": _A,
            "key": "val_loss",
            "steps": [0, 51, 99],
            "values": [0.693, 0.213, 0.241],
            "downsampled": True,
            "total": 100,
        }
    ],
    "group_by": "model",
    "groups": [
        {
            "key": "val_loss",
            "group": "gbm",
            "runs": [_A],
            "steps": [0, 51, 99],
            "mean": [0.693, 0.213, 0.241],
            "std": [0.0, 0.0, 0.0],
            "count": [1, 1, 1],
        }
    ],
    "parallel": [
        {"name": "params.max_depth", "numeric": True, "values": [6.0, None]},
        {"name": "params.model", "numeric": False, "values": ["gbm", "lr"]},
        {"name": "metrics.val_loss", "numeric": True, "values": [0.241, 0.301]},
    ],
}

Experiments = Annotated[
    list[str] | None,
    Query(
        description="experiment names (repeatable); none: every experiment", examples=[["credit"]]
    ),
]
Filter = Annotated[
    str | None,
    Query(
        description="the grammar of `runs list`, e.g. params.model = 'gbm' and "
        "metrics.val_loss < 0.3 (docs/search.md)",
        examples=["params.model = 'gbm'"],
    ),
]
OrderBy = Annotated[
    str | None,
    Query(
        description="one term: metrics.KEY, params.KEY, tags.KEY or an attribute (start_time, "
        "run_name...), then ASC or DESC; default newest first",
        examples=["metrics.val_loss ASC"],
    ),
]
Stat = Annotated[
    Literal["last", "min", "max"],
    Query(description="which value of the metric ordered on: its last, lowest or highest"),
]
Columns = Annotated[
    list[str] | None,
    Query(
        description="params.KEY, metrics.KEY or tags.KEY (repeatable); none: every param and "
        "metric the page's runs have",
        examples=[["params.model", "metrics.val_loss"]],
    ),
]


@router.get(
    "/runs/table",
    summary="One page of the runs table: filtered, sorted on a metric's last/min/max, counted",
    **returns(RunTable, example=_TABLE, errors=(401, 404, 422)),
)
def runs_table(
    project: Acting,
    experiment: Experiments = None,
    filter: Filter = None,
    order_by: OrderBy = None,
    stat: Stat = "last",
    column: Columns = None,
    include_deleted: bool = False,
    offset: Annotated[int, Query(ge=0, examples=[0])] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, examples=[50])] = 50,
) -> Any:
    return project.runs.table(
        experiments=experiment,
        filter=filter,
        order_by=order_by,
        stat=stat,
        columns=column,
        include_deleted=include_deleted,
        offset=offset,
        limit=limit,
    ).to_dict()


@router.get(
    "/runs/table.csv",
    summary="The whole filtered runs table as CSV, streamed (a metric: last, min and max)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "one line per run, in the table's order; text cells that a "
            "spreadsheet would run as a formula start with an apostrophe",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV}},
        },
        **error_responses(401, 404, 422),
    },
)
def runs_table_csv(
    project: Acting,
    experiment: Experiments = None,
    filter: Filter = None,
    order_by: OrderBy = None,
    stat: Stat = "last",
    column: Columns = None,
    include_deleted: bool = False,
) -> StreamingResponse:
    lines = project.runs.table_csv(
        experiments=experiment,
        filter=filter,
        order_by=order_by,
        stat=stat,
        columns=column,
        include_deleted=include_deleted,
    )
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="runs.csv"'},
    )


@router.get(
    "/runs/table/columns",
    summary="Every param, metric and tag key of the experiments' runs (a column chooser)",
    **returns_json(_COLUMNS_SCHEMA, example=_COLUMNS, errors=(401, 404)),
)
def runs_table_columns(project: Acting, experiment: Experiments = None) -> Any:
    return project.runs.table_columns(experiment)


@router.get(
    "/runs/comparison",
    summary=f"Charts' data for 2 to {MAX_RUNS} runs: param differences, downsampled series, "
    "group bands, parallel coordinates",
    description="Series are downsampled on the server (first, last, and the min and max of "
    "each step bucket, so spikes survive). With group_by, runs are grouped by that "
    "parameter's value and each group gets the mean and (population) standard deviation of "
    "each metric per step; a run's value at a step is its last point at or before it.",
    **returns(RunComparison, example=_COMPARISON, errors=(401, 404, 422)),
)
def runs_comparison(
    project: Acting,
    run: Annotated[
        list[str],
        Query(description="run ids or unique prefixes (repeatable)", examples=[[_A, _B]]),
    ],
    metric: Annotated[
        list[str] | None,
        Query(description="metric keys to chart (repeatable); none: all", examples=[["val_loss"]]),
    ] = None,
    group_by: Annotated[
        str | None, Query(description="a parameter key", examples=["model"])
    ] = None,
    max_points: Annotated[int, Query(ge=2, le=MAX_POINTS, examples=[MAX_POINTS])] = MAX_POINTS,
) -> JSON:
    # A ready response: FastAPI would otherwise walk the tens of thousands of numbers of the
    # series through jsonable_encoder before orjson writes them.
    return JSON(
        project.runs.comparison(
            run, metrics=metric, group_by=group_by, max_points=max_points
        ).to_dict()
    )
