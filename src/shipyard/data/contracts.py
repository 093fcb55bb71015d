"""Data contracts: what a table must look like, written by people and checked by machines.

A contract is a small YAML document (the format is documented in ``docs/contracts.md``)::

    description: Loan applicants
    columns:
      id:   {type: int, unique: true, nullable: false}
      age:  {type: int, min: 18, max: 100}
      city: {type: category, allowed: [a, b, c]}
    checks:
      row_count: {min: 1000}

One contract compiles to two checkers that agree on every row-level rule: batch validation on
pandera's polars backend (:mod:`shipyard.data.validation`) and a pydantic model for one record
(:meth:`Contract.to_pydantic`), used per request at serving time.

>>> contract = Contract.from_yaml("columns: {age: {type: int, min: 18}}")
>>> contract.columns["age"].min
18
>>> contract.to_pydantic().model_validate({"age": 40}).age
40
"""

from __future__ import annotations

import difflib
import functools
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import polars as pl
    from pydantic import BaseModel

__all__ = [
    "COLUMN_TYPES",
    "ColumnSpec",
    "ColumnType",
    "Contract",
    "DatasetChecks",
    "QuantileBounds",
    "Range",
    "infer_contract",
]

ColumnType = Literal["int", "float", "bool", "string", "category", "datetime"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
Bound = int | float | datetime

_TOP_KEYS = ("description", "owner", "strict", "columns", "checks")
_COLUMN_KEYS = ("type", "nullable", "min", "max", "allowed", "regex", "unique", "description")
_CHECK_KEYS = ("row_count", "unique", "max_null_share", "mean", "quantile")
_RANGE_TYPES = ("int", "float", "datetime")
_ALLOWED_TYPES = ("int", "float", "bool", "string", "category")
_REGEX_TYPES = ("string", "category")
_NUMERIC_TYPES = ("int", "float")
# Inferred contracts ask for at least this share of the rows they were inferred from: it catches
# an empty or truncated load without failing the next, naturally smaller batch.
INFER_ROW_COUNT_SHARE = 0.1


@dataclass(frozen=True)
class ColumnSpec:
    """The rules for one column. Build contracts with :meth:`Contract.from_dict` or
    :meth:`Contract.from_yaml`, which check them; datetime bounds are naive UTC."""

    type: ColumnType
    nullable: bool = True
    min: Bound | None = None
    max: Bound | None = None
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    unique: bool = False
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        if self.unique:
            out["unique"] = True
        if self.min is not None:
            out["min"] = _bound_to_json(self.min)
        if self.max is not None:
            out["max"] = _bound_to_json(self.max)
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.regex is not None:
            out["regex"] = self.regex
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Range:
    """Inclusive bounds; either may be None (unbounded)."""

    min: int | float | None = None
    max: int | float | None = None

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass(frozen=True)
class QuantileBounds:
    """The ``q`` quantile (0 to 1, linear interpolation) must lie within ``min``..``max``."""

    q: float
    min: int | float | None = None
    max: int | float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"q": self.q, **Range(self.min, self.max).to_dict()}


