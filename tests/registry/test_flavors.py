"""Saving and loading models with skops: round trips, and refusal of anything not trusted."""

from __future__ import annotations

import io
import json
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

from shipyard.data.preprocessing import PreprocessingSpec
from shipyard.errors import InvalidInputError
from shipyard.registry.flavors import (
    SHIPYARD_TRUSTED_TYPES,
    SKLEARN_SUPPORTED,
    ModelFile,
    UntrustedModelError,
    load_model,
    running_versions,
    save_model,
    version_problem,
)

RNG = np.random.default_rng(7)
N = 120
X = pd.DataFrame({"a": RNG.normal(size=N), "b": RNG.normal(size=N), "c": RNG.normal(size=N)})
Y_CLASS = (X["a"] + X["b"] > 0).astype(int)
Y_REG = 2.0 * X["a"] - X["c"] + RNG.normal(scale=0.1, size=N)

CLASSIFIERS = [
    LogisticRegression(),
    GradientBoostingClassifier(n_estimators=5, random_state=0),
    HistGradientBoostingClassifier(max_iter=5, random_state=0),
    RandomForestClassifier(n_estimators=5, random_state=0),
    ExtraTreesClassifier(n_estimators=5, random_state=0),
    DecisionTreeClassifier(random_state=0),
]
REGRESSORS = [
    LinearRegression(),
    Ridge(),
    GradientBoostingRegressor(n_estimators=5, random_state=0),
    HistGradientBoostingRegressor(max_iter=5, random_state=0),
    RandomForestRegressor(n_estimators=5, random_state=0),
]

SPEC = PreprocessingSpec.from_dict(
    {
        "columns": {
            "age": {"impute": "median", "scale": "standard"},
            "income": {"impute": {"strategy": "constant", "fill_value": 0}, "scale": "robust"},
            "city": {"impute": "most_frequent", "encode": {"method": "onehot"}},
            "id": {"drop": True},
        }
    }
)


