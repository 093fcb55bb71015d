"""Parsing contract documents: every part checked, every problem reported at once.

Users write contracts by hand, so a mistake gets a message that names where it is and, when
it looks like a typo, what was probably meant ("columns.age.tpye: unknown key; did you mean
'type'?").
"""

from __future__ import annotations

import difflib
import functools
import math
import os
from collections.abc import Hashable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from shipyard.data.contracts import (
    COLUMN_TYPES,
    RANGE_TYPES,
    Bound,
    ColumnSpec,
    Contract,
    DatasetChecks,
    QuantileBounds,
    Range,
    bound_to_json,
    parse_datetime,
)
from shipyard.errors import InvalidInputError

__all__ = [
    "Problems",
    "check_keys",
    "got",
    "load_yaml",
    "parse_contract",
    "parse_number",
    "parse_range",
    "read_document",
    "sub",
    "unique_key_loader",
]

_TOP_KEYS = ("description", "owner", "strict", "columns", "checks")
_COLUMN_KEYS = (
    "type",
    "nullable",
    "min",
    "max",
    "allowed",
    "regex",
    "unique",
    "description",
    "pii",
)
_CHECK_KEYS = ("row_count", "unique", "max_null_share", "mean", "quantile")
_ALLOWED_TYPES = ("int", "float", "bool", "string", "category")
_REGEX_TYPES = ("string", "category")
_NUMERIC_TYPES = ("int", "float")
# Names other tools use, suggested (not accepted) so that a contract has one spelling.
_TYPE_HINTS = {
    "integer": "int",
    "long": "int",
    "int64": "int",
    "double": "float",
    "number": "float",
    "float64": "float",
    "boolean": "bool",
    "str": "string",
    "text": "string",
    "utf8": "string",
    "categorical": "category",
    "enum": "category",
    "date": "datetime",
    "timestamp": "datetime",
}


