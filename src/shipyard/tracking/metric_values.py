"""Metric values that are not finite numbers: NaN and infinity, kept as MLflow keeps them.

A training loop that diverges logs ``nan`` or ``inf``; the run goes on, and the value is
recorded and shown as ``NaN``, ``inf`` or ``-inf``. Infinities are ordinary floating-point
values on both backends. NaN is not: PostgreSQL stores it, but SQLite turns a NaN it is given
into NULL, so there it is kept as the text ``'NaN'`` (:func:`to_stored`) and read back as a
float (:func:`from_stored`). Both databases order that NaN after every number, so queries
that must treat it apart say so with :class:`IsNaN`: a comparison never matches NaN (as in
IEEE 754) and an ordering puts NaN after every number in both directions, just before
missing values. The rules are documented in ``docs/search.md``.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["IsNaN", "from_stored", "metric_text", "to_stored"]

_SQLITE_NAN = "NaN"


def to_stored(value: float, dialect: str) -> float | str:
    """``value`` as a parameter for the ``dialect`` database (``sqlite`` or ``postgresql``)."""
    return _SQLITE_NAN if dialect == "sqlite" and math.isnan(value) else value


def from_stored(value: Any) -> float:
    """A stored metric value as a float (SQLite hands its NaN back as text)."""
    return float(value)


def metric_text(value: float) -> str:
    """A metric value for people: ``0.8123``, ``NaN``, ``inf``, ``-inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


class IsNaN(FunctionElement[bool]):
    """True where a stored metric value is NaN, on SQLite and PostgreSQL alike."""

    type = Boolean()
    name = "shipyard_is_nan"
    inherit_cache = True
    _is_implicitly_boolean = True


@compiles(IsNaN)
def _is_nan_default(element: IsNaN, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses.clauses
    return f"({compiler.process(arg, **kw)} <> {compiler.process(arg, **kw)})"


@compiles(IsNaN, "sqlite")
def _is_nan_sqlite(element: IsNaN, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses.clauses
    return f"(typeof({compiler.process(arg, **kw)}) = 'text')"


@compiles(IsNaN, "postgresql")
def _is_nan_postgresql(element: IsNaN, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses.clauses
    # PostgreSQL's NaN equals itself (so that it can be indexed and sorted).
    return f"({compiler.process(arg, **kw)} = 'NaN'::float8)"
