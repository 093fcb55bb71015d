"""Where an MLflow model version's files are: a ``source`` URI as the ``mlflow`` client sends
it, resolved to a folder of the MLflow artifact tree (the paths the artifact proxy serves).

- ``models:/m-<id>`` (MLflow 3 logged models): ``<experiment>/models/m-<id>/artifacts``;
- ``runs:/<run id>/<path>``: ``<experiment>/<run id>/artifacts/<path>``;
- ``mlflow-artifacts:/<path>``: that path;
- ``models:/<name>/<version>``: the folder of that registered version (MLflow's copy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.stores.db.tables import (
    logged_models,
    model_version_sources,
    registered_models,
    runs,
)

__all__ = ["ModelFolder", "logged_model_path", "resolve_source"]

_RUN_PATH = re.compile(r"^(?P<exp>[^/]+)/(?P<run>[0-9a-f]{32})/artifacts(?:/(?P<rel>.*))?$")
_MODEL_PATH = re.compile(r"^(?P<exp>[^/]+)/models/(?P<model>m-[0-9a-f]{32})/artifacts$")
_LOGGED = re.compile(r"^models:/(?P<model>m-[0-9a-f]{32})/?$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})/(?P<rel>.+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[0-9]+)/?$")


@dataclass(frozen=True)
class ModelFolder:
    """A model directory in the MLflow artifact tree, with the run and logged model it
    belongs to (when known)."""

    path: str
    run_id: str | None = None
    logged_model_id: str | None = None


def logged_model_path(experiment_id: int, model_id: str) -> str:
    """The folder of a logged model's files in the MLflow artifact tree."""
    return f"{experiment_id}/models/{model_id}/artifacts"


def resolve_source(
    conn: Connection, source: str, run_id: str | None, logged_model_id: str | None
) -> ModelFolder:
    """The folder ``source`` names (``logged_model_id``, when the client sends it, wins).

    Raises:
        InvalidInputError: a source of another form.
        NotFoundError: the logged model, run or version it names does not exist.
    """
    text = (source or "").strip()
    m = _LOGGED.match(text)
    model_id = logged_model_id or (m.group("model") if m else None)
    if model_id is not None:
        row = conn.execute(select(logged_models).where(logged_models.c.id == model_id)).first()
        if row is None:
            raise NotFoundError(f"no logged model {model_id!r} (from source {source!r})")
        return ModelFolder(logged_model_path(int(row.experiment_id), row.id), row.run_id, row.id)
    if m := _RUNS.match(text):
        run = conn.execute(select(runs.c.experiment_id).where(runs.c.id == m["run"])).first()
        if run is None:
            raise NotFoundError(f"no run {m['run']!r} (from source {source!r})")
        rel = m["rel"].strip("/")
        return ModelFolder(f"{run.experiment_id}/{m['run']}/artifacts/{rel}", m["run"])
    if text.startswith("mlflow-artifacts:"):
        path = re.sub(r"^mlflow-artifacts:(//[^/]*)?/*", "", text).strip("/")
        if ".." in path.split("/"):
            raise InvalidInputError(f"invalid source {source!r}: '..' is not allowed")
        if rm := _RUN_PATH.match(path):
            return ModelFolder(path, rm["run"])
        if mm := _MODEL_PATH.match(path):
            return resolve_source(conn, f"models:/{mm['model']}", run_id, None)
        return ModelFolder(path, run_id)
    if m := _VERSION.match(text):
        row = conn.execute(
            select(model_version_sources)
            .join(registered_models, registered_models.c.id == model_version_sources.c.model_id)
            .where(registered_models.c.name == m["name"])
            .where(model_version_sources.c.version == int(m["version"]))
        ).first()
        if row is None:
            raise NotFoundError(
                f"source {source!r}: no version {m['version']} of '{m['name']}' registered "
                "from an MLflow model"
            )
        return ModelFolder(row.artifact_path, run_id, row.logged_model_id)
    raise InvalidInputError(
        f"invalid model version source {source!r}: shipyard registers models:/<model id>, "
        "runs:/<run id>/<path> or mlflow-artifacts:/<path> (files uploaded to this server)"
    )
