"""The REST API under ``/api/v1``: thin routes (parse, call one service method, return its
read model), one module per area."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.server.api import (
    audit,
    comments,
    contracts,
    datasets,
    deployments,
    governance,
    models,
    runs,
    users,
    webhooks,
)

__all__ = ["router"]

router = APIRouter()
for _module in (
    datasets,
    contracts,
    runs,
    models,
    governance,
    deployments,
    audit,
    users,
    comments,
    webhooks,
):
    router.include_router(_module.router)
