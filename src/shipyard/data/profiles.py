"""Column profiles of tabular datasets and the differences between two profiles.

A profile is a plain JSON document computed once when a version is added: per column the
count, nulls and distinct values; for numbers min, max, mean, std and quantiles; for strings
and categories the most frequent values. Columns are profiled one at a time from the Parquet
file, so memory stays bounded by one column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from shipyard.monitoring.reference import ReferenceProfile

__all__ = [
    "QUANTILES",
    "diff_profiles",
    "dtype_name",
    "profile_parquet",
    "profile_with_reference",
    "reference_parquet",
]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# The integers JSON readers take (orjson, for one, refuses any beyond 64 bits).
_INT_JSON = (-(2**63), 2**64 - 1)
TOP_VALUES = 10


def dtype_name(dtype: Any) -> str:
    """A stable, readable name for a polars dtype (``Int64``, ``String``, ``Datetime(us)``)."""
    return str(dtype)


def _clean(value: Any) -> Any:
    """A statistic as a JSON value: NaN and infinity become null, decimals and integers
    beyond 64 bits floats, durations seconds, dates ISO text, anything else exotic its text."""
    import datetime as dt
    import decimal

    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT_JSON[0] <= value <= _INT_JSON[1]
    ):
        return float(value)  # beyond 64 bits (Int128, UInt128), which JSON readers reject
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _kind(dtype: Any) -> str:
    import polars as pl

    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_numeric():
        return "number"
    if dtype.is_temporal():
        return "time"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "string"
    return "other"


# Up to this many rows, every statistic is exact. Above it, quantiles come from a systematic
# sample of this many rows and the distinct count of high-cardinality columns is a
# HyperLogLog estimate; the profile says so ("sampled_rows", "distinct_approx").
EXACT_ROWS = 1_000_000
EXACT_DISTINCT_BELOW = 100_000


def profile_parquet(
    path: str | Path, on_column: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Profile every column of a Parquet file in a few streaming passes.

    Returns ``{"rows": N, "columns": {name: {...statistics...}}}``; memory stays bounded by the
    sample size, not the file size.
    """
    return _profile(path, on_column, with_reference=False)[0]


def profile_with_reference(
    path: str | Path | pl.DataFrame, on_column: Callable[[str], None] | None = None
) -> tuple[dict[str, Any], ReferenceProfile]:
    """:func:`profile_parquet` and the drift reference of the same file (or of the frame in
    memory that a file was written from: the same result without reading it back), built
    from the rows the profile's quantiles are read from (one read for both)."""
    profile, reference = _profile(path, on_column, with_reference=True)
    assert reference is not None
    return profile, reference


def reference_parquet(path: str | Path) -> ReferenceProfile:
    """The drift reference of a Parquet file, as :func:`profile_with_reference` builds it:
    from every row up to ``EXACT_ROWS``, else from a systematic sample of about that many."""
    import polars as pl

    from shipyard.monitoring.reference import build_reference

    lf = pl.scan_parquet(path)
    kinds = {name: _kind(dtype) for name, dtype in lf.collect_schema().items()}
    rows = int(lf.select(pl.len()).collect().item())
    return build_reference(_rows_sample(lf, _reference_columns(kinds), rows))


def _reference_columns(kinds: dict[str, str]) -> list[str]:
    return [n for n, k in kinds.items() if k in ("number", "string", "bool")]


