"""Batch validation against a contract on pandera's polars backend, the report it returns,
row-level quarantine reasons, and agreement with the per-record pydantic model."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.config import config_context
from pydantic import ValidationError

from shipyard.data.contracts import Contract
from shipyard.data.validation import (
    Failure,
    ValidationReport,
    row_failures,
    to_pandera,
    validate,
)
from shipyard.errors import CheckFailedError, InvalidInputError


def contract_of(text: str) -> Contract:
    return Contract.from_yaml(text)


def outcome(report: ValidationReport) -> list[tuple[str | None, str, int, list[Any]]]:
    return [(f.column, f.check, f.failed_rows, f.examples) for f in report.failures]


def check(text: str, frame: pl.DataFrame, **kwargs: Any) -> list[tuple[Any, ...]]:
    return outcome(validate(contract_of(text), frame, **kwargs))


# --------------------------------------------------------------------------- column checks


def test_type_passes_matching_dtypes_and_fails_others_on_every_row() -> None:
    """A wrong dtype fails every row of the column, with its values as examples."""
    text = "columns: {n: int}"
    assert check(text, pl.DataFrame({"n": pl.Series([1, 2], dtype=pl.Int8)})) == []
    report = validate(contract_of(text), pl.DataFrame({"n": ["1", "x", "x"]}))
    assert outcome(report) == [("n", "type", 3, ["1", "x"])]
    assert report.failures[0].message == "expected int, found String"


def test_type_widens_ints_to_float_and_accepts_the_documented_dtypes() -> None:
    """Ints satisfy float; category takes String, Categorical and Enum; datetime takes Date and
    Datetime of any zone; an all-null column satisfies any type."""
    text = """
columns:
  x: float
  c1: category
  c2: category
  c3: category
  d1: datetime
  d2: datetime
  empty: int
