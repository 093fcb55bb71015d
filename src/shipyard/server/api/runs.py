"""``/api/v1/runs`` and ``/api/v1/experiments``: experiment tracking over HTTP.

The server keeps no state between requests: a client starts a run (sending the code version
and environment it captured itself), then each logging request attaches to the run
(:meth:`Runs.attach <shipyard.tracking.runs.Runs.attach>`) and writes at once. Search takes
the filter grammar of ``runs list`` (docs/search.md); a filter that does not parse is a 422
whose message points at the position.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from pydantic import BaseModel, Field

from shipyard.project import Project
from shipyard.registry.versions import ModelVersion
from shipyard.server.api._docs import returns, returns_json
from shipyard.server.api._forms import json_field
from shipyard.server.auth import acting_project
from shipyard.tracking.active import StoredArtifact
from shipyard.tracking.runs import Experiment, RunInfo
from shipyard.tracking.series import MetricSeries

router = APIRouter(tags=["runs"])
Acting = Annotated[Project, Depends(acting_project)]
#: The largest ``limit`` and ``max_points`` a request may ask for.
MAX_LIMIT = 1_000_000
RunId = Annotated[str, Path(description="a run id, or a unique prefix of one")]

_RUN_ID = "63dfdc6e3b7849d5b4b2a480c1559d52"
_ARTIFACT_DIGEST = "blake3:0e1ec1f2d4afde9a9149a23ab7f1ee448291117cdb3849e893395388598930c8"
_CODE = {
    "git": {
        "commit": "85b0fe86f837d767f7f2d843678dfa1936e3ea22",
        "branch": "main",
        "dirty": False,
        "diff_digest": None,
    }
}
_ENVIRONMENT = {
    "python_version": "3.11.7",
    "python_implementation": "CPython",
    "platform": "Linux-6.8.0-x86_64-with-glibc2.36",
    "hostname": "laptop",
    "command": ["train.py", "--C", "1.0"],
    "packages": {"scikit-learn": "1.6.1", "polars": "1.31.0"},
}
_RUN = {
    "id": _RUN_ID,
    "name": "logreg",
    "experiment": "credit",
    "status": "FINISHED",
    "lifecycle": "active",
    "start_time": "2026-05-03T10:00:00.000+00:00",
    "end_time": "2026-05-03T10:04:12.500+00:00",
    "created_by": "carol",
    "params": {"C": "1.0", "model": "logistic-regression"},
    "metrics": {"roc_auc": 0.74, "log_loss": 0.52},
    "tags": {"team": "risk"},
    "inputs": [
        {
            "dataset": "credit.train@1",
            "context": "train",
            "digest": "blake3:4d782742ac1aa9ded58faf201a24ca6915db693dec8449c2f43fc68a7f152bbf",
        }
    ],
    "artifacts": [
        {
            "path": "plots/roc.png",
            "digest": _ARTIFACT_DIGEST,
            "size": 48213,
        }
    ],
    "code": _CODE,
    "environment": _ENVIRONMENT,
    "error": None,
    "duration_seconds": 252.5,
}
_RUNNING = {
    **_RUN,
    "status": "RUNNING",
    "end_time": None,
    "params": {},
    "metrics": {},
    "inputs": [],
    "artifacts": [],
    "duration_seconds": None,
}
_EXPERIMENT = {
    "id": 1,
    "name": "credit",
    "runs": 12,
    "created_by": "carol",
    "last_run": "2026-05-03T10:00:00.000+00:00",
}
_LOGGED_SCHEMA = {
    "type": "object",
    "required": ["logged"],
    "properties": {"logged": {"type": "integer", "description": "how many items were written"}},
}
_COMPARE_ROW = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "values": {"type": "array", "items": {}},
        "differs": {"type": "boolean"},
    },
}
_COMPARE_SCHEMA = {
    "type": "object",
    "required": ["runs", "params", "metrics"],
    "properties": {
        "runs": {"type": "array", "items": {"type": "object"}},
        "params": {"type": "array", "items": _COMPARE_ROW},
        "metrics": {"type": "array", "items": _COMPARE_ROW},
    },
}
_COMPARE = {
    "runs": [
        {"id": _RUN_ID, "name": "logreg", "experiment": "credit", "status": "FINISHED"},
        {"id": "9a1c0e", "name": "gbm", "experiment": "credit", "status": "FINISHED"},
    ],
    "params": [{"key": "C", "values": ["1.0", None], "differs": True}],
    "metrics": [{"key": "roc_auc", "values": [0.74, 0.79], "differs": True}],
}
_SERIES = {
    "key": "loss",
    "points": [
        {"step": 0, "timestamp": 1777802400000, "value": 0.93},
        {"step": 412, "timestamp": 1777802460000, "value": 0.31},
        {"step": 731, "timestamp": 1777802490000, "value": 4.2},
        {"step": 9999, "timestamp": 1777803000000, "value": 0.12},
    ],
    "downsampled": True,
    "total": 10000,
}
_MODEL = {
    "name": "credit-risk",
    "version": 3,
    "digest": "blake3:9cac19f7f69c459bcdb2be6569e0135ae8409f1447a97baddfec41cd56e69caf",
    "flavor": "sklearn",
    "signature": {
        "inputs": {"columns": {"age": {"type": "int"}, "income": {"type": "float"}}},
        "outputs": {"type": "classifier", "classes": [0, 1]},
    },
    "run_id": _RUN_ID,
    "status": "candidate",
    "description": "logistic regression on Q1 data",
    "metrics": {"roc_auc": 0.74},
    "aliases": [],
    "created_at": "2026-05-03T10:04:12+00:00",
    "created_by": "carol",
    "lineage": [{"kind": "dataset", "ref": "credit.train@1", "context": "train"}],
    "created": True,
    "environment": {"sklearn": "1.6.1", "skops": "0.11.0", "numpy": "2.2.6", "python": "3.11.7"},
    "ref": "credit-risk@3",
}


# -- request bodies -------------------------------------------------------------------------------


class RunIn(BaseModel):
    """A run to start. ``code`` and ``environment`` are what the client captured on its own
    machine (the server records them as they are and never captures its own)."""

    experiment: str = Field(default="default", examples=["credit"])
    name: str | None = Field(default=None, examples=["logreg"])
    tags: dict[str, str] = Field(default_factory=dict, examples=[{"team": "risk"}])
    code: dict[str, Any] = Field(default_factory=dict, examples=[_CODE])
    environment: dict[str, Any] = Field(default_factory=dict, examples=[_ENVIRONMENT])


class ParamsIn(BaseModel):
    """Hyper-parameters to record (stored as text; immutable once logged)."""

    params: dict[str, str | int | float | bool | None] = Field(
        examples=[{"C": 1.0, "penalty": "l2"}]
    )


class MetricIn(BaseModel):
    """One metric point; without a step, the key's next step; without a timestamp, now."""

    key: str = Field(examples=["loss"])
    value: float = Field(examples=[0.42])
    step: int | None = Field(default=None, examples=[12])
    timestamp: int | None = Field(
        default=None, description="milliseconds since the epoch", examples=[1777802400000]
    )


