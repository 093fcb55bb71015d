"""``POST /api/v1/features/online`` on the team server: any user's token reads online values;
no token is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.project import Project
from tests.features.test_features import DEFINITIONS, payments_frame
from tests.server.conftest import Team, TestClient


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the catalog's PostgreSQL
def test_a_viewer_reads_online_features_through_the_api(  # runs are in tests/features
    project: Project, team: Team, api: TestClient, tmp_path: Path
) -> None:
    """A viewer's request gets the values, statuses and event times a local lookup gives,
    and the read is counted for the viewer; an unknown view is a 404."""
    project.datasets.add("payments", payments_frame())
    path = tmp_path / "features.yaml"
    path.write_text(DEFINITIONS, encoding="utf-8")
    project.features.apply(path)
    project.features.materialize()
    body = {"entities": [{"applicant_id": 1}, {"applicant_id": 4}], "features": ["payments:*"]}
    answer = api.post("/api/v1/features/online", json=body, headers=team.headers("viewer"))
    assert answer.status_code == 200, answer.text
    local = project.features.online(body["entities"], body["features"])
    assert answer.json() == local.to_dict()
    assert answer.json()["rows"][1]["status"] == {"late_payments": "missing", "amount": "missing"}
    assert api.post("/api/v1/features/online", json=body).status_code == 401
    missing = {"entities": [{"applicant_id": 1}], "features": ["nope:x"]}
    assert (
        api.post("/api/v1/features/online", json=missing, headers=team.headers()).status_code == 404
    )
    counts = {c.client: c.requests for c in project.features.online_reads("payments")}
    assert counts == {"vic": 1, "alice": 1}
