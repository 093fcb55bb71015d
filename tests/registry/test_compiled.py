"""Compiled pipelines: the same answers as scikit-learn, or no compiled form at all."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
import sklearn.linear_model
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
from shipyard.registry.compiled import CompiledModel, NotCompiled, compile_predictor
from shipyard.registry.equivalence import check_against_sklearn, generated_rows
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


def reference(frame: pd.DataFrame, n: int = 256) -> list[dict[str, Any]]:
    """Rows of the training data, as ``Models.reference_rows`` samples them."""
    return records(frame.sample(min(n, len(frame)), random_state=0))


def assert_checked(note: str, how: str) -> None:
    """The note says what was compiled and that it was checked on 256 reference rows."""
    pattern = (
        rf"compiled \({re.escape(how)}\), checked on 256 reference rows "
        r"\(\d+ distinct answers\) and \d+ edge rows"
    )
    assert re.fullmatch(pattern, note), note


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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    assert_checked(note, "arithmetic")
    assert_same_answers(predictor, compiled)


def test_a_three_class_logistic_regression_compiles_to_the_same_answers() -> None:
    frame = customers()
    predictor = fit(
        Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())]),
        labels_of(frame, classes=3).map({0: "low", 1: "mid", 2: "high"}),
        frame,
    )
    compiled, note = compile_predictor(predictor, rows=reference(frame))
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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    assert_checked(note, "GradientBoostingRegressor on arrays")
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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    assert_checked(note, "trees walked in Python")
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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    assert_checked(note, "trees as code")
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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    assert_checked(note, "HistGradientBoostingClassifier on arrays")
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
    compiled, note = compile_predictor(predictor, rows=reference(frame))
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
    compiled_other, _ = compile_predictor(other, rows=reference(frame))
    assert compiled_other is not None
    problem = check_against_sklearn(one, compiled_other, reference(frame)).problem
    assert problem is not None
    assert re.match(r"reference row \d+: (predicts|gives class)", problem), problem


def test_without_reference_rows_the_check_runs_on_generated_rows_and_says_so() -> None:
    """A version with no training data in its lineage is checked on rows generated from what
    the pipeline learned, and the note says that is what it was checked on."""
    frame = customers()
    predictor = fit(
        Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())]),
        labels_of(frame),
        frame,
    )
    compiled, note = compile_predictor(predictor)
    assert compiled is not None, note
    assert re.fullmatch(
        r"compiled \(arithmetic\), checked on 256 generated rows, for want of reference rows "
        r"\(\d+ distinct answers\), and \d+ edge rows",
        note,
    ), note


# -- what the check catches ----------------------------------------------------------------------


def income_forest() -> tuple[CheckedPredictor, pd.DataFrame]:
    """A forest over one passthrough column, incomes in the tens of thousands."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"income": rng.normal(30_000, 8_000, size=400)})
    model = Pipeline(
        [
            ("prep", ColumnTransformer([("income", "passthrough", ["income"])])),
            ("model", RandomForestClassifier(n_estimators=25, random_state=0)),
        ]
    )
    return fit(model, (frame["income"] > 30_000).astype(int), frame), frame