class MetricsIn(BaseModel):
    """A batch of metric points, written in one transaction."""

    metrics: list[MetricIn] = Field(
        examples=[[{"key": "loss", "value": 0.42, "step": 12, "timestamp": 1777802400000}]]
    )


class TagsIn(BaseModel):
    """Tags to set (or replace)."""

    tags: dict[str, str] = Field(examples=[{"stage": "tuning"}])


class InputIn(BaseModel):
    """A dataset version the run read."""

    dataset: str = Field(examples=["credit.train@1"])
    context: str = Field(default="train", examples=["train"])


class EndIn(BaseModel):
    """How the run ended."""

    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED"
    error: str | None = Field(default=None, examples=[None])


class CompareIn(BaseModel):
    """Runs to put side by side (two or more)."""

    runs: list[str] = Field(examples=[[_RUN_ID, "9a1c0e"]])


# -- reads ----------------------------------------------------------------------------------------


@router.get(
    "/experiments",
    summary="Every experiment with its number of runs",
    **returns(Experiment, many=True, example=[_EXPERIMENT]),
)
def list_experiments(project: Acting) -> Any:
    return [e.to_dict() for e in project.runs.experiments()]


@router.get(
    "/runs",
    summary="Search runs with the filter grammar of `runs list` (newest first by default)",
    **returns(RunInfo, many=True, example=[_RUN], errors=(401, 404, 422)),
)
def list_runs(
    project: Acting,
    experiment: Annotated[str | None, Query(examples=["credit"])] = None,
    filter: Annotated[
        str | None,
        Query(
            description="e.g. metrics.roc_auc > 0.7 and params.model = 'gbm' (docs/search.md)",
            examples=["metrics.roc_auc > 0.7"],
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None, Query(description="repeatable", examples=[["metrics.roc_auc DESC"]])
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT, examples=[50])] = None,
    include_deleted: bool = False,
    details: Annotated[
        bool,
        Query(description="false: leave out inputs, artifacts, code, environment and error"),
    ] = True,
) -> Any:
    found = project.runs.list(
        experiment=experiment,
        filter=filter,
        order_by=order_by,
        limit=limit,
        include_deleted=include_deleted,
    )
    exclude = () if details else RunInfo.DETAILS
    return [r.to_dict(exclude=exclude) for r in found]


