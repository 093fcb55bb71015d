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
from typing import Any

__all__ = ["QUANTILES", "diff_profiles", "dtype_name", "profile_parquet"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TOP_VALUES = 10


def dtype_name(dtype: Any) -> str:
    """A stable, readable name for a polars dtype (``Int64``, ``String``, ``Datetime(us)``)."""
    return str(dtype)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


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


def profile_parquet(
    path: str | Path, on_column: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Profile every column of a Parquet file.

    Returns ``{"rows": N, "columns": {name: {...statistics...}}}``.
    """
    import polars as pl

    lf = pl.scan_parquet(path)
    schema = lf.collect_schema()
    rows = int(lf.select(pl.len()).collect().item())
    columns: dict[str, Any] = {}
    for name, dtype in schema.items():
        columns[name] = _profile_column(lf, name, dtype, rows)
        if on_column:
            on_column(name)
    return {"rows": rows, "columns": columns}


def _profile_column(lf: Any, name: str, dtype: Any, rows: int) -> dict[str, Any]:
    import polars as pl

    col = pl.col(name)
    kind = _kind(dtype)
    exprs = [col.null_count().alias("nulls")]
    if kind in ("number", "time", "string", "bool"):
        exprs.append(col.n_unique().alias("distinct"))
    if kind in ("number", "time"):
        exprs += [col.min().alias("min"), col.max().alias("max")]
    if kind == "number":
        num = col.cast(pl.Float64)
        exprs += [num.mean().alias("mean"), num.std().alias("std")]
        exprs += [num.quantile(q, "linear").alias(f"q{q}") for q in QUANTILES]
    stats = lf.select(exprs).collect(engine="streaming").row(0, named=True)
    nulls = int(stats["nulls"])
    out: dict[str, Any] = {
        "dtype": dtype_name(dtype),
        "kind": kind,
        "count": rows - nulls,
        "nulls": nulls,
    }
    if "distinct" in stats:
        # n_unique counts null as a value; report distinct non-null values.
        out["distinct"] = int(stats["distinct"]) - (1 if nulls else 0)
    if kind in ("number", "time"):
        out["min"] = _clean(stats["min"])
        out["max"] = _clean(stats["max"])
    if kind == "number":
        out["mean"] = _clean(stats["mean"])
        out["std"] = _clean(stats["std"])
        out["quantiles"] = {str(q): _clean(stats[f"q{q}"]) for q in QUANTILES}
    if kind in ("string", "bool"):
        # Ties are broken by value so that equal data always gives an equal profile.
        top = (
            lf.select(col.drop_nulls().cast(pl.String))
            .group_by(name)
            .agg(pl.len().alias("__n"))
            .sort(["__n", name], descending=[True, False])
            .head(TOP_VALUES)
            .collect(engine="streaming")
            .rows()
        )
        out["top"] = [{"value": v, "count": int(n)} for v, n in top]
    return out


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
