"""The MLflow tracking protocol: experiments, runs, params, metrics, tags, inputs and metric
history, as the ``mlflow`` client calls them (mounted under ``/api/2.0/mlflow`` and
``/ajax-api/2.0/mlflow``).

Every write goes through shipyard's services acting as the bearer token's user, so roles
(contributor to log) and audit events apply exactly as on the CLI. docs/mlflow.md lists where
the behaviour differs from MLflow's own server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from shipyard.errors import ConflictError, NotFoundError
from shipyard.project import Project
from shipyard.server.auth import acting_project
from shipyard.server.mlflow_api import MlflowRouter
from shipyard.server.mlflow_api._wire import (
    DEFAULT_EXPERIMENT,
    VIEW_TYPES,
    decode_page_token,
    encode_page_token,
    experiment_json,
    run_info_json,
    run_json,
)
from shipyard.server.mlflow_api.errors import MlflowError
from shipyard.tracking.active import ActiveRun, now_ms
from shipyard.tracking.runs import Experiment

__all__ = ["router"]

router = MlflowRouter()
Acting = Annotated[Project, Depends(acting_project)]

# MLflow's limits for one log-batch request (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = 1_000_000
MAX_RESULTS_SEARCH_RUNS = 50_000
MAX_RESULTS_HISTORY = 25_000


class KeyValue(BaseModel):
    key: str
    value: str = ""


class ExperimentIn(BaseModel):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentSearchIn(BaseModel):
    max_results: int = 1000
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | int = "ACTIVE_ONLY"


class RunCreateIn(BaseModel):
    experiment_id: str = "0"
    user_id: str | None = None
    run_name: str | None = None
    start_time: int | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class RunRef(BaseModel):
    run_id: str | None = None
    run_uuid: str | None = None

    def id(self) -> str:
        run_id = self.run_id or self.run_uuid
        if not run_id:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'."
            )
        return run_id


class RunUpdateIn(RunRef):
    status: str | int | None = None
    end_time: int | None = None
    run_name: str | None = None


class RunSearchIn(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | int = "ACTIVE_ONLY"
    max_results: int = 1000
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class MetricIn(RunRef):
    key: str
    value: float
    timestamp: int | None = None
    step: int = 0


class ParamIn(RunRef):
    key: str
    value: str = ""


class TagIn(RunRef):
    key: str
    value: str = ""


class TagDeleteIn(RunRef):
    key: str


class DatasetIn(BaseModel):
    name: str
    digest: str = ""
    source_type: str = ""
    source: str = ""
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class DatasetInputIn(BaseModel):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: DatasetIn


class LogInputsIn(RunRef):
    datasets: list[DatasetInputIn] = Field(default_factory=list)


#: MLflow's RunStatus enum numbers, for clients that send them.
_STATUS_NUMBERS = {"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED"}


def _bad(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def _attach(project: Project, run_id: str) -> ActiveRun:
    """The run to log to, refused as MLflow refuses it when it is deleted."""
    try:
        return project.runs.attach(run_id)
    except ConflictError:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"The run {run_id} must be in the 'active' state. Current state is deleted; "
            f"restore it with `shipyard runs restore {run_id}`.",
        ) from None


def _experiment(project: Project, experiment_id: str) -> Experiment:
    """The experiment an MLflow id names (``"0"`` is ``default``)."""
    if experiment_id == "0":
        return project.runs.experiment(name=DEFAULT_EXPERIMENT)
    if not experiment_id.isdigit():
        raise _bad(f"Invalid experiment ID: '{experiment_id}'; experiment ids are numbers")
    return project.runs.experiment(id=int(experiment_id))


def _view(value: str | int) -> str:
    view = VIEW_TYPES.get(str(value))
    if view is None:
        raise _bad(f"Invalid view type {value!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL")
    return view


# -- experiments ------------------------------------------------------------------------------


@router.post("/experiments/create")
def create_experiment(project: Acting, body: ExperimentIn) -> Any:
    if body.tags:
        raise _bad("experiment tags are not supported by shipyard; create it without tags")
    return {"experiment_id": str(project.runs.create_experiment(body.name).id)}


@router.get("/experiments/get")
def get_experiment(project: Acting, experiment_id: str) -> Any:
    return {"experiment": experiment_json(_experiment(project, experiment_id))}


@router.get("/experiments/get-by-name")
def get_experiment_by_name(project: Acting, experiment_name: str) -> Any:
    return {"experiment": experiment_json(project.runs.experiment(name=experiment_name))}


_NAME_FILTER = re.compile(
    r"^\s*(?:attributes?\.)?name\s*(=|!=|LIKE|ILIKE)\s*'((?:[^'\\]|\\.)*)'\s*$", re.IGNORECASE
)


def _name_matches(op: str, pattern: str, name: str) -> bool:
    if op == "=":
        return name == pattern
    if op == "!=":
        return name != pattern
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE if op.upper() == "ILIKE" else 0
    return re.fullmatch(regex, name, flags | re.DOTALL) is not None


@router.post("/experiments/search")
def search_experiments(project: Acting, body: ExperimentSearchIn) -> Any:
    view = _view(body.view_type)
    if not 1 <= body.max_results <= MAX_RESULTS_SEARCH_RUNS:
        raise _bad(
            f"Invalid value {body.max_results} for parameter 'max_results' supplied. It must "
            f"be at most {MAX_RESULTS_SEARCH_RUNS} and at least 1"
        )
    match = None
    if body.filter and body.filter.strip():
        match = _NAME_FILTER.match(body.filter)
        if match is None:
            raise _bad(
                f"Unsupported experiment filter {body.filter!r}: shipyard filters experiments "
                "by name only (name = 'x', name LIKE 'x%')"
            )
    query = {"filter": body.filter, "view": view}
    offset = decode_page_token(body.page_token, query)
    found = [] if view == "deleted" else project.runs.experiments()
    if match is not None:
        op, pattern = match.group(1).upper(), match.group(2)
        found = [e for e in found if _name_matches(op, pattern, e.name)]
    found.sort(key=lambda e: (-(e.last_run or 0), e.id))
    page = found[offset : offset + body.max_results]
    out: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if offset + body.max_results < len(found):
        out["next_page_token"] = encode_page_token(offset + body.max_results, query)
    return out


# -- runs -------------------------------------------------------------------------------------


@router.post("/runs/create")
def create_run(project: Acting, body: RunCreateIn) -> Any:
    if body.experiment_id == "0":
        name = DEFAULT_EXPERIMENT
    else:
        name = _experiment(project, body.experiment_id).name
    tags = {t.key: t.value for t in body.tags}
    run_name = body.run_name or tags.get("mlflow.runName")
    run = project.runs.create(name, name=run_name, tags=tags, start_time=body.start_time)
    return {"run": run_json(project.runs.records([run.id])[0])}


@router.get("/runs/get")
def get_run(project: Acting, run_id: str | None = None, run_uuid: str | None = None) -> Any:
    ref = RunRef(run_id=run_id, run_uuid=run_uuid).id()
    return {"run": run_json(project.runs.records([ref])[0])}


@router.post("/runs/update")
def update_run(project: Acting, body: RunUpdateIn) -> Any:
    status = None if body.status is None else str(body.status)
    status = _STATUS_NUMBERS.get(status, status) if status else None
    run = _attach(project, body.id())
    run.update(status=status, end_time=body.end_time, name=body.run_name)
    return {"run_info": run_info_json(project.runs.records([run.id])[0])}


@router.post("/runs/delete")
def delete_run(project: Acting, body: RunRef) -> Any:
    project.runs.delete(_full_id(project, body.id()))
    return {}


@router.post("/runs/restore")
def restore_run(project: Acting, body: RunRef) -> Any:
    project.runs.restore(_full_id(project, body.id()))
    return {}


def _full_id(project: Project, run_id: str) -> str:
    # MLflow addresses runs by full id only; shipyard's services also take prefixes.
    if len(run_id) != 32:
        raise NotFoundError(f"Run with id={run_id} not found")
    return run_id


@router.post("/runs/search")
def search_runs(project: Acting, body: RunSearchIn) -> Any:
    lifecycle = _view(body.run_view_type)
    if not 1 <= body.max_results <= MAX_RESULTS_SEARCH_RUNS:
        raise _bad(
            f"Invalid value {body.max_results} for parameter 'max_results' supplied. It must "
            f"be at most {MAX_RESULTS_SEARCH_RUNS} and at least 1"
        )
    exp_ids: list[int] = []
    for e in body.experiment_ids:
        exp_ids.append(_experiment(project, e).id if e == "0" else _int_id(e))
    query = {
        "experiments": sorted(exp_ids),
        "filter": body.filter or "",
        "order_by": body.order_by,
        "view": lifecycle,
    }
    offset = decode_page_token(body.page_token, query)
    # One more than the page tells whether there is a next page without counting.
    records = project.runs.search(
        experiment_ids=exp_ids,
        filter=body.filter,
        order_by=body.order_by,
        lifecycle=lifecycle,
        offset=offset,
        limit=body.max_results + 1,
    )
    out: dict[str, Any] = {"runs": [run_json(r) for r in records[: body.max_results]]}
    if len(records) > body.max_results:
        out["next_page_token"] = encode_page_token(offset + body.max_results, query)
    return out


def _int_id(experiment_id: str) -> int:
    if not experiment_id.isdigit():
        raise _bad(f"Invalid experiment ID: '{experiment_id}'; experiment ids are numbers")
    return int(experiment_id)


# -- logging ----------------------------------------------------------------------------------


@router.post("/runs/log-metric")
def log_metric(project: Acting, body: MetricIn) -> Any:
    ts = now_ms() if body.timestamp is None else body.timestamp
    _attach(project, body.id()).log_batch(metrics=[(body.key, body.value, ts, body.step)])
    return {}


@router.post("/runs/log-parameter")
def log_param(project: Acting, body: ParamIn) -> Any:
    with _param_changes_are_invalid():
        _attach(project, body.id()).log_batch(params={body.key: body.value})
    return {}


@contextmanager
def _param_changes_are_invalid() -> Iterator[None]:
    # MLflow answers a changed parameter with INVALID_PARAMETER_VALUE, not a conflict.
    try:
        yield
    except ConflictError as exc:
        raise _bad(exc.message) from None


@router.post("/runs/set-tag")
def set_tag(project: Acting, body: TagIn) -> Any:
    run = _attach(project, body.id())
    if body.key == "mlflow.runName":
        # MLflow keeps the run name and this tag in step.
        run.update(name=body.value)
    run.log_batch(tags={body.key: body.value})
    return {}


@router.post("/runs/delete-tag")
def delete_tag(project: Acting, body: TagDeleteIn) -> Any:
    _attach(project, body.id()).delete_tag(body.key)
    return {}


def _limit(entity: str, limit: int, length: int) -> None:
    if length > limit:
        raise _bad(
            f"A batch logging request can contain at most {limit} {entity}. "
            f"Got {length} {entity}. Please split up {entity} across multiple"
            " requests and try again."
        )


def _parse_batch(raw: bytes) -> tuple[str, list[tuple[str, Any, int, int]], Any, Any]:
    if len(raw) > MAX_BATCH_LOG_REQUEST_SIZE:
        raise _bad(
            f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} "
            f"bytes, got a request of size {len(raw)}."
        )
    try:
        body = _loads(raw or b"{}")
        if not isinstance(body, dict):
            raise TypeError
        run_id = body.get("run_id") or body.get("run_uuid")
        metrics = body.get("metrics") or []
        params = body.get("params") or []
        tags = body.get("tags") or []
        _limit("metrics", MAX_METRICS_PER_BATCH, len(metrics))
        _limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(params))
        _limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tags))
        _limit(
            "metrics, params, and tags",
            MAX_ENTITIES_PER_BATCH,
            len(metrics) + len(params) + len(tags),
        )
        now = now_ms()
        points = [
            (m["key"], m["value"], int(m.get("timestamp") or now), int(m.get("step") or 0))
            for m in metrics
        ]
        param_map = {p["key"]: p.get("value", "") for p in params}
        tag_map = {t["key"]: t.get("value", "") for t in tags}
    except MlflowError:
        raise
    except (TypeError, KeyError, ValueError, AttributeError):  # JSONDecodeError included
        raise _bad(
            "Invalid log-batch request: expected {run_id, metrics: [{key, value, timestamp, "
            "step}], params: [{key, value}], tags: [{key, value}]}"
        ) from None
    if not run_id:
        raise _bad("Missing value for required parameter 'run_id'.")
    return str(run_id), points, param_map, tag_map


def _loads(raw: bytes) -> Any:
    """A request body as JSON. The ``mlflow`` client writes NaN and infinities as the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; other clients (Python's ``json``, as
    log-metric accepts) write them as bare ``NaN`` and ``Infinity``, which strict JSON and
    orjson refuse, so such a body is read again by ``json``."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


