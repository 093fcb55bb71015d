"""The run search grammar: MLflow-compatible filters and order-by terms, parsed into an AST.

>>> f = parse_filter("metrics.auc > 0.8 and params.model = 'gbm'")
>>> str(f)
"metrics.auc > 0.8 and params.model = 'gbm'"
>>> [str(t) for t in parse_order_by("metrics.auc DESC, params.lr")]
['metrics.auc DESC', 'params.lr ASC']

Text is parsed into a small frozen AST (``Filter`` holding ``Comparison``, ``And`` and ``Or``
nodes), which ``search_sql.compile_filter`` turns into a boolean SQLAlchemy expression over
the ``runs`` table: every value travels as a bound parameter, never inside SQL text. Shipyard
extends MLflow's grammar with ``or``, parentheses and ``IS [NOT] NULL``; docs/search.md is
the user guide.

This module holds the AST, the constraints it shares with the parser, rendering back to text,
and the two entry points (``parse_filter``, ``parse_order_by``); the lexer and parser are in
``search_parser``, the compilation to SQL in ``search_sql``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from shipyard.errors import InvalidInputError

__all__ = [
    "And",
    "Comparison",
    "Filter",
    "FilterSyntaxError",
    "Or",
    "OrderTerm",
    "parse_filter",
    "parse_order_by",
]

Entity = Literal["metric", "param", "tag", "attribute"]

NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NULL_OPS = ("IS NULL", "IS NOT NULL")

# Limits that keep a hostile filter from reaching a database limit (SQLite allows 32,766
# bound parameters and expressions 1,000 deep) instead of failing here with a clear message.
MAX_COMPARISONS = 100
MAX_VALUES = 1000
MAX_DEPTH = 32
MAX_TEXT = 10_000

PREFIXES: dict[str, Entity] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_CANONICAL_PREFIX: dict[Entity, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
}
# Searchable attributes, with the runs column each reads ("experiment" reads experiments.name).
ATTRIBUTES: dict[str, str] = {
    "status": "status",
    "run_name": "name",
    "run_id": "id",
    "start_time": "start_time",
    "end_time": "end_time",
    "created_by": "created_by",
    "experiment": "experiment",
}
ATTRIBUTE_ALIASES = {
    "name": "run_name",
    "id": "run_id",
    "user": "created_by",
    "user_id": "created_by",
    "created": "start_time",
}
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
_INT64 = 2**63

Value: TypeAlias = int | float | str | tuple[str, ...] | None


class FilterSyntaxError(InvalidInputError):
    """A filter or order-by text that cannot be parsed; ``position`` is a 0-based index.
    On the command line it is a usage error (exit 2)."""

    exit_code = 2

    def __init__(self, reason: str, *, text: str, position: int) -> None:
        super().__init__(
            f"{reason} at position {position}:\n{_pointer(text, position)}",
            details={"reason": reason, "position": position},
        )
        self.reason = reason
        self.text = text
        self.position = position


def _pointer(text: str, position: int) -> str:
    """The text (a window of it when long) with a caret under ``position``."""
    start = max(0, min(position - 40, len(text) - 78))
    shown = text[start : start + 78]
    lead = "…" if start > 0 else ""
    tail = "…" if start + 78 < len(text) else ""
    # Control characters would break the caret's alignment, so they show as spaces.
    shown = "".join(c if c.isprintable() else " " for c in shown)
    return f"    {lead}{shown}{tail}\n    {' ' * (len(lead) + position - start)}^"


# -- the AST ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One test on a run: ``metrics.auc > 0.8``, ``tags.team IN ('a', 'b')``, ``params.x IS NULL``.

    ``key`` is the metric, param or tag key, or the canonical attribute name (``run_name``, not
    ``name``). ``value`` is a number, a string, a tuple of strings (``IN``) or None (``IS NULL``).

    Raises:
        InvalidInputError: the operator or value does not fit the entity.
    """

    entity: Entity
    key: str
    op: str
    value: Value = None

    def __post_init__(self) -> None:
        if isinstance(self.value, list):
            object.__setattr__(self, "value", tuple(self.value))
        problem = (
            _key_problem(self.entity, self.key)
            or _op_problem(self.entity, self.key, self.op)
            or _value_problem(self.entity, self.key, self.op, self.value)
        )
        if problem:
            raise InvalidInputError(f"invalid comparison {self.identifier}: {problem}")

    @property
    def identifier(self) -> str:
        return _render_identifier(self.entity, self.key)

    def __str__(self) -> str:
        if self.op in NULL_OPS:
            return f"{self.identifier} {self.op}"
        if isinstance(self.value, tuple):
            items = ", ".join(_render_string(v) for v in self.value)
            return f"{self.identifier} {self.op} ({items})"
        return f"{self.identifier} {self.op} {_render_value(self.value)}"