"""
    frame = pl.DataFrame(
        {
            "x": [1, 2],
            "c1": ["a", "b"],
            "c2": pl.Series(["a", "b"], dtype=pl.Categorical),
            "c3": pl.Series(["a", "b"], dtype=pl.Enum(["a", "b"])),
            "d1": [date(2024, 1, 1), date(2024, 1, 2)],
            "d2": pl.Series([datetime(2024, 1, 1)] * 2).dt.replace_time_zone("Europe/Paris"),
            "empty": [None, None],
        }
    )
    assert check(text, frame) == []
    assert check("columns: {s: string}", frame.select(s=pl.col("c2"))) == [
        ("s", "type", 2, ["a", "b"])
    ]
    assert check("columns: {b: bool}", pl.DataFrame({"b": [1, 0]})) == [("b", "type", 2, [1, 0])]


def test_nullable_false_fails_rows_with_null_or_nan() -> None:
    """Missing values (null, and NaN in floats) fail a column that is not nullable."""
    text = "columns: {x: {type: float, nullable: false}}"
    assert check(text, pl.DataFrame({"x": [1.0, 2.0]})) == []
    frame = pl.DataFrame({"x": [1.0, None, math.nan, None]})
    assert check(text, frame) == [("x", "nullable", 3, [None, "NaN"])]
    assert check("columns: {x: float}", frame) == []


def test_min_fails_values_below_and_ignores_missing_values() -> None:
    """Values under min fail; null and NaN are left to the nullable check."""
    text = "columns: {age: {type: int, min: 18}}"
    assert check(text, pl.DataFrame({"age": [18, 40, None]})) == []
    assert check(text, pl.DataFrame({"age": [17, 40, 3, 17]})) == [("age", "min", 3, [17, 3])]
    floats = pl.DataFrame({"age": [17.5, math.nan, None, 20.0]})
    assert check("columns: {age: {type: float, min: 18}}", floats) == [("age", "min", 1, [17.5])]


def test_max_fails_values_above_including_infinity_but_not_nan() -> None:
    """Values over max fail (infinity too); NaN is missing, not large."""
    text = "columns: {x: {type: float, max: 1}}"
    assert check(text, pl.DataFrame({"x": [0.5, math.nan, 1.0]})) == []
    assert check(text, pl.DataFrame({"x": [2.0, math.inf, 0.0]})) == [("x", "max", 2, [2.0, "inf"])]


def test_datetime_bounds_compare_dates_and_zoned_times_in_utc() -> None:
    """Datetime bounds apply to Date columns and, in UTC, to zoned Datetime columns."""
    text = "columns: {t: {type: datetime, min: 2024-01-01, max: '2024-06-30T23:59:59'}}"
    dates = pl.DataFrame({"t": [date(2023, 12, 31), date(2024, 3, 1), date(2024, 7, 1)]})
    assert check(text, dates) == [
        ("t", "min", 1, ["2023-12-31"]),
        ("t", "max", 1, ["2024-07-01"]),
    ]
    # 00:30 in Paris is 23:30 the day before in UTC: below the bound.
    zoned = pl.Series([datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 1, 1, 30)])
    frame = pl.DataFrame({"t": zoned.dt.replace_time_zone("Europe/Paris")})
    [(column, name, failed, examples)] = check(text, frame)
    assert (column, name, failed) == ("t", "min", 1)
    assert examples == ["2024-01-01T00:30:00+01:00"]


def test_allowed_fails_values_outside_the_set_for_text_and_numbers() -> None:
    """Values outside ``allowed`` fail, whether the column is String, Categorical, Enum or
    numeric."""
    text = "columns: {c: {type: category, allowed: [a, b]}}"
    for dtype in (pl.String, pl.Categorical, pl.Enum(["a", "b", "z"])):
        assert check(text, pl.DataFrame({"c": pl.Series(["a", "b", None], dtype=dtype)})) == []
        bad = pl.DataFrame({"c": pl.Series(["a", "z", "z"], dtype=dtype)})
        assert check(text, bad) == [("c", "allowed", 2, ["z"])], dtype
    ints = pl.DataFrame({"k": pl.Series([1, 2, 7], dtype=pl.Int16)})
    assert check("columns: {k: {type: int, allowed: [1, 2, 300000]}}", ints) == [
        ("k", "allowed", 1, [7])
    ]
    floats = pl.DataFrame({"f": pl.Series([0.1, 0.2], dtype=pl.Float32)})
    assert check("columns: {f: {type: float, allowed: [0.1]}}", floats) == [
        ("f", "allowed", 1, [pytest.approx(0.2)])
    ]


def test_regex_is_a_search_and_anchors_anchor() -> None:
    """An unanchored regex may match anywhere; ``^...$`` must match the whole value."""
    anywhere = "columns: {s: {type: string, regex: '@'}}"
    assert check(anywhere, pl.DataFrame({"s": ["a@b", "@", None]})) == []
    whole = "columns: {s: {type: string, regex: '^[a-z]+@[a-z]+$'}}"
    frame = pl.DataFrame({"s": ["ab@cd", "xab@cd", "ab@cd\n", "AB@CD"]})
    assert check(whole, frame) == [("s", "regex", 2, ["ab@cd\n", "AB@CD"])]
    categorical = pl.DataFrame({"s": pl.Series(["ok@x", "bad"], dtype=pl.Categorical)})
    assert check("columns: {s: {type: category, regex: '@'}}", categorical) == [
        ("s", "regex", 1, ["bad"])
    ]


def test_unique_fails_every_repeat_after_the_first_and_ignores_nulls() -> None:
    """``unique`` counts the rows repeating an earlier value; missing values never repeat."""
    text = "columns: {id: {type: int, unique: true}}"
    assert check(text, pl.DataFrame({"id": [1, 2, None, None]})) == []
    assert check(text, pl.DataFrame({"id": [1, 1, 2, 1, 3, 3]})) == [("id", "unique", 3, [1, 3])]


def test_a_missing_column_fails_every_row() -> None:
    """A contract column absent from the data is a column_present failure."""
    text = "columns: {a: int, b: string}"
    assert check(text, pl.DataFrame({"a": [1], "b": ["x"]})) == []
    report = validate(contract_of(text), pl.DataFrame({"a": [1, 2]}))
    assert outcome(report) == [("b", "column_present", 2, [])]
    assert report.failures[0].message == "column 'b' is missing"


def test_extra_columns_pass_by_default_and_each_fails_under_strict() -> None:
    """Columns outside the contract are allowed unless ``strict: true``, which names each."""
    frame = pl.DataFrame({"a": [1, 2], "x": [1, 2], "y": ["u", "v"]})
    assert check("columns: {a: int}", frame) == []
    assert check("strict: true\ncolumns: {a: int}", frame) == [
        ("x", "extra_column", 2, []),
        ("y", "extra_column", 2, []),
    ]


# --------------------------------------------------------------------------- dataset checks


def test_row_count_checks_both_bounds() -> None:
    """Too few or too many rows is a dataset-level failure showing the count."""
    text = "columns: {a: int}\nchecks: {row_count: {min: 2, max: 3}}"
    assert check(text, pl.DataFrame({"a": [1, 2]})) == []
    report = validate(contract_of(text), pl.DataFrame({"a": [1]}))
    assert outcome(report) == [(None, "row_count", 0, [1])]
    assert report.failures[0].message == "1 rows; expected between 2 and 3"
    assert check(text, pl.DataFrame({"a": [1, 2, 3, 4]})) == [(None, "row_count", 0, [4])]


def test_unique_combination_counts_repeated_keys() -> None:
    """A repeated key combination fails its later rows; keys with a missing part are skipped."""
    text = "columns: {a: int, b: string}\nchecks: {unique: [[a, b]]}"
    assert check(text, pl.DataFrame({"a": [1, 1, None, None], "b": ["x", "y", "z", "z"]})) == []
    frame = pl.DataFrame({"a": [1, 1, 1, 2, 2], "b": ["x", "x", "y", "z", "z"]})
    assert check(text, frame) == [
        (None, "unique_combination", 2, [{"a": 1, "b": "x"}, {"a": 2, "b": "z"}])
    ]


def test_max_null_share_applies_to_every_column_or_to_named_ones() -> None:
    """One share limits every contract column; a mapping limits the columns it names."""
    frame = pl.DataFrame({"a": [1, None, None, 4], "b": [1.0, math.nan, 3.0, 4.0]})
    every = "columns: {a: int, b: float}\nchecks: {max_null_share: 0.3}"
    assert check(every, frame) == [("a", "max_null_share", 2, [0.5])]
    assert check(every.replace("0.3", "0.5"), frame) == []
    named = "columns: {a: int, b: float}\nchecks: {max_null_share: {b: 0.2}}"
    report = validate(contract_of(named), frame)
    assert outcome(report) == [("b", "max_null_share", 1, [0.25])]
    assert report.failures[0].message == "25.00% of values missing; at most 20.00% allowed"


def test_mean_checks_bounds_and_fails_when_there_is_nothing_to_average() -> None:
    """The column mean must lie in its range; an all-missing column has no mean and fails."""
    text = "columns: {x: float}\nchecks: {mean: {x: {min: 1, max: 2}}}"
    assert check(text, pl.DataFrame({"x": [1.0, 2.0, math.nan]})) == []
    assert check(text, pl.DataFrame({"x": [3.0, 5.0]})) == [("x", "mean", 0, [4.0])]
    assert check(text, pl.DataFrame({"x": [None, None]}, schema={"x": pl.Float64})) == [
        ("x", "mean", 0, [None])
    ]


def test_quantile_checks_each_declared_quantile() -> None:
    """Each declared quantile is checked on its own and reported with the observed value."""
    text = """