def wrong_above(compiled: CompiledModel, limit: float) -> CompiledModel:
    """``compiled``, except that it gives the other class to incomes above ``limit``."""

    def flipped(answer: dict[str, Any]) -> dict[str, Any]:
        p = answer["probabilities"]
        return {"prediction": 1 - answer["prediction"], "probabilities": {"0": p["1"], "1": p["0"]}}

    def head(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers = compiled.score(rows)
        return [
            flipped(a) if r["income"] > limit else a for r, a in zip(rows, answers, strict=True)
        ]

    return CompiledModel(dict, head, "wrong above the limit")


def test_a_forest_on_a_passthrough_income_is_checked_on_the_models_own_rows() -> None:
    """Rows generated around zero give a forest over incomes in the tens of thousands one
    answer, so they cannot tell a compiled form that is wrong above 40,000 from the right
    one, and that check refuses to vouch for either; the model's own rows catch the wrong
    form and pass the right one."""
    predictor, frame = income_forest()
    rows = reference(frame)
    right, note = compile_predictor(predictor, rows=rows)
    assert right is not None, note
    assert_checked(note, "trees walked in Python")
    wrong = wrong_above(right, 40_000)

    covered = [r for r in generated_rows(predictor) if r["income"] is not None]
    assert wrong.score(covered) == right.score(covered)
    assert len({repr(a) for a in right.score(covered)}) == 1

    unchecked, note = compile_predictor(predictor)
    assert unchecked is None
    assert "the 256 generated rows get 1 distinct answer from scikit-learn" in note, note
    blind = check_against_sklearn(predictor, wrong).problem
    assert blind is not None and "1 distinct answer" in blind

    caught = check_against_sklearn(predictor, wrong, rows).problem
    assert caught is not None
    assert re.match(r"reference row \d+: predicts [01], scikit-learn [01]$", caught), caught
    assert check_against_sklearn(predictor, right, rows).problem is None


def test_an_income_too_large_for_32_bit_floats_is_refused_by_both() -> None:
    """A forest casts its input to float32, so scikit-learn refuses 1e39; the compiled forest
    refuses it too (the request goes to scikit-learn, which says why), and a compiled form
    that answered it would fail the check."""
    predictor, frame = income_forest()
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    for value in (1e39, -1e39):
        row = {"income": value}
        with pytest.raises(NotCompiled):
            compiled.score([row])
        with (
            warnings.catch_warnings(),  # NumPy warns of the overflow on the way
            pytest.raises(ValueError, match=r"too large for dtype\('float32'\)"),
        ):
            warnings.simplefilter("ignore", RuntimeWarning)
            predictor.answer(predictor.frame_from_records([row]))

    def clipped(row: Mapping[str, Any]) -> dict[str, Any]:
        v = row["income"]
        big = isinstance(v, float) and math.isfinite(v) and abs(v) > 3e38
        return {"income": math.copysign(3e38, v)} if big else dict(row)

    answers_everything = CompiledModel(clipped, compiled.score, "clipped")
    problem = check_against_sklearn(predictor, answers_everything, reference(frame)).problem
    assert problem == (
        "the edge row with income at 1e39: scikit-learn refuses it (ValueError), "
        "the compiled model answers"
    )


def test_a_whole_number_too_large_for_int64_goes_to_scikit_learn() -> None:
    """An int column reaches scikit-learn as int64, which cannot hold 2**63; the compiled
    model refuses that row too instead of answering it."""
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"visits": rng.integers(0, 50, size=200), "income": rng.normal(size=200)})
    predictor = fit(LogisticRegression(), (frame["visits"] > 25).astype(int), frame)
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    row = {"visits": 2**63, "income": 0.5}
    with pytest.raises(NotCompiled):
        compiled.score([row])
    with pytest.raises(OverflowError):
        predictor.answer(predictor.frame_from_records([row]))


def test_the_label_is_the_one_predict_gives_where_the_probabilities_tie() -> None:
    """A decision score of 1e-17 rounds both probabilities to 0.5; the compiled label is
    still the one ``predict()`` gives (the second class), not the first of two equal
    probabilities."""
    frame = pd.DataFrame({"x": np.linspace(-3, 3, 60)})
    model = LogisticRegression().fit(frame, (frame["x"] > 0).astype(int))
    model.coef_, model.intercept_ = np.array([[1.0]]), np.array([0.0])
    predictor = CheckedPredictor(model, infer_signature(model, frame), name="m@1")
    compiled, note = compile_predictor(predictor, rows=records(frame))
    assert compiled is not None, note
    tie = pd.DataFrame({"x": [1e-17]})
    [answer] = compiled.score(records(tie))
    assert answer["probabilities"] == {"0": 0.5, "1": 0.5}
    assert answer["prediction"] == model.predict(tie)[0] == 1


# -- what is compiled: scikit-learn's own classes ----------------------------------------------


