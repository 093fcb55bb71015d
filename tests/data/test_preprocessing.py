"""Declarative preprocessing: the spec document, its validation, and the scikit-learn
ColumnTransformer it compiles to."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.data.inference import spec_from_contract
from shipyard.data.preprocessing import (
    ColumnStep,
    Encode,
    Impute,
    PreprocessingSpec,
)
from shipyard.errors import InvalidInputError

BRIEF_YAML = """
columns:
  age:     {impute: median, scale: standard}
  income:  {impute: {strategy: constant, fill_value: 0}, scale: robust}
  city:    {impute: most_frequent, encode: {method: onehot, handle_unknown: ignore}}
  grade:   {encode: {method: ordinal, categories: [A, B, C]}}
  id:      {drop: true}
remainder: drop
"""


def train_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 50.0, 40.0],
            "income": [1000.0, np.nan, 3000.0, 5000.0, 4000.0],
            "city": ["Paris", "Lyon", "Paris", np.nan, "Nice"],
            "grade": ["A", "B", "C", "B", "A"],
            "id": [1, 2, 3, 4, 5],
            "extra": [9, 9, 9, 9, 9],
        }
    )


def fit(spec: PreprocessingSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    ct = spec.to_column_transformer()
    return ct, ct.fit_transform(frame)


# -- the document -----------------------------------------------------------------------------


def test_yaml_example_parses_into_steps() -> None:
    """The YAML example from the docs becomes one typed step per column."""
    spec = PreprocessingSpec.from_yaml(BRIEF_YAML)
    assert spec.remainder == "drop"
    assert spec.columns["age"] == ColumnStep(impute="median", scale="standard")
    assert spec.columns["income"].impute == Impute("constant", fill_value=0)
    assert spec.columns["income"].scale == "robust"
    assert spec.columns["city"].encode == Encode("onehot", handle_unknown="ignore")
    assert spec.columns["grade"].encode == Encode("ordinal", categories=("A", "B", "C"))
    assert spec.columns["grade"].impute is None
    assert spec.columns["id"].drop is True


def test_python_construction_equals_the_yaml_form() -> None:
    """Building the spec in Python with short strings gives the same spec as the YAML."""
    spec = PreprocessingSpec(
        columns={
            "age": ColumnStep(impute="median", scale="standard"),
            "income": ColumnStep(impute=Impute("constant", fill_value=0), scale="robust"),
            "city": ColumnStep(impute="most_frequent", encode="onehot"),
            "grade": ColumnStep(encode=Encode("ordinal", categories=["A", "B", "C"])),  # type: ignore[arg-type]
            "id": ColumnStep(drop=True),
        }
    )
    assert spec == PreprocessingSpec.from_yaml(BRIEF_YAML)


def test_every_strategy_and_method_is_accepted() -> None:
    """Each impute strategy, scaler and encoder named in the docs parses."""
    spec = PreprocessingSpec.from_dict(
        {
            "columns": {
                "a": {"impute": "mean", "scale": "minmax"},
                "b": {"impute": "median", "scale": "robust"},
                "c": {"impute": {"strategy": "constant", "fill_value": "?"}, "encode": "ordinal"},
                "d": {"impute": "most_frequent", "encode": "onehot"},
                "e": {"scale": "none"},
                "f": {"scale": "standard"},
                "g": {"encode": {"method": "onehot", "handle_unknown": "error"}},
                "h": {"encode": {"method": "ordinal", "unknown_value": -7}},
                "i": None,
            },
            "remainder": "passthrough",
        }
    )
    assert spec.columns["e"] == ColumnStep()  # "none" means no scaling
    assert spec.columns["i"] == ColumnStep()  # an empty entry keeps the column
    assert spec.columns["g"].encode == Encode("onehot", handle_unknown="error")
    assert spec.columns["h"].encode == Encode("ordinal", unknown_value=-7)


def test_empty_document_is_an_empty_spec() -> None:
    """An empty YAML file is a spec that drops every column."""
    assert PreprocessingSpec.from_yaml("") == PreprocessingSpec()


@pytest.mark.parametrize(
    "text",
    [
        BRIEF_YAML,
        "columns: {x: {impute: mean}}\nremainder: passthrough\n",
        "columns: {x: {encode: {method: ordinal, categories: [1, 2, 3], unknown_value: 9}}}\n",
        "columns: {x: {impute: {strategy: constant, fill_value: missing}, encode: onehot}}\n",
        "columns: {x: {}, y: {drop: true}}\n",
    ],
)
def test_documents_round_trip(text: str) -> None:
    """to_dict/from_dict and to_yaml/from_yaml give back an equal spec; to_dict is JSON."""
    spec = PreprocessingSpec.from_yaml(text)
    assert PreprocessingSpec.from_dict(spec.to_dict()) == spec
    assert PreprocessingSpec.from_yaml(spec.to_yaml()) == spec
    assert PreprocessingSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


scalars = st.one_of(st.integers(-5, 5), st.text("abcXYZ", min_size=1, max_size=4), st.floats(-2, 2))
impute_st = st.one_of(
    st.none(),
    st.sampled_from(["mean", "median", "most_frequent"]).map(Impute),
    scalars.map(lambda v: Impute("constant", fill_value=v)),
)
onehot_st = st.builds(
    Encode,
    st.just("onehot"),
    st.none() | st.lists(st.text("abc", min_size=1), min_size=1, unique=True).map(tuple),
    st.sampled_from(["ignore", "error"]),
)
ordinal_st = st.builds(
    Encode,
    st.just("ordinal"),
    st.none()
    | st.lists(st.text("abc", min_size=1), min_size=1, max_size=5, unique=True).map(tuple),
    unknown_value=st.integers(-10, -1),
)


@st.composite
def steps(draw: st.DrawFn) -> ColumnStep:
    if draw(st.booleans()):
        return ColumnStep(drop=draw(st.booleans()))
    impute = draw(impute_st)
    if draw(st.booleans()):
        if impute is not None and impute.strategy in ("mean", "median"):
            impute = Impute("most_frequent")
        return ColumnStep(impute=impute, encode=draw(onehot_st | ordinal_st))
    return ColumnStep(impute=impute, scale=draw(st.sampled_from(["standard", "minmax", None])))


@given(
    st.dictionaries(st.text("abcdefg_", min_size=1, max_size=6), steps(), max_size=6),
    st.sampled_from(["drop", "passthrough"]),
)
def test_any_valid_spec_round_trips(columns: dict[str, ColumnStep], remainder: Any) -> None:
    """For any valid spec, the YAML and dict documents read back as an equal spec."""
    spec = PreprocessingSpec(columns=columns, remainder=remainder)
    assert PreprocessingSpec.from_dict(spec.to_dict()) == spec
    assert PreprocessingSpec.from_yaml(spec.to_yaml()) == spec


def test_file_is_read(tmp_path: Path) -> None:
    """from_file reads a YAML file."""
    path = tmp_path / "prep.yaml"
    path.write_text(BRIEF_YAML)
    assert PreprocessingSpec.from_file(path) == PreprocessingSpec.from_yaml(BRIEF_YAML)


def test_missing_file_is_named(tmp_path: Path) -> None:
    """A missing file raises InvalidInputError naming the path."""
    with pytest.raises(InvalidInputError, match=r"nope\.yaml: no such file"):
        PreprocessingSpec.from_file(tmp_path / "nope.yaml")


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    """An invalid spec read from a file names the file in the message."""
    path = tmp_path / "prep.yaml"
    path.write_text("columns: {age: {scale: big}}\n")
    with pytest.raises(InvalidInputError, match=r"prep\.yaml: 1 problem .*columns\.age\.scale"):
        PreprocessingSpec.from_file(path)


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    """A column (or any key) written twice is an error saying where, as in contracts and
    policies, instead of the first step being silently dropped."""
    text = "columns:\n  age: {impute: median}\n  city: {encode: onehot}\n  age: {drop: true}\n"
    with pytest.raises(InvalidInputError, match=r"line 4, column 3: key 'age' appears twice"):
        PreprocessingSpec.from_yaml(text)
    path = tmp_path / "prep.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"prep\.yaml: .*key 'age' appears twice"):
        PreprocessingSpec.from_file(path)


def test_a_spec_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    """A spec saved in another encoding is an InvalidInputError naming the file."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("columns: {caf\u00e9: {drop: true}}\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match=r"latin1\.yaml: cannot read"):
        PreprocessingSpec.from_file(path)


