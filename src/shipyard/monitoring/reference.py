"""Drift references: what a dataset version's columns looked like, kept small enough to store
with the version and to compare any later window against without reading the data again.

Per numeric column: counts in bins cut at the reference's own quantiles, with open end bins
(``(-inf, e0], (e0, e1], …, (e_last, inf)``), the moments, and a fixed-size sorted sample for
the tests that compare distributions value by value (Kolmogorov–Smirnov, Wasserstein): the
column's quantiles at evenly spaced levels, or all its values when it has few. Per
categorical column (text, booleans, and numbers with at most :data:`CATEGORICAL_MAX_DISTINCT`
distinct values): the counts of the most frequent values and of all others together. Every
column keeps its null count.

Counts in fixed bins merge by addition, so a serving process can count a window in the
reference's bins and several processes can add their windows up (:func:`bin_counts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "BINS",
    "CATEGORICAL_MAX_DISTINCT",
    "SAMPLE_SIZE",
    "TOP_VALUES",
    "CategoricalReference",
    "ColumnReference",
    "NumericReference",
    "ReferenceProfile",
    "bin_counts",
    "build_reference",
    "sorted_quantiles",
]

# Quantile bins per numeric column (deciles); fewer when the values repeat.
BINS = 10
# Values kept per numeric column for the value-by-value tests.
SAMPLE_SIZE = 1_000
# Most frequent values counted per categorical column; the rest count as "other".
TOP_VALUES = 50
# A numeric column with at most this many distinct values is compared as categories, as
# Evidently does.
CATEGORICAL_MAX_DISTINCT = 5
# Format of the stored document; a reader refuses a newer one.
FORMAT = 1

Category = str | int | float | bool


@dataclass(frozen=True)
class NumericReference(ReadModel):
    """A numeric column of the reference."""

    column: str
    dtype: str
    count: int  # non-null values
    nulls: int
    edges: tuple[float, ...]  # inner cut points, ascending; len(counts) == len(edges) + 1
    counts: tuple[int, ...]  # non-null values per bin, end bins open
    mean: float
    std: float
    min: float
    max: float
    sample: tuple[float, ...] = field(repr=False)  # sorted, at most SAMPLE_SIZE values
    kind: Literal["numeric"] = "numeric"

    @property
    def null_share(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0


@dataclass(frozen=True)
class CategoricalReference(ReadModel):
    """A categorical column of the reference: its most frequent values and the rest."""

    column: str
    dtype: str
    count: int  # non-null values
    nulls: int
    values: tuple[Category, ...]  # most frequent first, ties by text
    counts: tuple[int, ...]  # per value
    other: int  # non-null values outside ``values``
    kind: Literal["categorical"] = "categorical"

    @property
    def null_share(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceProfile(ReadModel):
    """The drift reference of one tabular dataset version (``source``: its reference)."""

    rows: int
    columns: Mapping[str, ColumnReference]
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stored document (``from_json`` reads it back)."""
        return {"format": FORMAT, "rows": self.rows, "source": self.source} | {
            "columns": {name: _column_json(col) for name, col in self.columns.items()}
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ReferenceProfile:
        if int(doc.get("format", 0)) > FORMAT:
            raise InvalidInputError(
                f"this drift reference has format {doc.get('format')}, newer than this "
                f"shipyard reads ({FORMAT}); upgrade shipyard"
            )
        columns: dict[str, ColumnReference] = {}
        for name, c in doc["columns"].items():
            if c["kind"] == "numeric":
                columns[name] = NumericReference(
                    column=name,
                    dtype=c["dtype"],
                    count=int(c["count"]),
                    nulls=int(c["nulls"]),
                    edges=tuple(float(e) for e in c["edges"]),
                    counts=tuple(int(n) for n in c["counts"]),
                    mean=float(c["mean"]),
                    std=float(c["std"]),
                    min=float(c["min"]),
                    max=float(c["max"]),
                    sample=tuple(map(float, c["sample"])),
                )
            else:
                columns[name] = CategoricalReference(
                    column=name,
                    dtype=c["dtype"],
                    count=int(c["count"]),
                    nulls=int(c["nulls"]),
                    values=tuple(c["values"]),
                    counts=tuple(int(n) for n in c["counts"]),
                    other=int(c["other"]),
                )
        return cls(rows=int(doc["rows"]), columns=columns, source=str(doc.get("source", "")))


def _column_json(col: ColumnReference) -> dict[str, Any]:
    # What to_dict() writes, without its generic walk over every sample value (a reference of
    # 25 columns holds 20,000 of them; this is 50 times faster).
    doc = {f.name: getattr(col, f.name) for f in fields(col)}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}


