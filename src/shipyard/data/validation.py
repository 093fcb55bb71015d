"""Checking a table against a contract, on pandera's polars backend.

:func:`validate` compiles the contract to a ``pandera.polars.DataFrameSchema``
(:func:`to_pandera`), runs it with ``lazy=True`` so that every failure is collected, and turns
pandera's errors into a :class:`ValidationReport`: per column and check, how many rows fail and
a few offending values. :func:`row_failures` says which rows fail and why, for quarantine.

Both run the same polars expressions for the row-level checks, so the rows ``row_failures``
flags are exactly the rows the row-level failures of ``validate`` count:

* schema: ``column_present`` (a contract column is missing), ``extra_column`` (a column the
  contract does not name, when it is strict) and ``type`` fail every row;
* values: ``nullable``, ``min``, ``max``, ``allowed``, ``regex`` and ``unique`` (every
  occurrence of a value after its first) fail the rows holding the offending value.

Dataset-level checks (``row_count``, ``unique_combination``, ``max_null_share``, ``mean``,
``quantile``) are judged on the whole table and flag no row.

>>> import polars as pl
>>> from shipyard.data.contracts import Contract
>>> contract = Contract.from_yaml("columns: {age: {type: int, max: 100}}")
>>> report = validate(contract, pl.DataFrame({"age": [30, 150, 150]}))
>>> report.passed, report.failures[0].check, report.failures[0].failed_rows
(False, 'max', 2)

This module runs the checks. The report types are in :mod:`shipyard.data.validation_report`;
the row-level expressions and the compilation to pandera are in
:mod:`shipyard.data.validation_rules`. Their public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.data.contracts import Contract
from shipyard.data.ingest import load_frame
from shipyard.data.validation_report import Failure, ValidationReport, _examples
from shipyard.data.validation_rules import (
    _OK,
    VALUE_CHECKS,
    _applies,
    _compile,
    _fails,
    _label,
    _Rule,
    to_pandera,
    type_matches,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Failure",
    "ParsedCells",
    "ValidationReport",
    "parse_cells",
    "row_failures",
    "to_pandera",
    "type_matches",
    "validate",
]


def validate(contract: Contract, data: Any, *, examples: int = 5) -> ValidationReport:
    """Check a table against a contract, collecting every failure.

    ``data`` is a polars DataFrame or LazyFrame (collected once), a pandas DataFrame, or a
    path to a Parquet, CSV or JSON Lines file. ``examples`` caps the distinct offending
    values kept per failure.

    >>> import polars as pl
    >>> contract = Contract.from_yaml("columns: {id: {type: int, unique: true}}")
    >>> validate(contract, pl.DataFrame({"id": [1, 1, 1]})).to_dict()["failures"][0]["examples"]
    [1]

    Raises:
        InvalidInputError: the data cannot be read.
    """
    import pandera.polars as pa
    from pandera.config import ValidationDepth, config_context

    frame: pl.DataFrame = load_frame(data)
    schema, rules = _compile(contract)
    try:
        # Data checks always run, whatever PANDERA_VALIDATION_* says in the environment.
        with config_context(
            validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA
        ):
            schema.validate(frame, lazy=True)
        errors: list[Any] = []
    except pa.errors.SchemaErrors as exc:
        errors = list(exc.schema_errors)
    except pa.errors.SchemaError as exc:  # pandera raises a lone schema-level error directly
        errors = [exc]
    failures: list[Failure] = []
    for err in errors:
        failures += _to_failures(err, contract, frame, rules, examples)
    return ValidationReport(passed=not failures, rows=frame.height, failures=failures)


def _to_failures(
    err: Any,
    contract: Contract,
    frame: pl.DataFrame,
    rules: Mapping[tuple[str | None, int], _Rule],
    examples: int,
) -> list[Failure]:
    import pandera.polars as pa
    from pandera.errors import SchemaErrorReason

    reason = err.reason_code
    if reason == SchemaErrorReason.COLUMN_NOT_IN_DATAFRAME:
        name = str(err.failure_cases)
        return [Failure(name, "column_present", frame.height, [], f"column {name!r} is missing")]
    if reason == SchemaErrorReason.COLUMN_NOT_IN_SCHEMA:
        # pandera stops at the first extra column; report each one.
        return [
            Failure(
                name,
                "extra_column",
                frame.height,
                [],
                f"column {name!r} is not in the contract, which is strict",
            )
            for name in frame.columns
            if name not in contract.columns
        ]
    column = err.schema.name if isinstance(err.schema, pa.Column) else None
    rule = rules.get((column, err.check_index)) if err.check_index is not None else None
    if rule is None:  # not expected: keep pandera's own words rather than lose the failure
        return [Failure(column, str(getattr(err.check, "name", err.check)), 0, [], str(err))]
    if reason == SchemaErrorReason.CHECK_ERROR:
        return [Failure(column, rule.check, 0, [], f"the check could not run: {err}")]
    output = err.check_output
    ok = output[_OK] if output is not None and output.height == frame.height else None
    return [rule.report(frame, ok, examples)]


def row_failures(contract: Contract, data: Any) -> pl.DataFrame:
    """The rows that fail a row-level check, with the reasons, for quarantine.

    Returns a frame with ``__row`` (0-based position in ``data``) and ``reason`` such as
    ``"age: max 100; email: regex"``, one row per failing row, in order. A missing column, an
    extra column under ``strict`` or a column of the wrong type fails every row.

    >>> import polars as pl
    >>> contract = Contract.from_yaml("columns: {age: {type: int, max: 100}}")
    >>> row_failures(contract, pl.DataFrame({"age": [30, 150]}))["reason"].to_list()
    ['age: max 100']

    Raises:
        InvalidInputError: the data cannot be read.
    """
    import polars as pl

    frame: pl.DataFrame = load_frame(data)
    reasons: list[pl.Expr] = []
    for name, spec in contract.columns.items():
        dtype = frame.schema.get(name)
        if dtype is None:
            reasons.append(pl.lit(f"{name}: column_present"))
        elif not type_matches(spec.type, dtype):
            reasons.append(pl.lit(f"{name}: type"))
        for check in VALUE_CHECKS:
            if dtype is not None and _applies(check, spec):
                fails = _fails(check, name, spec, dtype)
                if fails is not None:
                    label = f"{name}: {_label(check, spec)}"
                    reasons.append(pl.when(fails).then(pl.lit(label)))
    if contract.strict:
        extra = [c for c in frame.columns if c not in contract.columns]
        reasons += [pl.lit(f"{c}: extra_column") for c in extra]
    index = pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row")
    if not reasons:
        return frame.select(index, pl.lit("", dtype=pl.String).alias("reason")).clear()
    reason = pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason")
    return frame.select(index, reason).filter(pl.col("reason") != "")


# --------------------------------------------------------------------------- text cells

# The contract types a column the reader typed otherwise (text, as a CSV reader guesses it
# when one cell is not a number, say; or float where the contract wants int) is parsed into,
# cell by cell, and how a cell that does not parse is described.
_PARSED_TYPES = {"int": "an int", "float": "a float", "bool": "a bool", "datetime": "a datetime"}
_BOOLS = {"true": True, "false": False}
_TOO_BIG = "does not fit a 64-bit int"


@dataclass(frozen=True)
class ParsedCells:
    """Columns read as their contract types, by :func:`parse_cells`.

    ``frame`` is the table with every such column parsed (a cell that does not parse becomes
    null); ``rows`` has ``__row`` and ``reason`` (``age: 'abc' is not an int``) for each row
    holding a cell that does not parse; ``failures`` has one ``type`` failure per such column;
    ``parsed`` names the columns that were parsed.
    """

    frame: pl.DataFrame
    rows: pl.DataFrame
    failures: list[Failure]
    parsed: list[str]


@dataclass(frozen=True)
class _Cells:
    """One column parsed: its values, and which present cells did not parse (``bad``), of
    which those that are whole numbers beyond 64 bits (``too_big``, for ``int``)."""

    value: pl.Expr
    bad: pl.Expr
    too_big: pl.Expr | None = None


def _parses(type_: str, dtype: Any) -> bool:
    """Whether a column the reader typed ``dtype`` is parsed cell by cell into ``type_``: text
    into any parsed type, and floats into ``int`` (whole floats are ints)."""
    import polars as pl

    if type_ not in _PARSED_TYPES:
        return False
    return bool(dtype == pl.String or (type_ == "int" and dtype.is_float()))


def _whole_to_int(number: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A float expression as Int64 where it is a whole number in range (else null), and
    whether it is whole (finite, no fraction)."""
    import polars as pl

    whole = number.is_finite() & (number.floor() == number)
    return pl.when(whole).then(number.cast(pl.Int64, strict=False)), whole