def test_invalid_yaml_is_reported() -> None:
    """Text that is not YAML raises InvalidInputError, not a yaml exception."""
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        PreprocessingSpec.from_yaml("columns: {age: [unclosed\n")


# -- validation -------------------------------------------------------------------------------


def test_validation_gathers_every_problem_into_one_error() -> None:
    """All problems of a spec are reported together, each with the path to the bad value."""
    with pytest.raises(InvalidInputError) as info:
        PreprocessingSpec.from_yaml(
            "columns:\n"
            "  age: {scale: stdandard}\n"
            "  city: {impute: {strategy: constant}, encode: {method: onehott}}\n"
        )
    assert str(info.value) == (
        "3 problems in preprocessing spec: "
        "columns.age.scale: 'stdandard' is not one of standard, minmax, robust, none; "
        "columns.city.impute.fill_value: strategy 'constant' needs a fill_value; "
        "columns.city.encode.method: 'onehott' is not one of onehot, ordinal"
    )
    assert info.value.details["problems"][0].startswith("columns.age.scale")
    assert info.value.code == "invalid_input"


def test_unknown_keys_are_reported_with_a_suggestion() -> None:
    """A misspelt key is named, with the closest known key, at every level."""
    with pytest.raises(InvalidInputError) as info:
        PreprocessingSpec.from_dict(
            {
                "columns": {"age": {"scael": "standard"}},
                "remaindr": "drop",
            }
        )
    problems = info.value.details["problems"]
    assert "remaindr: unknown key (did you mean 'remainder'?); expected columns, remainder" in (
        problems
    )
    assert any(
        p.startswith("columns.age.scael: unknown key (did you mean 'scale'?)") for p in problems
    )


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"drop": True, "scale": "standard"}, "drop: a dropped column cannot also be"),
        ({"scale": "standard", "encode": "onehot"}, "scale and encode cannot both be set"),
        ({"impute": "median", "encode": "onehot"}, "impute: 'median' needs numbers"),
        ({"impute": {"strategy": "mean", "fill_value": 1}}, "only strategy 'constant' takes"),
        ({"impute": {"strategy": "constant", "fill_value": [1]}}, "is not a finite number"),
        ({"impute": {"fill_value": 1}}, "impute.strategy: missing"),
        ({"encode": {"method": "ordinal", "handle_unknown": "error"}}, "handle_unknown: unknown"),
        ({"encode": {"method": "onehot", "unknown_value": 3}}, "unknown_value: unknown key"),
        ({"encode": {"method": "onehot", "handle_unknown": "skip"}}, "'skip' is not one of"),
        (
            {"encode": {"method": "ordinal", "categories": ["A", "B"], "unknown_value": 1}},
            "1 is already the code of category 'B'",
        ),
        ({"encode": {"method": "ordinal", "unknown_value": 0}}, "must be negative when"),
        ({"encode": {"method": "ordinal", "categories": [3, 1]}}, "increasing order"),
        ({"encode": {"method": "ordinal", "categories": ["A", "A"]}}, "'A' is listed twice"),
        ({"encode": {"method": "onehot", "categories": [1, "a"]}}, "mixes number and string"),
        ({"encode": {"method": "onehot", "categories": []}}, "the list is empty"),
        ({"encode": {"method": "onehot", "categories": "A"}}, "expected a list"),
        ({"drop": "yes"}, "drop: expected true or false"),
        ("standard", "columns.x: expected a mapping"),
    ],
)
def test_invalid_steps_are_explained(step: Any, message: str) -> None:
    """Each kind of invalid step raises InvalidInputError with a message that says why."""
    with pytest.raises(InvalidInputError, match=None) as info:
        PreprocessingSpec.from_dict({"columns": {"x": step}})
    assert message in str(info.value)


