"""``/api/v1`` routes for runs (filled in by the team-server work; see docs/server.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["runs"])
