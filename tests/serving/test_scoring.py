"""How requests are scored and checked, in-process: the training contract found up the
lineage, compiled arithmetic or scikit-learn, and rows the compiled form does not cover."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from shipyard.data.inference import spec_from_contract
from shipyard.project import Project
from tests.serving.test_app import LABEL, MODEL, CreditProject, deploy, predict, serving
from tests.serving.test_app import client as client
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project


def test_a_model_trained_on_a_split_of_checked_data_refuses_values_outside_the_contract(
    credit: CreditProject, project: Project
) -> None:
    """A version trained on a split part of contract-checked data (the part itself not
    validated again) still refuses an age of 250."""
    test = project.datasets.get("credit.test@1")
    assert test.status == "unvalidated" and test.contract is None
    frame = test.to_pandas()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    prep = spec_from_contract(project.contracts.get("applicants@1").contract, target=LABEL)
    pipeline = Pipeline(
        [("prep", prep.to_column_transformer()), ("model", LogisticRegression(max_iter=1000))]
    )
    with project.start_run(MODEL, name="trained-on-the-test-part") as run:
        run.log_input(test.ref, "train")
        mv = run.log_model(pipeline.fit(x, y), MODEL, input_example=x.head(5))
    deploy(project, mv.ref, "unchecked")
    with serving(credit) as client:
        response = client.post("/predict", json={"records": [{**credit.records[0], "age": 250}]})
    assert response.status_code == 422, response.text


def test_a_pipeline_that_does_not_compile_is_answered_by_scikit_learn(
    credit: CreditProject, project: Project
) -> None:
    """A step the compiler does not know (PolynomialFeatures) leaves the version to
    scikit-learn: the server says so, and answers exactly like the registry's model."""
    from sklearn.preprocessing import PolynomialFeatures

    frame = project.datasets.get("credit.train@1").to_pandas()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    prep = spec_from_contract(project.contracts.get("applicants@1").contract, target=LABEL)
    pipeline = Pipeline(
        [
            ("prep", prep.to_column_transformer()),
            ("poly", PolynomialFeatures(degree=1)),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    )
    with project.start_run(MODEL, name="with-polynomial-features") as run:
        run.log_input("credit.train@1", "train")
        mv = run.log_model(pipeline.fit(x, y), MODEL, input_example=x.head(5))
    deploy(project, mv.ref, "uncompiled")
    with serving(credit) as client:
        scoring = client.get(f"/v2/models/{MODEL}").json()["parameters"]["scoring"]
        body = predict(client, credit.records[:30])
    assert scoring == {"uncompiled": "not compiled: PolynomialFeatures is not compiled"}
    expected = project.models.load(mv.ref).predict(credit.frame(30))
    assert body["predictions"] == expected.tolist()


def test_a_row_the_compiled_model_does_not_cover_is_answered_by_scikit_learn(
    credit: CreditProject, project: Project
) -> None:
    """A null in a one-hot column with no imputer is outside the compiled arithmetic;
    scikit-learn takes that request (its encoder ignores the unknown value) and the answer
    is the registry model's."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = project.datasets.get("credit.train@1").to_pandas()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["income", "credit_score"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["housing"]),
        ]
    )
    pipeline = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))])
    with project.start_run(MODEL, name="no-imputer") as run:  # no input logged: no contract
        mv = run.log_model(pipeline.fit(x, y), MODEL, input_example=x.head(5))
    deploy(project, mv.ref, "plain")
    rows = [credit.records[0], {**credit.records[1], "housing": None}]
    with serving(credit) as client:
        scoring = client.get(f"/v2/models/{MODEL}").json()["parameters"]["scoring"]
        covered = predict(client, rows[:1])
        uncovered = predict(client, rows)
    assert scoring["plain"].startswith("compiled (arithmetic)")
    model = project.models.load(mv.ref)
    expected = model.predict_proba(model.validate_records(rows))
    assert covered["probabilities"][0]["1"] == pytest.approx(expected[0][1], rel=1e-9)
    assert [p["1"] for p in uncovered["probabilities"]] == pytest.approx(
        [e[1] for e in expected], rel=1e-9
    )