@router.get(
    "/runs/{run_id}",
    summary="One run: params, latest metrics, tags, inputs, artifacts, code, environment",
    **returns(RunInfo, example=_RUN, errors=(401, 404)),
)
def show_run(project: Acting, run_id: RunId) -> Any:
    return project.runs.get(run_id).to_dict()


@router.get(
    "/runs/{run_id}/metrics/{key:path}",
    summary="A metric's history; with max_points, downsampled on the server",
    description="Downsampling keeps the first and the last point and, in each of "
    "(max_points - 2) / 2 buckets of equal step width, the point with the lowest and the one "
    "with the highest value (min-max / M4), so spikes survive.",
    **returns(MetricSeries, example=_SERIES, errors=(401, 404, 422)),
)
def metric_history(
    project: Acting,
    run_id: RunId,
    key: str,
    max_points: Annotated[int | None, Query(ge=2, le=MAX_LIMIT, examples=[500])] = None,
) -> Any:
    return project.runs.metric_series(run_id, key, max_points=max_points).to_dict()


@router.post(
    "/runs/compare",
    summary="Parameters and metrics of several runs side by side",
    **returns_json(_COMPARE_SCHEMA, example=_COMPARE, errors=(401, 404, 422)),
)
def compare(project: Acting, body: CompareIn) -> Any:
    return project.runs.compare(body.runs)


# -- writes ---------------------------------------------------------------------------------------


@router.post(
    "/runs",
    status_code=201,
    summary="Start a run (its experiment is created on first use)",
    **returns(RunInfo, example=_RUNNING, errors=(401, 403, 422), status=201),
)
def start_run(project: Acting, body: RunIn) -> Any:
    run = project.runs.start(
        body.experiment,
        name=body.name,
        tags=body.tags,
        code=body.code,
        environment=body.environment,
    )
    return project.runs.get(run.id).to_dict()


_LOGGED = returns_json(_LOGGED_SCHEMA, example={"logged": 2}, errors=(401, 403, 404, 409, 422))


@router.post("/runs/{run_id}/params", summary="Log hyper-parameters", **_LOGGED)
def log_params(project: Acting, run_id: RunId, body: ParamsIn) -> Any:
    project.runs.attach(run_id).log_params(body.params)
    return {"logged": len(body.params)}


@router.post(
    "/runs/{run_id}/metrics", summary="Log a batch of metric points, written at once", **_LOGGED
)
def log_metrics(project: Acting, run_id: RunId, body: MetricsIn) -> Any:
    points = [(m.key, m.value, m.step, m.timestamp) for m in body.metrics]
    return {"logged": project.runs.attach(run_id).log_points(points)}


