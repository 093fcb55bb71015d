"""Data contracts: the YAML format, its error messages, round trips, inference and the
per-record pydantic model."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from shipyard.data.contracts import (
    ColumnSpec,
    Contract,
    DatasetChecks,
    QuantileBounds,
    Range,
)
from shipyard.data.inference import infer_contract
from shipyard.data.validation import validate
from shipyard.errors import InvalidInputError

HAND_WRITTEN = """
description: Loan applicants
owner: risk-team            # optional
columns:
  id:     {type: int, unique: true, nullable: false}
  age:    {type: int, min: 18, max: 100}
  city:   {type: category, allowed: [a, b, c]}
  email:  {type: string, regex: '^[^@]+@[^@]+$', nullable: true}
checks:
  row_count: {min: 1000}
"""

FULL = """
description: Everything the format knows
owner: data-team
strict: true
columns:
  id:      {type: int, unique: true, nullable: false, description: primary key}
  score:   {type: float, min: 0, max: 1.5}
  flag:    {type: bool, allowed: [true]}
  name:    string
  city:    {type: category, allowed: [a, b]}
  seen_at: {type: datetime, min: 2020-01-01, max: '2030-06-01T12:30:00'}
checks:
  row_count: {min: 10, max: 1000000}
  unique: [[city, name], [id]]
  max_null_share: {score: 0.1, name: 0.5}
  mean: {score: {min: 0.1, max: 0.9}}
  quantile:
    score: [{q: 0.5, min: 0.2}, {q: 0.99, max: 1.4}]
    id: {q: 0.1, min: 0}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidInputError) as info:
        Contract.from_yaml(text)
    problems: list[str] = info.value.details["problems"]
    return problems


def applicants(rows: int = 1000) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(range(rows)),
            "age": [18 + i % 80 for i in range(rows)],
            "city": [("a", "b", "c")[i % 3] for i in range(rows)],
            "email": [f"user{i}@example.com" if i % 10 else None for i in range(rows)],
        }
    )


# --------------------------------------------------------------------------- the format


def test_hand_written_yaml_parses_into_the_declared_rules() -> None:
    """The contract from the issue, written by hand with comments, parses into its rules."""
    contract = Contract.from_yaml(HAND_WRITTEN)
    assert contract.description == "Loan applicants"
    assert contract.owner == "risk-team"
    assert contract.strict is False
    assert list(contract.columns) == ["id", "age", "city", "email"]
    assert contract.columns["id"] == ColumnSpec("int", nullable=False, unique=True)
    assert contract.columns["age"] == ColumnSpec("int", min=18, max=100)
    assert contract.columns["city"].allowed == ("a", "b", "c")
    assert contract.columns["email"].regex == "^[^@]+@[^@]+$"
    assert contract.checks.row_count == Range(min=1000)


def test_hand_written_yaml_validates_good_data_and_catches_bad_data() -> None:
    """The hand-written contract passes conforming data and names what breaks it."""
    contract = Contract.from_yaml(HAND_WRITTEN)
    assert validate(contract, applicants()).passed
    bad = applicants().with_columns(
        pl.when(pl.col("id") == 5).then(7).otherwise("age").alias("age")
    )
    report = validate(contract, bad)
    assert [(f.column, f.check, f.failed_rows, f.examples) for f in report.failures] == [
        ("age", "min", 1, [7])
    ]


def test_every_part_of_the_format_parses() -> None:
    """Every column rule and dataset check of the format reaches the contract."""
    contract = Contract.from_yaml(FULL)
    assert contract.strict is True
    assert contract.columns["name"] == ColumnSpec("string")  # `name: string` shorthand
    assert contract.columns["flag"].allowed == (True,)
    assert contract.columns["id"].description == "primary key"
    assert contract.columns["seen_at"].min == datetime(2020, 1, 1)
    assert contract.columns["seen_at"].max == datetime(2030, 6, 1, 12, 30)
    checks = contract.checks
    assert checks.row_count == Range(10, 1_000_000)
    assert checks.unique == (("city", "name"), ("id",))
    assert checks.max_null_share == {"score": 0.1, "name": 0.5}
    assert checks.mean == {"score": Range(0.1, 0.9)}
    assert checks.quantile["score"] == (QuantileBounds(0.5, min=0.2), QuantileBounds(0.99, max=1.4))
    assert checks.quantile["id"] == (QuantileBounds(0.1, min=0),)