@dataclass(frozen=True)
class And:
    """All terms hold. Terms are comparisons or parenthesised groups (at least two)."""

    terms: tuple[Expr, ...]

    def __post_init__(self) -> None:
        _check_terms("and", self.terms)

    def __str__(self) -> str:
        return " and ".join(f"({t})" if isinstance(t, And | Or) else str(t) for t in self.terms)


@dataclass(frozen=True)
class Or:
    """At least one term holds (a shipyard extension; MLflow has no ``or``)."""

    terms: tuple[Expr, ...]

    def __post_init__(self) -> None:
        _check_terms("or", self.terms)

    def __str__(self) -> str:
        return " or ".join(f"({t})" if isinstance(t, Or) else str(t) for t in self.terms)


Expr: TypeAlias = Comparison | And | Or


def _check_terms(word: str, terms: tuple[Expr, ...]) -> None:
    if len(terms) < 2 or not all(isinstance(t, Comparison | And | Or) for t in terms):
        raise InvalidInputError(
            f"'{word}' needs a tuple of at least two Comparison, And or Or terms, got {terms!r}"
        )


@dataclass(frozen=True)
class Filter:
    """A parsed filter; ``where`` is None for the empty filter, which every run passes."""

    where: Expr | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.where, Comparison | And | Or | None):
            raise InvalidInputError(
                f"Filter holds a Comparison, And or Or, got {self.where!r}; "
                "to read text use parse_filter(text)"
            )

    def __str__(self) -> str:
        return "" if self.where is None else str(self.where)


@dataclass(frozen=True)
class OrderTerm:
    """One sort key: ``metrics.auc DESC``. Runs without the key sort last either way."""

    entity: Entity
    key: str
    descending: bool = False

    def __post_init__(self) -> None:
        problem = _key_problem(self.entity, self.key)
        if problem or not isinstance(self.descending, bool):
            problem = problem or "descending must be True or False"
            raise InvalidInputError(f"invalid order-by term {self.identifier}: {problem}")

    @property
    def identifier(self) -> str:
        return _render_identifier(self.entity, self.key)

    def __str__(self) -> str:
        return f"{self.identifier} {'DESC' if self.descending else 'ASC'}"


# -- the declared constraints, shared by the parser and the AST ---------------------------------


def _is_numeric(entity: Entity, key: str) -> bool:
    return entity == "metric" or (entity == "attribute" and key in NUMERIC_ATTRIBUTES)


def _allowed_ops(entity: Entity, key: str) -> tuple[str, ...]:
    ops = NUMBER_OPS if _is_numeric(entity, key) else STRING_OPS
    return ops if entity == "attribute" else ops + NULL_OPS


def _describe(entity: Entity, key: str) -> str:
    if entity == "metric":
        return "metrics are numbers"
    if entity in ("param", "tag"):
        return f"{entity}s are strings"
    if key in NUMERIC_ATTRIBUTES:
        return f"attributes.{key} is a number (milliseconds since the epoch)"
    return f"attributes.{key} is a string"


def _key_problem(entity: Entity, key: str) -> str | None:
    if entity not in _CANONICAL_PREFIX:
        return f"unknown entity {entity!r}; use one of {', '.join(_CANONICAL_PREFIX)}"
    if not isinstance(key, str) or not key:
        return "empty key"
    if entity == "attribute" and key not in ATTRIBUTES:
        return f"unknown attribute {key!r}; use one of {', '.join(ATTRIBUTES)}"
    return _text_problem(key)


def _op_problem(entity: Entity, key: str, op: str) -> str | None:
    ops = _allowed_ops(entity, key)
    if op in ops:
        return None
    what = _render_identifier(entity, key)
    return f"{op} does not apply to {what} ({_describe(entity, key)}); use {', '.join(ops)}"