def build_reference(
    frame: pl.DataFrame,
    *,
    source: str = "",
    columns: Sequence[str] | None = None,
    seed: int = 0,
    sorted_values: Mapping[str, np.ndarray] | None = None,
) -> ReferenceProfile:
    """The drift reference of ``frame`` (every column, or ``columns``).

    Columns of other types (dates, lists, structs) are left out: nothing compares them.
    A numeric column's sample is its own quantiles (every value when it has at most
    :data:`SAMPLE_SIZE`), so equal data gives an equal reference; ``seed`` is accepted for
    callers written when the sample was drawn at random, and no longer changes anything.
    ``sorted_values`` may hold, per numeric column, its finite values as sorted float64 (a
    caller that sorted them already, as the profile of a new version does): they are not
    sorted again.
    """
    import polars as pl

    names = list(columns) if columns is not None else list(frame.columns)
    out: dict[str, ColumnReference] = {}
    for name in names:
        s = frame.get_column(name)
        dtype = s.dtype
        if dtype.is_decimal() or dtype in (pl.Int128, pl.UInt128):
            # Compared as numbers; JSON has no decimals, and its readers no 128-bit integers.
            s = s.cast(pl.Float64)
            dtype = s.dtype
        nulls = int(s.null_count())
        text = dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)
        if dtype == pl.Boolean or text:
            out[name] = _categorical(name, s, nulls)
        elif dtype.is_numeric():
            # NaN and infinities count as missing, as bin_counts counts them (and JSON has
            # no literal for them). One sort per column gives the distinct count, the
            # quantiles and the bin counts (then a few binary searches), and a sample that
            # does not depend on the row order.
            given = None if sorted_values is None else sorted_values.get(name)
            present = s.len() - nulls
            if given is not None:
                values = given
            else:
                raw = s.drop_nulls().cast(pl.Float64).to_numpy()
                values = np.sort(raw[np.isfinite(raw)])
            nulls += present - values.size
            distinct = int(np.count_nonzero(np.diff(values))) + 1 if values.size else 0
            if distinct > CATEGORICAL_MAX_DISTINCT:
                out[name] = _numeric(name, str(dtype), values, nulls)
                continue
            if values.size < present:
                finite = pl.when(pl.col(name).is_finite()).then(pl.col(name))
                s = s.to_frame().select(finite).to_series()
            out[name] = _categorical(name, s, nulls)
    return ReferenceProfile(rows=frame.height, columns=out, source=source)


def _numeric(name: str, dtype: str, values: np.ndarray, nulls: int) -> NumericReference:
    """``values``: the column's finite values, sorted."""
    n = values.size
    qs = sorted_quantiles(values, np.linspace(0, 1, BINS + 1)[1:-1]) if n else np.array([])
    edges = np.unique(qs)
    # Bins are (e[i-1], e[i]]: the values up to each edge, counted on the sorted values.
    upto = np.searchsorted(values, edges, side="right")
    counts = np.diff(np.concatenate(([0], upto, [n])))
    if n > SAMPLE_SIZE:
        # The quantiles at the midpoints of SAMPLE_SIZE equal slices, not a random draw: as a
        # stand-in for the whole column it is about six times closer (the Wasserstein
        # distance of a normal column to itself falls from ~0.04 to ~0.007 standard
        # deviations), so a 0.1 threshold is not crossed by the sampling alone.
        sample = sorted_quantiles(values, (np.arange(SAMPLE_SIZE) + 0.5) / SAMPLE_SIZE)
    else:
        sample = values
    return NumericReference(
        column=name,
        dtype=dtype,
        count=int(n),
        nulls=nulls,
        edges=tuple(edges.tolist()),
        counts=tuple(counts.tolist()),
        mean=float(values.mean()) if n else math.nan,
        std=float(values.std(ddof=1)) if n > 1 else 0.0,
        min=float(values[0]) if n else math.nan,
        max=float(values[-1]) if n else math.nan,
        sample=tuple(sample.tolist()),
    )


def sorted_quantiles(values: np.ndarray, q: Sequence[float] | np.ndarray) -> np.ndarray:
    """``np.quantile(values, q)`` (its default, linear method, to the last bit) of already
    sorted ``values``, without the partial sort np.quantile makes again on every call: on
    100,000 values, one sort and this take less than np.quantile of 7 points alone."""
    qs = np.asarray(q, dtype=np.float64)
    pos = qs * (values.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, values.size - 1)
    a, b, t = values[lo], values[hi], pos - lo
    # np.quantile's _lerp: from the nearer end, so that t = 1 gives b exactly.
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)  # type: ignore[no-any-return]


def _categorical(name: str, s: pl.Series, nulls: int) -> CategoricalReference:
    import polars as pl

    vc = s.drop_nulls().value_counts(name="__n")
    # Most frequent first; ties by the value's text, so equal data gives an equal reference.
    vc = vc.with_columns(pl.col(name).cast(pl.String).alias("__text")).sort(
        ["__n", "__text"], descending=[True, False]
    )
    top = vc.head(TOP_VALUES)
    count = int(vc.get_column("__n").sum()) if vc.height else 0
    top_counts = tuple(int(n) for n in top.get_column("__n"))
    return CategoricalReference(
        column=name,
        dtype=str(s.dtype),
        count=count,
        nulls=nulls,
        values=tuple(top.get_column(name).to_list()),
        counts=top_counts,
        other=count - sum(top_counts),
    )


