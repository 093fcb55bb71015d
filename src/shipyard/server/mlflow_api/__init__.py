"""The MLflow tracking protocol, mapped onto shipyard's services: the routes the ``mlflow``
client calls under ``/api/2.0/mlflow`` (also ``/ajax-api/2.0/mlflow``) and the artifact proxy
under ``/api/2.0/mlflow-artifacts``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.datastructures import DefaultPlaceholder

__all__ = ["MlflowRouter", "routers"]


class MlflowRouter(APIRouter):
    """An ``APIRouter`` whose routes take no response model from their ``-> Any`` annotation:
    the dict a handler returns goes to the server's JSON class as it is. (A response model of
    ``Any`` would pass it through pydantic first, which turns NaN and infinities into null;
    the JSON class writes them as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, as MLflow
    does.)"""

    def add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        response_model: Any = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(response_model, DefaultPlaceholder):
            response_model = None
        super().add_api_route(path, endpoint, response_model=response_model, **kwargs)


def routers() -> list[APIRouter]:
    """The routers to mount on the server, left out of the ``/api/v1`` OpenAPI document: the
    tracking, registry and logged-model routes under both MLflow prefixes, and the artifact
    proxy."""
    from shipyard.server.mlflow_api import artifacts, logged_models, registry, tracking

    out = []
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):
        r = APIRouter(prefix=prefix, include_in_schema=False)
        for module in (tracking, registry, logged_models):
            r.include_router(module.router)
        out.append(r)
    art = APIRouter(prefix="/api/2.0/mlflow-artifacts", include_in_schema=False)
    art.include_router(artifacts.router)
    out.append(art)
    return out
