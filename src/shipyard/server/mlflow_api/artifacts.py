"""MLflow protocol routes: artifacts (filled in by the team-server work; see docs/mlflow.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
