"""One timestamp format for every file shipyard writes: ISO 8601 with a ``T``, the offset as
``+00:00`` when the time has a zone, and fractional seconds only when there are some, as
Python's ``datetime.isoformat()`` writes them in JSON documents.

>>> import polars as pl
>>> from datetime import datetime, UTC
>>> frame = pl.DataFrame({"at": [datetime(2026, 1, 1, 6, 53, tzinfo=UTC)],
...                       "local": [datetime(2026, 1, 1, 6, 53, 0, 250000)]})
>>> iso_datetimes(frame.lazy()).collect().rows()
[('2026-01-01T06:53:00+00:00', '2026-01-01T06:53:00.250')]
"""

from __future__ import annotations

from typing import Any

__all__ = ["DATETIME_FORMAT", "iso_datetimes"]

#: The chrono format of a time without a zone; ``%:z`` is appended for one with a zone.
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"


def iso_datetimes(lf: Any) -> Any:
    """The polars LazyFrame ``lf`` with its (top-level) datetime columns as ISO 8601 text;
    other columns untouched."""
    import polars as pl

    schema = lf.collect_schema()
    exprs = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            fmt = DATETIME_FORMAT + ("%:z" if dtype.time_zone else "")
            exprs.append(pl.col(name).dt.to_string(fmt))
    return lf.with_columns(exprs) if exprs else lf
