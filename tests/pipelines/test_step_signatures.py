"""A model registered by a pipeline step can be predicted with and served: its signature
comes from the step's own table, or from the input example the step returns with it; a model
for which neither works is registered with a warning, never silently without one."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import polars as pl
from starlette.exceptions import StarletteDeprecationWarning

import shipyard
from shipyard.serving.app import ServeConfig, create_app
from tests.cli.conftest import Cli

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; the test client works the same on httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

PIPELINE = """
import polars as pl
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step
from shipyard.pipelines import ModelOutput, dataset

FEATURES = ["age", "income", "region"]


@step(model="risk")
def fit(train):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    table = train.to_pandas()
    prep = ColumnTransformer(
        [("region", OneHotEncoder(handle_unknown="ignore"), ["region"])],
        remainder="passthrough",
    )
    model = Pipeline([("prep", prep), ("model", LogisticRegression())])
    return model.fit(table[FEATURES], table["default"])


@step(model="risk-arrays")
def fit_arrays(train):
    table = train.to_polars()
    x = table.select("age", "income")
    model = LogisticRegression().fit(x.to_numpy(), table["default"].to_numpy())
    return ModelOutput(model, input_example=x.head(3))


@step(model="risk-unnamed")
def fit_unnamed(train):
    table = train.to_polars()
    return LogisticRegression().fit(
        table.select("age", "income").to_numpy(), table["default"].to_numpy()
    )


@step(model="risk-renamed")
def fit_renamed(train):
    table = train.to_pandas()
    x = table[["age", "income"]].rename(columns={"age": "years"})
    return LogisticRegression().fit(x, table["default"])


@pipeline
def train(train=dataset("applicants")):
    fit(train)
    fit_arrays(train)
    fit_unnamed(train)
    fit_renamed(train)
"""


def applicants(rows: int = 80) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    age = rng.integers(20, 70, rows)
    income = rng.normal(50.0, 15.0, rows)
    return pl.DataFrame(
        {
            "id": [f"a{i}" for i in range(rows)],
            "age": age,
            "income": income,
            "region": rng.choice(["north", "south", "east"], rows),
            "default": (income + rng.normal(0, 10, rows) < 45).astype(int),
        }
    )


def test_a_step_model_has_a_signature_predicts_and_serves(
    cli_project: Path, cli: Cli, tmp_path: Path
) -> None:
    """The model a step fits on its dataset's columns gets their signature (the id and the
    label are not inputs); `models predict` answers a CSV and a server answers /predict. A
    model fitted on arrays gets the signature of the example the step returns with it; one
    with neither is registered, and the run says it has no signature."""
    with shipyard.open_project(cli_project, actor="alice") as project:
        project.datasets.add("applicants", applicants())
    (cli_project / "pipeline.py").write_text(PIPELINE)

    res = cli("pipeline", "run", "pipeline.py:train")
    assert res.code == 0, res.stderr
    assert (
        "warning: step fit_unnamed: model risk-unnamed@1 has no signature, so it cannot be "
        "served or used by `models predict`: the model was fitted without column names"
    ) in res.stderr
    assert (
        "warning: step fit_renamed: model risk-renamed@1 has no signature, so it cannot be "
        "served or used by `models predict`: step fit_renamed was given no table with every "
        "column the model was fitted on"
    ) in res.stderr
    assert "ModelOutput" in res.stderr
    assert "fit:" not in res.stderr and "fit_arrays:" not in res.stderr

    shown = cli("models", "show", "risk@1", "--json")
    assert shown.code == 0, shown.stderr
    signature = shown.json()["signature"]
    assert sorted(signature["inputs"]["columns"]) == ["age", "income", "region"]
    assert signature["outputs"]["kind"] == "classification"
    arrays = cli("models", "show", "risk-arrays@1", "--json").json()["signature"]
    assert sorted(arrays["inputs"]["columns"]) == ["age", "income"]
    assert cli("models", "show", "risk-unnamed@1", "--json").json()["signature"] is None

    new = applicants(6).drop("default")
    new.write_csv(cli_project / "new.csv")
    predicted = cli("models", "predict", "risk@1", "new.csv", "-o", "out.csv")
    assert predicted.code == 0, predicted.stderr
    out = pl.read_csv(cli_project / "out.csv")
    assert out.height == 6
    refused = cli("models", "predict", "risk-unnamed@1", "new.csv", "-o", "none.csv")
    assert refused.code != 0 and "signature" in refused.stderr

    # A second, recorded run reuses every step, the warning included; the records keep it.
    again = cli("pipeline", "run", "pipeline.py:train", "--always-record", "--json")
    assert again.code == 0, again.stderr
    steps = {s["name"]: s for s in again.json()["steps"]}
    assert {s["cache"] for s in steps.values()} == {"hit"} and not again.json()["up_to_date"]
    assert "no signature" in steps["fit_unnamed"]["outputs"]["warning"]
    assert "warning" not in steps["fit"]["outputs"]

    with shipyard.open_project(cli_project, actor="alice") as project:
        made_by = project.runs.get(steps["fit_unnamed"]["run_id"])
        assert "ModelOutput" in made_by.tags["shipyard.warning"]
        project.policies.set("*", {})
        project.users.add("bob", "approver")
        bob = project.as_actor("bob")
        bob.approvals.approve("risk@1", comment="reviewed")
        bob.promotions.promote("risk@1", to="production")
    config = ServeConfig(project=str(cli_project), deployment="risk", drift_window_seconds=0)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        response = client.post("/predict", json={"records": json.loads(new.head(2).write_json())})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 2


def test_a_model_output_from_a_step_that_registers_no_model_is_refused(
    cli_project: Path, cli: Cli
) -> None:
    """Returning a ModelOutput from a step without `model=` fails the step and says how to
    mark it."""
    (cli_project / "p.py").write_text(
        "from shipyard import pipeline, step\n"
        "from shipyard.pipelines import ModelOutput\n\n\n"
        "@step\ndef fit():\n    return ModelOutput(object())\n\n\n"
        "@pipeline\ndef p():\n    fit()\n"
    )
    res = cli("pipeline", "run", "p.py:p")
    assert res.code == 1
    assert "registers no model: mark it @step(model=NAME)" in res.stderr


def test_the_demo_retraining_pipeline_registers_a_model_with_a_signature(
    cli_project: Path, cli: Cli
) -> None:
    """The retraining pipeline the demo writes registers credit-risk with the signature of
    the columns its preprocessing reads, so its candidates can be served."""
    from shipyard.demo.data import credit_applicants
    from shipyard.demo.retraining import PIPELINE as RETRAIN

    frame = credit_applicants(400)
    with shipyard.open_project(cli_project, actor="alice") as project:
        project.datasets.add("credit.train", frame.head(300))
        project.datasets.add("credit.valid", frame.tail(100))
    (cli_project / "retrain.py").write_text(RETRAIN)
    res = cli("pipeline", "run", "retrain.py:retrain")
    assert res.code == 0, res.stderr
    assert "warning" not in res.stderr
    signature = cli("models", "show", "credit-risk@1", "--json").json()["signature"]
    assert signature is not None
    assert {"income", "credit_score", "region", "purpose"} <= set(signature["inputs"]["columns"])
    assert "default" not in signature["inputs"]["columns"]