def test_columns_are_nullable_unless_declared_otherwise() -> None:
    """A column without ``nullable`` accepts missing values."""
    assert Contract.from_yaml("columns: {a: {type: int}}").columns["a"].nullable is True


def test_datetime_bounds_with_a_zone_are_stored_in_utc() -> None:
    """A bound with a UTC offset is converted to naive UTC, so comparisons are unambiguous."""
    contract = Contract.from_yaml(
        "columns: {t: {type: datetime, min: '2024-05-01T02:00:00+02:00'}}"
    )
    assert contract.columns["t"].min == datetime(2024, 5, 1, 0, 0)


# --------------------------------------------------------------------------- parse errors


def test_every_problem_is_reported_at_once() -> None:
    """A contract with several mistakes raises one error that lists all of them."""
    text = """
columns:
  age:  {type: int, min: 50, max: 10}
  name: {type: text}
  mail: {type: string, regex: '(unclosed'}
  flag: {type: bool, nulable: false}
"""
    with pytest.raises(InvalidInputError) as info:
        Contract.from_yaml(text)
    message = str(info.value)
    assert message.startswith("4 problems in contract: ")
    assert "columns.age: min 50 is greater than max 10" in message
    assert "columns.name.type: unknown type 'text'" in message
    assert "columns.mail.regex: invalid regular expression '(unclosed'" in message
    assert "columns.flag.nulable: unknown key; did you mean 'nullable'?" in message
    assert len(info.value.details["problems"]) == 4


def test_unknown_type_names_the_known_types() -> None:
    """An unknown type name suggests the closest known type, or lists them all."""
    assert problems_of("columns: {n: {type: integer}}") == [
        "columns.n.type: unknown type 'integer'; did you mean 'int'?"
    ]
    assert problems_of("columns: {n: {type: text}}") == [
        "columns.n.type: unknown type 'text'; did you mean 'string'?"
    ]
    [problem] = problems_of("columns: {n: {type: blob}}")
    assert "one of: int, float, bool, string, category, datetime" in problem


def test_min_greater_than_max_is_rejected() -> None:
    """Bounds that no value can satisfy are a parse error, for columns and statistics alike."""
    assert problems_of("columns: {a: {type: float, min: 2.5, max: 1}}") == [
        "columns.a: min 2.5 is greater than max 1"
    ]
    [problem] = problems_of("columns: {t: {type: datetime, min: 2024-02-01, max: 2024-01-01}}")
    assert problem == "columns.t: min 2024-02-01 is greater than max 2024-01-01"
    [problem] = problems_of("columns: {a: {type: int}}\nchecks: {mean: {a: {min: 5, max: 1}}}")
    assert problem == "checks.mean.a: min 5 is greater than max 1"


def test_bad_regex_is_rejected_with_the_engine_reason() -> None:
    """A regex the engine cannot compile (e.g. a look-behind) is reported with the reason."""
    [problem] = problems_of(r"columns: {s: {type: string, regex: '(?<=a)b'}}")
    assert problem.startswith("columns.s.regex: invalid regular expression '(?<=a)b': ")
    assert "look-around" in problem


def test_rules_that_do_not_fit_the_type_are_rejected() -> None:
    """min/max, allowed and regex only go on column types they make sense for."""
    problems = problems_of(
        """
columns:
  s: {type: string, min: 1}
  n: {type: int, regex: '^1$', allowed: [1, 'two', true]}
  d: {type: datetime, allowed: [2024-01-01]}
"""
    )
    assert problems == [
        "columns.s.min: applies to int, float and datetime columns, not string",
        "columns.n.allowed[1]: expected a int value, got 'two' (a string)",
        "columns.n.allowed[2]: expected a int value, got True (a boolean)",
        "columns.n.regex: applies to string and category columns, not int",
        "columns.d.allowed: does not apply to datetime columns",
    ]