def _parse_column(name: str, type_: str, dtype: Any) -> _Cells:
    import polars as pl

    col = pl.col(name)
    if dtype != pl.String:  # floats for an int column: 30.0 is an int, 1.5, NaN and inf not
        value, whole = _whole_to_int(col)
        bad = col.is_not_null() & value.is_null()
        return _Cells(value, bad, bad & whole)
    text = col.str.strip_chars()
    blank = text.is_null() | (text == "")
    present = pl.when(blank).then(None).otherwise(text)
    too_big = None
    if type_ == "int":
        # "30" or "30.0" (a whole number written as a float, as for a float column).
        as_float = present.cast(pl.Float64, strict=False)
        from_float, whole = _whole_to_int(as_float)
        value = pl.coalesce(present.cast(pl.Int64, strict=False), from_float)
        too_big = ~blank & value.is_null() & whole
    elif type_ == "float":
        value = present.cast(pl.Float64, strict=False)
    elif type_ == "bool":
        lowered = present.str.to_lowercase()
        value = lowered.replace_strict(_BOOLS, default=None, return_dtype=pl.Boolean)
    else:
        value = present.str.to_datetime(strict=False, time_unit="us")
    return _Cells(value, ~blank & value.is_null(), too_big)


def _reason(name: str, type_: str, dtype: Any, cells: _Cells) -> pl.Expr:
    """``age: 'abc' is not an int``, ``age: 1.5 is not an int``, ``id: '1234…' does not fit a
    64-bit int`` where a cell does not parse, else null."""
    import polars as pl

    col = pl.col(name)
    shown = (
        pl.concat_str(pl.lit("'"), col, pl.lit("'")) if dtype == pl.String else col.cast(pl.String)
    )
    why: pl.Expr = pl.when(cells.bad).then(pl.lit(f"is not {_PARSED_TYPES[type_]}"))
    if cells.too_big is not None:
        why = pl.when(cells.too_big).then(pl.lit(_TOO_BIG)).otherwise(why)
    return pl.concat_str(pl.lit(f"{name}: "), shown, pl.lit(" "), why)


