"""The MLflow model registry protocol: registered models, model versions, their tags and
aliases, as ``mlflow.MlflowClient`` calls them (mounted under ``/api/2.0/mlflow`` and
``/ajax-api/2.0/mlflow``).

Every route calls one service, acting as the bearer token's user: the MLflow view of the
registry (:class:`shipyard.registry.mlflow_registry.MlflowRegistry`), or :class:`Models` for
aliases, so a protected alias (``production``, any alias a deployment serves) is refused with
PERMISSION_DENIED and the ``shipyard models promote`` / ``rollback`` command that moves it.
GET routes read query parameters, the others a JSON body, as the client sends them.
docs/mlflow.md ("Model registry") lists where the behaviour differs from MLflow's server.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from shipyard.project import Project
from shipyard.server.auth import acting_project
from shipyard.server.mlflow_api import MlflowRouter
from shipyard.server.mlflow_api._registry_wire import (
    download_uri,
    model_json,
    parse_version,
    version_json,
)
from shipyard.server.mlflow_api.errors import MlflowError

__all__ = ["router"]

router = MlflowRouter()
Acting = Annotated[Project, Depends(acting_project)]
OrderBy = Annotated[list[str] | None, Query()]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Tag(_In):
    key: str
    value: str = ""


class ModelIn(_In):
    name: str
    tags: list[Tag] = Field(default_factory=list)
    description: str = ""


class ModelDescriptionIn(_In):
    name: str
    description: str = ""


class RenameIn(_In):
    name: str
    new_name: str = ""


class NameIn(_In):
    name: str


class LatestIn(_In):
    name: str
    stages: list[str] = Field(default_factory=list)


class ModelTagIn(_In):
    name: str
    key: str
    value: str = ""


class ModelTagKeyIn(_In):
    name: str
    key: str


class AliasIn(_In):
    name: str
    alias: str
    version: str


class AliasKeyIn(_In):
    name: str
    alias: str


class VersionCreateIn(_In):
    name: str
    source: str
    run_id: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    run_link: str | None = None
    description: str = ""
    model_id: str | None = None


class VersionIn(_In):
    name: str
    version: str


class VersionDescriptionIn(VersionIn):
    description: str = ""


class StageIn(VersionIn):
    stage: str = ""
    archive_existing_versions: bool = False


class VersionTagIn(VersionIn):
    key: str
    value: str = ""


class VersionTagKeyIn(VersionIn):
    key: str


# -- registered models ----------------------------------------------------------------------------


@router.post("/registered-models/create")
def create_registered_model(project: Acting, body: ModelIn) -> Any:
    m = project.mlflow_registry.create_model(
        body.name, description=body.description, tags={t.key: t.value for t in body.tags}
    )
    return {"registered_model": model_json(m)}


@router.get("/registered-models/get")
def get_registered_model(project: Acting, name: str) -> Any:
    return {"registered_model": model_json(project.mlflow_registry.get_model(name))}


@router.get("/registered-models/search")
def search_registered_models(
    project: Acting,
    filter: str | None = None,
    max_results: int = 100,
    order_by: OrderBy = None,
    page_token: str | None = None,
) -> Any:
    page = project.mlflow_registry.search_models(
        filter, order_by=order_by, max_results=max_results, page_token=page_token
    )
    out: dict[str, Any] = {"registered_models": [model_json(m) for m in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


@router.patch("/registered-models/update")
def update_registered_model(project: Acting, body: ModelDescriptionIn) -> Any:
    m = project.mlflow_registry.describe_model(body.name, body.description)
    return {"registered_model": model_json(m)}


@router.post("/registered-models/rename")
def rename_registered_model(project: Acting, body: RenameIn) -> Any:
    raise MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"shipyard does not rename registered models: the name '{body.name}' is part of its "
        "lineage, approvals, policies, deployments and audit history; register the versions "
        f"under '{body.new_name or 'the new name'}' instead",
    )


@router.delete("/registered-models/delete")
def delete_registered_model(project: Acting, body: NameIn) -> Any:
    project.mlflow_registry.delete_model(body.name)
    return {}


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(project: Acting, body: LatestIn) -> Any:
    return _latest(project, body.name, body.stages)


@router.get("/registered-models/get-latest-versions")
def get_latest_versions_get(
    project: Acting, name: str, stages: Annotated[list[str] | None, Query()] = None
) -> Any:
    return _latest(project, name, stages or [])


def _latest(project: Project, name: str, stages: list[str]) -> Any:
    versions = project.mlflow_registry.latest_versions(name, stages)
    return {"model_versions": [version_json(v) for v in versions]}


@router.post("/registered-models/set-tag")
def set_registered_model_tag(project: Acting, body: ModelTagIn) -> Any:
    project.mlflow_registry.set_tag(body.name, body.key, body.value)
    return {}


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(project: Acting, body: ModelTagKeyIn) -> Any:
    project.mlflow_registry.delete_tag(body.name, body.key)
    return {}


# -- aliases --------------------------------------------------------------------------------------


@router.post("/registered-models/alias")
def set_registered_model_alias(project: Acting, body: AliasIn) -> Any:
    project.models.set_alias(f"{body.name}@{parse_version(body.version)}", body.alias)
    return {}


@router.delete("/registered-models/alias")
def delete_registered_model_alias(project: Acting, body: AliasKeyIn) -> Any:
    project.models.remove_alias(body.name, body.alias)
    return {}


@router.get("/registered-models/alias")
def get_model_version_by_alias(project: Acting, name: str, alias: str) -> Any:
    return {"model_version": version_json(project.mlflow_registry.get_by_alias(name, alias))}


# -- model versions -------------------------------------------------------------------------------


@router.post("/model-versions/create")
def create_model_version(project: Acting, body: VersionCreateIn) -> Any:
    v = project.mlflow_registry.create_version(
        body.name,
        body.source,
        run_id=body.run_id or None,
        logged_model_id=body.model_id or None,
        tags={t.key: t.value for t in body.tags},
        description=body.description,
    )
    return {"model_version": version_json(v)}


@router.get("/model-versions/get")
def get_model_version(project: Acting, name: str, version: str) -> Any:
    v = project.mlflow_registry.get_version(name, parse_version(version))
    return {"model_version": version_json(v)}


@router.get("/model-versions/search")
def search_model_versions(
    project: Acting,
    filter: str | None = None,
    max_results: int = 10_000,
    order_by: OrderBy = None,
    page_token: str | None = None,
) -> Any:
    page = project.mlflow_registry.search_versions(
        filter, order_by=order_by, max_results=max_results, page_token=page_token
    )
    out: dict[str, Any] = {"model_versions": [version_json(v) for v in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


@router.patch("/model-versions/update")
def update_model_version(project: Acting, body: VersionDescriptionIn) -> Any:
    v = project.mlflow_registry.describe_version(
        body.name, parse_version(body.version), body.description
    )
    return {"model_version": version_json(v)}


@router.post("/model-versions/transition-stage")
def transition_model_version_stage(project: Acting, body: StageIn) -> Any:
    raise MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"shipyard has no model stages (MLflow 3 deprecates them): instead of moving "
        f"'{body.name}' version {body.version} to {body.stage or 'a stage'!r}, set an alias "
        "(MlflowClient.set_registered_model_alias), or for production run "
        f"`shipyard models promote {body.name}@{body.version} --to production`, which checks "
        "the policy and approvals",
    )


@router.delete("/model-versions/delete")
def delete_model_version(project: Acting, body: VersionIn) -> Any:
    project.mlflow_registry.delete_version(body.name, parse_version(body.version))
    return {}


@router.get("/model-versions/get-download-uri")
def get_model_version_download_uri(project: Acting, name: str, version: str) -> Any:
    path = project.mlflow_registry.download_path(name, parse_version(version))
    return {"artifact_uri": download_uri(path)}


@router.post("/model-versions/set-tag")
def set_model_version_tag(project: Acting, body: VersionTagIn) -> Any:
    project.mlflow_registry.set_tag(body.name, body.key, body.value, parse_version(body.version))
    return {}


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(project: Acting, body: VersionTagKeyIn) -> Any:
    project.mlflow_registry.delete_tag(body.name, body.key, parse_version(body.version))
    return {}
