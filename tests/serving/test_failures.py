"""Serving fails alone and says why: a request the model cannot take fails without failing
those batched with it; a missing value the pipeline cannot take is a 422 naming the column
(known from the fitted pipeline when the version loads, or, without training rows to probe
with, from scikit-learn's own refusal); a failure of the server is a 500 carrying the
request id, never the exception's text, which goes to the server's log with that id."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.project import Project
from shipyard.serving.batching import Batcher
from shipyard.serving.inputs import validate_rows
from shipyard.serving.reload import load_slot
from tests.serving.test_app import (
    LABEL,
    MODEL,
    CreditProject,
    TestClient,
    deploy,
    metric,
    predict,
    samples,
    serving,
    train,
)
from tests.serving.test_app import client as client
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project

NO_IMPUTER = "the model cannot take a missing value here (its pipeline has no imputer for it)"


def train_without_imputer(project: Project, **options: Any) -> str:
    """Register a version whose pipeline has no imputer (:func:`without_imputer`), fitted on
    the training rows without a missing value; ``options`` go to :func:`train`."""
    return train(project, without_imputer(), complete_rows=True, **options)


def without_imputer() -> list[tuple[str, Any]]:
    """A pipeline that scales two numbers and encodes one category with no imputer: a
    missing years_employed (which the training contract allows) or income reaches the
    scaler as NaN, and the logistic regression refuses it."""
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["years_employed", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["housing"]),
        ]
    )
    return [("prep", prep), ("model", LogisticRegression(max_iter=1000))]


def test_one_failing_request_in_a_batch_fails_alone(
    credit: CreditProject, project: Project
) -> None:
    """Three requests queued together for scikit-learn, the middle one with a missing
    income its pipeline cannot take: the first and last get the registry model's answers,
    the middle one scikit-learn's error."""
    ref = train_without_imputer(project, trained_on=None)
    slot = load_slot(project, "plain", ref)
    good = validate_rows(slot, credit.records[:2])
    bad = validate_rows(slot, [{**credit.records[2], "income": None}])
    later = validate_rows(slot, credit.records[3:5])

    async def score() -> list[Any]:
        batcher = Batcher(slot)
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(3)]
        for rows, future in zip((good, bad, later), futures, strict=True):
            batcher.queue.put_nowait((rows, future))  # queued before the batcher runs
        try:
            return await asyncio.gather(*futures, return_exceptions=True)
        finally:
            batcher.task.cancel()

    first, middle, last = asyncio.run(score())
    model = project.models.load(ref)
    assert first == model.answer(model.frame_from_records(good))
    assert last == model.answer(model.frame_from_records(later))
    assert isinstance(middle, ValueError) and "NaN" in str(middle)