def test_yaml_booleans_in_text_get_a_quoting_hint() -> None:
    """Unquoted yes/no in an allowed list of text is explained, not just rejected."""
    [problem] = problems_of("columns: {answer: {type: category, allowed: [yes, maybe]}}")
    assert problem.startswith("columns.answer.allowed[0]: expected a category value, got True")
    assert "quote the value" in problem


def test_unknown_top_level_and_check_keys_are_named() -> None:
    """Misspelt keys at the top and under checks are reported with a suggestion."""
    problems = problems_of("colums: {}\ncolumns: {a: int}\nchecks: {row_cnt: {min: 1}}")
    assert problems == [
        "colums: unknown key; did you mean 'columns'?",
        "checks.row_cnt: unknown key; did you mean 'row_count'?",
    ]


def test_dataset_checks_are_checked_against_the_columns() -> None:
    """Dataset checks naming unknown or non-numeric columns, or malformed, are reported."""
    problems = problems_of(
        """
columns: {a: int, s: string}
checks:
  row_count: {min: -1}
  unique: [a, [a, b]]
  max_null_share: 1.5
  mean: {s: {min: 1}}
  quantile: {a: {min: 1}}
"""
    )
    assert problems == [
        "checks.row_count.min: expected a whole number of rows >= 0, got -1 (an integer)",
        "checks.unique[0]: expected a list of column names, got 'a' (a string); write one key "
        "of two columns as unique: [[a, b]]",
        "checks.unique[1]: 'b' is not a column of this contract",
        "checks.max_null_share: expected a share between 0 and 1, got 1.5",
        "checks.mean.s: needs an int or float column, 's' is string",
        "checks.quantile.a: missing 'q', the quantile between 0 and 1 (0.5 is the median)",
    ]


def test_a_key_written_twice_is_an_error() -> None:
    """A column declared twice is refused instead of silently keeping the last one."""
    with pytest.raises(InvalidInputError, match="key 'a' appears twice"):
        Contract.from_yaml("columns:\n  a: {type: int}\n  a: {type: string}\n")


def test_invalid_yaml_and_empty_documents_are_explained() -> None:
    """Broken YAML reports the position; an empty or non-mapping document says what is needed."""
    with pytest.raises(
        InvalidInputError, match=r"not valid YAML at line 1, column 15: expected the node content"
    ):
        Contract.from_yaml("columns: {a: [}")
    with pytest.raises(InvalidInputError, match="contract is empty"):
        Contract.from_yaml("")
    with pytest.raises(InvalidInputError, match="a contract is a mapping with 'columns'"):
        Contract.from_yaml("- a\n- b\n")
    assert problems_of("description: no columns") == [
        "columns: expected a mapping of column name to rules, got nothing"
    ]


def test_from_file_reads_a_contract_and_names_the_file_in_errors(tmp_path: Path) -> None:
    """from_file reads YAML from disk; problems and missing files name the path."""
    good = tmp_path / "applicants.yaml"
    good.write_text(HAND_WRITTEN, encoding="utf-8")
    assert Contract.from_file(good) == Contract.from_yaml(HAND_WRITTEN)
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: {a: {type: nope}}", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad\.yaml: 1 problem in contract: "):
        Contract.from_file(bad)
    with pytest.raises(InvalidInputError, match=r"missing\.yaml: cannot read contract"):
        Contract.from_file(tmp_path / "missing.yaml")


