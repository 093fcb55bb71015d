"""XGBoost boosters compiled to code: XGBoost's answers (within its 32-bit floats) on rows
with missing values, at its thresholds and between them, or no compiled form at all."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from shipyard.data.preprocessing import PreprocessingSpec
from shipyard.registry.compiled import compile_predictor
from shipyard.registry.xgboost_trees import ATOL, RTOL, xgboost_sum
from tests.registry.test_compiled import (
    SPEC,
    assert_checked,
    customers,
    fit,
    labels_of,
    records,
    reference,
)

xgboost = pytest.importorskip("xgboost")

# age is not imputed: it reaches XGBoost as NaN, which takes each tree's default side.
NAN_AGE = PreprocessingSpec.from_dict(
    {"columns": {**SPEC.to_dict()["columns"], "age": {"scale": "standard"}}}
)


def _pipeline(estimator: Any) -> Pipeline:
    return Pipeline([("prep", NAN_AGE.to_column_transformer()), ("model", estimator)])


def _assert_xgboost_answers(predictor: Any, compiled: Any, rows: list[dict[str, Any]]) -> None:
    got = compiled.score(rows)
    want = predictor.answer(predictor.frame_from_records(rows))
    for g, w in zip(got, want, strict=True):
        if "probabilities" in w:
            assert g["prediction"] == w["prediction"]
            assert g["probabilities"] == pytest.approx(w["probabilities"], rel=RTOL, abs=ATOL)
        else:
            assert g["prediction"] == pytest.approx(w["prediction"], rel=RTOL, abs=ATOL)


@pytest.mark.parametrize(
    ("make", "target"),
    [
        pytest.param(lambda: xgboost.XGBClassifier(n_estimators=40, max_depth=3), 2, id="binary"),
        pytest.param(lambda: xgboost.XGBClassifier(n_estimators=15, max_depth=3), 3, id="3-class"),
        pytest.param(lambda: xgboost.XGBRegressor(n_estimators=30, max_depth=4), 0, id="regressor"),
    ],
)
def test_xgboost_trees_compile_to_code(make: Any, target: int) -> None:
    """binary:logistic, multi:softprob and reg:squarederror become nested ifs that answer as
    XGBoost does on unseen rows, missing ages included (each tree's default direction)."""
    frame = customers()
    y = frame["income"].fillna(0) if target == 0 else labels_of(frame, classes=target)
    predictor = fit(_pipeline(make().set_params(n_jobs=1, random_state=0)), y, frame)
    compiled, note = compile_predictor(predictor, rows=reference(frame))
    assert compiled is not None, note
    assert_checked(note, "XGBoost trees as code")
    unseen = customers(n=150, seed=9)
    assert unseen["age"].isna().any()
    _assert_xgboost_answers(predictor, compiled, records(unseen))


def test_values_at_and_between_thresholds_go_the_way_xgboost_sends_them() -> None:
    """XGBoost compares a feature rounded to a 32-bit float with a 32-bit threshold: a raw
    income on each threshold, and one 64-bit step either side of each rounding midpoint,
    scores as XGBoost scores it."""
    from shipyard.registry.xgboost_trees import _below

    frame = customers()
    model = xgboost.XGBRegressor(n_estimators=20, max_depth=3, n_jobs=1, random_state=0)
    predictor = fit(
        model, frame["income"] * 0.5 + frame["age"].fillna(40), frame[["income", "age"]]
    )
    compiled, note = compile_predictor(predictor, rows=reference(frame[["income", "age"]]))
    assert compiled is not None, note
    splits = model.get_booster().trees_to_dataframe()
    splits = splits[splits["Feature"] == "income"]["Split"].unique()
    assert len(splits) > 5
    incomes = []
    for t in splits:
        bound, _ = _below(float(t))
        incomes += [float(np.float32(t)), bound, np.nextafter(bound, -np.inf),
                    np.nextafter(bound, np.inf)]  # fmt: skip
    rows = [{"income": float(v), "age": 40.0} for v in incomes]
    got = [a["prediction"] for a in compiled.score(rows)]
    want = model.predict(pd.DataFrame(rows))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_what_is_not_compiled_is_named() -> None:
    """The dart booster, another objective and a missing value other than NaN are not
    compiled, and say so."""
    frame = customers()
    x, y = frame[["income"]], labels_of(frame)
    cases = {
        "booster 'dart'": xgboost.XGBClassifier(n_estimators=3, booster="dart"),
        "objective 'binary:logitraw'": xgboost.XGBClassifier(
            n_estimators=3, objective="binary:logitraw"
        ),
        "missing value is -1.0": xgboost.XGBClassifier(n_estimators=3, missing=-1.0),
    }
    for words, model in cases.items():
        model.set_params(n_jobs=1).fit(x, y)
        with pytest.raises(Exception, match=words):
            xgboost_sum(model)