def test_invalid_remainder_and_columns() -> None:
    """A bad remainder and a non-mapping ``columns`` are both reported."""
    with pytest.raises(InvalidInputError) as info:
        PreprocessingSpec.from_dict({"columns": ["age"], "remainder": "keep"})
    assert len(info.value.details["problems"]) == 2


def test_python_construction_validates_too() -> None:
    """A step built in Python with a bad value raises at construction."""
    with pytest.raises(InvalidInputError, match="'stdandard' is not one of"):
        ColumnStep(impute="median", scale="stdandard")  # type: ignore[arg-type]


# -- compiling to scikit-learn ----------------------------------------------------------------


def test_transformer_is_plain_scikit_learn() -> None:
    """The transformer holds only scikit-learn classes, so it pickles and clones."""
    from sklearn.base import clone

    ct = PreprocessingSpec.from_yaml(BRIEF_YAML).to_column_transformer()

    def modules(obj: Any) -> set[str]:
        found = {type(obj).__module__.split(".")[0]}
        if hasattr(obj, "get_params"):
            for value in obj.get_params(deep=False).values():
                found |= modules(value)
        if isinstance(obj, list | tuple):
            for item in obj:
                found |= modules(item)
        return found

    assert modules(ct) <= {"sklearn", "builtins", "numpy"}
    assert pickle.loads(pickle.dumps(clone(ct))).get_params().keys() == ct.get_params().keys()
    assert ct.verbose_feature_names_out is False


