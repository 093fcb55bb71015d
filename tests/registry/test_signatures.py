"""Model signatures: inference from an example, round trip, and checked prediction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from shipyard.data.preprocessing import PreprocessingSpec
from shipyard.errors import InvalidInputError
from shipyard.registry.signatures import CheckedPredictor, Signature, infer_signature

SPEC = PreprocessingSpec.from_dict(
    {
        "columns": {
            "age": {"impute": "median", "scale": "standard"},
            "income": {"impute": "median", "scale": "robust"},
            "city": {"impute": "most_frequent", "encode": {"method": "onehot"}},
            "member": {"encode": {"method": "onehot"}},
        }
    }
)


def applicants(n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=n),
            "income": rng.normal(3000, 800, size=n),
            "city": pd.Series(rng.choice(["Paris", "Lyon", "Nice"], size=n), dtype="str"),
            "member": rng.integers(0, 2, size=n).astype(bool),
        }
    )
    target = pd.Series(np.where(frame["income"] > 3000, "good", "bad"))
    return frame, target


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, pd.DataFrame, Signature]:
    frame, target = applicants()
    model = Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())])
    model.fit(frame, target)
    return model, frame, infer_signature(model, frame.head(5))


def predictor(fitted: tuple[Pipeline, pd.DataFrame, Signature]) -> CheckedPredictor:
    model, _, signature = fitted
    return CheckedPredictor(model, signature, name="credit-risk@3")


# -- inference --------------------------------------------------------------------------------


MIXED = {
    "n": [1, 2, None],
    "x": [1.5, None, 2.5],
    "flag": [True, False, None],
    "name": ["a", None, "c"],
    "when": [datetime(2024, 1, 1), datetime(2024, 2, 1), None],
}
EXPECTED_TYPES = {"n": "int", "x": "float", "flag": "bool", "name": "string", "when": "datetime"}


def _fit_on_numbers(frame: Any) -> LinearRegression:
    """A model fitted without column names, so the example's columns make the signature."""
    return LinearRegression().fit(np.zeros((3, frame.shape[1])), [0.0, 1.0, 2.0])


def test_infers_types_from_a_polars_frame() -> None:
    """int, float, bool, string and datetime columns of a polars frame map to their types,
    nullable, with no bounds taken from the example."""
    frame = pl.DataFrame(MIXED).with_columns(cat=pl.Series(["u", "v", "u"], dtype=pl.Categorical))
    signature = infer_signature(_fit_on_numbers(frame), frame)
    types = {name: spec.type for name, spec in signature.inputs.columns.items()}
    assert types == {**EXPECTED_TYPES, "cat": "category"}
    assert all(spec.nullable for spec in signature.inputs.columns.values())
    assert all(
        spec.min is None and spec.max is None and spec.allowed is None
        for spec in signature.inputs.columns.values()
    )


def test_infers_types_from_a_pandas_frame() -> None:
    """The same columns in pandas (nullable Int64, object bools, str, category,
    datetime64) give the same types."""
    frame = pd.DataFrame(
        {
            "n": pd.Series([1, 2, None], dtype="Int64"),
            "x": [1.5, np.nan, 2.5],
            "flag": [True, False, None],
            "name": pd.Series(["a", None, "c"], dtype="str"),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", None]),
            "cat": pd.Series(["u", "v", "u"], dtype="category"),
        }
    )
    signature = infer_signature(_fit_on_numbers(frame), frame)
    types = {name: spec.type for name, spec in signature.inputs.columns.items()}
    assert types == {**EXPECTED_TYPES, "cat": "category"}


