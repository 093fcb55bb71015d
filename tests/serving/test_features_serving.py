"""Serving with features: a version trained on ``features historical`` output gets its feature
columns from the online store by entity id at /predict and v2 infer, the same values training
read; a missing or stale feature the model cannot take missing is refused naming the feature
and the entity, one it can take is null; every lookup is counted in /metrics. The store is
SQLite, and Redis when the project is configured for it.

One project (module scope) holds both versions: ``scorer@1`` (a plain logistic regression: it
cannot take a missing value) and ``scorer@2`` (an imputer first: it can)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from starlette.exceptions import StarletteDeprecationWarning

import shipyard
from shipyard.serving.app import ServeConfig, create_app
from tests.serving.test_app import samples

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow  # about 13 s together, mostly building the project

NOW = datetime.now(UTC).replace(microsecond=0)
MODEL = "scorer"
DEFINITIONS = """\
entities:
  - {name: applicant, join_keys: [applicant_id], owner: risk-team}
feature_views:
  - name: payments
    source: payments
    entity: applicant
    timestamp: paid_at
    ttl: 30d
    owner: risk-team
    features:
      - {name: late_payments, type: int, description: Payments over 30 days late.}
      - {name: amount, type: float, description: Amount paid.}
"""
# Applicants 1..40 paid recently; 41 only 40 days ago (stale under the 30-day TTL); 42 never.
KNOWN = range(1, 41)
STALE, UNKNOWN = 41, 42


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project: payments, the view, training data from ``historical``, both versions
    trained on it (1 in production), materialized."""
    root = tmp_path_factory.mktemp("fserve") / "proj"
    tmp = root.parent
    ids = [*KNOWN, STALE]
    with shipyard.init_project(root, actor="alice") as project:
        project.datasets.add(
            "payments",
            pl.DataFrame(
                {
                    "applicant_id": ids,
                    "paid_at": [NOW - timedelta(days=40 if i == STALE else 1) for i in ids],
                    "late_payments": [i % 4 for i in ids],
                    "amount": [float(i * 10 % 70) for i in ids],
                }
            ),
        )
        (tmp / "features.yaml").write_text(DEFINITIONS, encoding="utf-8")
        project.features.apply(tmp / "features.yaml")
        project.datasets.add(
            "applications",
            pl.DataFrame(
                {
                    "applicant_id": list(KNOWN),
                    "applied_at": [NOW] * len(KNOWN),
                    "income": [float(i % 9) for i in KNOWN],
                    "default": [int(i % 4 >= 2) for i in KNOWN],
                }
            ),
        )
        project.features.historical(
            "applications@1", "payments:late_payments,payments:amount", output="training"
        )
        frame = project.datasets.get("training@1").to_pandas()
        x = frame[["income", "late_payments", "amount"]]
        y = frame["default"]
        refs = []
        for steps in (
            [("model", LogisticRegression())],
            [("impute", SimpleImputer()), ("model", LogisticRegression())],
        ):
            with project.start_run(MODEL) as run:
                run.log_input("training@1", "train")
                model = Pipeline(steps).fit(x, y)
                refs.append(run.log_model(model, MODEL, input_example=x.head(5)).ref)
        project.policies.set("*", {})
        project.users.add("bob", "approver")
        bob = project.as_actor("bob")
        for ref in refs:
            bob.approvals.approve(ref, comment="reviewed")
        bob.promotions.promote(refs[0], to="production")
        bob.promotions.promote(refs[1], to="challenger")
        project.features.materialize()
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    config = ServeConfig(project=str(root), deployment=MODEL, drift_window_seconds=0)
    with TestClient(create_app(config), raise_server_exceptions=False) as c:
        yield c


def lookups(client: TestClient) -> dict[str, float]:
    return {
        s["status"]: v
        for s, v in samples(client, "shipyard_feature_lookups_total")
        if s["view"] == "payments"
    }


