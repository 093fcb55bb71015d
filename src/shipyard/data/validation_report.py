"""What validating a table reports: :class:`Failure` and :class:`ValidationReport`.

A report lists, per column and check, how many rows fail and a few offending values, all
JSON-ready so that the report can be stored with a dataset version and read back. Import these
types from :mod:`shipyard.data.validation`, which re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from shipyard._internal.encode import ReadModel
from shipyard.errors import CheckFailedError, InvalidInputError

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Failure",
    "ValidationReport",
]


@dataclass(frozen=True)
class Failure(ReadModel):
    """One check that did not pass.

    ``column`` is None for checks on the whole table; ``failed_rows`` counts the rows failing
    (0 for statistics over the table); ``examples`` holds distinct offending values (for
    statistics, the observed value) as JSON-ready values.
    """

    column: str | None
    check: str
    failed_rows: int
    examples: list[Any] = field(default_factory=list)
    message: str = ""

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Failure:
        return cls(
            column=doc["column"],
            check=doc["check"],
            failed_rows=int(doc["failed_rows"]),
            examples=list(doc.get("examples", [])),
            message=doc.get("message", ""),
        )


@dataclass(frozen=True)
class ValidationReport(ReadModel):
    """The outcome of validating one table against one contract."""

    passed: bool
    rows: int
    failures: list[Failure]

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ValidationReport:
        """Read back a document written by :meth:`to_dict`.

        Raises:
            InvalidInputError: the document is not a validation report.
        """
        try:
            return cls(
                passed=bool(doc["passed"]),
                rows=int(doc["rows"]),
                failures=[Failure.from_dict(f) for f in doc["failures"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a validation report: {exc!r}") from None

    def summary(self) -> str:
        """One line: ``passed (1,000 rows)`` or ``2 checks failed on 1,000 rows: age max
        (12 rows), row_count``."""
        from shipyard._internal.words import count

        if self.passed:
            return f"passed ({count(self.rows, 'row')})"
        parts = [
            " ".join(filter(None, [f.column, f.check]))
            + (f" ({count(f.failed_rows, 'row')})" if f.failed_rows else "")
            for f in self.failures
        ]
        n = len(self.failures)
        return f"{count(n, 'check')} failed on {count(self.rows, 'row')}: " + ", ".join(parts)

    def raise_if_failed(self) -> None:
        """Raise when a check failed.

        Raises:
            CheckFailedError: with the summary as message and the report as details.
        """
        if not self.passed:
            raise CheckFailedError(self.summary(), details=self.to_dict())


# --------------------------------------------------------------------------- JSON-ready values


def _examples(frame: pl.DataFrame, columns: Any, ok: pl.Series | None, n: int) -> list[Any]:
    rows = frame.select(list(columns))
    if ok is not None:
        rows = rows.filter(ok.not_())
    rows = rows.unique(maintain_order=True).head(n)
    if rows.width == 1:
        return [_json_value(v) for v in rows.to_series().to_list()]
    return [{k: _json_value(v) for k, v in row.items()} for row in rows.iter_rows(named=True)]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)
