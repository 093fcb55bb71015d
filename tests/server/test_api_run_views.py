"""``/api/v1/runs/table`` (and its CSV and columns) and ``/api/v1/runs/comparison``: a viewer
reads the runs pages' data over HTTP; metrics logged through the MLflow protocol's log-batch
carry their range; no token, no data."""

from __future__ import annotations

import csv
import io

import pytest

from shipyard.project import Project
from shipyard.server.auth import FailureThrottle
from tests.server.conftest import Team, TestClient

API = "/api/v1"
MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def logged(api: TestClient, team: Team) -> list[str]:
    """Three runs of experiment "credit" logged by carol through the MLflow protocol
    (runs/create, log-batch), each with a param and a loss series whose minimum is mid-way."""
    h = team.headers("contributor")
    exp = api.post(f"{MLFLOW}/experiments/create", json={"name": "credit"}, headers=h)
    assert exp.status_code == 200, exp.text
    ids = []
    for n, model in enumerate(["gbm", "lr", "gbm"]):
        made = api.post(
            f"{MLFLOW}/runs/create",
            json={"experiment_id": exp.json()["experiment_id"], "run_name": f"r{n}"},
            headers=h,
        )
        run_id = made.json()["run"]["info"]["run_id"]
        losses = [0.9 - n * 0.1, 0.1 + n * 0.1, 0.5]
        metrics = [
            {"key": "loss", "value": v, "timestamp": 1_700_000_000_000 + s, "step": s}
            for s, v in enumerate(losses)
        ]
        batch = api.post(
            f"{MLFLOW}/runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": metrics,
                "params": [{"key": "model", "value": model}],
            },
            headers=h,
        )
        assert batch.status_code == 200, batch.text
        ids.append(run_id)
    return ids


def test_a_viewer_reads_a_table_page_sorted_on_a_metrics_minimum(
    api: TestClient, team: Team, logged: list[str]
) -> None:
    """Points sent with MLflow's log-batch give each run its last, min and max; the page is in
    the order of the minimum and counts every match."""
    r = api.get(
        f"{API}/runs/table",
        params={
            "experiment": "credit",
            "order_by": "metrics.loss ASC",
            "stat": "min",
            "column": ["metrics.loss", "params.model"],
            "limit": 2,
        },
        headers=team.headers("viewer"),
    )
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 3 and [row["name"] for row in page["rows"]] == ["r0", "r1"]
    assert page["rows"][0]["metrics"]["loss"] == {"last": 0.5, "min": 0.1, "max": 0.9, "step": 2}
    assert page["rows"][0]["params"] == {"model": "gbm"}


def test_csv_and_columns_routes(api: TestClient, team: Team, logged: list[str]) -> None:
    """The CSV download holds every filtered run with a metric's three values; the columns
    route lists the keys a chooser offers; a bad filter is a 422 before any CSV is sent."""
    h = team.headers("viewer")
    r = api.get(
        f"{API}/runs/table.csv",
        params={"filter": "params.model = 'gbm'", "order_by": "attributes.run_name DESC"},
        headers=h,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["name"] for x in rows] == ["r2", "r0"]
    assert float(rows[0]["min(metrics.loss)"]) == pytest.approx(0.3)
    cols = api.get(f"{API}/runs/table/columns", params={"experiment": "credit"}, headers=h)
    assert cols.json() == {"params": ["model"], "metrics": ["loss"], "tags": cols.json()["tags"]}
    bad = api.get(f"{API}/runs/table.csv", params={"filter": "metrics.loss >"}, headers=h)
    assert bad.status_code == 422 and "position" in bad.text
    missing = api.get(f"{API}/runs/table", params={"experiment": "nope"}, headers=h)
    assert missing.status_code == 404


def test_a_viewer_reads_a_comparison(api: TestClient, team: Team, logged: list[str]) -> None:
    """The comparison carries param differences, a series per run, a band per group and the
    parallel-coordinates axes; one run is a 422."""
    h = team.headers("viewer")
    r = api.get(
        f"{API}/runs/comparison",
        params={"run": logged, "metric": "loss", "group_by": "model"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [p["key"] for p in doc["params"] if p["differs"]] == ["model"]
    assert len(doc["series"]) == 3 and doc["series"][0]["steps"] == [0, 1, 2]
    assert [(g["group"], g["count"]) for g in doc["groups"]] == [
        ("gbm", [2, 2, 2]),
        ("lr", [1, 1, 1]),
    ]
    assert [a["name"] for a in doc["parallel"]] == ["params.model", "metrics.loss"]
    one = api.get(f"{API}/runs/comparison", params={"run": logged[:1]}, headers=h)
    assert one.status_code == 422


def test_the_run_views_need_a_token(api: TestClient, project: Project, logged: list[str]) -> None:
    """No token: 401 on each route, nothing revealed."""
    for path, params in (
        ("/runs/table", {}),
        ("/runs/table.csv", {}),
        ("/runs/table/columns", {}),
        ("/runs/comparison", {"run": logged[:2]}),
    ):
        api.app.state.throttle = FailureThrottle()  # type: ignore[attr-defined]
        r = api.get(API + path, params=params)
        assert r.status_code == 401, (path, r.text)
        assert "loss" not in r.text