def test_a_contract_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    """A file saved in another encoding is an InvalidInputError naming it, not a traceback."""
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("description: Gr\u00fcnde\ncolumns: {a: int}\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match=r"latin1\.yaml: cannot read contract: not UTF-8"):
        Contract.from_file(latin1)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("text", [HAND_WRITTEN, FULL], ids=["hand-written", "full"])
def test_to_dict_round_trips_through_from_dict(text: str) -> None:
    """A contract survives to_dict -> JSON -> from_dict unchanged."""
    contract = Contract.from_yaml(text)
    document = json.loads(json.dumps(contract.to_dict()))
    assert Contract.from_dict(document) == contract


@pytest.mark.parametrize("text", [HAND_WRITTEN, FULL], ids=["hand-written", "full"])
def test_to_yaml_round_trips_through_from_yaml(text: str) -> None:
    """A contract written with to_yaml reads back unchanged."""
    contract = Contract.from_yaml(text)
    assert Contract.from_yaml(contract.to_yaml()) == contract


def test_to_dict_writes_datetimes_as_iso_text() -> None:
    """Datetime bounds appear as ISO 8601 text (a date alone when at midnight)."""
    columns = Contract.from_yaml(FULL).to_dict()["columns"]
    assert columns["seen_at"] == {
        "type": "datetime",
        "nullable": True,
        "min": "2020-01-01",
        "max": "2030-06-01T12:30:00",
    }


def test_to_dict_of_the_hand_written_contract() -> None:
    """to_dict gives the documented shape: type and nullable always, other rules when set."""
    assert Contract.from_yaml(HAND_WRITTEN).to_dict() == {
        "description": "Loan applicants",
        "owner": "risk-team",
        "columns": {
            "id": {"type": "int", "nullable": False, "unique": True},
            "age": {"type": "int", "nullable": True, "min": 18, "max": 100},
            "city": {"type": "category", "nullable": True, "allowed": ["a", "b", "c"]},
            "email": {"type": "string", "nullable": True, "regex": "^[^@]+@[^@]+$"},
        },
        "checks": {"row_count": {"min": 1000}},
    }


# --------------------------------------------------------------------------- pydantic


def accepts(model: Any, row: dict[str, Any]) -> bool:
    try:
        model.model_validate(row)
    except ValidationError:
        return False
    return True


def test_pydantic_model_enforces_the_row_rules() -> None:
    """The record model checks type, nullability, range, allowed values and regex."""
    model = Contract.from_yaml(HAND_WRITTEN).to_pydantic()
    good = {"id": 1, "age": 30, "city": "a", "email": "x@y.z"}
    assert accepts(model, good)
    assert not accepts(model, {**good, "id": None})
    assert not accepts(model, {**good, "age": 101})
    assert not accepts(model, {**good, "age": 17})
    assert not accepts(model, {**good, "city": "d"})
    assert not accepts(model, {**good, "email": "no-at-sign"})
    assert accepts(model, {**good, "email": None})


def test_pydantic_model_does_not_coerce_types() -> None:
    """Text is not a number, booleans are not numbers, floats are not ints; ints widen to float."""
    model = Contract.from_yaml(
        "columns: {n: {type: int}, x: {type: float}, s: string}"
    ).to_pydantic()
    assert not accepts(model, {"n": "5"})
    assert not accepts(model, {"n": True})
    assert not accepts(model, {"n": 5.0})
    assert not accepts(model, {"x": False})
    assert not accepts(model, {"s": 5})
    assert model.model_validate({"x": 5}).x == 5.0


def test_pydantic_regex_is_a_search_and_anchors_anchor() -> None:
    """An unanchored regex matches anywhere; ``^...$`` must match the whole text."""
    model = Contract.from_yaml(
        "columns: {a: {type: string, regex: 'b'}, w: {type: string, regex: '^b+$'}}"
    ).to_pydantic()
    assert accepts(model, {"a": "abc"})
    assert not accepts(model, {"a": "xyz"})
    assert accepts(model, {"w": "bbb"})
    assert not accepts(model, {"w": "abbb"})
    assert not accepts(model, {"w": "bbb\n"})  # `$` is the end of the text, not of a line


def test_pydantic_nan_counts_as_missing() -> None:
    """NaN passes a nullable float column, whatever its bounds, and fails a non-nullable one."""
    model = Contract.from_yaml(
        "columns: {x: {type: float, max: 1}, y: {type: float, nullable: false}}"
    ).to_pydantic()
    assert math.isnan(model.model_validate({"x": math.nan, "y": 0.5}).x)
    assert not accepts(model, {"y": math.nan})
    assert not accepts(model, {"x": math.inf, "y": 0.5})


def test_pydantic_nullable_fields_may_be_omitted_and_extra_fields_follow_strict() -> None:
    """Missing nullable fields are None; unknown fields are ignored unless the contract is
    strict."""
    lenient = Contract.from_yaml("columns: {a: int, b: {type: int, nullable: false}}")
    record = lenient.to_pydantic().model_validate({"b": 1, "other": "x"})
    assert record.model_dump() == {"a": None, "b": 1}
    assert not accepts(lenient.to_pydantic(), {"a": 1})
    strict = Contract.from_dict({**lenient.to_dict(), "strict": True})
    assert not accepts(strict.to_pydantic(), {"b": 1, "other": "x"})


def test_pydantic_datetimes_accept_iso_text_and_compare_in_utc() -> None:
    """Datetime fields take datetimes, dates or ISO text (JSON has no date type), in UTC."""
    model = Contract.from_yaml("columns: {t: {type: datetime, min: 2024-01-01}}").to_pydantic()
    assert model.model_validate({"t": "2024-01-01T01:00:00+01:00"}).t == datetime(2024, 1, 1)
    assert not accepts(model, {"t": "2023-12-31T23:59:59"})
    assert accepts(model, {"t": date(2024, 1, 1)})
    assert accepts(model, {"t": datetime(2024, 6, 1, tzinfo=UTC)})
    assert not accepts(model, {"t": "last tuesday"})
    assert not accepts(model, {"t": 1_700_000_000})


def test_pydantic_model_handles_column_names_that_are_not_identifiers() -> None:
    """Columns like 'first name' or 'model_id' are validated under their own names."""
    contract = Contract.from_yaml(
        "columns: {'first name': string, model_id: int, json: {type: int, min: 0}}"
    )
    model = contract.to_pydantic()
    record = model.model_validate({"first name": "Ada", "model_id": 3, "json": 1})
    assert record.model_dump(by_alias=True) == {"first name": "Ada", "model_id": 3, "json": 1}
    assert not accepts(model, {"json": -1})


def test_pydantic_model_is_built_once_per_contract() -> None:
    """to_pydantic returns the same class on every call, so serving pays the build once."""
    contract = Contract.from_yaml(HAND_WRITTEN)
    assert contract.to_pydantic() is contract.to_pydantic()


def test_pydantic_json_schema_shows_the_rules() -> None:
    """The generated JSON schema (used for OpenAPI) carries bounds, enums and patterns."""
    schema = Contract.from_yaml(HAND_WRITTEN).to_pydantic().model_json_schema()
    assert schema["required"] == ["id"]
    assert schema["properties"]["age"]["anyOf"][0] == {
        "type": "integer",
        "minimum": 18,
        "maximum": 100,
    }
    assert schema["properties"]["city"]["enum"] == ["a", "b", "c"]
    assert schema["properties"]["email"]["anyOf"][0]["pattern"] == "^[^@]+@[^@]+$"


# --------------------------------------------------------------------------- inference


def realistic_frame() -> pl.DataFrame:
    rows = 400
    return pl.DataFrame(
        {
            "customer_id": [10_000 + i for i in range(rows)],
            "email": [f"c{i}@shop.example" for i in range(rows)],
            "age": [18 + (i * 31) % 70 for i in range(rows)],
            "income": [None if i % 25 == 0 else 1000.0 + i * 12.5 for i in range(rows)],
            "plan": [("free", "pro", "team")[i % 3] for i in range(rows)],
            "country": [None if i % 50 == 0 else ("NL", "DE")[i % 2] for i in range(rows)],
            "churned": [i % 9 == 0 for i in range(rows)],
            "signup": [datetime(2023, 1, 1 + i % 28, 12, 0) for i in range(rows)],
            "birthday": [date(1970 + i % 30, 1 + i % 12, 1) for i in range(rows)],
            "comment": [f"free text number {i}" for i in range(rows)],
            "tags": [["a"]] * rows,  # a list column, which contracts cannot describe
        },
        schema_overrides={"plan": pl.Categorical},
    )


def test_inferred_contract_describes_the_frame_and_the_frame_passes_it() -> None:
    """Inference yields types, nullability, ranges, allowed sets and keys the frame satisfies."""
    frame = realistic_frame()
    contract = infer_contract(frame, description="customers")
    columns = contract.columns
    assert contract.description == "customers"
    assert "tags" not in columns
    assert columns["customer_id"] == ColumnSpec(
        "int", nullable=False, min=10_000, max=10_399, unique=True
    )
    assert columns["email"] == ColumnSpec("string", nullable=False, unique=True)
    assert columns["age"] == ColumnSpec("int", nullable=False, min=18, max=87)
    assert columns["income"] == ColumnSpec("float", nullable=True, min=1012.5, max=5987.5)
    assert columns["plan"] == ColumnSpec(
        "category", nullable=False, allowed=("free", "pro", "team")
    )
    assert columns["country"] == ColumnSpec("category", nullable=True, allowed=("DE", "NL"))
    assert columns["churned"] == ColumnSpec("bool", nullable=False)
    assert columns["signup"].min == datetime(2023, 1, 1, 12)
    assert columns["signup"].max == datetime(2023, 1, 28, 12)
    assert columns["birthday"].min == datetime(1970, 1, 1)
    assert columns["comment"].type == "string"
    assert columns["comment"].allowed is None
    assert contract.checks.row_count == Range(min=40)
    assert validate(contract, frame).passed


def test_inferred_contract_round_trips_and_its_yaml_is_readable() -> None:
    """An inferred contract reads back from its own YAML, with dates as ISO text."""
    contract = infer_contract(realistic_frame())
    text = contract.to_yaml()
    assert "min: '2023-01-01T12:00:00'" in text
    assert Contract.from_yaml(text) == contract


def test_inference_respects_max_categories() -> None:
    """With max_categories=0 text columns stay free text without an allowed list."""
    contract = infer_contract(realistic_frame(), max_categories=0)
    assert contract.columns["country"] == ColumnSpec("string", nullable=True)


def test_inference_reads_files_and_lazy_frames(tmp_path: Path) -> None:
    """A Parquet file, a CSV file and a LazyFrame give the same contract as the frame."""
    frame = realistic_frame().drop("tags", "birthday", "signup", "plan")
    expected = infer_contract(frame)
    parquet, csv = tmp_path / "c.parquet", tmp_path / "c.csv"
    frame.write_parquet(parquet)
    frame.write_csv(csv)
    assert infer_contract(parquet) == expected
    assert infer_contract(frame.lazy()) == expected
    assert infer_contract(str(csv)).columns == expected.columns


def test_inference_treats_nan_as_missing_and_skips_infinite_bounds() -> None:
    """NaN makes a float column nullable and does not become a bound; infinities are no bound."""
    contract = infer_contract(pl.DataFrame({"x": [1.0, math.nan, math.inf]}))
    assert contract.columns["x"] == ColumnSpec("float", nullable=True, min=1.0, max=None)


def test_inference_of_bad_input_is_an_invalid_input_error(tmp_path: Path) -> None:
    """Unreadable input raises InvalidInputError naming the problem."""
    with pytest.raises(InvalidInputError, match="no such file"):
        infer_contract(tmp_path / "missing.parquet")
    with pytest.raises(InvalidInputError, match="expected a polars DataFrame"):
        infer_contract(42)  # type: ignore[arg-type]


def test_contracts_built_in_code_compare_by_value() -> None:
    """Contracts are values: the same rules built in code and from YAML are equal."""
    built = Contract(
        columns={"a": ColumnSpec("int", min=0)},
        checks=DatasetChecks(row_count=Range(min=1)),
    )
    assert built == Contract.from_yaml(
        "columns: {a: {type: int, min: 0}}\nchecks: {row_count: {min: 1}}"
    )
