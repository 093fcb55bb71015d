"""Every flavor on the whole path: a model of each flavor (scikit-learn, XGBoost, LightGBM,
ONNX) is logged with its signature inferred, shown by `models show`, loaded (its digest
checked), evaluated with fairness and permutation importance, gated by a policy, carded,
exported to ONNX with its parity checked, served by `/predict` and v2 infer, and scored by
`models predict` — and every path answers what the model itself predicts.

The models are small (20 trees, 300 training rows) pipelines of the same preprocessing; the
ONNX one is the scikit-learn pipeline converted by skl2onnx with one input per column, and
registered without an input example: its signature is read from the graph.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from starlette.exceptions import StarletteDeprecationWarning

import shipyard
from shipyard.data.inference import infer_contract
from shipyard.data.splits import SplitSpec
from shipyard.demo.data import credit_applicants
from shipyard.errors import IntegrityError
from shipyard.registry.flavors.code import CodeModel, CodeNotApprovedError
from shipyard.registry.flavors.onnx import OnnxModel
from shipyard.serving.app import ServeConfig, create_app
from tests.cli.conftest import Cli, cli  # noqa: F401  (the fixture)
from tests.registry.flavor_code_model import HandLogistic

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

pytest.importorskip("xgboost")
pytest.importorskip("lightgbm")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

LABEL = "default"
NUMBERS = ["age", "income", "loan_amount", "credit_score", "debt_to_income"]
TEXT = ["employment", "housing"]
FEATURES = NUMBERS + TEXT
FLAVORS = ["sklearn", "xgboost", "lightgbm", "onnx", "code"]
POLICY = {
    "metrics": {"roc_auc": {"min": 0.55}},
    "fairness": {"gender": {"demographic_parity_difference": {"max": 0.5}}},
    "require": ["evaluation", "fairness", "explainability"],
    "approvals": {"min": 1},
}


@dataclass(frozen=True)
class Flavors:
    root: Path
    fitted: dict[str, Any]  # flavor -> the model as trained (the ONNX one: its sklearn source)
    test: pd.DataFrame  # held-out rows, label included

    def open(self) -> shipyard.Project:
        return shipyard.open_project(self.root, actor="alice")


def _prep() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numbers", StandardScaler(), NUMBERS),
            ("text", OneHotEncoder(handle_unknown="ignore"), TEXT),
        ]
    )


def _models(x: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    import lightgbm
    import xgboost
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    finals = {
        "sklearn": LogisticRegression(max_iter=1000),
        "xgboost": xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1),
    }
    fitted = {k: Pipeline([("prep", _prep()), ("model", m)]).fit(x, y) for k, m in finals.items()}
    types = {"int64": Int64TensorType([None, 1]), "float64": FloatTensorType([None, 1])}
    inputs = [(c, types.get(str(x[c].dtype), StringTensorType([None, 1]))) for c in FEATURES]
    fitted["onnx"] = to_onnx(fitted["sklearn"], initial_types=inputs, target_opset=17)
    fitted["code"] = _hand_written(fitted["sklearn"])
    return fitted


def _hand_written(pipeline: Pipeline) -> CodeModel:
    """The custom model of tests/registry/flavor_code_model.py, with the fitted pipeline's
    weights."""
    prep, model = pipeline.named_steps["prep"], pipeline.named_steps["model"]
    scaler, encoder = prep.named_transformers_["numbers"], prep.named_transformers_["text"]
    weights = {
        "numbers": np.asarray(NUMBERS),
        "text": np.asarray(TEXT),
        "mean": scaler.mean_,
        "scale": scaler.scale_,
        "coef": model.coef_[0],
        "intercept": model.intercept_,
        "classes": model.classes_,
    }
    for column, categories in zip(TEXT, encoder.categories_, strict=True):
        weights[f"categories_{column}"] = np.asarray(categories, dtype=str)
    return CodeModel(HandLogistic, weights)


@pytest.fixture(scope="module")
def flavors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flavors]:
    """A project with loans@1 (400 applicants, its inferred contract bound) split into
    loans.train@1 and loans.test@1, the project policy above, bob an approver, and one
    model of each flavor registered as ``model-<flavor>`` from a run that read the training
    data."""
    root = tmp_path_factory.mktemp("flavors") / "proj"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        with shipyard.init_project(root, actor="alice") as project:
            frame = credit_applicants(400, seed=11)
            project.contracts.add("loans", infer_contract(frame))
            project.contracts.bind("loans", "loans")
            loans = project.datasets.add("loans", frame, message="400 applicants")
            split = SplitSpec({"train": 0.75, "test": 0.25}, seed=1)
            parts = project.datasets.split(loans.ref, split)
            train = parts["train"].to_pandas()
            fitted = _models(train[FEATURES], train[LABEL])
            for flavor, model in fitted.items():
                with project.start_run(f"model-{flavor}", name=flavor) as run:
                    run.log_input(parts["train"].ref, "train")
                    example = None if flavor == "onnx" else train[FEATURES].head(5)
                    run.log_model(model, f"model-{flavor}", input_example=example)
            project.policies.set("*", POLICY)
            project.users.add("bob", "approver")
            yield Flavors(root, fitted, parts["test"].to_pandas())


def _expected(flavors: Flavors, flavor: str, x: pd.DataFrame) -> tuple[Any, Any]:
    """What the model as trained predicts (the ONNX graph: its scikit-learn source)."""
    model = flavors.fitted["sklearn" if flavor == "onnx" else flavor]  # code: itself
    return model.predict(x), model.predict_proba(x)


@pytest.mark.slow
@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_flavor_goes_the_whole_path(
    flavors: Flavors,
    flavor: str,
    cli: Cli,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    name = f"model-{flavor}"
    x = flavors.test[FEATURES]
    labels, proba = _expected(flavors, flavor, x)
    with flavors.open() as project:
        # models show: the flavor, and the signature inferred (from the graph for ONNX)
        shown = cli("--project", flavors.root, "models", "show", f"{name}@1", "--json")
        assert shown.code == 0, shown.stderr
        doc = shown.json()
        assert doc["flavor"] == flavor
        assert list(doc["signature"]["inputs"]["columns"]) == FEATURES
        assert doc["signature"]["outputs"]["classes"] == [0, 1]

        if flavor == "code":
            # custom code runs only once an approver, not its author, has approved it
            with pytest.raises(CodeNotApprovedError, match="approve-code model-code@1"):
                project.models.load(f"{name}@1")
            shown = cli("--project", flavors.root, "models", "code", f"{name}@1", "--json")
            assert "class HandLogistic" in shown.json()["source"]
            assert not shown.json()["approved"]
            approve = cli("--project", flavors.root, "models", "approve-code", f"{name}@1",
                          user="bob")  # fmt: skip
            assert approve.code == 0, approve.stderr

        # load, digest checked: the model's own answers, within float32 for ONNX
        predictor = project.models.load(f"{name}@1")
        assert predictor.predict(x).tolist() == labels.tolist()
        np.testing.assert_allclose(predictor.predict_proba(x), proba, atol=1e-5)

        # evaluation with fairness and permutation importance, then the policy gate
        evaluation = project.evaluations.evaluate(
            f"{name}@1", "loans.test@1", label=LABEL, sensitive=["gender"], bootstrap=0
        )
        report = evaluation.report
        accuracy = float(np.mean(labels == flavors.test[LABEL].to_numpy()))
        assert report["metrics"]["accuracy"]["value"] == pytest.approx(accuracy)
        assert "demographic_parity_difference" in report["groups"]["gender"]["fairness"]
        assert {i["feature"] for i in report["importance"]} == set(FEATURES)
        bob = project.as_actor("bob")
        bob.approvals.approve(f"{name}@1", comment="reviewed")
        gate = project.promotions.gate(f"{name}@1")
        assert gate["passed"], gate["checks"]
        assert f"flavor {flavor}" in project.cards.card(f"{name}@1").markdown
        bob.promotions.promote(f"{name}@1", to="production")

        # export to ONNX, its parity checked on the evaluation's rows (an ONNX model as is;
        # hand-written code has no converter)
        exported = tmp_path / "model.onnx"
        export = cli("--project", flavors.root, "models", "export", f"{name}@1",
                     "-o", exported, "--json")  # fmt: skip
        if flavor == "code":
            assert export.code == 1 and "cannot convert a custom code model" in export.stdout
            assert not exported.exists()
        else:
            assert export.code == 0, export.stdout + export.stderr
            parity = export.json()["parity"]
            assert (parity["rows"], parity["rows_from"]) == (len(x), "loans.test@1")
            assert parity["passed"] and parity["labels_agree"] == len(x)
            assert OnnxModel.from_onnx(exported).predict(x).tolist() == labels.tolist()

        # batch scoring, through the command line
        source, scored = tmp_path / "rows.csv", tmp_path / "scored.csv"
        x.to_csv(source, index=False)
        batch = cli("--project", flavors.root, "models", "predict", name + "@production",
                    source, "-o", scored, "--json")  # fmt: skip
        assert batch.code == 0, batch.stderr
        assert pd.read_csv(scored)["prediction"].tolist() == labels.tolist()

    # /predict and v2 infer answer the same labels
    records = json.loads(x.to_json(orient="records"))
    config = ServeConfig(project=str(flavors.root), deployment=name, reload_seconds=60)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        answered = client.post("/predict", json={"records": records})
        assert answered.status_code == 200, answered.text
        assert answered.json()["predictions"] == labels.tolist()
        types = {
            i["name"]: i["datatype"] for i in client.get(f"/v2/models/{name}").json()["inputs"]
        }
        tensors = [
            {"name": c, "shape": [len(x)], "datatype": types[c], "data": x[c].tolist()}
            for c in FEATURES
        ]
        inferred = client.post(f"/v2/models/{name}/infer", json={"inputs": tensors})
        assert inferred.status_code == 200, inferred.text
    [output] = [o for o in inferred.json()["outputs"] if o["name"] == "prediction"]
    assert output["data"] == labels.tolist()


def test_a_corrupted_archive_is_refused_before_it_is_loaded(
    flavors: Flavors, corrupt_blob: Any
) -> None:
    """The digest covers every part of a flavor's archive: a changed byte is refused."""
    import lightgbm

    x, y = flavors.test[NUMBERS], flavors.test[LABEL]
    model = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1).fit(x, y)
    with flavors.open() as project:
        mv = project.models.register_model("corrupted", model, input_example=x.head())
        assert mv.flavor == "lightgbm"
        corrupt_blob(project.artifacts, mv.digest)
        with pytest.raises(IntegrityError):
            project.models.load("corrupted@1")
