"""Autologging: while a run is active, fitting a scikit-learn pipeline, an XGBoost or a
LightGBM model records its parameters, training metrics (per boosting round where the
library reports them), its shipyard input dataset and the fitted model through the flavors
— and the fitted models predict exactly what they predict without autolog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shipyard
from shipyard.registry.flavors import load_model

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(50, 15, n),
            "housing": rng.choice(["own", "rent"], n),
        }
    )
    frame["default"] = ((frame.age + frame.income + rng.normal(0, 9, n)) > 90).astype(int)
    return frame


@pytest.fixture
def project(tmp_path: Path) -> Iterator[shipyard.Project]:
    proj = shipyard.init_project(tmp_path / "proj")
    try:
        yield proj
    finally:
        shipyard.autolog(disable=True)
        proj.close()


MAKERS: dict[str, Callable[[], Any]] = {
    "pipeline": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "income"]),
                        ("cat", OneHotEncoder(), ["housing"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(C=0.5)),
        ]
    ),
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=8, max_depth=3, random_state=0),
    "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=8, random_state=0, verbose=-1),
}


def _fit(kind: str, X: pd.DataFrame, y: pd.Series) -> Any:
    model = MAKERS[kind]()
    if kind == "pipeline":
        return model.fit(X, y)
    X = X.drop(columns=["housing"])
    if kind == "xgboost":
        return model.fit(X, y, eval_set=[(X, y)], verbose=False)
    return model.fit(X, y, eval_X=(X,), eval_y=(y,))


def _features(kind: str, X: pd.DataFrame) -> pd.DataFrame:
    return X if kind == "pipeline" else X.drop(columns=["housing"])


def test_autolog_records_each_fit_and_changes_no_prediction(
    project: shipyard.Project, table: pd.DataFrame
) -> None:
    """Each kind of model fitted in an autologged run has its params, training score,
    per-round metrics, input dataset and model artifact recorded, and predicts exactly what
    the same model fitted without autolog predicts."""
    data = project.datasets.add("credit", table)
    frame = data.to_pandas()
    X, y = frame.drop(columns=["default"]), frame["default"]
    plain = {kind: _fit(kind, X, y) for kind in MAKERS}
    shipyard.autolog()
    for kind in MAKERS:
        with project.start_run(name=kind) as run:
            logged = _fit(kind, X, y)
        np.testing.assert_array_equal(
            logged.predict_proba(_features(kind, X)), plain[kind].predict_proba(_features(kind, X))
        )
        info = project.runs.get(run.id)
        assert 0.5 < info.metrics["training_score"] <= 1.0, kind
        assert info.inputs[0]["dataset"] == "credit@1", kind
        paths = {a["path"] for a in info.artifacts}
        assert paths == {"model", "input_example.parquet"}, kind
        digest = next(a["digest"] for a in info.artifacts if a["path"] == "model")
        with project.artifacts.local_copy(digest, owner="test") as local:
            reloaded = load_model(local)
        np.testing.assert_allclose(
            reloaded.predict_proba(_features(kind, X)),
            plain[kind].predict_proba(_features(kind, X)),
            rtol=1e-6,
        )
        if kind == "pipeline":
            assert info.params["clf__C"] == "0.5"
        else:
            assert info.params["n_estimators"] == "8"
            key = "validation_0-logloss" if kind == "xgboost" else "valid_0-binary_logloss"
            assert len(project.runs.metric_history(run.id, key)) == 8, kind


def test_per_run_autolog_registers_and_disable_restores_fit(
    project: shipyard.Project, table: pd.DataFrame
) -> None:
    """start_run(autolog=True) records only that run (a fit outside it records nothing);
    with registered_model_name the model becomes a version with a signature; turning
    autolog off puts the original fit back."""
    original = LogisticRegression.fit
    X, y = table[["age", "income"]], table["default"]
    with project.start_run(name="on", autolog=True) as run:
        LogisticRegression().fit(X, y)
    assert "training_score" in project.runs.get(run.id).metrics
    assert LogisticRegression.fit is original  # nothing needs the patch any more
    with project.start_run(name="off") as other:
        LogisticRegression().fit(X, y)
    assert project.runs.get(other.id).params == {}
    shipyard.autolog(registered_model_name="credit-lr")
    assert LogisticRegression.fit is not original
    with project.start_run(name="registered") as run:
        LogisticRegression().fit(X, y)
    version = project.models.get("credit-lr@1")
    assert version.run_id == run.id
    assert list(version.signature["inputs"]["columns"]) == ["age", "income"]
    shipyard.autolog(disable=True)
    assert LogisticRegression.fit is original


def test_autolog_gives_the_registered_version_the_tags_a_policy_requires(
    project: shipyard.Project, table: pd.DataFrame
) -> None:
    """Under `model_tags: [team]` a fit registered without tags is refused (a warning that
    names `registered_model_tags`; fit itself succeeds and nothing is registered);
    `registered_model_tags` registers it with them."""
    from shipyard.errors import InvalidInputError

    project.policies.set("*", {"annotations": {"model_tags": ["team"]}})
    X, y = table[["age", "income"]], table["default"]
    shipyard.autolog(registered_model_name="credit-lr")
    with project.start_run(name="bare"), pytest.warns(UserWarning) as caught:
        LogisticRegression().fit(X, y)
    [message] = [str(w.message) for w in caught if "autolog" in str(w.message)]
    assert "model 'credit-lr' lacks what the project's annotation policy requires" in message
    assert (
        'give autolog the tags: shipyard.autolog(registered_model_name="credit-lr", '
        'registered_model_tags={"team": ...})' in message
    )
    assert project.models.list() == []

    shipyard.autolog(registered_model_name="credit-lr", registered_model_tags={"team": "risk"})
    with project.start_run(name="tagged") as run:
        LogisticRegression().fit(X, y)
    version = project.models.get("credit-lr@1")
    assert version.run_id == run.id
    assert project.mlflow_registry.get_version("credit-lr", 1).tags == {"team": "risk"}
    with pytest.raises(InvalidInputError, match="give registered_model_name too"):
        shipyard.autolog(registered_model_tags={"team": "risk"})
