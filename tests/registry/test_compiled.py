"""Compiled pipelines: the same answers as scikit-learn, or no compiled form at all."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.tree import DecisionTreeRegressor

from shipyard.data.preprocessing import PreprocessingSpec
from shipyard.registry.compiled import CompiledModel, NotCompiled, _check, compile_predictor
from shipyard.registry.signatures import CheckedPredictor, infer_signature

SPEC = PreprocessingSpec.from_dict(
    {
        "columns": {
            "age": {"impute": "median", "scale": "standard"},
            "income": {"impute": "mean", "scale": "robust"},
            "city": {"impute": "most_frequent", "encode": {"method": "onehot"}},
            "plan": {"impute": "most_frequent", "encode": {"method": "ordinal"}},
            "member": {"encode": {"method": "onehot"}},
            "joined": {"drop": True},
        }
    }
)


def customers(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=n).astype("float64"),
            "income": rng.normal(3000, 800, size=n),
            "city": pd.Series(rng.choice(["Paris", "Lyon", "Nice"], size=n), dtype="str"),
            "plan": pd.Series(rng.choice(["basic", "plus", "pro"], size=n), dtype="str"),
            "member": rng.integers(0, 2, size=n).astype(bool),
            "joined": pd.to_datetime("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 300, size=n), "D"),
        }
    )
    frame.loc[::17, "age"] = np.nan
    frame.loc[::23, "city"] = np.nan
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the server hands them to a compiled model (missing values as None)."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (None if _missing(v) else _python(v)) for k, v in row.items()})
    return out


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _python(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def fit(model: Any, target: pd.Series, frame: pd.DataFrame | None = None) -> CheckedPredictor:
    frame = customers() if frame is None else frame
    model.fit(frame, target)
    return CheckedPredictor(model, infer_signature(model, frame.head(10)), name="m@1")


def labels_of(frame: pd.DataFrame, classes: int = 2) -> pd.Series:
    score = frame["income"].fillna(3000) / 800 + (frame["city"] == "Paris") * 0.8
    return pd.Series(pd.qcut(score, classes, labels=False)).astype(int)


def assert_same_answers(predictor: CheckedPredictor, compiled: CompiledModel) -> None:
    """On rows the model has not seen (with missing values): the same labels, and
    probabilities or values within a relative 1e-9."""
    rows = records(customers(n=150, seed=9))
    assert_close(compiled.score(rows), predictor.answer(predictor.frame_from_records(rows)))


def assert_close(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        if "probabilities" in e:  # a classifier: the same label
            assert g["prediction"] == e["prediction"]
            assert g["probabilities"] == pytest.approx(e["probabilities"], rel=1e-9)
        else:
            assert g["prediction"] == pytest.approx(e["prediction"], rel=1e-9)


def test_a_logistic_regression_behind_the_spec_compiles_to_the_same_answers() -> None:
    frame = customers()
    predictor = fit(
        Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())]),
        labels_of(frame),
        frame,
    )
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert note == "compiled (arithmetic), checked on 256 rows"
    assert_same_answers(predictor, compiled)


def test_a_three_class_logistic_regression_compiles_to_the_same_answers() -> None:
    frame = customers()
    predictor = fit(
        Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())]),
        labels_of(frame, classes=3).map({0: "low", 1: "mid", 2: "high"}),
        frame,
    )
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert_same_answers(predictor, compiled)


def test_a_regressor_with_min_max_clipping_and_ordinal_codes_compiles() -> None:
    prep = ColumnTransformer(
        [
            ("num", Pipeline([("i", SimpleImputer()), ("s", MinMaxScaler(clip=True))]), ["age"]),
            ("inc", "passthrough", ["income"]),
            (
                "cat",
                Pipeline(
                    [
                        ("i", SimpleImputer(strategy="constant", fill_value="?")),
                        ("o", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
                    ]
                ),
                ["city", "plan"],
            ),
        ]
    )
    frame = customers()
    predictor = fit(Pipeline([("prep", prep), ("model", Ridge(alpha=0.5))]), frame["income"] * 2)
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert_same_answers(predictor, compiled)


def test_a_scaler_over_the_whole_feature_vector_is_compiled_too() -> None:
    frame = customers()
    model = Pipeline(
        [
            ("prep", SPEC.to_column_transformer()),
            ("scale", StandardScaler()),
            ("model", LinearRegression()),
        ]
    )
    predictor = fit(model, frame["income"].fillna(0) + 3, frame)
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert_same_answers(predictor, compiled)


def test_another_estimator_gets_compiled_features_on_arrays() -> None:
    frame = customers()
    boosting = Pipeline(
        [
            ("prep", SPEC.to_column_transformer()),
            ("model", GradientBoostingRegressor(n_estimators=10, random_state=0)),
        ]
    )
    predictor = fit(boosting, frame["income"].fillna(0), frame)
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert note == "compiled (GradientBoostingRegressor on arrays), checked on 256 rows"
    assert_same_answers(predictor, compiled)


@pytest.mark.parametrize(
    ("estimator", "target"),
    [
        pytest.param(RandomForestClassifier(n_estimators=25, random_state=0), 2, id="forest"),
        pytest.param(ExtraTreesClassifier(n_estimators=10, random_state=0), 3, id="extra-3-class"),
        pytest.param(RandomForestRegressor(n_estimators=10, random_state=0), 0, id="regressor"),
        pytest.param(DecisionTreeRegressor(max_depth=6, random_state=0), 0, id="one-tree"),
    ],
)
def test_forests_are_walked_in_python(estimator: Any, target: int) -> None:
    """Trees compare 32-bit features as scikit-learn does; probabilities are the mean of the
    leaves' class proportions."""
    frame = customers()
    y = frame["income"].fillna(0) if target == 0 else labels_of(frame, classes=target)
    model = Pipeline([("prep", SPEC.to_column_transformer()), ("model", estimator)])
    predictor = fit(model, y, frame)
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert note == "compiled (trees walked in Python), checked on 256 rows"
    assert_same_answers(predictor, compiled)