def test_a_missing_value_the_pipeline_cannot_take_is_a_422_naming_the_column(
    credit: CreditProject, project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version trained on credit.train@1 with no imputer: probed when it loads, it
    refuses a missing years_employed (which the training contract allows) with a 422
    naming the record, the column and why (check no_imputer, counted as such in the
    contract violations), counted as invalid input, not a model error; a
    row without missing values is answered, and the server said at load what it refuses."""
    deploy(project, train_without_imputer(project), "plain")
    with serving(credit) as client:
        rows = [credit.records[0], {**credit.records[1], "years_employed": None}]
        response = client.post("/predict", json={"records": rows})
        assert response.status_code == 422, response.text
        assert response.json()["details"]["errors"] == [
            {"record": 1, "field": "years_employed", "reason": NO_IMPUTER, "check": "no_imputer"}
        ]
        assert f"years_employed: {NO_IMPUTER}" in response.json()["error"]
        assert predict(client, rows[:1])["version"] == 3
        assert metric(client, "shipyard_prediction_errors_total", reason="invalid_input") == 1
        assert metric(client, "shipyard_prediction_errors_total", reason="model_error") == 0
        violations = samples(client, "shipyard_contract_violations_total")
        assert violations == [
            (
                {
                    "model": MODEL,
                    "version": "3",
                    "column": "years_employed",
                    "check": "no_imputer",
                },
                1.0,
            )
        ]
    announced = capsys.readouterr().err
    assert "plain is credit-risk@3" in announced
    assert "refuses a missing years_employed, income" in announced


def test_without_training_rows_a_missing_value_is_still_a_422_from_the_model(
    credit: CreditProject, project: Project
) -> None:
    """A version with no training data on record (nothing to probe with): scikit-learn's
    refusal of the missing income becomes a 422 that says the model cannot take a missing
    value, never a 500; each request of /predict and v2 fails alone."""
    deploy(project, train_without_imputer(project, trained_on=None), "plain")
    with serving(credit) as client:
        response = client.post(
            "/predict", json={"records": [{**credit.records[0], "income": None}]}
        )
        assert response.status_code == 422, response.text
        assert "missing" in response.json()["error"]
        assert predict(client, credit.records[:3])["version"] == 3
        assert metric(client, "shipyard_prediction_errors_total", reason="model_error") == 0


def test_a_model_that_fails_gets_a_500_with_a_request_id_and_no_exception_text(
    credit: CreditProject, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged version (its coefficients cut short after fitting, so every prediction
    fails in NumPy) answers 500 with a generic message and the request id; the exception's
    text is only in the server's log, next to that id."""
    ref = train_without_imputer(project, trained_on=None)
    mv = project.models.get(ref)
    pipeline = project.models.load(ref).model
    pipeline[-1].coef_ = pipeline[-1].coef_[:, :2]  # damaged after fitting
    with project.start_run(MODEL, name="damaged") as run:
        frame = project.datasets.get("credit.train@1").to_pandas().drop(columns=[LABEL])
        damaged = run.log_model(pipeline, MODEL, input_example=frame.head(5)).ref
    assert damaged != mv.ref
    deploy(project, damaged, "damaged")
    with serving(credit) as client:
        response = client.post("/predict", json={"records": credit.records[:1]})
        assert response.status_code == 500, response.text
        body = response.json()
        assert set(body) == {"error", "request_id"}
        assert body["request_id"] in body["error"]
        assert "failed to answer this request" in body["error"]
        for internal in ("matmul", "dimension", "shape", "Traceback", "coef"):
            assert internal not in response.text
        assert metric(client, "shipyard_prediction_errors_total", reason="model_error") == 1
    logged = [r for r in caplog.records if body["request_id"] in r.getMessage()]
    assert len(logged) == 1
    assert "ValueError" in logged[0].getMessage()


def test_a_database_failure_in_feedback_is_a_500_with_a_request_id(
    credit: CreditProject, client: TestClient, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """With the feedback table renamed away, /feedback answers 500 with a request id and a
    generic message, not the database's error or SQL; the log has both, with the id."""
    body = predict(client, credit.records[:1])
    # The answer must be in the log first, else /feedback rightly answers 404 (the log is
    # written about every second; a loaded machine can take longer than the route waits).
    deadline = time.monotonic() + 30
    while body["request_ids"][0] not in set(project.predictions.list(MODEL)["request_id"]):
        assert time.monotonic() < deadline, "the prediction never reached the log"
        time.sleep(0.1)
    with project.db.write() as conn:
        conn.exec_driver_sql("ALTER TABLE feedback RENAME TO feedback_away")
    try:
        response = client.post("/feedback", json={"request_id": body["request_ids"][0], "label": 1})
    finally:
        with project.db.write() as conn:
            conn.exec_driver_sql("ALTER TABLE feedback_away RENAME TO feedback")
    assert response.status_code == 500, response.text
    error = response.json()
    assert set(error) == {"error", "request_id"}
    for internal in ("feedback_away", "no such table", "SQL", "INSERT", "Operational"):
        assert internal not in response.text
    logged = [r.getMessage() for r in caplog.records if error["request_id"] in r.getMessage()]
    assert len(logged) == 1 and "OperationalError" in logged[0]
    assert metric(client, "shipyard_requests_total", endpoint="/feedback", code="500") == 1
