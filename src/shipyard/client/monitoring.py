"""Drift through the team server: the same verbs and read models as the local
:class:`~shipyard.monitoring.drift_service.Drift` (current data named by reference only: a
frame stays on the client)."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard._internal.decode import decode
from shipyard.client.connection import ServerConnection, segment
from shipyard.monitoring.drift import DriftReport
from shipyard.monitoring.drift_service import save_html
from shipyard.monitoring.reference import ReferenceProfile

__all__ = ["RemoteDrift"]


class RemoteDrift:
    """Drift on the server: ``reference``, ``compare``, and ``save_html`` (a local file)."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def reference(self, dataset_ref: str) -> ReferenceProfile:
        doc = self._conn.json("GET", f"/datasets/{segment(dataset_ref)}/reference")
        return ReferenceProfile.from_json(doc)

    def compare(
        self,
        subject: str,
        *,
        current: str | None = None,
        window_seconds: float | None = None,
        deployment: str | None = None,
        reference: str | None = None,
    ) -> DriftReport:
        params = {
            "subject": subject,
            "current": current,
            "window_seconds": window_seconds,
            "deployment": deployment,
            "reference": reference,
        }
        return decode(DriftReport, self._conn.json("GET", "/drift", params=params))

    def save_html(
        self, report: DriftReport, path: str | os.PathLike[str], *, force: bool = False
    ) -> Path:
        return save_html(report, path, force=force)