def _rows_sample(lf: Any, columns: list[str], rows: int) -> Any:
    """``columns`` of every row, or of every k-th row when there are more than EXACT_ROWS."""
    step = max(1, -(-rows // EXACT_ROWS))
    return lf.select(columns).gather_every(step).collect(engine="streaming")


def _profile(
    source: str | Path | pl.DataFrame,
    on_column: Callable[[str], None] | None,
    *,
    with_reference: bool,
) -> tuple[dict[str, Any], ReferenceProfile | None]:
    import polars as pl

    from shipyard.monitoring.reference import sorted_quantiles

    lf = source.lazy() if isinstance(source, pl.DataFrame) else pl.scan_parquet(source)
    schema = lf.collect_schema()
    rows = source.height if isinstance(source, pl.DataFrame) else _count(lf)
    kinds = {name: _kind(dtype) for name, dtype in schema.items()}
    exact = rows <= EXACT_ROWS
    # Numbers and times read whole get their distinct count from a sort (which the numbers'
    # quantiles and drift reference need anyway) rather than from hashing every value.
    by_sort = {n for n, dtype in schema.items() if _sortable(dtype, kinds[n])} if exact else set()

    # Pass 1: streaming aggregates for every column at once.
    exprs: list[Any] = [pl.len().alias("__rows")]
    for name, kind in kinds.items():
        col = pl.col(name)
        exprs.append(col.null_count().alias(f"{name}\0nulls"))
        if kind != "other" and name not in by_sort:
            exprs.append(
                (col.n_unique() if exact else col.approx_n_unique()).alias(f"{name}\0distinct")
            )
        if kind in ("number", "time"):
            exprs += [col.min().alias(f"{name}\0min"), col.max().alias(f"{name}\0max")]
        if kind == "number":
            num = col.cast(pl.Float64)
            exprs += [num.mean().alias(f"{name}\0mean"), num.std().alias(f"{name}\0std")]
    agg = lf.select(exprs).collect(engine="streaming").row(0, named=True)

    # Pass 2: exact distinct counts where the estimate says they are cheap.
    distinct_exact: dict[str, bool] = {n: exact for n in kinds}
    if not exact:
        cheap = [
            n
            for n, k in kinds.items()
            if k != "other" and int(agg[f"{n}\0distinct"]) < EXACT_DISTINCT_BELOW
        ]
        # A streaming group-by holds one entry per distinct value; n_unique would hold the
        # whole column. The columns are counted at once, on every core.
        counts = pl.collect_all(
            [lf.select(pl.col(n)).group_by(n).agg(pl.len()).select(pl.len()) for n in cheap],
            engine="streaming",
        )
        for n, count in zip(cheap, counts, strict=True):
            agg[f"{n}\0distinct"] = count.item()
            distinct_exact[n] = True

    # Pass 3: quantiles from the numeric columns (all rows, or a systematic sample); the drift
    # reference is built from the same rows, text and boolean columns included. Each numeric
    # column is sorted once, for its quantiles, its reference and its distinct count.
    numeric = [n for n, k in kinds.items() if k == "number"]
    step = max(1, -(-rows // EXACT_ROWS))
    wanted = _reference_columns(kinds) if with_reference else numeric
    read = [n for n in schema if n in wanted or n in by_sort]
    if not read:
        sample = None
    elif isinstance(source, pl.DataFrame) and step == 1:
        sample = source.select(read)
    else:
        sample = _rows_sample(lf, read, rows)
    ordered: dict[str, np.ndarray] = {}
    to_sort = [n for n in read if n in by_sort or (n in numeric and _sortable(schema[n], kinds[n]))]
    sorted_columns = _sorted_values(sample, to_sort) if sample is not None else {}
    for name in to_sort:
        values, distinct = sorted_columns[name]
        if kinds[name] == "number":
            ordered[name] = values
        if name in by_sort:  # counted as n_unique counts: null as one more value
            agg[f"{name}\0distinct"] = distinct + (1 if agg[f"{name}\0nulls"] else 0)
    reference = None
    if with_reference:
        from shipyard.monitoring.reference import build_reference

        reference = build_reference(
            sample.select(wanted) if sample is not None else pl.DataFrame(),
            sorted_values=ordered,
        )

    texts = [n for n, k in kinds.items() if k in ("string", "bool")]
    tops = _top_values(lf, {n: step if not distinct_exact[n] else 1 for n in texts})
    columns: dict[str, Any] = {}
    for name, dtype in schema.items():
        kind = kinds[name]
        nulls = int(agg[f"{name}\0nulls"])
        out: dict[str, Any] = {
            "dtype": dtype_name(dtype),
            "kind": kind,
            "count": rows - nulls,
            "nulls": nulls,
        }
        if kind != "other":
            # n_unique counts null as a value; report distinct non-null values.
            out["distinct"] = max(0, int(agg[f"{name}\0distinct"]) - (1 if nulls else 0))
            if not distinct_exact[name]:
                out["distinct_approx"] = True
        if kind in ("number", "time"):
            out["min"] = _clean(agg[f"{name}\0min"])
            out["max"] = _clean(agg[f"{name}\0max"])
        if kind == "number" and sample is not None:
            out["mean"] = _clean(agg[f"{name}\0mean"])
            out["std"] = _clean(agg[f"{name}\0std"])
            # A sort then lookups cost less than np.quantile's partial sort of 7 points.
            finite = ordered.get(name)
            if finite is None:
                finite = _finite_sorted(sample.get_column(name))
            qs = sorted_quantiles(finite, QUANTILES) if finite.size else [None] * len(QUANTILES)
            out["quantiles"] = {
                str(q): _clean(None if v is None else float(v))
                for q, v in zip(QUANTILES, qs, strict=True)
            }
            if step > 1:
                out["sampled_rows"] = int(sample.height)
        if kind in ("string", "bool"):
            out["top"] = tops[name]
            if not distinct_exact[name]:
                out["top_sampled"] = True
        columns[name] = out
        if on_column:
            on_column(name)
    return {"rows": rows, "columns": columns}, reference


def _count(lf: pl.LazyFrame) -> int:
    import polars as pl

    return int(lf.select(pl.len()).collect().item())


def _sortable(dtype: Any, kind: str) -> bool:
    """Whether a column's distinct count can come from sorting its values as numpy numbers:
    integers up to 64 bits, floats, and times (integers underneath). numpy has no 128-bit
    integers: those, like decimals, are counted by polars and their quantiles read as floats."""
    import polars as pl

    if kind == "time":
        return True
    if kind != "number" or dtype in (pl.Int128, pl.UInt128):
        return False
    return bool(dtype.is_integer() or dtype.is_float())


def _finite_sorted(s: pl.Series) -> np.ndarray:
    import numpy as np
    import polars as pl

    values = s.drop_nulls().cast(pl.Float64).to_numpy()
    return np.sort(values[np.isfinite(values)])


def _sorted_values(frame: pl.DataFrame, names: list[str]) -> dict[str, tuple[np.ndarray, int]]:
    """Per number or time column of ``names``: its finite values as sorted float64 (for
    quantiles and the drift reference; empty for times), and its count of distinct non-null
    values as polars counts them (NaN one value, -0.0 equal to 0.0).

    The columns are sorted by polars, all at once on every core (a third of the time numpy
    takes sorting them one after the other).
    """
    import numpy as np
    import polars as pl

    def finite(name: str) -> pl.Expr:
        col = pl.col(name).drop_nulls()
        if not frame.schema[name].is_float():
            return col.to_physical().sort()
        col = col.cast(pl.Float64)
        return col.filter(col.is_finite()).sort()

    lazy = frame.lazy()
    results = pl.collect_all([lazy.select(finite(n)) for n in names])
    out: dict[str, tuple[np.ndarray, int]] = {}
    for name, result in zip(names, results, strict=True):
        values = result.to_series().to_numpy()
        distinct = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0
        dtype = frame.schema[name]
        if dtype.is_float():
            values = values.astype(np.float64, copy=False)
            s = frame.get_column(name)
            present = s.len() - s.null_count()
            if values.size < present:  # NaN or infinities: each kind one distinct value
                rest = s.drop_nulls().cast(pl.Float64)
                rest = rest.filter(~rest.is_finite())
                distinct += int(rest.is_nan().any()) + rest.filter(~rest.is_nan()).n_unique()
        elif dtype.is_integer():
            values = values.astype(np.float64)
        else:
            values = np.empty(0)
        out[name] = (values, distinct)
    return out


def _top_values(lf: Any, steps: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """The most frequent values of each column in ``steps``, counted in every row or, where
    its step is above 1, in every step-th row; the columns are counted at once."""
    import polars as pl

    def query(name: str, step: int) -> Any:
        col = pl.col(name)
        src = lf.select(col) if step == 1 else lf.select(col).gather_every(step)
        # Ties are broken by value so that equal data always gives an equal profile.
        return (
            src.select(col.drop_nulls().cast(pl.String))
            .group_by(name)
            .agg(pl.len().alias("__n"))
            .sort(["__n", name], descending=[True, False])
            .head(TOP_VALUES)
        )

    results = pl.collect_all([query(n, step) for n, step in steps.items()], engine="streaming")
    return {
        name: [{"value": v, "count": int(n)} for v, n in result.rows()]
        for name, result in zip(steps, results, strict=True)
    }


_NUMERIC_STATS = ("count", "nulls", "distinct", "min", "max", "mean", "std")


def diff_profiles(
    schema_a: dict[str, str],
    schema_b: dict[str, str],
    profile_a: dict[str, Any],
    profile_b: dict[str, Any],
) -> dict[str, Any]:
    """Schema changes, row-count change and per-column statistic changes from A to B."""
    added = [c for c in schema_b if c not in schema_a]
    removed = [c for c in schema_a if c not in schema_b]
    retyped = [
        {"column": c, "from": schema_a[c], "to": schema_b[c]}
        for c in schema_a
        if c in schema_b and schema_a[c] != schema_b[c]
    ]
    rows_a = profile_a.get("rows")
    rows_b = profile_b.get("rows")
    changes: list[dict[str, Any]] = []
    cols_a = profile_a.get("columns", {})
    cols_b = profile_b.get("columns", {})
    for c in schema_a:
        if c not in schema_b:
            continue
        pa, pb = cols_a.get(c, {}), cols_b.get(c, {})
        for stat in _NUMERIC_STATS:
            va, vb = pa.get(stat), pb.get(stat)
            if va != vb and (va is not None or vb is not None):
                entry: dict[str, Any] = {"column": c, "stat": stat, "from": va, "to": vb}
                if isinstance(va, int | float) and isinstance(vb, int | float):
                    entry["change"] = vb - va
                    if va:
                        entry["relative"] = (vb - va) / abs(va)
                changes.append(entry)
        top_a = [t["value"] for t in pa.get("top", [])[:3]]
        top_b = [t["value"] for t in pb.get("top", [])[:3]]
        if top_a != top_b:
            changes.append({"column": c, "stat": "top", "from": top_a, "to": top_b})
    return {
        "schema": {"added": added, "removed": removed, "retyped": retyped},
        "rows": {
            "from": rows_a,
            "to": rows_b,
            "change": (rows_b - rows_a) if rows_a is not None and rows_b is not None else None,
        },
        "columns": changes,
    }