def test_identical_steps_share_one_pipeline() -> None:
    """Columns with the same steps are handled by one transformer, in spec order."""
    spec = PreprocessingSpec(
        columns={
            "a": ColumnStep(impute="median", scale="standard"),
            "b": ColumnStep(impute="mean"),
            "c": ColumnStep(impute="median", scale="standard"),
        }
    )
    ct = spec.to_column_transformer()
    assert [(name, cols) for name, _, cols in ct.transformers] == [
        ("median_standard", ["a", "c"]),
        ("mean", ["b"]),
    ]


def test_same_label_different_steps_get_distinct_names() -> None:
    """Two different steps with the same short label get unique transformer names."""
    spec = PreprocessingSpec(
        columns={
            "a": ColumnStep(impute=Impute("constant", fill_value=0)),
            "b": ColumnStep(impute=Impute("constant", fill_value=1)),
        }
    )
    names = [name for name, _, _ in spec.to_column_transformer().transformers]
    assert names == ["constant", "constant_2"]


def test_fit_transform_gives_expected_numbers() -> None:
    """Median imputation, standard and robust scaling, onehot and ordinal codes are right."""
    frame = train_frame()
    ct, out = fit(PreprocessingSpec.from_yaml(BRIEF_YAML), frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [
        "age",
        "income",
        "city_Lyon",
        "city_Nice",
        "city_Paris",
        "grade",
    ]
    # age: the missing value is the median of 20, 30, 50, 40 = 35; then standard scaling.
    filled = np.array([20.0, 30.0, 35.0, 50.0, 40.0])
    np.testing.assert_allclose(out["age"], (filled - filled.mean()) / filled.std())
    assert out["age"].mean() == pytest.approx(0, abs=1e-12)
    assert out["age"].std(ddof=0) == pytest.approx(1)
    # income: constant 0 fill, then robust scaling (median 0 after centring).
    income = np.array([1000.0, 0.0, 3000.0, 5000.0, 4000.0])
    q1, q3 = np.percentile(income, [25, 75])
    np.testing.assert_allclose(out["income"], (income - np.median(income)) / (q3 - q1))
    # city: the missing one is the most frequent (Paris).
    assert out["city_Paris"].tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert out["grade"].tolist() == [0.0, 1.0, 2.0, 1.0, 0.0]
    assert ct.named_transformers_["median_standard"].named_steps["impute"].statistics_[0] == 35


def test_minmax_scales_train_into_unit_interval() -> None:
    """minmax maps the training data onto [0, 1] with both ends reached."""
    frame = pd.DataFrame({"x": [3.0, -1.0, 7.0, 5.0]})
    _, out = fit(PreprocessingSpec(columns={"x": ColumnStep(scale="minmax")}), frame)
    assert out["x"].min() == 0 and out["x"].max() == 1
    assert out["x"].tolist() == [0.5, 0.0, 1.0, 0.75]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("mean", 2.0), ("median", 1.5), ("most_frequent", 1.0)],
)
def test_imputation_strategies_fill_with_the_learned_value(strategy: Any, expected: float) -> None:
    """mean, median and most_frequent fill missing values with that statistic of train."""
    frame = pd.DataFrame({"x": [1.0, 1.0, 2.0, 4.0, np.nan]})
    _, out = fit(PreprocessingSpec(columns={"x": ColumnStep(impute=strategy)}), frame)
    assert out["x"].iloc[-1] == expected


