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
    drift,
    features,
    governance,
    models,
    monitors,
    run_views,
    runs,
    users,
    webhooks,
)

__all__ = ["router"]

router = APIRouter()
# run_views before runs: its /runs/table would otherwise match /runs/{run_id}.
for _module in (
    datasets,
    contracts,
    run_views,
    runs,
    models,
    governance,
    deployments,
    drift,
    features,
    monitors,
    audit,
    users,
    comments,
    webhooks,
):
    router.include_router(_module.router)