@dataclass(frozen=True)
class DatasetChecks:
    """Checks over the whole table rather than one row.

    ``max_null_share`` is one share for every contract column, or a share per column.
    """

    row_count: Range | None = None
    unique: tuple[tuple[str, ...], ...] = ()
    max_null_share: float | Mapping[str, float] | None = None
    mean: Mapping[str, Range] = field(default_factory=dict)
    quantile: Mapping[str, tuple[QuantileBounds, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.row_count is not None:
            out["row_count"] = self.row_count.to_dict()
        if self.unique:
            out["unique"] = [list(key) for key in self.unique]
        if isinstance(self.max_null_share, Mapping):
            out["max_null_share"] = dict(self.max_null_share)
        elif self.max_null_share is not None:
            out["max_null_share"] = self.max_null_share
        if self.mean:
            out["mean"] = {c: r.to_dict() for c, r in self.mean.items()}
        if self.quantile:
            out["quantile"] = {
                c: qs[0].to_dict() if len(qs) == 1 else [q.to_dict() for q in qs]
                for c, qs in self.quantile.items()
            }
        return out


@dataclass(frozen=True)
class Contract:
    """A data contract: columns with their rules, plus dataset-level checks.

    ``strict`` makes columns that the contract does not name a failure.
    """

    columns: Mapping[str, ColumnSpec]
    description: str = ""
    owner: str | None = None
    strict: bool = False
    checks: DatasetChecks = field(default_factory=DatasetChecks)

    @classmethod
    def from_dict(cls, doc: Any) -> Contract:
        """Build a contract from a parsed document, checking every part of it.

        Raises:
            InvalidInputError: listing every problem found ("3 problems in contract: ...").
        """
        problems = _Problems()
        contract = _parse_contract(doc, problems)
        problems.raise_if_any("contract")
        assert contract is not None
        return contract

    @classmethod
    def from_yaml(cls, text: str) -> Contract:
        """Parse a contract from YAML text.

        Raises:
            InvalidInputError: the text is not YAML, or the contract has problems.
        """
        import yaml

        try:
            doc = yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            reason = getattr(exc, "problem", None) or str(exc)
            raise InvalidInputError(f"contract is not valid YAML{where}: {reason}") from None
        if doc is None:
            raise InvalidInputError("contract is empty: it needs at least 'columns'")
        return cls.from_dict(doc)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Contract:
        """Read a contract from a YAML file.

        Raises:
            InvalidInputError: the file is missing or unreadable, or the contract has problems
                (the message starts with the file name).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"{p}: cannot read contract: {exc.strerror}") from None
        try:
            return cls.from_yaml(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{p}: {exc.message}", details=exc.details) from None

    def to_dict(self) -> dict[str, Any]:
        """The contract as a JSON-ready document; ``from_dict`` reads it back unchanged."""
        out: dict[str, Any] = {"description": self.description}
        if self.owner is not None:
            out["owner"] = self.owner
        if self.strict:
            out["strict"] = True
        out["columns"] = {name: spec.to_dict() for name, spec in self.columns.items()}
        checks = self.checks.to_dict()
        if checks:
            out["checks"] = checks
        return out

    def to_yaml(self) -> str:
        """The contract as YAML, in the format users write."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def to_pydantic(self) -> type[BaseModel]:
        """A pydantic model class validating one record (row) against the row-level rules.

        It enforces type, nullable, min, max, allowed and regex with the same semantics as
        :func:`shipyard.data.validation.validate` (strict types, NaN counts as missing, regex
        search); uniqueness and dataset checks need many rows and are not part of it.
        Nullable fields may be omitted. Built once per contract and cached.

        >>> Model = Contract.from_yaml("columns: {age: {type: int, max: 99}}").to_pydantic()
        >>> Model.model_validate({"age": 5}).age
        5
        """
        return self._pydantic_model

    @cached_property
    def _pydantic_model(self) -> type[BaseModel]:
        return _build_pydantic(self)


# --------------------------------------------------------------------------- parsing


class _Problems:
    """Every problem found in a document, raised together once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def raise_if_any(self, what: str) -> None:
        if self.items:
            n = len(self.items)
            raise InvalidInputError(
                f"{n} problem{'s' if n != 1 else ''} in {what}: " + "; ".join(self.items),
                details={"problems": list(self.items)},
            )


@functools.cache
def _unique_key_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """A SafeLoader that refuses a key written twice (PyYAML silently keeps the last)."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep)

    return Loader


def _got(value: Any, expected_text: bool = False) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    kind = kinds.get(type(value), "a list" if isinstance(value, list) else "a mapping")
    if value is None:
        return "nothing"
    text = f"{value!r} ({kind})"
    if expected_text and isinstance(value, bool):
        text += "; YAML reads unquoted yes/no/on/off/true/false as booleans, quote the value"
    elif expected_text and isinstance(value, int | float | date):
        text += "; quote the value to make it text"
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _check_keys(raw: Mapping[Any, Any], known: tuple[str, ...], path: str, p: _Problems) -> None:
    for key in raw:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(known)}"
        p.add(_join(path, key), f"unknown key; {hint}")


def _text(raw: Mapping[Any, Any], key: str, path: str, p: _Problems) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    p.add(_join(path, key), f"expected text, got {_got(value, expected_text=True)}")
    return None


def _flag(raw: Mapping[Any, Any], key: str, path: str, p: _Problems, default: bool) -> bool:
    value = raw.get(key, default)
    if isinstance(value, bool):
        return value
    p.add(_join(path, key), f"expected true or false, got {_got(value)}")
    return default


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _parse_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return _naive_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _bound_to_json(value: Bound) -> Any:
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    return value


def _parse_number(value: Any, path: str, p: _Problems) -> int | float | None:
    if not _is_number(value):
        p.add(path, f"expected a number, got {_got(value)}")
    elif not math.isfinite(value):
        p.add(path, f"expected a finite number, got {value!r}")
    else:
        return value  # type: ignore[no-any-return]
    return None


def _parse_bound(value: Any, type_: str, path: str, p: _Problems) -> Bound | None:
    if type_ == "datetime":
        parsed = _parse_datetime(value)
        if parsed is None:
            p.add(path, f"expected a date or time like 2024-05-01T12:00:00, got {_got(value)}")
        return parsed
    return _parse_number(value, path, p)


def _check_order(lo: Any, hi: Any, path: str, p: _Problems) -> None:
    if lo is not None and hi is not None and lo > hi:
        p.add(path, f"min {_bound_to_json(lo)} is greater than max {_bound_to_json(hi)}")


def _allowed_ok(type_: str, value: Any) -> bool:
    if type_ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "float":
        return _is_number(value) and math.isfinite(value)
    if type_ == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def _regex_problem(pattern: str) -> str | None:
    """Why polars' regex engine (the Rust ``regex`` crate, also pydantic's) rejects a pattern."""
    import polars as pl

    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("error:")]
        return lines[0].removeprefix("error:").strip() if lines else str(exc).splitlines()[0]
    return None


