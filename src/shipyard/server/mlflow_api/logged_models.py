"""MLflow 3 logged models (``/logged-models``) and run outputs (``/runs/outputs``): what
``mlflow.<flavor>.log_model`` calls before it uploads the model directory to the logged
model's ``artifact_uri`` (through the artifact proxy) and registers it. Each route calls one
method of :class:`shipyard.tracking.logged_models.LoggedModels`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field

from shipyard.project import Project
from shipyard.server.auth import acting_project
from shipyard.server.mlflow_api import MlflowRouter
from shipyard.server.mlflow_api.errors import MlflowError
from shipyard.tracking.logged_models import LoggedModel

__all__ = ["router"]

router = MlflowRouter()
Acting = Annotated[Project, Depends(acting_project)]

_STATUS_IN = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "UPLOAD_FAILED",
    "1": "PENDING",
    "2": "READY",
    "3": "UPLOAD_FAILED",
}


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(_In):
    key: str
    value: str = ""


class CreateIn(_In):
    experiment_id: str = "0"
    name: str = ""
    model_type: str = ""
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class FinalizeIn(_In):
    status: str | int


class TagsIn(_In):
    tags: list[KeyValue] = Field(default_factory=list)


class ParamsIn(_In):
    params: list[KeyValue] = Field(default_factory=list)


class SearchIn(_In):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    max_results: int = 100
    page_token: str | None = None


class ModelOutput(_In):
    model_id: str
    step: int = 0


class OutputsIn(_In):
    run_id: str
    models: list[ModelOutput] = Field(default_factory=list)


def _experiment_id(text: str) -> int | None:
    """An MLflow experiment id as shipyard's (``"0"``: the run's, else ``default``)."""
    if text in ("", "0"):
        return None
    if not text.isdigit():
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"Invalid experiment ID: '{text}'; ids are numbers"
        )
    return int(text)


def _kv(items: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items.items()]


def _json(m: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": m.id,
        "experiment_id": str(m.experiment_id),
        "name": m.name,
        "creation_timestamp_ms": m.created_at,
        "last_updated_timestamp_ms": m.updated_at,
        "artifact_uri": f"mlflow-artifacts:/{m.artifact_path}",
        "status": f"LOGGED_MODEL_{m.status}",
        "model_type": m.model_type,
        "status_message": m.status_message,
        "tags": _kv(m.tags),
    }
    if m.run_id:
        info["source_run_id"] = m.run_id
    return {"info": info, "data": {"params": _kv(m.params), "metrics": []}}


@router.post("/logged-models")
def create_logged_model(project: Acting, body: CreateIn) -> Any:
    m = project.logged_models.create(
        _experiment_id(body.experiment_id),
        name=body.name,
        run_id=body.source_run_id or None,
        model_type=body.model_type,
        params={p.key: p.value for p in body.params},
        tags={t.key: t.value for t in body.tags},
    )
    return {"model": _json(m)}


@router.post("/logged-models/search")
def search_logged_models(project: Acting, body: SearchIn) -> Any:
    ids = [i for i in (_experiment_id(e) for e in body.experiment_ids) if i is not None]
    page = project.logged_models.search(
        ids, body.filter, max_results=body.max_results, page_token=body.page_token
    )
    out: dict[str, Any] = {"models": [_json(m) for m in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


@router.get("/logged-models/{model_id}")
def get_logged_model(project: Acting, model_id: str) -> Any:
    return {"model": _json(project.logged_models.get(model_id))}


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(project: Acting, model_id: str, body: FinalizeIn) -> Any:
    status = _STATUS_IN.get(str(body.status))
    if status is None:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"invalid status {body.status!r}: use LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED",
        )
    return {"model": _json(project.logged_models.finalize(model_id, status))}


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(project: Acting, model_id: str, body: TagsIn) -> Any:
    project.logged_models.set_tags(model_id, {t.key: t.value for t in body.tags})
    return {}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(project: Acting, model_id: str, tag_key: str) -> Any:
    project.logged_models.delete_tag(model_id, tag_key)
    return {}


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(project: Acting, model_id: str, body: ParamsIn) -> Any:
    project.logged_models.log_params(model_id, {p.key: p.value for p in body.params})
    return {}


@router.post("/runs/outputs")
def log_outputs(project: Acting, body: OutputsIn) -> Any:
    project.logged_models.check_outputs(body.run_id, [m.model_id for m in body.models])
    return {}