def test_predict_by_entity_id_answers_as_the_full_row(root: Path, client: TestClient) -> None:
    """The request carries the applicant id and the request-time income; the server fills
    late_payments and amount from the online store and answers as the model does on the
    full row; v2 infer does the same. Each lookup is counted; /docs and the v2 metadata
    ask for the id and income only."""
    ids = [3, 7, 22]
    records = [{"applicant_id": i, "income": float(i % 9)} for i in ids]
    response = client.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    with shipyard.open_project(root) as project:
        full = project.datasets.get("training@1").to_pandas().set_index("applicant_id")
        rows = full.loc[ids, ["income", "late_payments", "amount"]].reset_index(drop=True)
        expected = project.models.load(f"{MODEL}@production").predict(rows)
    assert response.json()["predictions"] == list(expected)
    v2 = client.post(
        f"/v2/models/{MODEL}/infer",
        json={
            "inputs": [
                {"name": "applicant_id", "shape": [3], "datatype": "INT64", "data": ids},
                {
                    "name": "income",
                    "shape": [3],
                    "datatype": "FP64",
                    "data": rows["income"].tolist(),
                },
            ]
        },
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == list(expected)
    assert lookups(client)["present"] >= 2 * 2 * len(ids)
    inputs = client.get(f"/v2/models/{MODEL}").json()["inputs"]
    assert [(i["name"], i["datatype"]) for i in inputs] == [
        ("income", "FP64"),
        ("applicant_id", "INT64"),
    ]
    record = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert sorted(record["required"]) == ["applicant_id", "income"]


def test_missing_and_stale_features_are_refused_by_a_model_that_cannot_take_them(
    client: TestClient,
) -> None:
    """An applicant never seen and one whose payments are outside the TTL: 422 naming the
    feature and the applicant; both counted by status. No applicant id: 422 naming it."""
    before = lookups(client)
    response = client.post(
        "/predict",
        json={
            "records": [
                {"applicant_id": UNKNOWN, "income": 1.0},
                {"applicant_id": STALE, "income": 1.0},
            ]
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert "payments@1:late_payments of applicant_id=42 is missing" in body["error"]
    errors = body["details"]["errors"]
    assert {(e["entity"]["applicant_id"], e["status"]) for e in errors} == {
        (UNKNOWN, "missing"),
        (STALE, "outside_ttl"),
    }
    after = lookups(client)
    assert after["missing"] - before.get("missing", 0) == 2
    assert after["outside_ttl"] - before.get("outside_ttl", 0) == 2
    response = client.post("/predict", json={"records": [{"income": 1.0}]})
    assert response.status_code == 422
    assert "applicant_id" in response.json()["error"]


@pytest.mark.redis
def test_with_redis_configured_the_server_reads_features_from_redis(
    root: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SHIPYARD_REDIS_URL set, the same project materializes to Redis and a server
    started on it reads from there: the same answer for an applicant id."""
    monkeypatch.setenv("SHIPYARD_REDIS_URL", redis_url)
    with shipyard.open_project(root) as project:
        [done] = project.features.materialize()
        assert done.store == "redis"
    config = ServeConfig(project=str(root), deployment=MODEL, drift_window_seconds=0)
    try:
        with TestClient(create_app(config), raise_server_exceptions=False) as client:
            response = client.post(
                "/predict", json={"records": [{"applicant_id": 22, "income": 4.0}]}
            )
            assert response.status_code == 200, response.text
            assert lookups(client) == {"present": 2}
    finally:
        with shipyard.open_project(root) as project:
            project.feature_runtime.store.clear("payments")  # leave the shared server clean
    with shipyard.open_project(root) as project:
        full = project.datasets.get("training@1").to_pandas().set_index("applicant_id")
        row = full.loc[[22], ["income", "late_payments", "amount"]].reset_index(drop=True)
        expected = project.models.load(f"{MODEL}@production").predict(row)
    assert response.json()["predictions"] == list(expected)


def test_a_model_that_takes_missing_values_gets_null_features(root: Path) -> None:
    """With all traffic on the version with an imputer, the unknown applicant gets an
    answer, with the features null (as the imputer fills them); the prediction log keeps the
    row as scored. Runs last: it moves the deployment."""
    with shipyard.open_project(root, actor="bob") as project:
        project.deployments.set(MODEL, {"challenger": 100})
    config = ServeConfig(project=str(root), deployment=MODEL, drift_window_seconds=0)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        record: dict[str, Any] = {"applicant_id": UNKNOWN, "income": 1.0}
        response = client.post("/predict", json={"records": [record]})
        assert response.status_code == 200, response.text
        with shipyard.open_project(root) as project:
            expected = project.models.load(f"{MODEL}@challenger").predict(
                pl.DataFrame(
                    {"income": [1.0], "late_payments": [None], "amount": [None]},
                    schema={"income": pl.Float64, "late_payments": pl.Int64, "amount": pl.Float64},
                ).to_pandas()
            )
        assert response.json()["predictions"] == list(expected)
        assert lookups(client)["missing"] == 2
        (request_id,) = response.json()["request_ids"]
    with shipyard.open_project(root) as project:  # the server has closed: its log is written
        log = project.predictions.list(MODEL)
    # Found by its request id, not by its place among the rows earlier tests logged.
    (scored,) = log[log["request_id"] == request_id]["inputs"]
    assert scored == {"applicant_id": UNKNOWN, "income": 1.0, "late_payments": None, "amount": None}
