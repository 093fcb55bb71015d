"""Served = evaluated: for the same rows, `models evaluate`, `models predict`, `/predict`, v2
infer and `project.models.load(...).predict` give the same labels, the model's own
`predict()`, for a classifier with a decision threshold of its own, a three-class classifier
and a regressor.

Each model is trained on the serving tests' credit.train@1 (its contract governs every path),
approved by bob and promoted to production; the rows are 60 held-out applicants.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline

from shipyard.data.inference import spec_from_contract
from shipyard.project import Project
from tests.serving.test_app import LABEL, CreditProject, credit_copy, serving

ROWS = 60


def _tier(frame: pd.DataFrame) -> pd.Series:
    """A three-class label: income below 30,000, up to 60,000, above."""
    return pd.cut(
        frame["income"], [-math.inf, 30_000, 60_000, math.inf], labels=["low", "mid", "high"]
    ).astype(str)


def _amount(frame: pd.DataFrame) -> pd.Series:
    """A number to regress: a noisy multiple of income and age."""
    rng = np.random.default_rng(3)
    return frame["income"].fillna(0) * 0.3 + frame["age"] * 50 + rng.normal(0, 500, len(frame))


TARGETS = {"thresholded": None, "multiclass": _tier, "regressor": _amount}


def _model(name: str, project: Project) -> Any:
    prep = spec_from_contract(project.contracts.get("applicants@1").contract, target=LABEL)
    if name == "regressor":
        return Pipeline([("prep", prep.to_column_transformer()), ("model", Ridge())])
    inner = Pipeline(
        [("prep", prep.to_column_transformer()), ("model", LogisticRegression(max_iter=1000))]
    )
    return inner if name == "multiclass" else FixedThresholdClassifier(inner, threshold=0.9)


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CreditProject]:
    """The credit project with the three models in production and a dataset of the held-out
    rows with each model's target (``evaluation@1``)."""
    credit = credit_copy(tmp_path_factory, tmp_path_factory.mktemp("served") / "proj")
    with credit.open() as project:
        train = project.datasets.get("credit.train@1").to_pandas()
        x = train.drop(columns=[LABEL])
        bob = project.as_actor("bob")
        for name, target in TARGETS.items():
            y = train[LABEL] if target is None else target(train)
            with project.start_run(name, name=name) as run:
                run.log_input("credit.train@1", "train")
                fitted = _model(name, project).fit(x, y)
                ref = run.log_model(fitted, name, input_example=x.head(5)).ref
            bob.approvals.approve(ref, comment="reviewed")
            bob.promotions.promote(ref, to="production")
        held_out = credit.frame(ROWS)
        labelled = held_out.assign(
            default=credit.labels[:ROWS], tier=_tier(held_out), amount=_amount(held_out)
        )
        project.datasets.add("evaluation", labelled, message="held-out rows with targets")
    yield credit


def _served(credit: CreditProject, name: str) -> tuple[list[Any], list[Any]]:
    """The labels /predict and v2 infer answer for the held-out rows."""
    records = credit.records[:ROWS]
    with serving(credit, deployment=name) as client:
        predicted = client.post("/predict", json={"records": records})
        assert predicted.status_code == 200, predicted.text
        types = {
            i["name"]: i["datatype"] for i in client.get(f"/v2/models/{name}").json()["inputs"]
        }
        tensors = [
            {"name": c, "shape": [ROWS], "datatype": types[c], "data": [r[c] for r in records]}
            for c in records[0]
            if c in types  # the inputs the model reads; the columns it drops may be left out
        ]
        inferred = client.post(f"/v2/models/{name}/infer", json={"inputs": tensors})
        assert inferred.status_code == 200, inferred.text
    [output] = [o for o in inferred.json()["outputs"] if o["name"] == "prediction"]
    return predicted.json()["predictions"], output["data"]


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_path_serves_the_models_own_predict(
    credit: CreditProject, tmp_path: Path, name: str
) -> None:
    """`/predict`, v2 infer and `models predict` answer exactly `load(...).predict()`, and
    `models evaluate` scores those same labels (its accuracy, or its mean absolute error,
    is the one those labels give)."""
    with credit.open() as project:
        predictor = project.models.load(f"{name}@production")
        labels = predictor.predict(credit.frame(ROWS)).tolist()
        source = tmp_path / "rows.csv"
        credit.frame(ROWS).to_csv(source, index=False)
        batch = tmp_path / "scored.csv"
        project.models.predict_file(f"{name}@production", source, batch)
        evaluation = project.evaluations.evaluate(
            f"{name}@production",
            "evaluation@1",
            label={"thresholded": "default", "multiclass": "tier", "regressor": "amount"}[name],
            bootstrap=0,
        )
        truth = project.datasets.get("evaluation@1").to_pandas()
    predicted, inferred = _served(credit, name)
    scored = pd.read_csv(batch)["prediction"].tolist()
    if name == "regressor":
        for answers in (predicted, inferred, scored):
            np.testing.assert_allclose(answers, labels, rtol=1e-9)
        mae = float(np.mean(np.abs(truth["amount"].to_numpy() - np.asarray(labels))))
        assert evaluation.report["metrics"]["mae"]["value"] == pytest.approx(mae, rel=1e-9)
        return
    assert predicted == labels
    assert inferred == labels
    assert scored == labels
    target = truth["default" if name == "thresholded" else "tier"].tolist()
    accuracy = sum(a == b for a, b in zip(labels, target, strict=True)) / ROWS
    assert evaluation.report["metrics"]["accuracy"]["value"] == pytest.approx(accuracy)
    if name == "thresholded":
        # The threshold matters: the most probable class would often be another label.
        proba = predictor.predict_proba(credit.frame(ROWS))
        argmax = predictor.classes[proba.argmax(axis=1)].tolist()  # type: ignore[index]
        assert argmax != labels
