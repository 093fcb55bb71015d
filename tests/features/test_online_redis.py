"""The online store on a real Redis server, chosen by configuration alone (``redis_url``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard
from tests.features.test_features import DEFINITIONS, NOW, payments_frame

pytestmark = pytest.mark.redis


def test_with_redis_configured_materialize_and_lookups_use_redis(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SHIPYARD_REDIS_URL set, materialize writes to Redis and lookups read from it:
    the same values and statuses as on SQLite; a full run again rewrites the same rows."""
    monkeypatch.setenv("SHIPYARD_REDIS_URL", redis_url)
    with shipyard.init_project(tmp_path / "proj") as project:
        project.datasets.add("payments", payments_frame())
        path = tmp_path / "features.yaml"
        path.write_text(DEFINITIONS, encoding="utf-8")
        project.features.apply(path)
        [done] = project.features.materialize()
        assert (done.store, done.rows) == ("redis", 3)
        found = project.features.online(
            [{"applicant_id": 1}, {"applicant_id": 2}, {"applicant_id": 3}, {"applicant_id": 9}],
            ["payments:late_payments", "payments:amount"],
        )
        statuses = [r.status["late_payments"] for r in found.rows]
        assert statuses == ["present", "outside_ttl", "missing", "missing"]
        assert found.rows[0].values == {"late_payments": 1, "amount": 30.0}
        assert found.rows[0].event_time["amount"] == NOW
        [again] = project.features.materialize("payments", incremental=True)
        assert again.rows == 0
        store = project.feature_runtime.store
        store.clear("payments")  # leave the shared server clean
        [row] = project.features.online([{"applicant_id": 1}], ["payments:amount"]).rows
        assert row.status == {"amount": "missing"}
