"""The MLflow tracking protocol, mapped onto shipyard's services: the routes the ``mlflow``
client calls under ``/api/2.0/mlflow`` (also ``/ajax-api/2.0/mlflow``) and the artifact proxy
under ``/api/2.0/mlflow-artifacts``."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    """The routers to mount on the server (left out of the ``/api/v1`` OpenAPI document)."""
    return []