def _parse_column(raw: Any, path: str, p: _Problems) -> ColumnSpec | None:
    if isinstance(raw, str):  # shorthand: `age: int`
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping such as {{type: int}}, got {_got(raw)}")
        return None
    _check_keys(raw, _COLUMN_KEYS, path, p)
    type_ = raw.get("type")
    if type_ is None:
        p.add(path, f"missing 'type'; one of: {', '.join(COLUMN_TYPES)}")
    elif type_ not in COLUMN_TYPES:
        close = difflib.get_close_matches(str(type_), COLUMN_TYPES, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"one of: {', '.join(COLUMN_TYPES)}"
        p.add(_join(path, "type"), f"unknown type {type_!r}; {hint}")
        type_ = None
    nullable = _flag(raw, "nullable", path, p, True)
    unique = _flag(raw, "unique", path, p, False)
    description = _text(raw, "description", path, p) or ""
    bounds: dict[str, Bound | None] = {"min": None, "max": None}
    for key in bounds:
        if raw.get(key) is None or type_ is None:
            continue
        if type_ not in _RANGE_TYPES:
            p.add(_join(path, key), f"applies to int, float and datetime columns, not {type_}")
        else:
            bounds[key] = _parse_bound(raw[key], type_, _join(path, key), p)
    _check_order(bounds["min"], bounds["max"], path, p)
    allowed = raw.get("allowed")
    if allowed is not None and type_ is not None:
        if type_ not in _ALLOWED_TYPES:
            p.add(_join(path, "allowed"), f"does not apply to {type_} columns")
        elif not isinstance(allowed, list) or not allowed:
            p.add(_join(path, "allowed"), f"expected a non-empty list, got {_got(allowed)}")
        else:
            for i, value in enumerate(allowed):
                if not _allowed_ok(type_, value):
                    text = type_ in ("string", "category")
                    p.add(
                        f"{path}.allowed[{i}]",
                        f"expected a {type_} value, got {_got(value, expected_text=text)}",
                    )
    regex = _text(raw, "regex", path, p)
    if regex is not None and type_ is not None:
        if type_ not in _REGEX_TYPES:
            p.add(_join(path, "regex"), f"applies to string and category columns, not {type_}")
        elif (why := _regex_problem(regex)) is not None:
            p.add(_join(path, "regex"), f"invalid regular expression {regex!r}: {why}")
    if type_ is None:
        return None
    return ColumnSpec(
        type=type_,
        nullable=nullable,
        min=bounds["min"],
        max=bounds["max"],
        allowed=tuple(allowed) if isinstance(allowed, list) else None,
        regex=regex,
        unique=unique,
        description=description,
    )


def _parse_range(raw: Any, path: str, p: _Problems, *, count: bool = False) -> Range | None:
    if not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping with min and/or max, got {_got(raw)}")
        return None
    if not raw:
        p.add(path, "needs min and/or max")
        return None
    _check_keys(raw, ("min", "max"), path, p)
    out: dict[str, int | float | None] = {"min": None, "max": None}
    for key in out:
        value = raw.get(key)
        if value is None:
            continue
        if count and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            p.add(_join(path, key), f"expected a whole number of rows >= 0, got {_got(value)}")
        else:
            out[key] = _parse_number(value, _join(path, key), p)
    _check_order(out["min"], out["max"], path, p)
    return Range(out["min"], out["max"])


def _share(value: Any, path: str, p: _Problems) -> float | None:
    number = _parse_number(value, path, p)
    if number is not None and not 0 <= number <= 1:
        p.add(path, f"expected a share between 0 and 1, got {number!r}")
        return None
    return None if number is None else float(number)


def _column_ref(
    name: Any, path: str, p: _Problems, declared: Mapping[str, str | None], numeric: bool = False
) -> bool:
    if name not in declared:
        close = difflib.get_close_matches(str(name), list(declared), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        p.add(path, f"{name!r} is not a column of this contract{hint}")
        return False
    type_ = declared[name]
    if numeric and type_ is not None and type_ not in _NUMERIC_TYPES:
        p.add(path, f"needs an int or float column, {name!r} is {type_}")
        return False
    return True


def _parse_checks(raw: Any, declared: Mapping[str, str | None], p: _Problems) -> DatasetChecks:
    if raw is None:
        return DatasetChecks()
    if not isinstance(raw, Mapping):
        p.add("checks", f"expected a mapping, got {_got(raw)}")
        return DatasetChecks()
    _check_keys(raw, _CHECK_KEYS, "checks", p)
    row_count = None
    if raw.get("row_count") is not None:
        row_count = _parse_range(raw["row_count"], "checks.row_count", p, count=True)
    keys = _parse_keys(raw.get("unique"), declared, p)
    share: float | dict[str, float] | None = None
    raw_share = raw.get("max_null_share")
    if isinstance(raw_share, Mapping):
        share = {}
        for c, v in raw_share.items():
            path = f"checks.max_null_share.{c}"
            if _column_ref(c, path, p, declared) and (s := _share(v, path, p)) is not None:
                share[c] = s
    elif raw_share is not None:
        share = _share(raw_share, "checks.max_null_share", p)
    means: dict[str, Range] = {}
    for c, v in _mapping(raw, "mean", p).items():
        path = f"checks.mean.{c}"
        if _column_ref(c, path, p, declared, numeric=True) and (r := _parse_range(v, path, p)):
            means[c] = r
    quantiles: dict[str, tuple[QuantileBounds, ...]] = {}
    for c, v in _mapping(raw, "quantile", p).items():
        path = f"checks.quantile.{c}"
        if _column_ref(c, path, p, declared, numeric=True):
            items = v if isinstance(v, list) else [v]
            if not items:
                p.add(path, "expected at least one {q: ..., min: ..., max: ...}")
            paths = [path] if len(items) == 1 else [f"{path}[{i}]" for i in range(len(items))]
            parsed = [_parse_quantile(q, at, p) for q, at in zip(items, paths, strict=True)]
            quantiles[c] = tuple(q for q in parsed if q is not None)
    return DatasetChecks(row_count, keys, share, means, quantiles)


def _parse_keys(
    raw: Any, declared: Mapping[str, str | None], p: _Problems
) -> tuple[tuple[str, ...], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        p.add("checks.unique", f"expected a list of keys like [[a, b]], got {_got(raw)}")
        return ()
    keys: list[tuple[str, ...]] = []
    for i, key in enumerate(raw):
        path = f"checks.unique[{i}]"
        if not isinstance(key, list) or not key:
            hint = "write one key of two columns as unique: [[a, b]]"
            p.add(path, f"expected a list of column names, got {_got(key)}; {hint}")
        elif all(_column_ref(c, path, p, declared) for c in key):
            if len(set(key)) != len(key):
                p.add(path, "names a column twice")
            keys.append(tuple(key))
    return tuple(keys)


def _mapping(raw: Mapping[Any, Any], key: str, p: _Problems) -> Mapping[Any, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    p.add(f"checks.{key}", f"expected a mapping of column name to bounds, got {_got(value)}")
    return {}


def _parse_quantile(raw: Any, path: str, p: _Problems) -> QuantileBounds | None:
    if not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping like {{q: 0.5, min: 1, max: 9}}, got {_got(raw)}")
        return None
    q = _share(raw["q"], _join(path, "q"), p) if "q" in raw else None
    if "q" not in raw:
        p.add(path, "missing 'q', the quantile between 0 and 1 (0.5 is the median)")
    bounds = _parse_range({k: v for k, v in raw.items() if k != "q"}, path, p)
    if q is None or bounds is None:
        return None
    return QuantileBounds(q, bounds.min, bounds.max)


def _parse_contract(doc: Any, p: _Problems) -> Contract | None:
    if not isinstance(doc, Mapping):
        p.add("", f"a contract is a mapping with 'columns', got {_got(doc)}")
        return None
    _check_keys(doc, _TOP_KEYS, "", p)
    description = _text(doc, "description", "", p) or ""
    owner = _text(doc, "owner", "", p)
    strict = _flag(doc, "strict", "", p, False)
    raw_columns = doc.get("columns")
    columns: dict[str, ColumnSpec] = {}
    declared: dict[str, str | None] = {}
    if not isinstance(raw_columns, Mapping) or not raw_columns:
        p.add("columns", f"expected a mapping of column name to rules, got {_got(raw_columns)}")
    else:
        for name, raw in raw_columns.items():
            if not isinstance(name, str) or not name:
                p.add("columns", f"column name {name!r} is not text; put it in quotes")
                continue
            spec = _parse_column(raw, f"columns.{name}", p)
            declared[name] = spec.type if spec else None
            if spec is not None:
                columns[name] = spec
    checks = _parse_checks(doc.get("checks"), declared, p)
    if p.items:
        return None
    return Contract(columns, description, owner, strict, checks)


# --------------------------------------------------------------------------- pydantic


def _field_name(name: str, index: int) -> str:
    from pydantic import BaseModel

    usable = (
        name.isidentifier()
        and not name.startswith(("_", "model_"))
        and not hasattr(BaseModel, name)
    )
    return name if usable else f"field_{index}"


def _one_of(allowed: tuple[Any, ...]) -> Callable[[Any], Any]:
    members = frozenset(allowed)

    def check(value: Any) -> Any:
        if value not in members:
            raise ValueError(f"must be one of {list(allowed)!r}")
        return value

    return check


def _to_datetime(value: Any) -> Any:
    # JSON has no date type, so records carry ISO 8601 text; compare like validate() does.
    if isinstance(value, str):
        try:
            return _naive_utc(datetime.fromisoformat(value))
        except ValueError:
            raise ValueError("expected an ISO 8601 date or time") from None
    return _parse_datetime(value) if isinstance(value, date) else value


def _nan_guard(nullable: bool) -> Callable[[Any, Any], Any]:
    def guard(value: Any, handler: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            if nullable:
                return value
            raise ValueError("NaN counts as a missing value and the column is not nullable")
        return handler(value)

    return guard


def _field_annotation(spec: ColumnSpec) -> Any:
    import annotated_types as at
    from pydantic import AfterValidator, BeforeValidator, Strict, StringConstraints, WrapValidator

    python_type: Any = {
        "int": int,
        "float": float,
        "bool": bool,
        "string": str,
        "category": str,
        "datetime": datetime,
    }[spec.type]
    meta: list[Any] = [Strict()]
    if spec.min is not None:
        meta.append(at.Ge(spec.min))
    if spec.max is not None:
        meta.append(at.Le(spec.max))
    if spec.regex is not None:
        meta.append(StringConstraints(pattern=spec.regex))
    if spec.allowed is not None:
        meta.append(AfterValidator(_one_of(spec.allowed)))
    if spec.type == "datetime":
        meta.append(BeforeValidator(_to_datetime))
    annotation: Any = _annotated(python_type, meta)
    if spec.nullable:
        annotation = annotation | None
    if spec.type == "float":
        annotation = _annotated(annotation, [WrapValidator(_nan_guard(spec.nullable))])
    return annotation


def _annotated(base: Any, meta: list[Any]) -> Any:
    from typing import Annotated

    return Annotated[(base, *meta)]


def _build_pydantic(contract: Contract) -> type[BaseModel]:
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for i, (name, spec) in enumerate(contract.columns.items()):
        extra: Any = {"enum": list(spec.allowed)} if spec.allowed is not None else None
        default: Any = None if spec.nullable else ...
        info = Field(
            default,
            alias=name,
            description=spec.description or None,
            json_schema_extra=extra,
        )
        fields[_field_name(name, i)] = (_field_annotation(spec), info)
    config = ConfigDict(
        extra="forbid" if contract.strict else "ignore",
        protected_namespaces=(),
        frozen=True,
        title="ContractRecord",
    )
    model: type[BaseModel] = create_model(
        "ContractRecord", __config__=config, __doc__=contract.description or None, **fields
    )
    return model


# --------------------------------------------------------------------------- inference


def load_frame(data: Any, *, lazy: bool = False) -> Any:
    """A polars DataFrame (or LazyFrame when ``lazy``) from a frame, a pandas frame or a path
    to a CSV, TSV, Parquet or JSON Lines file.

    Raises:
        InvalidInputError: the input is none of these, or the file cannot be read.
    """
    import polars as pl

    from shipyard.data import ingest

    if isinstance(data, pl.DataFrame):
        return data.lazy() if lazy else data
    if isinstance(data, pl.LazyFrame):
        return data if lazy else data.collect()
    if type(data).__module__.startswith("pandas"):
        frame = pl.from_pandas(data)
        return frame.lazy() if lazy else frame
    if not isinstance(data, str | os.PathLike):
        raise InvalidInputError(
            f"expected a polars DataFrame or LazyFrame, a pandas DataFrame or a path to a "
            f"table file, got {type(data).__name__}"
        )
    path = Path(data)
    fmt = ingest.detect_format(path)
    if fmt == "tree":
        raise InvalidInputError(f"{path}: is a folder; expected a table file")
    # ingest owns reading user files; reuse its scanner and messages rather than a copy.
    scanned = ingest._scan(path, fmt, ingest.INFER_ROWS)
    if lazy:
        return scanned
    try:
        return scanned.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ingest._explain(path, fmt, exc) from None


def _infer_type(dtype: Any) -> str | None:
    import polars as pl

    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.String:
        return "string"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "category"
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "datetime"
    return None


def infer_contract(
    data: pl.DataFrame | pl.LazyFrame | str | os.PathLike[str],
    *,
    max_categories: int = 20,
    description: str = "",
) -> Contract:
    """Write a starting contract from data; the data it was inferred from passes it.

    Per column: the type; ``nullable: false`` when there are no missing values (null or NaN);
    the observed min and max for numbers and datetimes; for text with at most
    ``max_categories`` distinct values that repeat (at most half as many distinct values as
    values), ``type: category`` with the ``allowed`` values; ``unique: true`` for int and
    string columns whose values are all distinct. A ``row_count`` check asks for at least a
    tenth of the current rows. Columns of other types (lists, structs, decimals, all-null)
    are left out. Edit the result: observed ranges are facts about this batch, not rules.

    >>> import polars as pl
    >>> infer_contract(pl.DataFrame({"id": [1, 2, 3]})).columns["id"].unique
    True

    Raises:
        InvalidInputError: the data cannot be read.
    """
    import polars as pl

    lf = load_frame(data, lazy=True)
    schema = lf.collect_schema()
    types = {n: t for n, d in schema.items() if (t := _infer_type(d)) is not None}
    exprs: list[pl.Expr] = [pl.len().alias("__rows")]
    for i, name in enumerate(types):
        col = pl.col(name)
        if types[name] == "float":
            col = col.fill_nan(None)
        exprs += [col.null_count().alias(f"{i}_nulls"), col.n_unique().alias(f"{i}_distinct")]
        if types[name] in _RANGE_TYPES:
            exprs += [col.min().alias(f"{i}_min"), col.max().alias(f"{i}_max")]
    try:
        stats = lf.select(exprs).collect(engine="streaming").row(0, named=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InvalidInputError(f"cannot read the data to infer a contract: {exc}") from None
    rows = int(stats["__rows"])
    columns: dict[str, ColumnSpec] = {}
    for i, (name, type_) in enumerate(types.items()):
        nulls = int(stats[f"{i}_nulls"])
        distinct = int(stats[f"{i}_distinct"]) - (1 if nulls else 0)
        present = rows - nulls
        allowed = None
        repeats = type_ == "category" or distinct * 2 <= present
        if type_ in ("string", "category") and 0 < distinct <= max_categories and repeats:
            type_ = "category"
            values = lf.select(pl.col(name).cast(pl.String).drop_nulls().unique().sort())
            allowed = tuple(values.collect().to_series().to_list())
        bounds = [_clean_bound(stats.get(f"{i}_{k}")) for k in ("min", "max")]
        columns[name] = ColumnSpec(
            type=type_,  # type: ignore[arg-type]
            nullable=nulls > 0,
            min=bounds[0],
            max=bounds[1],
            allowed=allowed,
            unique=type_ in ("int", "string") and present >= 2 and distinct == present,
        )
    row_count = Range(min=math.floor(rows * INFER_ROW_COUNT_SHARE) or 1) if rows else None
    return Contract(columns, description, checks=DatasetChecks(row_count=row_count))


def _clean_bound(value: Any) -> Bound | None:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, date):
        return _parse_datetime(value)
    return value  # type: ignore[no-any-return]