def test_constant_imputation_of_strings() -> None:
    """constant imputation with a string fill value then encodes that value like any other."""
    spec = PreprocessingSpec.from_yaml(
        "columns: {c: {impute: {strategy: constant, fill_value: unknown}, encode: onehot}}"
    )
    _, out = fit(spec, pd.DataFrame({"c": ["a", np.nan, "b"]}))
    assert list(out.columns) == ["c_a", "c_b", "c_unknown"]
    assert out["c_unknown"].tolist() == [0.0, 1.0, 0.0]


def test_onehot_ignore_gives_all_zeros_for_unknown_categories() -> None:
    """With handle_unknown ignore, a category unseen in training becomes an all-zero row."""
    ct, _ = fit(PreprocessingSpec.from_yaml(BRIEF_YAML), train_frame())
    new = train_frame().iloc[:1].assign(city="Berlin")
    out = ct.transform(new)
    assert out[["city_Lyon", "city_Nice", "city_Paris"]].to_numpy().tolist() == [[0, 0, 0]]


def test_onehot_error_raises_for_unknown_categories() -> None:
    """With handle_unknown error, an unseen category fails the transform."""
    spec = PreprocessingSpec.from_yaml(
        "columns: {c: {encode: {method: onehot, handle_unknown: error}}}"
    )
    ct, _ = fit(spec, pd.DataFrame({"c": ["a", "b"]}))
    with pytest.raises(ValueError, match="unknown categor"):
        ct.transform(pd.DataFrame({"c": ["z"]}))


def test_onehot_with_fixed_categories_keeps_every_column() -> None:
    """Fixed categories give one column each, even for categories absent from train."""
    spec = PreprocessingSpec(
        columns={"c": ColumnStep(encode=Encode("onehot", categories=("x", "y", "z")))}
    )
    _, out = fit(spec, pd.DataFrame({"c": ["x", "x"]}))
    assert list(out.columns) == ["c_x", "c_y", "c_z"]


@pytest.mark.parametrize("unknown_value", [-1, -99, 3])
def test_ordinal_maps_unknown_categories_to_unknown_value(unknown_value: int) -> None:
    """Ordinal encoding gives unseen categories the configured unknown_value."""
    spec = PreprocessingSpec(
        columns={
            "g": ColumnStep(
                encode=Encode("ordinal", categories=("A", "B", "C"), unknown_value=unknown_value)
            )
        }
    )
    ct, _ = fit(spec, pd.DataFrame({"g": ["A", "C"]}))
    assert ct.transform(pd.DataFrame({"g": ["B", "Q"]}))["g"].tolist() == [1, unknown_value]


def test_remainder_drop_and_passthrough() -> None:
    """Unmentioned columns are dropped by default and kept with passthrough; drop always drops."""
    frame = train_frame()
    steps = {"age": ColumnStep(impute="median"), "id": ColumnStep(drop=True)}
    _, dropped = fit(PreprocessingSpec(columns=steps), frame)
    assert list(dropped.columns) == ["age"]
    _, kept = fit(PreprocessingSpec(columns=steps, remainder="passthrough"), frame)
    assert list(kept.columns) == ["age", "income", "city", "grade", "extra"]


