"""`shipyard models import-mlflow`: MLflow model directories written by the real ``mlflow``
client (``mlflow.<flavor>.save_model``) become registry versions that load through
shipyard's flavors and answer like the models MLflow saved; a pickled model is refused
unless an admin trusts it, which the audit log and the model card record."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from tests.cli.conftest import Cli, cli, cli_project  # noqa: F401  (the fixtures)

pytest.importorskip("mlflow")
pytest.importorskip("xgboost")
pytest.importorskip("lightgbm")
pytest.importorskip("skl2onnx")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Saved:
    root: Path  # the folder of MLflow model directories
    X: pd.DataFrame
    models: dict[str, Any]  # directory name -> the model MLflow saved


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    """MLflow model directories of each flavor, written by mlflow's own save_model (with
    the requirements given, so MLflow does not start a process to infer them)."""
    import lightgbm
    import mlflow.lightgbm
    import mlflow.onnx
    import mlflow.sklearn
    import mlflow.xgboost
    import xgboost
    from skl2onnx import to_onnx

    root = tmp_path_factory.mktemp("mlflow")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(40, 10, 200), "income": rng.normal(50, 15, 200)})
    y = ((X.age + X.income + rng.normal(0, 5, 200)) > 90).astype(int)
    logistic = LogisticRegression().fit(X, y)
    models: dict[str, Any] = {
        "sklearn": logistic,
        "pickled": logistic,
        "xgboost": xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y),
        "booster": lightgbm.train(
            {"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), 10
        ),
    }
    common = {"input_example": X.head(5), "pip_requirements": ["scikit-learn"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(logistic, root / "sklearn", **common)
        mlflow.sklearn.save_model(
            logistic, root / "pickled", serialization_format="cloudpickle", **common
        )
        mlflow.xgboost.save_model(models["xgboost"], root / "xgboost", **common)
        mlflow.lightgbm.save_model(models["lightgbm"], root / "lightgbm", **common)
        mlflow.lightgbm.save_model(models["booster"], root / "booster", **common)
        onnx_model = to_onnx(logistic, X.head(1).to_numpy(np.float32))
        mlflow.onnx.save_model(onnx_model, root / "onnx", pip_requirements=["onnx"])
    models["onnx"] = logistic
    return Saved(root, X, models)


def _expected(model: Any, X: pd.DataFrame) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X))  # a LightGBM Booster: the probability of class 1


def test_each_flavor_imports_with_its_signature_and_answers_like_mlflows_model(
    saved: Saved, tmp_path: Path
) -> None:
    """sklearn (skops), XGBoost, LightGBM (estimator and Booster) and ONNX models import as
    versions of their shipyard flavor, with the input columns, and predict what MLflow's
    model predicted."""
    project = shipyard.init_project(tmp_path / "proj")
    flavors = {
        "sklearn": "sklearn",
        "xgboost": "xgboost",
        "lightgbm": "lightgbm",
        "booster": "lightgbm",
        "onnx": "onnx",
    }
    for folder, flavor in flavors.items():
        v = project.mlflow_imports.import_model(str(saved.root / folder), f"m-{folder}")
        assert v.flavor == flavor, folder
        if folder == "onnx":  # one tensor input: no columns, and MLflow saved no signature
            assert v.signature is None
        else:
            assert list(v.signature["inputs"]["columns"]) == ["age", "income"], folder
        loaded = project.models.load(v.ref)
        X = saved.X.astype(np.float32) if folder == "onnx" else saved.X
        got = np.asarray(loaded.predict_proba(X))[:, 1]
        np.testing.assert_allclose(
            got, _expected(saved.models[folder], saved.X), rtol=1e-4, atol=1e-5
        )
    event = project.audit.list(entity="m-xgboost@1", action="model.register")[0]
    assert event.payload["provenance"]["mlflow_source"] == str(saved.root / "xgboost")
    assert "Imported from MLflow" in project.cards.render("m-xgboost@1")
    project.close()


def test_a_pickle_is_refused_unless_an_admin_trusts_it(saved: Saved, tmp_path: Path) -> None:
    """A cloudpickled model is not loaded; a contributor cannot trust it; an admin's
    --trust-pickle imports it as skops, and the audit log and card name the file."""
    project = shipyard.init_project(tmp_path / "proj")
    source = str(saved.root / "pickled")
    with pytest.raises(InvalidInputError, match=r"cloudpickle.*--trust-pickle"):
        project.mlflow_imports.import_model(source, "credit")
    project.users.add("bob", "contributor")
    bob = shipyard.open_project(tmp_path / "proj", actor="bob")
    with pytest.raises(PermissionDeniedError):
        bob.mlflow_imports.import_model(source, "credit", trust_pickle=True)
    bob.close()
    v = project.mlflow_imports.import_model(source, "credit", trust_pickle=True)
    assert (v.flavor, v.version) == ("sklearn", 1)
    np.testing.assert_allclose(
        project.models.load(v.ref).predict_proba(saved.X),
        saved.models["pickled"].predict_proba(saved.X),
    )
    event = project.audit.list(entity="credit@1", action="model.register")[0]
    trusted = event.payload["provenance"]
    assert "trusted by admin alice" in trusted["trusted_pickle"]
    assert "**Trusted pickle**: model.pkl (sha256 " in project.cards.render("credit@1")
    project.close()


def test_the_cli_imports_a_folder_and_refuses_unknown_uris(
    saved: Saved,
    cli_project: Path,  # noqa: F811  (the fixtures imported above)
    cli: Cli,  # noqa: F811
) -> None:
    """`models import-mlflow DIR NAME --json` prints the version; a models:/ URI the
    project's MLflow registry does not hold, or a folder without MLmodel, exits 1 saying
    why."""
    res = cli("models", "import-mlflow", saved.root / "lightgbm", "churn", "--json")
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["ref"], doc["flavor"]) == ("churn@1", "lightgbm")
    res = cli("models", "import-mlflow", "models:/churn/7", "churn")
    assert res.code == 1
    assert "MLflow registry" in res.stderr
    res = cli("models", "import-mlflow", saved.root, "churn")
    assert res.code == 1
    assert "no MLmodel file" in res.stderr


def test_an_import_takes_the_tags_the_annotation_policy_requires(
    saved: Saved,
    cli_project: Path,  # noqa: F811  (the fixtures imported above)
    cli: Cli,  # noqa: F811
) -> None:
    """Under `model_tags: [team]` an import without the tag is refused (exit 3, nothing
    registered) with the hint to pass it; `--tag team=risk` registers it with the tag."""
    (cli_project / "policy.yaml").write_text("annotations: {model_tags: [team]}\n")
    assert cli("policy", "set", "*", "policy.yaml").code == 0
    refused = cli("models", "import-mlflow", saved.root / "sklearn", "churn")
    assert refused.code == 3
    assert "model 'churn' lacks what the project's annotation policy requires" in refused.stderr
    assert "tag 'team' (tag it: --tag team=VALUE;" in refused.stderr
    assert cli("models", "list", "--json").json() == []
    res = cli("models", "import-mlflow", saved.root / "sklearn", "churn", "--tag", "team=risk")
    assert res.code == 0, res.stderr
    project = shipyard.open_project(cli_project)
    try:
        assert project.mlflow_registry.get_version("churn", 1).tags["team"] == "risk"
    finally:
        project.close()


def test_a_runs_uri_reads_the_files_from_the_projects_artifact_tree(
    saved: Saved, tmp_path: Path
) -> None:
    """An MLflow model uploaded with a run's artifacts imports from runs:/RUN/PATH, and the
    version keeps that run as its lineage."""
    from sqlalchemy import select

    from shipyard.stores.db.tables import runs
    from shipyard.tracking.artifact_tree import run_artifact_path

    project = shipyard.init_project(tmp_path / "proj")
    with project.start_run(name="train") as run:
        run_id = run.id
    with project.context.db.read() as conn:
        experiment = conn.execute(
            select(runs.c.experiment_id).where(runs.c.id == run_id)
        ).scalar_one()
    for file in (saved.root / "xgboost").iterdir():
        with open(file, "rb") as f:
            path = run_artifact_path(experiment, run_id, f"model/{file.name}")
            project.artifact_tree.put(path, f)
    v = project.mlflow_imports.import_model(f"runs:/{run_id}/model", "credit")
    assert (v.flavor, v.run_id) == ("xgboost", run_id)
    with pytest.raises(NotFoundError, match="MLflow registry"):
        project.mlflow_imports.import_model(f"runs:/{'0' * 32}/model", "credit")
    project.close()