@router.post("/runs/{run_id}/tags", summary="Set tags", **_LOGGED)
def set_tags(project: Acting, run_id: RunId, body: TagsIn) -> Any:
    project.runs.attach(run_id).set_tags(body.tags)
    return {"logged": len(body.tags)}


@router.post("/runs/{run_id}/inputs", summary="Record a dataset version the run read", **_LOGGED)
def log_input(project: Acting, run_id: RunId, body: InputIn) -> Any:
    project.runs.attach(run_id).log_input(body.dataset, body.context)
    return {"logged": 1}


async def _spooled_body(request: Request) -> Any:
    """The request body in a temporary file (memory first, disk past a few megabytes)."""
    import tempfile

    spool = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115
    async for chunk in request.stream():
        spool.write(chunk)
    spool.seek(0)
    return spool


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    summary="Store the raw request body as one of the run's artifacts",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
    **returns(
        StoredArtifact,
        example={"path": "plots/roc.png", "digest": _ARTIFACT_DIGEST, "size": 48213},
        errors=(401, 403, 404, 409, 422),
    ),
)
def put_artifact(
    project: Acting,
    run_id: RunId,
    path: str,
    body: Annotated[Any, Depends(_spooled_body)],
) -> Any:
    with body:
        return project.runs.attach(run_id).put_artifact(path, body).to_dict()


@router.post(
    "/runs/{run_id}/models",
    status_code=201,
    summary="Register a model file (any flavor) as a new model version made by this run",
    **returns(ModelVersion, example=_MODEL, errors=(401, 403, 404, 422), status=201),
)
def log_model(
    project: Acting,
    run_id: RunId,
    file: Annotated[
        UploadFile, File(description="a model file saved by shipyard (a skops file for sklearn)")
    ],
    name: Annotated[str, Form(examples=["credit-risk"])],
    description: Annotated[str, Form()] = "",
    input_example: Annotated[
        str | None,
        Form(
            description="a JSON list of records, for the signature",
            examples=['[{"age": 34, "income": 52000}]'],
        ),
    ] = None,
    saved_with: Annotated[
        str | None,
        Form(
            description="a JSON object of the library versions the file was saved with",
            examples=['{"sklearn": "1.6.1", "skops": "0.11.0"}'],
        ),
    ] = None,
    tags: Annotated[
        str | None,
        Form(description="a JSON object of tags for the version", examples=['{"team": "risk"}']),
    ] = None,
    signature: Annotated[
        str | None,
        Form(
            description="a custom code model only: its signature as a JSON object, inferred "
            "by the client (the server does not run code no approver has approved)",
        ),
    ] = None,
) -> Any:
    return project.models.register_file(
        name,
        file.file,
        run_id=run_id,
        input_example=json_field(input_example, "input_example", list),
        description=description,
        saved_with=json_field(saved_with, "saved_with", dict),
        tags=json_field(tags, "tags", dict),
        signature=json_field(signature, "signature", dict),
    ).to_dict()


@router.post(
    "/runs/{run_id}/end",
    summary="End a run (an ended run stays as it ended)",
    **returns(RunInfo, example=_RUN, errors=(401, 403, 404, 409, 422)),
)
def end_run(project: Acting, run_id: RunId, body: EndIn | None = None) -> Any:
    body = body or EndIn()
    run = project.runs.attach(run_id)
    run.end(body.status, body.error)
    return project.runs.get(run.id).to_dict()


@router.delete(
    "/runs/{run_id}",
    summary="Hide a run from searches (restorable; its history stays)",
    **returns(RunInfo, example={**_RUN, "lifecycle": "deleted"}, errors=(401, 403, 404)),
)
def delete_run(project: Acting, run_id: RunId) -> Any:
    return project.runs.delete(run_id).to_dict()


@router.post(
    "/runs/{run_id}/restore",
    summary="Bring back a deleted run",
    **returns(RunInfo, example=_RUN, errors=(401, 403, 404)),
)
def restore_run(project: Acting, run_id: RunId) -> Any:
    return project.runs.restore(run_id).to_dict()