class Problems:
    """Every problem found in a document, raised together once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def raise_if_any(self, what: str) -> None:
        if self.items:
            raise InvalidInputError.from_problems(what, self.items)


def load_yaml(text: str, what: str, empty_hint: str | None) -> Any:
    """Parse a YAML document written by hand; errors say where ("policy is not valid YAML at
    line 3, column 5: ...") and a repeated key is refused. ``empty_hint`` ends the message
    for an empty document; with None an empty document is allowed and gives None.

    Raises:
        InvalidInputError: not YAML, or an empty document.
    """
    import yaml

    try:
        doc = yaml.load(text, Loader=unique_key_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise InvalidInputError(f"{what} is not valid YAML{where}: {reason}") from None
    if doc is None and empty_hint is not None:
        raise InvalidInputError(f"{what} is empty{empty_hint}")
    return doc


def read_document(path: str | os.PathLike[str], what: str) -> str:
    """The text of a file the user named, or an InvalidInputError saying why not."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"{p}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{p}: cannot read {what}: not UTF-8 text ({exc.reason})") from None


@functools.cache
def unique_key_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """A SafeLoader that refuses a key written twice (PyYAML silently keeps the last)."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    continue  # SafeLoader itself rejects unhashable keys, with its message
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep)

    return Loader


def got(value: Any, expected_text: bool = False) -> str:
    """How a wrong value is shown in a message ("the number 5", "nothing", "a list")."""
    if value is None:
        return "nothing"
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (date, "a date"),
        (list, "a list"),
        (Mapping, "a mapping"),
    )
    kind = next((k for t, k in kinds if isinstance(value, t)), type(value).__name__)
    text = f"{value!r} ({kind})"
    if expected_text and isinstance(value, bool):
        text += "; YAML reads unquoted yes/no/on/off/true/false as booleans, quote the value"
    elif expected_text and isinstance(value, int | float | date):
        text += "; quote the value to make it text"
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sub(path: str, key: Any) -> str:
    """The path of ``key`` under ``path`` ("columns.age" + "max" → "columns.age.max")."""
    return f"{path}.{key}" if path else str(key)


def check_keys(raw: Mapping[Any, Any], known: tuple[str, ...], path: str, p: Problems) -> None:
    for key in raw:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(known)}"
        p.add(sub(path, key), f"unknown key; {hint}")


def _text(raw: Mapping[Any, Any], key: str, path: str, p: Problems) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    p.add(sub(path, key), f"expected text, got {got(value, expected_text=True)}")
    return None


def _flag(raw: Mapping[Any, Any], key: str, path: str, p: Problems, default: bool) -> bool:
    value = raw.get(key, default)
    if isinstance(value, bool):
        return value
    p.add(sub(path, key), f"expected true or false, got {got(value)}")
    return default


def parse_number(value: Any, path: str, p: Problems) -> int | float | None:
    if not _is_number(value):
        p.add(path, f"expected a number, got {got(value)}")
    elif not math.isfinite(value):
        p.add(path, f"expected a finite number, got {value!r}")
    else:
        return value  # type: ignore[no-any-return]
    return None


def _parse_bound(value: Any, type_: str, path: str, p: Problems) -> Bound | None:
    if type_ == "datetime":
        parsed = parse_datetime(value)
        if parsed is None:
            p.add(
                path,
                f"expected a date or time like 2024-05-01T12:00:00, got {got(value)}",
            )
        return parsed
    return parse_number(value, path, p)


def _check_order(lo: Any, hi: Any, path: str, p: Problems) -> None:
    if lo is not None and hi is not None and lo > hi:
        p.add(path, f"min {bound_to_json(lo)} is greater than max {bound_to_json(hi)}")


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


def _parse_column(raw: Any, path: str, p: Problems) -> ColumnSpec | None:
    if isinstance(raw, str):  # shorthand: `age: int`
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping such as {{type: int}}, got {got(raw)}")
        return None
    check_keys(raw, _COLUMN_KEYS, path, p)
    type_ = raw.get("type")
    if type_ is None:
        p.add(path, f"missing 'type'; one of: {', '.join(COLUMN_TYPES)}")
    elif type_ not in COLUMN_TYPES:
        close = _TYPE_HINTS.get(str(type_).lower()) or next(
            iter(difflib.get_close_matches(str(type_), COLUMN_TYPES, n=1)), None
        )
        hint = f"did you mean '{close}'?" if close else f"one of: {', '.join(COLUMN_TYPES)}"
        p.add(sub(path, "type"), f"unknown type {type_!r}; {hint}")
        type_ = None
    nullable = _flag(raw, "nullable", path, p, True)
    unique = _flag(raw, "unique", path, p, False)
    pii = _flag(raw, "pii", path, p, False)
    description = _text(raw, "description", path, p) or ""
    bounds: dict[str, Bound | None] = {"min": None, "max": None}
    for key in bounds:
        if raw.get(key) is None or type_ is None:
            continue
        if type_ not in RANGE_TYPES:
            p.add(sub(path, key), f"applies to int, float and datetime columns, not {type_}")
        else:
            bounds[key] = _parse_bound(raw[key], type_, sub(path, key), p)
    _check_order(bounds["min"], bounds["max"], path, p)
    allowed = raw.get("allowed")
    if allowed is not None and type_ is not None:
        if type_ not in _ALLOWED_TYPES:
            p.add(sub(path, "allowed"), f"does not apply to {type_} columns")
        elif not isinstance(allowed, list) or not allowed:
            p.add(
                sub(path, "allowed"),
                f"expected a non-empty list, got {got(allowed)}",
            )
        else:
            for i, value in enumerate(allowed):
                if not _allowed_ok(type_, value):
                    text = type_ in ("string", "category")
                    p.add(
                        f"{path}.allowed[{i}]",
                        f"expected a {type_} value, got {got(value, expected_text=text)}",
                    )
    regex = _text(raw, "regex", path, p)
    if regex is not None and type_ is not None:
        if type_ not in _REGEX_TYPES:
            p.add(sub(path, "regex"), f"applies to string and category columns, not {type_}")
        elif (why := _regex_problem(regex)) is not None:
            p.add(sub(path, "regex"), f"invalid regular expression {regex!r}: {why}")
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
        pii=pii,
    )


def parse_range(raw: Any, path: str, p: Problems, *, count: bool = False) -> Range | None:
    if not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping with min and/or max, got {got(raw)}")
        return None
    if not raw:
        p.add(path, "needs min and/or max")
        return None
    check_keys(raw, ("min", "max"), path, p)
    out: dict[str, int | float | None] = {"min": None, "max": None}
    for key in out:
        value = raw.get(key)
        if value is None:
            continue
        if count and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            p.add(
                sub(path, key),
                f"expected a whole number of rows >= 0, got {got(value)}",
            )
        else:
            out[key] = parse_number(value, sub(path, key), p)
    _check_order(out["min"], out["max"], path, p)
    return Range(out["min"], out["max"])


def _share(value: Any, path: str, p: Problems) -> float | None:
    number = parse_number(value, path, p)
    if number is not None and not 0 <= number <= 1:
        p.add(path, f"expected a share between 0 and 1, got {number!r}")
        return None
    return None if number is None else float(number)


def _column_ref(
    name: Any, path: str, p: Problems, declared: Mapping[str, str | None], numeric: bool = False
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


def _parse_checks(raw: Any, declared: Mapping[str, str | None], p: Problems) -> DatasetChecks:
    if raw is None:
        return DatasetChecks()
    if not isinstance(raw, Mapping):
        p.add("checks", f"expected a mapping, got {got(raw)}")
        return DatasetChecks()
    check_keys(raw, _CHECK_KEYS, "checks", p)
    row_count = None
    if raw.get("row_count") is not None:
        row_count = parse_range(raw["row_count"], "checks.row_count", p, count=True)
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
        if _column_ref(c, path, p, declared, numeric=True) and (r := parse_range(v, path, p)):
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
    raw: Any, declared: Mapping[str, str | None], p: Problems
) -> tuple[tuple[str, ...], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        p.add("checks.unique", f"expected a list of keys like [[a, b]], got {got(raw)}")
        return ()
    keys: list[tuple[str, ...]] = []
    for i, key in enumerate(raw):
        path = f"checks.unique[{i}]"
        if not isinstance(key, list) or not key:
            hint = "write one key of two columns as unique: [[a, b]]"
            p.add(path, f"expected a list of column names, got {got(key)}; {hint}")
        elif all(_column_ref(c, path, p, declared) for c in key):
            if len(set(key)) != len(key):
                p.add(path, "names a column twice")
            keys.append(tuple(key))
    return tuple(keys)


def _mapping(raw: Mapping[Any, Any], key: str, p: Problems) -> Mapping[Any, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    p.add(f"checks.{key}", f"expected a mapping of column name to bounds, got {got(value)}")
    return {}


def _parse_quantile(raw: Any, path: str, p: Problems) -> QuantileBounds | None:
    if not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping like {{q: 0.5, min: 1, max: 9}}, got {got(raw)}")
        return None
    q = _share(raw["q"], sub(path, "q"), p) if "q" in raw else None
    if "q" not in raw:
        p.add(path, "missing 'q', the quantile between 0 and 1 (0.5 is the median)")
    bounds = parse_range({k: v for k, v in raw.items() if k != "q"}, path, p)
    if q is None or bounds is None:
        return None
    return QuantileBounds(q, bounds.min, bounds.max)


def parse_contract(doc: Any, p: Problems) -> Contract | None:
    if not isinstance(doc, Mapping):
        p.add("", f"a contract is a mapping with 'columns', got {got(doc)}")
        return None
    check_keys(doc, _TOP_KEYS, "", p)
    description = _text(doc, "description", "", p) or ""
    owner = _text(doc, "owner", "", p)
    strict = _flag(doc, "strict", "", p, False)
    raw_columns = doc.get("columns")
    columns: dict[str, ColumnSpec] = {}
    declared: dict[str, str | None] = {}
    if not isinstance(raw_columns, Mapping) or not raw_columns:
        p.add(
            "columns",
            f"expected a mapping of column name to rules, got {got(raw_columns)}",
        )
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