def bin_counts(ref: ColumnReference, values: Any) -> tuple[list[int], int]:
    """Counts of ``values`` in the reference's bins (numeric: one per bin; categorical: one per
    reference value, then "other"), and the number of nulls among them.

    ``values`` is a polars or pandas Series, a numpy array or any sequence. Numeric columns
    count non-finite values as nulls. Categorical values match a reference value when they are
    equal in Python (``1 == 1.0 == True``; text only matches text). Counts of two windows add
    up to the counts of both, which is what lets serving workers merge what they saw.

    A Series, an array or a long list is counted with polars and numpy; a short list (a few
    rows scored by a server) with a plain loop, which is faster there.
    """
    if isinstance(ref, NumericReference):
        arr = _float_values(values)
        finite = np.isfinite(arr)
        nulls = int(arr.size - np.count_nonzero(finite))
        if nulls:
            arr = arr[finite]
        edges = np.asarray(ref.edges, dtype=np.float64)
        if arr.size > 1 and bool(np.all(arr[:-1] <= arr[1:])):
            # Sorted values (drift.compare sorts them anyway): search the few edges instead.
            upto = np.searchsorted(arr, edges, side="right")
            counts = np.diff(np.concatenate(([0], upto, [arr.size])))
        else:
            counts = np.bincount(np.searchsorted(edges, arr, side="left"), minlength=edges.size + 1)
        return [int(n) for n in counts], nulls
    series = _series(values)
    if series is not None:
        counted = _categorical_counts(ref, series)
        if counted is not None:
            return counted
        values = series.to_list()
    return _categorical_counts_loop(ref, values)


# Below this many values a plain loop counts categories faster than building a Series.
_LOOP_MAX = 512


def _float_values(values: Any) -> np.ndarray:
    import polars as pl

    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).to_numpy()
    if type(values).__module__.startswith("pandas"):
        return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr.ravel()], dtype=np.float64)
    return arr.astype(np.float64, copy=False).ravel()


def _series(values: Any) -> pl.Series | None:
    """``values`` as a polars Series when counting them vectorised pays, else None."""
    import polars as pl

    if isinstance(values, pl.Series):
        return values
    if type(values).__module__.startswith("pandas"):
        try:
            converted = pl.from_pandas(values)
            return converted if isinstance(converted, pl.Series) else None
        except (TypeError, ValueError, pl.exceptions.PolarsError):
            return None if len(values) <= _LOOP_MAX else _series(values.tolist())
    if isinstance(values, np.ndarray):
        if values.dtype == object:
            values = values.tolist()
        else:
            return pl.Series(values.ravel())
    if len(values) <= _LOOP_MAX:
        return None
    try:
        return pl.Series(list(values), strict=True)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        return None  # mixed types: the loop compares them as Python does


def _categorical_counts(ref: CategoricalReference, s: pl.Series) -> tuple[list[int], int] | None:
    """Vectorised count of a Series, or None for a type that must be compared in Python."""
    import polars as pl

    dtype = s.dtype
    keys: dict[Any, int]
    if dtype == pl.Boolean or dtype.is_numeric():
        s = s.cast(pl.Float64).fill_nan(None)
        # Python equality across bool, int and float is equality of their float values.
        keys = {float(v): i for i, v in enumerate(ref.values) if isinstance(v, bool | int | float)}
    elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        s = s.cast(pl.String)
        keys = {v: i for i, v in enumerate(ref.values) if isinstance(v, str)}
    elif dtype == pl.Null:
        return [0] * (len(ref.values) + 1), s.len()
    else:
        return None
    nulls = s.null_count()
    out = [0] * (len(ref.values) + 1)
    present = s.len() - nulls
    if keys and present:
        name = s.name or "value"
        vc = s.rename(name).drop_nulls().value_counts(name="__n")
        if vc.height > _LOOP_MAX:  # many distinct values: keep those the reference knows
            vc = vc.filter(pl.col(name).is_in(list(keys)))
        for value, n in zip(
            vc.get_column(name).to_list(), vc.get_column("__n").to_list(), strict=True
        ):
            i = keys.get(value)
            if i is not None:
                out[i] += int(n)
    out[-1] = present - sum(out)
    return out, nulls


def _categorical_counts_loop(ref: CategoricalReference, values: Any) -> tuple[list[int], int]:
    index = {v: i for i, v in enumerate(ref.values)}
    out = [0] * (len(ref.values) + 1)
    nulls = 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            nulls += 1
        else:
            out[index.get(v, len(ref.values))] += 1
    return out, nulls