def test_inputs_follow_the_columns_the_model_was_fitted_on(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """Inputs are the model's columns in fit order; other columns of the example are left
    out."""
    model, frame, _ = fitted
    example = frame.head(3).assign(comment="x")[["comment", "member", "city", "income", "age"]]
    signature = infer_signature(model, example)
    assert signature.columns == ["age", "income", "city", "member"]
    assert signature.inputs.columns["member"].type == "bool"


def test_example_lacking_a_fitted_column_is_refused(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """An example without a column the model needs cannot describe the model."""
    model, frame, _ = fitted
    with pytest.raises(InvalidInputError, match="lacks columns the model was fitted on: income"):
        infer_signature(model, frame.drop(columns=["income"]))


def test_column_of_unsupported_type_is_refused() -> None:
    """A column whose dtype a contract cannot describe is named, its type as people read it."""
    frame = pl.DataFrame({"tags": [[1], [2], [3]]})
    with pytest.raises(InvalidInputError, match=r"column tags has dtype list\[Int64\], which"):
        infer_signature(_fit_on_numbers(frame), frame)


def test_classifier_outputs_name_kind_classes_and_dtype(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """A classifier's outputs list its classes and their type."""
    _, _, signature = fitted
    assert signature.outputs == {
        "kind": "classification",
        "classes": ["bad", "good"],
        "dtype": "string",
    }
    int_model = LogisticRegression().fit([[0.0], [1.0], [2.0]], [0, 1, 1])
    outputs = infer_signature(int_model, pd.DataFrame({"x": [0.5]})).outputs
    assert outputs == {"kind": "classification", "classes": [0, 1], "dtype": "int"}
    assert type(outputs["classes"][0]) is int


def test_regressor_outputs_are_float() -> None:
    """A regressor's outputs are a float regression."""
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = RandomForestRegressor(n_estimators=2, random_state=0).fit(frame, [0.0, 1.0, 2.0, 3.0])
    assert infer_signature(model, frame).outputs == {"kind": "regression", "dtype": "float"}


def test_signature_round_trips_through_json(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """to_dict gives JSON that from_dict reads back into an equal signature."""
    _, _, signature = fitted
    doc = json.loads(json.dumps(signature.to_dict()))
    assert Signature.from_dict(doc) == signature
    assert doc["inputs"]["columns"]["age"] == {"type": "int", "nullable": True}


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"inputs": {"columns": {}}},
        {"inputs": {"columns": {"a": {"type": "int"}}}, "outputs": {"kind": "ranking"}},
        {"inputs": {"columns": {"a": {"type": "int"}}}, "outputs": {"kind": "classification"}},
        {"inputs": {"columns": {"a": {"type": "blob"}}}, "outputs": {"kind": "regression"}},
    ],
)
def test_from_dict_refuses_documents_that_are_not_signatures(doc: Any) -> None:
    """A malformed signature document gives InvalidInputError."""
    with pytest.raises(InvalidInputError):
        Signature.from_dict(doc)


# -- checked prediction -----------------------------------------------------------------------


def test_predictions_equal_the_model_on_pandas_and_polars(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """Checked predictions are the model's own, for pandas and polars input alike."""
    model, frame, _ = fitted
    checked = predictor(fitted)
    expected = model.predict(frame)
    np.testing.assert_array_equal(checked.predict(frame), expected)
    np.testing.assert_array_equal(checked.predict(pl.from_pandas(frame)), expected)
    proba = checked.predict_proba(pl.from_pandas(frame))
    assert isinstance(proba, np.ndarray) and proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba, model.predict_proba(frame))
    assert checked.is_classifier
    assert checked.classes is not None and checked.classes.tolist() == ["bad", "good"]


def test_missing_and_mistyped_columns_are_all_named(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """One error names every missing column and every column of the wrong type."""
    _, frame, _ = fitted
    bad = frame.drop(columns=["income"]).assign(age=frame["age"].astype(str), member="yes")
    with pytest.raises(InvalidInputError) as caught:
        predictor(fitted).predict(pl.from_pandas(bad))
    assert caught.value.message == (
        "input does not match the signature of credit-risk@3: missing columns: income; "
        "wrong types: age is String, expected int, member is String, expected bool"
    )
    assert caught.value.details["missing"] == ["income"]
    assert set(caught.value.details["wrong_types"]) == {"age", "member"}


def test_pandas_dtype_is_named_in_the_message(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """For pandas input the message shows the pandas dtype the caller passed."""
    _, frame, _ = fitted
    with pytest.raises(InvalidInputError, match="age is str, expected int"):
        predictor(fitted).predict(frame.assign(age=frame["age"].astype(str)))


def test_check_happens_before_the_model_sees_the_input(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """A mismatching frame never reaches the model."""
    _, frame, signature = fitted

    class Exploding(LogisticRegression):  # type: ignore[misc]
        def predict(self, X: Any) -> Any:
            raise AssertionError("the model was called")

    model = Exploding().fit([[0.0], [1.0]], ["bad", "good"])
    checked = CheckedPredictor(model, signature)
    with pytest.raises(InvalidInputError, match="missing columns: age"):
        checked.predict(frame.drop(columns=["age"]))


def test_extra_columns_are_ignored_and_order_is_irrelevant(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """Columns the signature does not name are dropped and the rest reordered."""
    model, frame, _ = fitted
    shuffled = frame.assign(note="x", score=1.0)[
        ["score", "member", "note", "city", "income", "age"]
    ]
    checked = predictor(fitted)
    np.testing.assert_array_equal(checked.predict(shuffled), model.predict(frame))
    np.testing.assert_array_equal(checked.predict(pl.from_pandas(shuffled)), model.predict(frame))


def test_int_accepted_for_float_and_nulls_pass_to_the_model(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """An int column may fill a float input, an int column with missing values (float64 in
    pandas, nulls in polars) is accepted, and the imputer fills the gaps."""
    model, frame, _ = fitted
    holes = frame.head(6).assign(income=[2000, 3000, 4000, 5000, 2500, 3500])
    holes.loc[0, "age"] = np.nan  # pandas turns the int column into float64
    holes.loc[1, "city"] = np.nan
    checked = predictor(fitted)
    got = checked.predict(holes)
    assert got.shape == (6,)
    np.testing.assert_array_equal(got, model.predict(holes))
    np.testing.assert_array_equal(checked.predict(pl.from_pandas(holes)), got)


def test_fractional_floats_are_not_accepted_as_int(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """A float column with fractions is not an int column."""
    _, frame, _ = fitted
    with pytest.raises(InvalidInputError, match="age is float64, expected int"):
        predictor(fitted).predict(frame.assign(age=frame["age"] + 0.5))


def test_predict_proba_refused_for_a_regressor() -> None:
    """A regressor has no probabilities; asking gives InvalidInputError."""
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    model = LinearRegression().fit(frame, [0.0, 1.0, 2.0])
    checked = CheckedPredictor(model, infer_signature(model, frame), name="price@1")
    np.testing.assert_allclose(checked.predict(frame), [0.0, 1.0, 2.0], atol=1e-9)
    assert checked.classes is None and not checked.is_classifier
    with pytest.raises(InvalidInputError, match="price@1 is a regressor"):
        checked.predict_proba(frame)


def test_model_fitted_without_column_names_gets_an_array() -> None:
    """A model fitted on an array receives the signature's columns in order, without the
    warning scikit-learn gives for unexpected column names."""
    model = LinearRegression().fit(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), [1.0, 2.0, 3.0])
    example = pd.DataFrame({"a": [1.0], "b": [0.0]})
    checked = CheckedPredictor(model, infer_signature(model, example))
    got = checked.predict(pl.DataFrame({"b": [1.0], "a": [0.0]}))
    np.testing.assert_allclose(got, [2.0])


def test_without_a_signature_frames_pass_as_given(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """A model registered without an input example still predicts on pandas and polars
    frames, but cannot validate records."""
    model, frame, _ = fitted
    unchecked = CheckedPredictor(model, None, name="legacy@1")
    np.testing.assert_array_equal(unchecked.predict(pl.from_pandas(frame)), model.predict(frame))
    assert unchecked.predict_proba(frame).shape == (len(frame), 2)
    with pytest.raises(InvalidInputError, match="legacy@1 has no signature"):
        unchecked.validate_records([{"age": 1}])


def test_signature_of_another_model_is_refused(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """Pairing a model with a signature describing other outputs fails at once."""
    _, _, signature = fitted
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(InvalidInputError, match="does not describe the model's outputs"):
        CheckedPredictor(model, signature)


def test_non_frame_input_is_refused(fitted: tuple[Pipeline, pd.DataFrame, Signature]) -> None:
    """Only pandas and polars frames are accepted."""
    with pytest.raises(InvalidInputError, match="expected a pandas or polars DataFrame"):
        predictor(fitted).predict([[1, 2, 3, 4]])


# -- JSON records -----------------------------------------------------------------------------


def test_valid_records_become_a_frame_in_signature_order(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """Records validate into a frame the model predicts on like the original rows;
    missing values are NaN."""
    model, frame, _ = fitted
    checked = predictor(fitted)
    records = [
        {"member": bool(r.member), "city": r.city, "income": r.income, "age": int(r.age)}
        for r in frame.head(4).itertuples()
    ]
    records.append({"age": 40, "income": 1000, "extra": "ignored"})  # int where float expected
    got = checked.validate_records(records)
    assert list(got.columns) == ["age", "income", "city", "member"]
    assert got["income"].dtype == np.float64
    assert pd.isna(got.loc[4, "city"]) and pd.isna(got.loc[4, "member"])
    np.testing.assert_array_equal(checked.predict(got.head(4)), model.predict(frame.head(4)))
    assert checked.predict(got).shape == (5,)


def test_record_errors_name_index_field_and_reason(
    fitted: tuple[Pipeline, pd.DataFrame, Signature],
) -> None:
    """Every invalid field of every record is listed with its index, the reason and the
    check that refused it."""
    records = [
        {"age": 30, "income": 2.0, "city": "Paris", "member": True},
        {"age": "thirty", "income": 2.0},
        {"age": 30, "income": 2.0, "member": "yes"},
    ]
    with pytest.raises(InvalidInputError) as caught:
        predictor(fitted).validate_records(records)
    message = caught.value.message
    assert message.startswith("2 problems in the records: ")
    assert "record 1, age: Input should be a valid integer" in message
    assert "record 2, member: Input should be a valid boolean" in message
    assert [(e["record"], e["field"], e["check"]) for e in caught.value.details["errors"]] == [
        (1, "age", "type"),
        (2, "member", "type"),
    ]


def test_record_errors_from_our_own_checks_read_as_the_server_words_them() -> None:
    """A time that is not ISO 8601 is reported in shipyard's words, as the model server
    reports it, without pydantic's "Value error, " prefix."""
    example = pd.DataFrame({"x": [1.0, 2.0, 3.0], "when": pd.to_datetime(["2024-01-01"] * 3)})
    model = _fit_on_numbers(example)
    checked = CheckedPredictor(model, infer_signature(model, example), name="timed@1")
    with pytest.raises(InvalidInputError) as caught:
        checked.validate_records([{"x": 1.0, "when": "yesterday"}])
    assert caught.value.details["errors"] == [
        {
            "record": 0,
            "field": "when",
            "reason": "expected an ISO 8601 date or time",
            "check": "type",
        }
    ]
    assert "Value error" not in caught.value.message


@pytest.mark.parametrize("records", [{"age": 1}, "age", None])
def test_records_must_be_a_list(
    records: Any, fitted: tuple[Pipeline, pd.DataFrame, Signature]
) -> None:
    """Something other than a list of records is refused."""
    with pytest.raises(InvalidInputError, match="expected a list of records"):
        predictor(fitted).validate_records(records)


def test_non_object_record_is_named(fitted: tuple[Pipeline, pd.DataFrame, Signature]) -> None:
    """A record that is not a JSON object is reported with its index."""
    with pytest.raises(InvalidInputError, match=r"record 0, \(record\)"):
        predictor(fitted).validate_records([[30, 2.0]])  # type: ignore[list-item]