def test_dropped_columns_may_be_absent_when_remainder_is_drop() -> None:
    """With remainder drop, a frame without the dropped (e.g. id) column still fits."""
    spec = PreprocessingSpec.from_yaml(BRIEF_YAML)
    _, out = fit(spec, train_frame().drop(columns=["id"]))
    assert "id" not in out.columns


def test_transformer_in_a_model_pipeline_fits_and_predicts() -> None:
    """The ColumnTransformer is the first step of a Pipeline with a LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    frame = pd.concat([train_frame()] * 4, ignore_index=True)
    y = np.array([0, 1, 0, 1, 1] * 4)
    model = Pipeline(
        [
            ("prep", PreprocessingSpec.from_yaml(BRIEF_YAML).to_column_transformer()),
            ("clf", LogisticRegression()),
        ]
    )
    model.fit(frame, y)
    predictions = model.predict(frame)
    assert predictions.shape == (20,)
    assert set(predictions) <= {0, 1}
    assert model.predict_proba(frame.iloc[:2]).shape == (2, 2)


def test_clone_and_refit_gives_identical_output() -> None:
    """A cloned, refitted transformer transforms train data to exactly the same frame."""
    from sklearn.base import clone

    ct, first = fit(PreprocessingSpec.from_yaml(BRIEF_YAML), train_frame())
    second = clone(ct).fit_transform(train_frame())
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(ct.transform(train_frame()), first)


def test_polars_input_converted_to_pandas_works() -> None:
    """A polars frame with nulls, converted with to_pandas(), transforms like the pandas one."""
    spec = PreprocessingSpec.from_yaml(BRIEF_YAML)
    frame = pl.DataFrame(
        {
            "age": [20, 30, None, 50, 40],
            "income": [1000.0, None, 3000.0, 5000.0, 4000.0],
            "city": ["Paris", "Lyon", "Paris", None, "Nice"],
            "grade": ["A", "B", "C", "B", "A"],
            "id": [1, 2, 3, 4, 5],
            "extra": [9, 9, 9, 9, 9],
        }
    )
    _, from_polars = fit(spec, frame.to_pandas())
    _, from_pandas = fit(spec, train_frame())
    pd.testing.assert_frame_equal(from_polars, from_pandas)


# -- inference from a contract ----------------------------------------------------------------

CONTRACT = {
    "name": "churn",
    "columns": {
        "customer_id": {"type": "string", "nullable": False, "unique": True},
        "age": {"type": "int", "nullable": True},
        "balance": {"type": "float", "nullable": True},
        "plan": {"type": "category", "allowed": ["basic", "plus", "pro"]},
        "country": {"type": "string", "allowed": ["FR", "DE"]},
        "segment": {"type": "category"},
        "notes": {"type": "string", "nullable": True},
        "is_active": {"type": "bool"},
        "signup": {"type": "datetime"},
        "churned": {"type": "bool"},
    },
}


def test_spec_from_contract_follows_the_column_types() -> None:
    """Numbers are scaled, categories one-hot encoded, ids, times and free text dropped."""
    spec = spec_from_contract(CONTRACT, target="churned")
    assert spec.to_dict() == {
        "columns": {
            "customer_id": {"drop": True},
            "age": {"impute": "median", "scale": "standard"},
            "balance": {"impute": "median", "scale": "standard"},
            "plan": {
                "impute": "most_frequent",
                "encode": {
                    "method": "onehot",
                    "categories": ["basic", "plus", "pro"],
                    "handle_unknown": "ignore",
                },
            },
            "country": {
                "impute": "most_frequent",
                "encode": {
                    "method": "onehot",
                    "categories": ["FR", "DE"],
                    "handle_unknown": "ignore",
                },
            },
            "segment": {
                "impute": "most_frequent",
                "encode": {"method": "onehot", "handle_unknown": "ignore"},
            },
            "notes": {"drop": True},
            "is_active": {
                "encode": {"method": "ordinal", "categories": [False, True], "unknown_value": -1},
            },
            "signup": {"drop": True},
        },
        "remainder": "drop",
    }


def test_spec_from_contract_accepts_an_object_with_to_dict() -> None:
    """A contract object exposing to_dict() is read like the plain document."""

    class Contract:
        def to_dict(self) -> dict[str, Any]:
            return CONTRACT

    assert spec_from_contract(Contract()) == spec_from_contract(CONTRACT)
    assert "churned" in spec_from_contract(CONTRACT).columns


def test_spec_from_contract_fits_data_of_that_contract() -> None:
    """The inferred transformer fits a polars frame of the contract converted to pandas."""
    from datetime import datetime

    frame = pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4"],
            "age": [30, None, 50, 41],
            "balance": [1.5, 2.5, None, 0.0],
            "plan": ["basic", "pro", None, "plus"],
            "country": ["FR", "DE", "FR", "FR"],
            "segment": ["a", "b", "a", None],
            "notes": ["x", None, "y", "z"],
            "is_active": [True, False, True, True],
            "signup": [datetime(2024, 1, d) for d in range(1, 5)],
            "churned": [False, True, False, True],
        }
    )
    spec = spec_from_contract(CONTRACT, target="churned")
    _, out = fit(spec, frame.drop("churned").to_pandas())
    assert list(out.columns) == [
        "age",
        "balance",
        "plan_basic",
        "plan_plus",
        "plan_pro",
        "country_FR",
        "country_DE",
        "segment_a",
        "segment_b",
        "is_active",
    ]
    assert out["is_active"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert not out.isna().any().any()


@pytest.mark.parametrize(
    "flags",
    [
        pl.DataFrame({"flag": [True, None, False]}).to_pandas(),  # object column with None
        pd.DataFrame({"flag": pd.array([True, None, False], dtype="boolean")}),
        pd.DataFrame({"flag": [1.0, np.nan, 0.0]}),
    ],
    ids=["polars-object", "pandas-boolean", "float"],
)
def test_contract_bools_are_coded_with_missing_as_minus_one(flags: pd.DataFrame) -> None:
    """An inferred bool column codes False 0, True 1 and a missing value -1, whatever the
    pandas representation of the missing value."""
    spec = spec_from_contract({"columns": {"flag": {"type": "bool", "nullable": True}}})
    _, out = fit(spec, flags)
    assert out["flag"].tolist() == [1.0, -1.0, 0.0]


def test_spec_from_contract_rejects_bad_contracts() -> None:
    """Unknown types and an absent target are reported together; a non-contract is refused."""
    with pytest.raises(InvalidInputError) as info:
        spec_from_contract({"columns": {"a": {"type": "decimal"}}}, target="label")
    assert info.value.details["problems"] == [
        "target: column 'label' is not in the contract; its columns are a",
        "columns.a.type: 'decimal' is not one of int, float, bool, string, category, datetime",
    ]
    with pytest.raises(InvalidInputError, match="must be a mapping with 'columns'"):
        spec_from_contract({"fields": []})


def test_spec_from_contract_reads_a_real_contract() -> None:
    """A Contract from shipyard.data.contracts is read through its to_dict()."""
    from shipyard.data.contracts import Contract

    contract = Contract.from_yaml(
        "columns:\n"
        "  id: {type: int, unique: true, nullable: false}\n"
        "  age: {type: int, min: 18, max: 100}\n"
        "  city: {type: category, allowed: [a, b, c]}\n"
        "  label: {type: bool}\n"
    )
    spec = spec_from_contract(contract, target="label")
    assert spec == PreprocessingSpec.from_yaml(
        "columns:\n"
        "  id: {drop: true}\n"
        "  age: {impute: median, scale: standard}\n"
        "  city: {impute: most_frequent, encode: {method: onehot, categories: [a, b, c]}}\n"
    )


def test_spec_from_contract_sorts_numeric_allowed_values() -> None:
    """Numeric allowed values become sorted categories, as scikit-learn requires."""
    spec = spec_from_contract({"columns": {"rating": {"type": "category", "allowed": [3, 1, 2]}}})
    encode = spec.columns["rating"].encode
    assert encode is not None and encode.categories == (1, 2, 3)