columns: {x: int}
checks:
  quantile: {x: [{q: 0.5, min: 40, max: 60}, {q: 0.9, max: 95}]}
"""
    assert check(text, pl.DataFrame({"x": list(range(101))})) == []
    report = validate(contract_of(text), pl.DataFrame({"x": list(range(0, 202, 2))}))
    assert outcome(report) == [("x", "quantile", 0, [100.0]), ("x", "quantile", 0, [180.0])]
    assert report.failures[1].message == "quantile 0.9 is 180.0; expected at most 95"


# --------------------------------------------------------------------------- the report


BROKEN_THREE_WAYS = pl.DataFrame(
    {"id": [1, 1, 2], "age": [30, 150, 40], "city": ["a", "b", "zz"], "email": ["a@b"] * 3}
)
APPLICANTS = """
columns:
  id:     {type: int, unique: true, nullable: false}
  age:    {type: int, min: 18, max: 100}
  city:   {type: category, allowed: [a, b, c]}
  email:  {type: string, regex: '^[^@]+@[^@]+$', nullable: true}
"""


def test_every_failure_is_collected_not_only_the_first() -> None:
    """A frame breaking three rules reports three failures."""
    report = validate(contract_of(APPLICANTS), BROKEN_THREE_WAYS)
    assert not report.passed
    assert report.rows == 3
    assert outcome(report) == [
        ("id", "unique", 1, [1]),
        ("age", "max", 1, [150]),
        ("city", "allowed", 1, ["zz"]),
    ]


def test_examples_are_capped_and_distinct() -> None:
    """``examples`` limits the distinct offending values kept per failure."""
    frame = pl.DataFrame({"n": [101, 102, 101, 103, 104]})
    text = "columns: {n: {type: int, max: 100}}"
    assert check(text, frame, examples=2) == [("n", "max", 5, [101, 102])]
    assert check(text, frame, examples=0) == [("n", "max", 5, [])]


def test_report_to_dict_is_the_documented_json_document() -> None:
    """to_dict has exactly passed, rows and failures, is JSON-ready, and dates are ISO text."""
    text = "columns: {t: {type: datetime, max: 2024-01-01}, x: {type: float, max: 0}}"
    frame = pl.DataFrame({"t": [datetime(2025, 5, 1, 8, 30)], "x": [math.inf]})
    document = validate(contract_of(text), frame).to_dict()
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert set(document) == {"passed", "rows", "failures"}
    assert document["passed"] is False
    assert document["rows"] == 1
    assert [
        {k: f[k] for k in ("column", "check", "failed_rows", "examples")}
        for f in document["failures"]
    ] == [
        {"column": "t", "check": "max", "failed_rows": 1, "examples": ["2025-05-01T08:30:00"]},
        {"column": "x", "check": "max", "failed_rows": 1, "examples": ["inf"]},
    ]


def test_report_round_trips_through_from_dict() -> None:
    """A report read back from its JSON document equals the original."""
    report = validate(contract_of(APPLICANTS), BROKEN_THREE_WAYS)
    assert ValidationReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    with pytest.raises(InvalidInputError, match="not a validation report"):
        ValidationReport.from_dict({"passed": True})


def test_report_summary_and_raise_if_failed() -> None:
    """A failed report raises CheckFailedError carrying its summary; a passing one does not."""
    report = validate(contract_of(APPLICANTS), BROKEN_THREE_WAYS)
    assert report.summary() == (
        "3 checks failed on 3 rows: id unique (1 row), age max (1 row), city allowed (1 row)"
    )
    with pytest.raises(CheckFailedError) as info:
        report.raise_if_failed()
    assert info.value.details == report.to_dict()
    passing = ValidationReport(passed=True, rows=3, failures=[])
    passing.raise_if_failed()
    assert passing.summary() == "passed (3 rows)"
    assert Failure.from_dict(report.failures[0].to_dict()) == report.failures[0]


# --------------------------------------------------------------------------- inputs, pandera


def test_validate_reads_lazy_frames_files_and_pandas(tmp_path: Path) -> None:
    """A LazyFrame, a Parquet path and a pandas frame validate like the DataFrame."""
    expected = validate(contract_of(APPLICANTS), BROKEN_THREE_WAYS)
    path = tmp_path / "applicants.parquet"
    BROKEN_THREE_WAYS.write_parquet(path)
    for data in (BROKEN_THREE_WAYS.lazy(), path, str(path), BROKEN_THREE_WAYS.to_pandas()):
        assert validate(contract_of(APPLICANTS), data) == expected
    with pytest.raises(InvalidInputError, match="no such file"):
        validate(contract_of(APPLICANTS), tmp_path / "missing.parquet")


def test_validate_reads_a_csv_whose_late_value_does_not_fit_the_first_rows(
    tmp_path: Path,
) -> None:
    """A CSV column of whole numbers with 1.5 at row 12,001 (past the rows polars guesses
    types from) is read as floats, as `data add` reads it; the 1.5 breaks the contract's
    ``max`` like any other value instead of making the file unreadable."""
    path = tmp_path / "late.csv"
    lines = ["amount"] + [("1.5" if i == 12_001 else "1") for i in range(1, 12_501)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = validate(contract_of("columns: {amount: {type: float, max: 1}}"), path)
    assert outcome(report) == [("amount", "max", 1, [1.5])]


def test_data_checks_run_even_when_pandera_is_configured_for_schema_only() -> None:
    """A PANDERA_VALIDATION_DEPTH of SCHEMA_ONLY does not switch off contract value checks."""
    with config_context(validation_depth="SCHEMA_ONLY"):
        report = validate(contract_of(APPLICANTS), BROKEN_THREE_WAYS)
    assert len(report.failures) == 3


def test_to_pandera_gives_a_schema_pandera_users_can_run() -> None:
    """The compiled pandera schema validates on its own and names failures by contract check."""
    schema = to_pandera(contract_of(APPLICANTS))
    assert isinstance(schema, pa.DataFrameSchema)
    good = BROKEN_THREE_WAYS.filter(pl.col("age") < 100, pl.col("city") != "zz").unique("id")
    assert schema.validate(good).height == 1
    with pytest.raises(pa.errors.SchemaErrors) as info:
        schema.validate(BROKEN_THREE_WAYS, lazy=True)
    checks = sorted(info.value.failure_cases["check"].unique().to_list())
    assert checks == ["allowed", "max", "unique"]


# --------------------------------------------------------------------------- row_failures


def test_row_failures_gives_each_failing_row_with_its_reasons() -> None:
    """Each failing row appears once, by position, with every row-level reason."""
    frame = pl.DataFrame(
        {
            "id": [1, 2, 2, None],
            "age": [17, 50, 50, 101],
            "city": ["a", "b", "b", "z"],
            "email": ["x@y", "bad", None, "a@b"],
        }
    )
    out = row_failures(contract_of(APPLICANTS), frame)
    assert out.columns == ["__row", "reason"]
    assert out.rows() == [
        (0, "age: min 18"),
        (1, "email: regex"),
        (2, "id: unique"),
        (3, "id: nullable; age: max 100; city: allowed"),
    ]


def test_row_failures_is_empty_for_valid_data_and_quarantine_splits_the_rest() -> None:
    """Valid data has no failing rows; anti-joining the failures leaves only valid rows."""
    contract = contract_of(APPLICANTS)
    clean = BROKEN_THREE_WAYS.head(1)
    assert row_failures(contract, clean).height == 0
    failing = row_failures(contract, BROKEN_THREE_WAYS)
    kept = BROKEN_THREE_WAYS.with_row_index("__row").join(failing, on="__row", how="anti")
    assert kept["id"].to_list() == [1]
    assert validate(contract, kept.drop("__row")).passed


def test_schema_failures_mark_every_row() -> None:
    """A missing column, a wrong type or an extra column under strict fails every row."""
    contract = contract_of("strict: true\ncolumns: {a: int, b: string, c: int}")
    frame = pl.DataFrame({"a": ["x", "y"], "c": [1, 2], "z": [0, 0]})
    assert (
        row_failures(contract, frame)["reason"].to_list()
        == ["a: type; b: column_present; z: extra_column"] * 2
    )
    assert {f.failed_rows for f in validate(contract, frame).failures} == {2}


AGREEMENT_COLUMNS = """
columns:
  id:  {type: int, unique: true, nullable: false}
  x:   {type: float, min: 0, max: 1, nullable: false}
  c:   {type: category, allowed: [a, b]}
  s:   {type: string, regex: '^[0-9]+$'}
  t:   {type: datetime, min: 2024-01-01}