@router.post("/runs/log-batch")
async def log_batch(project: Acting, request: Request) -> Any:
    run_id, points, params, tags = _parse_batch(await request.body())

    def write() -> None:
        with _param_changes_are_invalid():
            _attach(project, run_id).log_batch(metrics=points, params=params, tags=tags)

    await run_in_threadpool(write)
    return {}


@router.post("/runs/log-inputs")
def log_inputs(project: Acting, body: LogInputsIn) -> Any:
    run = _attach(project, body.id())
    for item in body.datasets:
        tags = {t.key: t.value for t in item.tags}
        context = tags.get("mlflow.data.context", "")
        if item.dataset.source_type != "shipyard" and not _is_shipyard_dataset(
            project, item.dataset.name
        ):
            run.log_external_input(
                item.dataset.name,
                item.dataset.digest,
                {
                    "tags": [t.model_dump() for t in item.tags],
                    "dataset": item.dataset.model_dump(by_alias=True, exclude_none=True),
                },
                context,
            )
        else:
            run.log_input(item.dataset.name, context=context or "train")
    return {}


def _is_shipyard_dataset(project: Project, name: str) -> bool:
    try:
        project.datasets.get(name)
    except (NotFoundError, ValueError):
        return False
    return True


# -- metric history ---------------------------------------------------------------------------


@router.get("/metrics/get-history")
def get_metric_history(
    project: Acting,
    metric_key: str,
    run_id: str | None = None,
    run_uuid: str | None = None,
    max_results: Annotated[int | None, Query()] = None,
    page_token: str | None = None,
) -> Any:
    ref = _full_id(project, RunRef(run_id=run_id, run_uuid=run_uuid).id())
    if max_results is not None and not 1 <= max_results <= MAX_RESULTS_HISTORY:
        raise _bad(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
            f"at most {MAX_RESULTS_HISTORY} and at least 1"
        )
    query = {"run": ref, "key": metric_key}
    offset = decode_page_token(page_token, query)
    limit = None if max_results is None else max_results + 1
    points = project.runs.metric_history(ref, metric_key, offset=offset, limit=limit)
    out: dict[str, Any] = {
        "metrics": [
            {"key": metric_key, "value": p["value"], "timestamp": p["timestamp"], "step": p["step"]}
            for p in points[:max_results]
        ]
    }
    if max_results is not None and len(points) > max_results:
        out["next_page_token"] = encode_page_token(offset + max_results, query)
    return out
