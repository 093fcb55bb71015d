"""The archives of the XGBoost, LightGBM and ONNX flavors: what they hold, what loading them
refuses, and what a missing extra says."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from shipyard.errors import InvalidInputError, MissingDependencyError
from shipyard.registry.flavors import (
    UntrustedModelError,
    file_flavor,
    flavor_of,
    load_model,
    save_model,
)
from shipyard.registry.flavors.bundle import MANIFEST
from shipyard.registry.signatures import infer_signature

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

RNG = np.random.default_rng(5)
X = pd.DataFrame(
    {
        "a": RNG.normal(size=200),
        "b": RNG.normal(size=200),
        "city": RNG.choice(["north", "south", "west"], 200),
    }
)
Y = np.where(X["a"] + (X["city"] == "west") > 0.3, "yes", "no")


def _shift(x: Any) -> Any:  # a function of our own: skops does not trust it
    return x + 1


def _rewrite(src: Path, dest: Path, change: Any) -> None:
    """Copy the archive ``src`` to ``dest`` with ``change(entries)`` applied to its entries."""
    with zipfile.ZipFile(src) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    change(entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    dest.write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def xgb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    numbers = X[["a", "b"]]
    model = xgboost.XGBClassifier(n_estimators=5, n_jobs=1).fit(numbers, Y == "yes")
    path = tmp_path_factory.mktemp("xgb") / "model.bin"
    saved = save_model(model, path)
    assert (saved.flavor, saved.format) == ("xgboost", "xgboost")
    assert saved.versions["xgboost"] == xgboost.__version__
    return path


def test_a_lightgbm_model_on_text_categories_answers_requests_that_send_text(
    tmp_path: Path,
) -> None:
    """A LightGBM model fitted on pandas categories, with text classes, loads as an estimator
    that takes the text a request sends and answers LightGBM's own labels and probabilities."""
    fitted_on = X.assign(city=X["city"].astype("category"))
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(fitted_on, Y)
    assert flavor_of(model) == "lightgbm"
    save_model(model, tmp_path / "model.bin")
    assert file_flavor(tmp_path / "model.bin") == "lightgbm"
    loaded = load_model(tmp_path / "model.bin")
    assert loaded.classes_.tolist() == ["no", "yes"]
    assert loaded.predict(X).tolist() == model.predict(fitted_on).tolist()
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(fitted_on))
    # Saved again (a loaded model registered anew), it is the same model.
    save_model(loaded, tmp_path / "again.bin")
    np.testing.assert_array_equal(
        load_model(tmp_path / "again.bin").predict_proba(X), loaded.predict_proba(X)
    )


def test_a_pipeline_part_with_code_of_its_own_is_untrusted(tmp_path: Path) -> None:
    """The scikit-learn part of a booster pipeline goes through skops' trusted-type check."""
    model = Pipeline(
        [
            ("shift", FunctionTransformer(_shift)),
            ("model", xgboost.XGBRegressor(n_estimators=3, n_jobs=1)),
        ]
    ).fit(X[["a", "b"]], X["a"])
    saved = save_model(model, tmp_path / "model.bin")
    assert any(t.endswith("_shift") for t in saved.untrusted_types)
    with pytest.raises(UntrustedModelError, match="_shift"):
        load_model(tmp_path / "model.bin")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update({"run.py": b"import os"}), "not the parts its manifest names"),
        (
            lambda e: e.update(
                {MANIFEST: json.dumps({**json.loads(e[MANIFEST]), "estimator": "Booster"})}
            ),
            "estimator 'Booster' is not one of XGBClassifier, XGBRegressor",
        ),
        (
            lambda e: e.update(
                {MANIFEST: json.dumps({**json.loads(e[MANIFEST]), "flavor": "pickle"})}
            ),
            "flavor 'pickle'",
        ),
        (lambda e: e.update({"model.ubj": b"not a model"}), "XGBoost cannot read its model"),
        (
            lambda e: e.update(
                {MANIFEST: json.dumps({**json.loads(e[MANIFEST]), "flavor": "code"})}
            ),
            r"a code model archive with the parts \['model'\]",
        ),
    ],
    ids=["extra-entry", "other-estimator", "unknown-flavor", "damaged-booster", "other-parts"],
)
def test_a_tampered_archive_is_refused(
    xgb_file: Path, tmp_path: Path, change: Any, message: str
) -> None:
    _rewrite(xgb_file, tmp_path / "tampered.bin", change)
    with pytest.raises(InvalidInputError, match=message):
        load_model(tmp_path / "tampered.bin")