"""
AGREEMENT_FRAME = pl.DataFrame(
    {
        "id": [i % 50 for i in range(60)],
        "x": [(-0.5, 0.5, 1.5, None, math.nan)[i % 5] for i in range(60)],
        "c": [("a", "b", "q", None)[i % 4] for i in range(60)],
        "s": [("12", "x1", None)[i % 3] for i in range(60)],
        "t": [date(2023 + i % 2, 6, 1) for i in range(60)],
    }
)


def test_row_failures_count_exactly_what_validate_counts() -> None:
    """Per column and check, the rows row_failures flags equal validate's failed_rows."""
    contract = contract_of(AGREEMENT_COLUMNS + "checks: {row_count: {min: 100}}")
    report = validate(contract, AGREEMENT_FRAME)
    reasons = row_failures(contract, AGREEMENT_FRAME)["reason"].str.split("; ")
    row_level = [f for f in report.failures if f.column is not None]
    assert {f.check for f in row_level} == {"unique", "nullable", "min", "max", "allowed", "regex"}
    for failure in row_level:
        label = f"{failure.column}: {failure.check}"
        flagged = reasons.list.eval(pl.element().str.starts_with(label)).list.any()
        assert int(flagged.sum()) == failure.failed_rows, label


def test_row_failures_flags_exactly_the_rows_that_fail_alone() -> None:
    """A row is flagged exactly when validating that row on its own fails (uniqueness aside,
    which needs other rows)."""
    contract = contract_of(AGREEMENT_COLUMNS.replace("unique: true, ", ""))
    failing_alone = {
        i
        for i in range(AGREEMENT_FRAME.height)
        if not validate(contract, AGREEMENT_FRAME.slice(i, 1)).passed
    }
    flagged = set(row_failures(contract, AGREEMENT_FRAME)["__row"].to_list())
    assert flagged == failing_alone
    assert 0 < len(flagged) < AGREEMENT_FRAME.height