def _value_problem(entity: Entity, key: str, op: str, value: object) -> str | None:
    if op in NULL_OPS:
        return None if value is None else f"{op} takes no value"
    if op in ("IN", "NOT IN"):
        if not isinstance(value, tuple) or not value:
            return f"{op} needs a non-empty list of strings"
        problems = (_string_problem(entity, key, op, v) for v in value)
        return next((p for p in problems if p), None)
    if _is_numeric(entity, key):
        return _number_problem(entity, key, value)
    return _string_problem(entity, key, op, value)


def _number_problem(entity: Entity, key: str, value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        what = _render_identifier(entity, key)
        return f"{what} is compared with a number ({_describe(entity, key)})"
    if entity == "attribute" and isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            return f"{value} is out of range for a time in milliseconds"
        return None
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    return None if finite else f"{value} is out of range for a number"


def _string_problem(
    entity: Entity, key: str, op: str, value: object, written: str = ""
) -> str | None:
    if not isinstance(value, str):
        what = _render_identifier(entity, key)
        shown = written or (value if isinstance(value, int | float) else "...")
        return (
            f"{what} is compared with a quoted string ({_describe(entity, key)}); "
            f"write {what} {op} '{shown}'"
        )
    problem = _text_problem(value)
    if problem is None and op in ("LIKE", "ILIKE"):
        trailing = len(value) - len(value.rstrip("\\"))
        if trailing % 2:
            problem = "the pattern ends with a lone escape '\\'; write '\\\\' for a backslash"
    return problem


def _text_problem(text: str) -> str | None:
    # PostgreSQL refuses NUL in text, a lone surrogate cannot be encoded as UTF-8, and SQLite
    # refuses LIKE patterns over 50,000 bytes.
    if len(text) > MAX_TEXT:
        return f"text longer than {MAX_TEXT:,} characters"
    if any(c == "\0" or "\ud800" <= c <= "\udfff" for c in text):
        return "text cannot contain NUL or lone surrogate characters"
    return None


# -- rendering ----------------------------------------------------------------------------------


def _is_key_char(c: str) -> bool:
    return c.isalnum() or c in "_.-/"


def _render_identifier(entity: Entity, key: str) -> str:
    prefix = _CANONICAL_PREFIX.get(entity, str(entity))
    if isinstance(key, str) and key and all(_is_key_char(c) for c in key):
        return f"{prefix}.{key}"
    return f"{prefix}.`{str(key).replace('`', '``')}`"


def _render_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _render_value(value: Value) -> str:
    if isinstance(value, str):
        return _render_string(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_filter(text: str, *, bare_attributes: bool = False) -> Filter:
    """Parse a run filter; the empty text is the filter every run passes.
    ``bare_attributes``: read ``status = 'x'`` as ``attributes.status = 'x'`` (MLflow does).

    >>> str(parse_filter("metrics.auc>0.8 AND tags.team IN ('risk')"))
    "metrics.auc > 0.8 and tags.team IN ('risk')"

    Raises:
        FilterSyntaxError: the text is not a valid filter; the message points at the problem.
    """
    # Imported here, not at the top: search_parser imports the AST from this module.
    from shipyard.tracking.search_parser import _Parser

    if not isinstance(text, str):
        raise InvalidInputError(f"a filter is a string, got {type(text).__name__}")
    return _Parser(text, bare_attributes=bare_attributes).filter()


def parse_order_by(
    spec: str | Sequence[str] | None, *, bare_attributes: bool = False
) -> list[OrderTerm]:
    """Parse order-by terms: a list of ``"KEY [ASC|DESC]"`` or one comma-separated string
    (``bare_attributes``: as in :func:`parse_filter`).

    >>> [str(t) for t in parse_order_by(["metrics.auc DESC", "attributes.start_time"])]
    ['metrics.auc DESC', 'attributes.start_time ASC']

    Raises:
        FilterSyntaxError: a term is not ``IDENTIFIER [ASC|DESC]``.
    """
    from shipyard.tracking.search_parser import _Parser  # local: see parse_filter

    if spec is None:
        return []
    if isinstance(spec, str):
        return (
            []
            if not spec.strip()
            else _Parser(spec, bare_attributes=bare_attributes).order_terms(single=False)
        )
    terms: list[OrderTerm] = []
    for item in spec:
        if not isinstance(item, str):
            raise InvalidInputError(f"an order-by term is a string, got {item!r}")
        terms.extend(_Parser(item, bare_attributes=bare_attributes).order_terms(single=True))
    return terms