@pytest.mark.parametrize(
    ("estimator", "target"),
    [
        pytest.param(HistGradientBoostingClassifier(max_iter=40, random_state=0), 2, id="binary"),
        pytest.param(HistGradientBoostingClassifier(max_iter=15, random_state=0), 3, id="3-class"),
        pytest.param(HistGradientBoostingRegressor(max_iter=30, random_state=0), 0, id="regressor"),
    ],
)
def test_gradient_boosted_trees_compile_to_code(estimator: Any, target: int) -> None:
    """Every tree becomes nested ifs; a numeric column the spec does not impute reaches the
    trees as NaN in scikit-learn, and the missing-value side the trees learned is kept."""
    frame = customers()
    spec = PreprocessingSpec.from_dict(
        {"columns": {**SPEC.to_dict()["columns"], "age": {"scale": "standard"}}}
    )
    y = frame["income"].fillna(0) if target == 0 else labels_of(frame, classes=target)
    predictor = fit(
        Pipeline([("prep", spec.to_column_transformer()), ("model", estimator)]), y, frame
    )
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert note == "compiled (trees as code), checked on 256 rows"
    assert_same_answers(predictor, compiled)


def test_trees_that_split_on_categories_are_called_on_arrays() -> None:
    prep = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["age", "income"]),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan"]),
        ]
    )
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features=[2], random_state=0)
    frame = customers()
    predictor = fit(Pipeline([("prep", prep), ("model", model)]), labels_of(frame), frame)
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert note == "compiled (HistGradientBoostingClassifier on arrays), checked on 256 rows"
    assert_same_answers(predictor, compiled)


def test_a_step_it_does_not_know_leaves_the_model_to_scikit_learn() -> None:
    prep = ColumnTransformer(
        [("num", Pipeline([("i", SimpleImputer()), ("p", PolynomialFeatures())]), ["age"])]
    )
    predictor = fit(
        Pipeline([("prep", prep), ("model", LinearRegression())]), customers()["income"]
    )
    compiled, note = compile_predictor(predictor)
    assert compiled is None
    assert note == "not compiled: PolynomialFeatures is not compiled"


def test_rows_the_arithmetic_does_not_cover_go_to_scikit_learn() -> None:
    """A missing value with no imputer, and a category the encoder refuses, raise
    NotCompiled; scikit-learn then fails on them too, in its own words."""
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["income"]),
            ("cat", OneHotEncoder(drop="first", handle_unknown="error"), ["plan"]),
        ]
    )
    frame = customers()
    predictor = fit(
        Pipeline([("prep", prep), ("model", LogisticRegression())]), labels_of(frame), frame
    )
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    good = records(frame.head(3))
    assert_close(compiled.score(good), predictor.answer(predictor.frame_from_records(good)))
    for change in ({"income": None}, {"plan": "enterprise"}):
        row = {**good[0], **change}
        with pytest.raises(NotCompiled):
            compiled.score([good[1], row])
        with pytest.raises(ValueError):
            predictor.answer(predictor.frame_from_records([row]))
    dropped = {**good[0], "plan": "basic"}  # the dropped first category: all zeros
    assert_close(
        compiled.score([dropped]), predictor.answer(predictor.frame_from_records([dropped]))
    )


def test_a_compiled_form_that_disagrees_with_scikit_learn_is_refused() -> None:
    """The check before use compares answers: the arithmetic of another fit fails it."""
    frame = customers()
    one = fit(
        Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())]),
        labels_of(frame),
        frame,
    )
    other = fit(
        Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression(C=0.001))]),
        labels_of(frame),
        frame,
    )
    compiled_other, _ = compile_predictor(other)
    assert compiled_other is not None
    problem = _check(one, compiled_other)
    assert problem is not None
    assert "differs from scikit-learn" in problem or "predicts" in problem