def applicants(n: int = 80) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    age = rng.integers(18, 80, size=n).astype(float)
    age[::9] = np.nan
    income = rng.normal(3000, 800, size=n)
    income[::11] = np.nan
    city = pd.Series(rng.choice(["Paris", "Lyon", "Nice"], size=n), dtype="str")
    city[::13] = np.nan
    frame = pd.DataFrame({"id": np.arange(n), "age": age, "income": income, "city": city})
    target = pd.Series((np.nan_to_num(income) > 3000).astype(int))
    return frame, target


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A user-defined transformer: a class skops cannot vouch for."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2.0


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def rewrite_schema(source: Path, target: Path, edit: Any) -> None:
    """Copy a skops file, passing its schema through ``edit`` (a hand-crafted file)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                edit(schema)
                data = json.dumps(schema).encode()
            zout.writestr(item, data)


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", CLASSIFIERS, ids=lambda m: type(m).__name__)
def test_classifier_round_trip_predicts_identically(model: Any, tmp_path: Path) -> None:
    """Every supported classifier loads back with identical predictions and probabilities."""
    model.fit(X, Y_CLASS)
    save_model(model, tmp_path / "model.skops")
    loaded = load_model(tmp_path / "model.skops")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("model", REGRESSORS, ids=lambda m: type(m).__name__)
def test_regressor_round_trip_predicts_identically(model: Any, tmp_path: Path) -> None:
    """Every supported regressor loads back with identical predictions."""
    model.fit(X, Y_REG)
    save_model(model, tmp_path / "model.skops")
    np.testing.assert_array_equal(load_model(tmp_path / "model.skops").predict(X), model.predict(X))


@pytest.mark.parametrize(
    "estimator",
    [LogisticRegression(), RandomForestClassifier(n_estimators=5, random_state=0)],
    ids=lambda m: type(m).__name__,
)
def test_pipeline_from_preprocessing_spec_round_trip(estimator: Any, tmp_path: Path) -> None:
    """A Pipeline of our preprocessing ColumnTransformer and a model loads back unchanged,
    including a forest that sees more columns (one-hot) than the pipeline takes."""
    frame, target = applicants()
    pipeline = Pipeline([("prep", SPEC.to_column_transformer()), ("model", estimator)])
    pipeline.fit(frame, target)
    saved = save_model(pipeline, tmp_path / "pipeline.skops")
    assert saved.untrusted_types == ()
    loaded = load_model(tmp_path / "pipeline.skops")
    np.testing.assert_array_equal(loaded.predict(frame), pipeline.predict(frame))
    np.testing.assert_array_equal(loaded.predict_proba(frame), pipeline.predict_proba(frame))


def test_model_file_records_format_versions_and_types(tmp_path: Path) -> None:
    """The ModelFile says how the model was written and which types it needs trusted."""
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y_CLASS)
    saved = save_model(model, tmp_path / "sub" / "forest.skops")
    assert isinstance(saved, ModelFile)
    assert saved.path == tmp_path / "sub" / "forest.skops" and saved.path.is_file()
    assert (saved.flavor, saved.format) == ("sklearn", "skops")
    assert saved.model_type == "sklearn.ensemble._forest.RandomForestClassifier"
    assert set(saved.versions) == {"sklearn", "skops", "numpy", "python"}
    assert saved.types == ("sklearn.tree._tree.Tree",)
    assert saved.untrusted_types == ()
    doc = json.loads(json.dumps(saved.to_dict()))
    assert doc["types"] == ["sklearn.tree._tree.Tree"] and doc["format"] == "skops"


def test_allow_list_is_exact_names_with_reasons() -> None:
    """The allow-list names exact types, each with the reason it is safe, and no prefixes."""
    assert set(SHIPYARD_TRUSTED_TYPES) == {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
    assert all(reason for reason in SHIPYARD_TRUSTED_TYPES.values())


# -- refusing what is not trusted -------------------------------------------------------------


def test_custom_class_is_refused_at_load_and_loads_when_trusted(tmp_path: Path) -> None:
    """A model wrapping a user class is refused, naming the class, until it is trusted."""
    model = Pipeline([("double", Doubler()), ("model", LogisticRegression())]).fit(X, Y_CLASS)
    saved = save_model(model, tmp_path / "custom.skops")
    name = qualified(Doubler)
    assert saved.untrusted_types == (name,)

    with pytest.raises(UntrustedModelError) as caught:
        load_model(tmp_path / "custom.skops")
    assert name in caught.value.message
    assert "trusted=" in caught.value.message
    assert caught.value.details == {"untrusted_types": [name]}
    assert isinstance(caught.value, InvalidInputError)

    loaded = load_model(tmp_path / "custom.skops", trusted=[name])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_trusting_one_type_does_not_trust_the_others(tmp_path: Path) -> None:
    """Only the types passed as trusted are added; the error lists the ones still missing."""
    model = Pipeline(
        [("eval", FunctionTransformer(func=eval)), ("double", Doubler()), ("lr", Ridge())]
    )
    save_model(model, tmp_path / "two.skops")
    with pytest.raises(UntrustedModelError) as caught:
        load_model(tmp_path / "two.skops", trusted=[qualified(Doubler)])
    assert caught.value.details["untrusted_types"] == ["builtins.eval"]


@pytest.mark.parametrize(
    ("module", "name"), [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen")]
)
def test_hand_crafted_file_naming_a_dangerous_callable_is_refused(
    module: str, name: str, tmp_path: Path
) -> None:
    """A file edited to reference os.system, eval or Popen is refused before anything is
    built from it."""
    save_model(LogisticRegression().fit(X, Y_CLASS), tmp_path / "honest.skops")

    def inject(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["C"] = {
            "__class__": name,
            "__module__": module,
            "__loader__": "TypeNode",
        }

    rewrite_schema(tmp_path / "honest.skops", tmp_path / "crafted.skops", inject)
    with pytest.raises(UntrustedModelError) as caught:
        load_model(tmp_path / "crafted.skops")
    assert f"{module}.{name}" in caught.value.details["untrusted_types"]


def test_crafted_top_level_object_is_refused(tmp_path: Path) -> None:
    """A file whose top-level object claims to be builtins.eval is refused."""
    save_model(LogisticRegression().fit(X, Y_CLASS), tmp_path / "honest.skops")

    def swap(schema: dict[str, Any]) -> None:
        schema["__class__"], schema["__module__"] = "eval", "builtins"

    rewrite_schema(tmp_path / "honest.skops", tmp_path / "crafted.skops", swap)
    with pytest.raises(UntrustedModelError, match=r"builtins\.eval"):
        load_model(tmp_path / "crafted.skops")


@pytest.mark.parametrize("thing", [object(), {"weights": [1, 2]}, "a model", np.ones(3)])
def test_non_sklearn_object_is_refused_at_save(thing: Any, tmp_path: Path) -> None:
    """Anything that is a model of no flavor is refused, naming its type and the flavors."""
    with pytest.raises(InvalidInputError) as caught:
        save_model(thing, tmp_path / "x.skops")
    assert qualified(type(thing)) in caught.value.message
    assert "XGBoost and LightGBM models" in caught.value.message
    assert not (tmp_path / "x.skops").exists()


def test_loading_something_that_is_not_an_estimator_is_refused(tmp_path: Path) -> None:
    """A skops file holding plain data (not written by save_model) is not a model."""
    import skops.io as sio

    sio.dump({"weights": [1, 2, 3]}, tmp_path / "data.skops")
    with pytest.raises(InvalidInputError, match="not a scikit-learn estimator"):
        load_model(tmp_path / "data.skops")


# -- damaged files ----------------------------------------------------------------------------


def _damaged(kind: str, good: bytes) -> bytes:
    if kind == "random bytes":
        return bytes(np.random.default_rng(0).integers(0, 256, size=500, dtype=np.uint8))
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "empty":
        return b""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        if kind == "zip without schema":
            z.writestr("other.txt", "hello")
        else:  # "schema is not JSON"
            z.writestr("schema.json", "{not json")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "kind", ["random bytes", "truncated", "empty", "zip without schema", "schema is not JSON"]
)
def test_damaged_file_gives_invalid_input_error(kind: str, tmp_path: Path) -> None:
    """A file that is not a readable skops file gives InvalidInputError naming the file."""
    save_model(LogisticRegression().fit(X, Y_CLASS), tmp_path / "good.skops")
    bad = tmp_path / "bad.skops"
    bad.write_bytes(_damaged(kind, (tmp_path / "good.skops").read_bytes()))
    with pytest.raises(InvalidInputError) as caught:
        load_model(bad)
    assert type(caught.value) is InvalidInputError
    assert str(bad) in caught.value.message


def test_missing_file_gives_invalid_input_error(tmp_path: Path) -> None:
    """Loading a path that does not exist says so."""
    with pytest.raises(InvalidInputError, match="cannot read the model file: No such file"):
        load_model(tmp_path / "nowhere.skops")


# -- tree structure ---------------------------------------------------------------------------


def _tamper_tree(model: Any, field: str, value: int) -> None:
    tree = model.estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"][field][0] = value
    tree.__setstate__(state)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("left_child", 10**6, "child index"),
        ("right_child", 0, "child index"),  # points back at its parent: a cycle
        ("feature", 3, "feature outside the 3 input columns"),
    ],
)
def test_tree_with_out_of_range_indices_is_refused(
    field: str, value: int, reason: str, tmp_path: Path
) -> None:
    """A forest whose node arrays point outside their arrays or X is refused at load,
    before scikit-learn could follow the indices without bounds checks."""
    model = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y_CLASS)
    _tamper_tree(model, field, value)
    save_model(model, tmp_path / "forest.skops")
    with pytest.raises(InvalidInputError, match=reason):
        load_model(tmp_path / "forest.skops")


@pytest.mark.parametrize(("field", "value"), [("left", 10**6), ("feature_idx", 99)])
def test_hist_gradient_boosting_with_bad_nodes_is_refused(
    field: str, value: int, tmp_path: Path
) -> None:
    """The same check covers the trees of HistGradientBoosting models."""
    model = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(X, Y_CLASS)
    nodes = model._predictors[0][0].nodes
    nodes[field][0] = value
    save_model(model, tmp_path / "hgb.skops")
    with pytest.raises(InvalidInputError, match="invalid structure"):
        load_model(tmp_path / "hgb.skops")


def test_forest_claiming_more_features_than_its_outer_estimator_is_refused(
    tmp_path: Path,
) -> None:
    """A sub-tree cannot widen the input that its enclosing forest validated."""
    model = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y_CLASS)
    model.n_features_in_ = 2  # the forest now checks X for 2 columns; its trees use 3
    del model.feature_names_in_
    save_model(model, tmp_path / "forest.skops")
    with pytest.raises(InvalidInputError, match="outside the 2 input columns"):
        load_model(tmp_path / "forest.skops")


# -- library versions ------------------------------------------------------------------------------


def test_the_saved_versions_are_the_running_ones(tmp_path: Path) -> None:
    """A saved model records the scikit-learn, skops, numpy and Python it was saved with."""
    saved = save_model(LogisticRegression().fit(X, Y_CLASS), tmp_path / "m.skops")
    assert saved.versions == running_versions()
    assert saved.versions["sklearn"] == sklearn.__version__


@pytest.mark.parametrize(
    ("saved", "running", "problem"),
    [
        pytest.param({"sklearn": "1.6.0"}, {"sklearn": "1.6.1"}, None, id="same-minor"),
        pytest.param({}, {"sklearn": "1.6.1"}, None, id="saved-unknown"),
        pytest.param(
            {"sklearn": "1.4.2"},
            {"sklearn": "1.6.1"},
            "the model was saved with scikit-learn 1.4.2 and runs on 1.6.1; fitted attributes "
            "can change between minor versions, so it is answered by scikit-learn, not "
            "compiled (register it again under scikit-learn 1.6 to compile it)",
            id="saved-1.4",
        ),
        pytest.param(
            {"sklearn": "1.10.0"},
            {"sklearn": "1.10.0"},
            "scikit-learn 1.10.0 is outside the versions shipyard supports (>=1.4, <1.10); "
            "install a supported version",
            id="running-too-new",
        ),
        pytest.param(
            {"sklearn": "1.3.2"},
            {"sklearn": "1.3.2"},
            "scikit-learn 1.3.2 is outside the versions shipyard supports (>=1.4, <1.10); "
            "install a supported version",
            id="running-too-old",
        ),
    ],
)
def test_version_problem_names_what_differs(
    saved: dict[str, str], running: dict[str, str], problem: str | None
) -> None:
    """A model saved with another scikit-learn minor version, or a running version outside
    the supported range, gets a sentence saying so; the same minor version gets None."""
    assert version_problem(saved, running) == problem


def test_the_supported_range_is_the_one_pyproject_requires() -> None:
    """pyproject.toml bounds scikit-learn to exactly the range the compiled path supports,
    and the installed version is inside it."""
    doc = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    [requirement] = [d for d in doc["project"]["dependencies"] if d.startswith("scikit-learn")]
    (low, high) = SKLEARN_SUPPORTED
    bounds = set(requirement.removeprefix("scikit-learn").split(","))
    assert bounds == {f">={low[0]}.{low[1]}", f"<{high[0]}.{high[1]}"}
    assert version_problem(None) is None