def parse_cells(contract: Contract, frame: pl.DataFrame, *, examples: int = 5) -> ParsedCells:
    """Parse the columns of ``frame`` that the reader typed otherwise than the contract (text
    where it says int, float, bool or datetime; floats where it says int) cell by cell, so
    that one cell that is not a number, or not a whole one, fails its row rather than the
    whole column. Surrounding spaces are ignored and a blank cell is missing; a whole float
    (``30.0``) is an int, and an int must fit 64 bits.

    >>> import polars as pl
    >>> contract = Contract.from_yaml("columns: {age: {type: int}}")
    >>> parse_cells(contract, pl.DataFrame({"age": ["30", "abc"]})).rows["reason"].to_list()
    ["age: 'abc' is not an int"]
    >>> parse_cells(contract, pl.DataFrame({"age": [30.0, 1.5]})).rows["reason"].to_list()
    ['age: 1.5 is not an int']
    """
    import polars as pl

    columns: dict[str, _Cells] = {}
    reasons: list[pl.Expr] = []
    for name, spec in contract.columns.items():
        dtype = frame.schema.get(name)
        if dtype is None or not _parses(spec.type, dtype):
            continue
        columns[name] = cells = _parse_column(name, spec.type, dtype)
        reasons.append(_reason(name, spec.type, dtype, cells))
    index = pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row")
    if not columns:
        empty = frame.select(index, pl.lit("", dtype=pl.String).alias("reason")).clear()
        return ParsedCells(frame, empty, [], [])
    masks = frame.select(
        *(c.bad.alias(n) for n, c in columns.items()),
        *(c.too_big.alias(f"{n}\0big") for n, c in columns.items() if c.too_big is not None),
    ).fill_null(False)
    failures: list[Failure] = []
    for name, cells in columns.items():
        n = int(masks[name].sum())
        if not n:
            continue
        big = masks[f"{name}\0big"] if cells.too_big is not None else None
        n_big = int(big.sum()) if big is not None else 0
        parts = []
        if n > n_big:
            mask = masks[name] if big is None else masks[name] & ~big
            what = f"not {_PARSED_TYPES[contract.columns[name].type]}"
            parts.append(_counted(frame, name, mask, n - n_big, ("is", "are"), what))
        if big is not None and n_big:
            parts.append(_counted(frame, name, big, n_big, ("does", "do"), _TOO_BIG[5:]))
        shown = _examples(frame, [name], ~masks[name], examples)
        failures.append(Failure(name, "type", n, shown, "; ".join(parts)))
    reason = pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason")
    rows = frame.select(index, reason).filter(pl.col("reason") != "")
    parsed = [c.value.alias(n) for n, c in columns.items()]
    return ParsedCells(frame.with_columns(*parsed), rows, failures, list(columns))


def _counted(
    frame: pl.DataFrame, name: str, mask: pl.Series, n: int, verb: tuple[str, str], what: str
) -> str:
    """``1,024 values are not an int, e.g. 'abc'`` for the ``n`` cells of ``mask``."""
    import polars as pl

    [example] = _examples(frame, [name], ~mask, 1)
    shown = (
        repr(example) if isinstance(example, str) and frame.schema[name] == pl.String else example
    )
    return f"{n:,} value{'s' if n != 1 else ''} {verb[n != 1]} {what}, e.g. {shown}"