def test_a_missing_extra_is_named(xgb_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'shipyard\[xgboost\]'"):
        load_model(xgb_file)


def test_an_onnx_network_on_a_matrix_takes_the_columns_of_its_example(tmp_path: Path) -> None:
    """A graph with one float matrix input (as PyTorch exports) and one probability per class:
    its columns come from the input example, its classes from the caller."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from shipyard.registry.flavors.onnx import OnnxModel

    numbers = X[["a", "b"]].astype("float32")
    sk = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    sk.fit(numbers, Y == "yes")
    proto = to_onnx(sk, numbers.to_numpy()[:1], options={"zipmap": False}, target_opset=17)
    graph = proto.graph
    graph.output.remove(graph.output[0])  # keep the probabilities alone, as a network has
    model = OnnxModel.from_onnx(proto, classes=["no", "yes"])
    signature = infer_signature(model, numbers.head())
    assert signature.columns == ["a", "b"]
    assert signature.outputs["classes"] == ["no", "yes"]
    save_model(model, tmp_path / "model.bin")
    loaded = load_model(tmp_path / "model.bin")
    np.testing.assert_allclose(loaded.predict_proba(numbers), sk.predict_proba(numbers), atol=1e-5)
    assert (loaded.predict(numbers) == np.where(sk.predict(numbers), "yes", "no")).all()


def test_an_onnx_model_with_external_weights_is_refused(tmp_path: Path) -> None:
    """Weights read from files beside the model are refused: loading would read other files."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def linear() -> Any:
        weights = numpy_helper.from_array(np.ones((2, 1), dtype=np.float32), "w")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "linear",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
            [weights],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    onnx.save_model(
        linear(), tmp_path / "m.onnx", save_as_external_data=True, size_threshold=0,
        all_tensors_to_one_file=True, location="weights.bin",
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="external files"):
        save_model(tmp_path / "m.onnx", tmp_path / "model.bin")
    # With its weights inside, the same graph is a regressor on a matrix of two numbers.
    onnx.save_model(linear(), tmp_path / "inside.onnx")
    assert flavor_of(tmp_path / "inside.onnx") == "onnx"
    save_model(tmp_path / "inside.onnx", tmp_path / "model.bin")
    loaded = load_model(tmp_path / "model.bin")
    assert loaded.predict(np.array([[1.0, 2.0]])).tolist() == [3.0]


def test_a_column_transformer_before_lightgbm_is_kept_in_skops(tmp_path: Path) -> None:
    prep = ColumnTransformer([("n", StandardScaler(), ["a", "b"])])
    model = Pipeline(
        [("prep", prep), ("model", lightgbm.LGBMRegressor(n_estimators=5, verbose=-1))]
    )
    model.fit(X, X["a"])
    saved = save_model(model, tmp_path / "model.bin")
    assert saved.format == "lightgbm+skops"
    with zipfile.ZipFile(tmp_path / "model.bin") as archive:
        assert sorted(archive.namelist()) == ["model.txt", "pipeline.skops", MANIFEST]
    np.testing.assert_allclose(load_model(tmp_path / "model.bin").predict(X), model.predict(X))


def test_custom_code_runs_only_with_its_digest_approved(tmp_path: Path) -> None:
    """The code flavor stores the class's module source and .npz weights; loading refuses
    (running nothing) unless the caller passes the code's digest as approved, and a changed
    line is another digest."""
    from shipyard.registry.flavors import file_code_digest
    from shipyard.registry.flavors.code import CodeModel, CodeNotApprovedError
    from tests.registry.flavor_code_model import HandLogistic

    weights = {
        "numbers": np.asarray(["a", "b"]),
        "text": np.asarray(["city"]),
        "categories_city": np.asarray(["north", "south", "west"]),
        "mean": np.zeros(2),
        "scale": np.ones(2),
        "coef": np.asarray([1.0, -1.0, 0.5, 0.0, -0.5]),
        "intercept": np.asarray([0.1]),
        "classes": np.asarray(["no", "yes"]),
    }
    model = CodeModel(HandLogistic, weights)
    saved = save_model(model, tmp_path / "model.bin")
    assert (saved.flavor, saved.format) == ("code", "python+npz")
    digest = file_code_digest(tmp_path / "model.bin")
    assert digest == model.code_digest
    with pytest.raises(CodeNotApprovedError) as refused:
        load_model(tmp_path / "model.bin")
    assert refused.value.details["code_digest"] == digest
    loaded = load_model(tmp_path / "model.bin", approved_code=[digest])
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    changed = CodeModel(HandLogistic, weights, source=model.source + "\n# reviewed\n")
    save_model(changed, tmp_path / "changed.bin")
    with pytest.raises(CodeNotApprovedError):
        load_model(tmp_path / "changed.bin", approved_code=[digest])
    with pytest.raises(InvalidInputError, match="arrays of numbers, booleans or text"):
        CodeModel(HandLogistic, {**weights, "mean": np.asarray([object()])})