def shifted_logistic_regression() -> Any:
    """A user's class named LogisticRegression, a subclass of scikit-learn's whose decision
    function (so predict and predict_proba) is moved by 2."""

    class LogisticRegression(sklearn.linear_model.LogisticRegression):  # type: ignore[misc]
        def decision_function(self, X: Any) -> Any:
            return super().decision_function(X) + 2.0

    return LogisticRegression()


def test_a_same_named_subclass_of_logistic_regression_is_not_compiled_as_one() -> None:
    """A LogisticRegression that is not scikit-learn's own class is called on arrays, never
    turned into the arithmetic of its coefficients: its answers stay its own."""
    frame = customers()
    predictor = fit(
        Pipeline(
            [("prep", SPEC.to_column_transformer()), ("model", shifted_logistic_regression())]
        ),
        labels_of(frame),
        frame,
    )
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    assert_checked(
        note,
        "tests.registry.test_compiled.shifted_logistic_regression.<locals>.LogisticRegression"
        " on arrays",
    )
    assert_same_answers(predictor, compiled)


def test_a_subclass_of_a_scaler_is_not_compiled() -> None:
    """A step that subclasses StandardScaler may transform differently, so the pipeline is
    left to scikit-learn, naming the class."""

    class ClippedScaler(StandardScaler):  # type: ignore[misc]
        def transform(self, X: Any, copy: Any = None) -> Any:
            return np.clip(super().transform(X, copy=copy), -1, 1)

    prep = ColumnTransformer([("num", ClippedScaler(), ["income"])])
    frame = customers()
    predictor = fit(
        Pipeline([("prep", prep), ("model", LogisticRegression())]), labels_of(frame), frame
    )
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is None
    assert note == (
        "not compiled: tests.registry.test_compiled.test_a_subclass_of_a_scaler_is_not_compiled"
        ".<locals>.ClippedScaler is not compiled"
    )


# -- falling back to scikit-learn ------------------------------------------------------------------


def _huge_intercept(model: Pipeline) -> None:
    model[-1].intercept_ = np.array([10**400], dtype=object)


def _zero_scale(model: Pipeline) -> None:
    model[0].named_transformers_["num"].scale_ = np.zeros(1)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(
            _huge_intercept,
            "not compiled: OverflowError: int too large to convert to float",
            id="while-compiling",
        ),
        pytest.param(
            _zero_scale,
            "not compiled: reference row 0: the compiled model fails (ZeroDivisionError)",
            id="while-checking",
        ),
    ],
)
def test_an_error_while_compiling_or_checking_leaves_the_model_to_scikit_learn(
    damage: Any, reason: str
) -> None:
    """An error of any type while compiling or checking gives no compiled form and a note
    with the reason, never an exception that would stop the server."""
    prep = ColumnTransformer([("num", StandardScaler(), ["income"])])
    frame = customers()
    model = Pipeline([("prep", prep), ("model", LogisticRegression())])
    predictor = fit(model, labels_of(frame), frame)
    damage(model)
    assert compile_predictor(predictor, rows=reference(frame)) == (None, reason)


def test_a_model_saved_with_another_scikit_learn_minor_version_is_not_compiled() -> None:
    """The compiled path reads fitted attributes that change between minor versions: a
    model saved with scikit-learn 1.4.2 is left to scikit-learn, and the note says why;
    saved with the running version, it compiles."""
    frame = customers()
    model = Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())])
    model.fit(frame, labels_of(frame))
    signature = infer_signature(model, frame.head(10))
    old = CheckedPredictor(model, signature, name="m@1", saved_with={"sklearn": "1.4.2"})
    compiled, note = compile_predictor(old, rows=reference(frame))
    assert compiled is None
    assert note.startswith(
        f"not compiled: the model was saved with scikit-learn 1.4.2 and runs on "
        f"{sklearn.__version__}; "
    ), note
    same = CheckedPredictor(
        model, signature, name="m@1", saved_with={"sklearn": sklearn.__version__}
    )
    assert compile_predictor(same, rows=reference(frame))[0] is not None