# --------------------------------------------------------------------------- pydantic agreement


PROPERTY_CONTRACT = Contract.from_yaml(
    """
columns:
  n:  {type: int, min: -5, max: 50, nullable: false}
  k:  {type: int, allowed: [1, 2, 3]}
  x:  {type: float, min: 0, max: 1.5}
  y:  {type: float, nullable: false}
  s:  {type: string, regex: '^[a-c]+$'}
  t:  {type: string, regex: 'b', nullable: false}
  c:  {type: category, allowed: [red, green], nullable: false}
"""
)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=60),
    INT64,
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1, max_value=3),
    st.text(alphabet="abcxyz\n5", max_size=5),
    st.sampled_from(["red", "green", "blue", "5", "1.0", "", "b"]),
)
VALID_VALUES = {
    "n": st.integers(min_value=-5, max_value=50),
    "k": st.one_of(st.none(), st.sampled_from([1, 2, 3])),
    "x": st.one_of(st.none(), st.just(math.nan), st.floats(min_value=0, max_value=1.5)),
    "y": st.one_of(st.integers(min_value=-100, max_value=100), st.floats(allow_nan=False)),
    "s": st.one_of(st.none(), st.from_regex(r"\A[a-c]+\Z")),
    "t": st.from_regex(r"b", fullmatch=False),
    "c": st.sampled_from(["red", "green"]),
}


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with zero to two columns replaced by arbitrary values, so that both
    accepted rows and rows failing one rule at a time are common."""
    row = {name: draw(values) for name, values in VALID_VALUES.items()}
    for name in draw(st.sets(st.sampled_from(sorted(row)), max_size=2)):
        row[name] = draw(ANY_VALUE)
    return row


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(row=rows())
def test_validate_and_pydantic_accept_exactly_the_same_rows(row: dict[str, Any]) -> None:
    """For any record, the pydantic model accepts it exactly when a one-row frame of it passes
    validate, and row_failures flags it exactly when it fails."""
    model = PROPERTY_CONTRACT.to_pydantic()
    try:
        model.model_validate(row)
        pydantic_accepts = True
    except ValidationError:
        pydantic_accepts = False
    frame = pl.DataFrame({name: [value] for name, value in row.items()})
    report = validate(PROPERTY_CONTRACT, frame)
    assert pydantic_accepts == report.passed, (row, report.summary())
    assert row_failures(PROPERTY_CONTRACT, frame).height == (0 if report.passed else 1)


@pytest.mark.parametrize(
    ("row", "accepted"),
    [
        ({"n": 5, "y": 0.0, "t": "abc", "c": "red"}, True),
        ({"n": "5", "y": 0.0, "t": "abc", "c": "red"}, False),  # no text-to-int coercion
        ({"n": True, "y": 0.0, "t": "abc", "c": "red"}, False),  # a bool is not an int
        ({"n": 5, "y": 1, "t": "abc", "c": "red"}, True),  # ints widen to float
        ({"n": 5, "y": math.nan, "t": "abc", "c": "red"}, False),  # NaN is missing
        ({"n": 5, "x": math.nan, "y": 0.0, "t": "abc", "c": "red"}, True),
        ({"n": 5, "y": 0.0, "t": "xbx", "c": "red"}, True),  # regex search
        ({"n": 5, "y": 0.0, "t": "abc", "s": "ab\n", "c": "red"}, False),  # `$` ends the text
    ],
)
def test_known_divergence_traps_agree(row: dict[str, Any], accepted: bool) -> None:
    """The classic traps (coercion, bools, NaN, search vs match) get one answer from both."""
    full = {name: row.get(name) for name in PROPERTY_CONTRACT.columns}
    frame = pl.DataFrame({name: [value] for name, value in full.items()})
    assert validate(PROPERTY_CONTRACT, frame).passed is accepted
    try:
        PROPERTY_CONTRACT.to_pydantic().model_validate(full)
        assert accepted
    except ValidationError:
        assert not accepted


def test_utc_examples_of_zoned_datetimes_keep_their_offset() -> None:
    """Examples from a zoned column are ISO text with the offset, so they are unambiguous."""
    frame = pl.DataFrame({"t": [datetime(2030, 1, 1, tzinfo=UTC)]})
    assert check("columns: {t: {type: datetime, max: 2029-01-01}}", frame) == [
        ("t", "max", 1, ["2030-01-01T00:00:00+00:00"])
    ]
