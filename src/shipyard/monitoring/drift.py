"""Drift of current data against a stored reference, column by column and for the dataset.

:func:`compare` reads nothing but the stored :class:`ReferenceProfile` and the current frame.
Each column gets a method chosen as Evidently 0.7 chooses it (:func:`default_method`), unless
the caller names one, and a verdict; the dataset drifts when the (weighted) share of drifted
columns reaches ``share_threshold``. Two guards Evidently lacks:

- a column with fewer than ``min_rows`` non-null current values is "insufficient data",
  never drift (its statistic is still computed when there is any value, for information);
- the p-values of the tests (ks, chisquare, z) are corrected across the columns tested
  (Benjamini–Hochberg), so comparing 50 columns does not flag 2–3 of them by chance;
- a distance kept at its default threshold (wasserstein, jensenshannon, psi) is judged against
  the larger of that threshold and the level a window of the same size drawn from the
  reference reaches by chance (:mod:`.noise`), so a small unshifted window stays quiet.

>>> report = compare(reference, frame)              # doctest: +SKIP
>>> report.verdict, report.drifted_columns          # doctest: +SKIP
('drift', ['income', 'age'])
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError
from shipyard.monitoring import noise, statistics
from shipyard.monitoring.reference import (
    CategoricalReference,
    ColumnReference,
    NumericReference,
    ReferenceProfile,
    bin_counts,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DRIFT_SHARE",
    "MIN_ROWS",
    "SMALL_REFERENCE",
    "ColumnDrift",
    "DriftReport",
    "Method",
    "Verdict",
    "compare",
    "default_method",
]

# Below this many current rows the verdict is "insufficient data", never drift.
MIN_ROWS = 200
# The dataset drifts when at least this (weighted) share of its columns drift.
DRIFT_SHARE = 0.5
# Evidently's boundary: a column with at most this many reference values gets a statistical
# test (its p-value falls as the sample grows), a larger one a distance with a fixed threshold
# (a test on 100,000 rows would flag differences too small to matter).
SMALL_REFERENCE = 1_000

Verdict = Literal["drift", "no drift", "insufficient data"]
Method = Literal["psi", "ks", "chisquare", "jensenshannon", "wasserstein", "z"]

METHODS: tuple[Method, ...] = get_args(Method)
# Tests: drift when the corrected p-value is below the threshold.
TESTS: frozenset[Method] = frozenset({"ks", "chisquare", "z"})
# Evidently 0.7's default thresholds.
DEFAULT_THRESHOLDS: Mapping[Method, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
# Methods that compare values one by one need a numeric column's sample.
_NUMERIC_ONLY: frozenset[Method] = frozenset({"ks", "wasserstein"})
_VERDICT_ORDER = {"drift": 0, "no drift": 1, "insufficient data": 2}
# JSON has no infinity: a chi-square over a value the reference never had is reported as this.
_LARGEST = sys.float_info.max
# p-values this small all count alike when ordering columns.
_TINY_P = 1e-300


@dataclass(frozen=True)
class ColumnDrift(ReadModel):
    """One column's comparison: the method, its statistic and threshold, and the verdict.

    ``p_value`` is set for tests (ks, chisquare, z) and ``p_adjusted`` is it after the
    Benjamini–Hochberg correction across the columns tested; a test column drifts when
    ``p_adjusted < threshold``, a distance column when ``statistic >= threshold``.
    ``current_rows`` counts the non-null current values compared. ``reference_counts`` /
    ``current_counts`` are the two distributions in the reference's bins (numeric) or values +
    "other" (categorical), for charts; ``bins`` labels them. ``severity`` orders columns: the
    statistic relative to its threshold (for a test, ``log p_adjusted / log threshold``), so
    at least 1 means drift. ``noise_floor``: for a distance kept at its default threshold, the
    level windows of this size drawn from the reference reach by chance (:mod:`.noise`);
    ``threshold`` is then the larger of the default and this floor.
    """

    column: str
    kind: Literal["numeric", "categorical"]
    method: Method
    statistic: float
    p_value: float | None
    p_adjusted: float | None
    threshold: float
    verdict: Verdict
    current_rows: int
    reference_null_share: float
    current_null_share: float
    bins: tuple[str, ...]
    reference_counts: tuple[int, ...]
    current_counts: tuple[int, ...]
    weight: float = 1.0
    noise_floor: float | None = None
    json_properties = ("severity",)

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    @property
    def severity(self) -> float:
        if self.verdict == "insufficient data":
            return 0.0
        if self.method in TESTS:
            p = self.p_adjusted if self.p_adjusted is not None else self.p_value
            return math.log(max(p if p is not None else 1.0, _TINY_P)) / math.log(self.threshold)
        return min(self.statistic / self.threshold, _LARGEST)


@dataclass(frozen=True)
class DriftReport(ReadModel):
    """The comparison of a current frame with a reference: per column (most drifted first) and
    for the dataset (``share``: weighted share of drifted columns among those with a verdict).

    ``missing_columns``: reference columns absent from the current frame, left out of the
    comparison (only when the caller did not name the columns).
    """

    reference: str
    current: str
    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]
    share: float
    share_threshold: float
    verdict: Verdict
    missing_columns: tuple[str, ...] = ()
    json_properties = ("drifted_columns",)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"


def default_method(ref: ColumnReference, current_distinct: int = 0) -> Method:
    """The method Evidently 0.7 would choose for this column (``current_distinct``: distinct
    current values the reference does not know, which only matters for a column with at most
    two reference values).

    Reference of at most :data:`SMALL_REFERENCE` values: numeric → ``ks``; categorical →
    ``z`` when reference and current hold at most two values together, else ``chisquare``.
    Larger: numeric → ``wasserstein`` (normalised); categorical → ``jensenshannon``.
    """
    small = ref.count <= SMALL_REFERENCE
    if isinstance(ref, NumericReference):
        return "ks" if small else "wasserstein"
    if not small:
        return "jensenshannon"
    distinct = len(ref.values) + current_distinct
    return "z" if ref.other == 0 and distinct <= 2 else "chisquare"


def compare(
    reference: ReferenceProfile,
    current: pl.DataFrame | Any,
    *,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, Method] | None = None,
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    min_rows: int = MIN_ROWS,
    share_threshold: float = DRIFT_SHARE,
    current_name: str = "",
) -> DriftReport:
    """Compare ``current`` (a polars or pandas frame) with ``reference`` on ``columns``
    (default: every reference column present in ``current``; those absent are listed in
    ``missing_columns``). ``methods`` / ``thresholds`` override the defaults per column;
    ``weights`` (e.g. permutation importance) weight the dataset share: a column they do not
    name weighs 0, a negative weight counts as 0, and when the columns with a verdict weigh
    nothing together the share is unweighted.

    Raises:
        InvalidInputError: a named column that the reference or the current frame lacks, a
            method that does not fit the column (ks/wasserstein on categories, z on more than
            two values), a column whose current type cannot be compared with the reference's,
            or a threshold, weight, ``min_rows`` or ``share_threshold`` out of range.
    """
    frame = _polars_frame(current)
    names, missing = _columns(reference, frame, columns)
    methods = dict(methods or {})
    thresholds = dict(thresholds or {})
    _check_options(reference, methods, thresholds, weights, min_rows, share_threshold)

    drafts = [
        _compare_column(
            reference.columns[name], frame.get_column(name), methods.get(name), min_rows
        )
        for name in names
    ]
    tested = [d for d in drafts if d.verdict_ready and d.method in TESTS]
    adjusted = statistics.benjamini_hochberg([d.p_value or 0.0 for d in tested])
    p_adjusted = {d.ref.column: p for d, p in zip(tested, adjusted, strict=True)}

    over = [
        d.ref.column for d in drafts if d.method in TESTS and thresholds.get(d.ref.column, 0) >= 1
    ]
    if over:
        raise InvalidInputError(
            f"column {_list(over)} is compared with a test, whose threshold is a p-value: "
            f"it must be below 1"
        )
    results = []
    for d in drafts:
        threshold = float(thresholds.get(d.ref.column, DEFAULT_THRESHOLDS[d.method]))
        floor = None
        if d.verdict_ready and d.method not in TESTS and d.ref.column not in thresholds:
            floor = d.noise_floor()
            threshold = max(threshold, floor)
        p_adj = p_adjusted.get(d.ref.column)
        verdict: Verdict
        if not d.verdict_ready:
            verdict = "insufficient data"
        elif d.method in TESTS:
            verdict = "drift" if p_adj is not None and p_adj < threshold else "no drift"
        else:
            verdict = "drift" if d.statistic >= threshold else "no drift"
        results.append(d.result(threshold, p_adj, verdict, _weight(weights, d.ref.column), floor))
    results.sort(key=lambda c: (_VERDICT_ORDER[c.verdict], -c.severity, c.column))

    judged = [c for c in results if c.verdict != "insufficient data"]
    total = sum(c.weight for c in judged)
    if judged and total <= 0:  # the weights name none of the judged columns: count them alike
        results = [replace(c, weight=1.0) for c in results]
        judged = [c for c in results if c.verdict != "insufficient data"]
        total = float(len(judged))
    share = sum(c.weight for c in judged if c.drifted) / total if judged else 0.0
    dataset: Verdict
    if not judged:
        dataset = "insufficient data"
    else:
        dataset = "drift" if share >= share_threshold else "no drift"
    return DriftReport(
        reference=reference.source,
        current=current_name,
        reference_rows=reference.rows,
        current_rows=frame.height,
        columns=tuple(results),
        share=share,
        share_threshold=share_threshold,
        verdict=dataset,
        missing_columns=tuple(missing),
    )


def _polars_frame(current: Any) -> pl.DataFrame:
    import polars as pl

    if isinstance(current, pl.DataFrame):
        return current
    if isinstance(current, pl.LazyFrame):
        return current.collect()
    if type(current).__module__.startswith("pandas") and hasattr(current, "columns"):
        return pl.from_pandas(current)
    raise InvalidInputError(
        f"the current data must be a polars or pandas DataFrame, got {type(current).__name__}"
    )


def _columns(
    reference: ReferenceProfile, frame: pl.DataFrame, columns: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    present = set(frame.columns)
    if columns is None:
        names = [c for c in reference.columns if c in present]
        missing = [c for c in reference.columns if c not in present]
        if not names:
            raise InvalidInputError(
                f"the current data has none of the reference's columns "
                f"({_list(reference.columns)}); it has {_list(frame.columns)}"
            )
        return names, missing
    names = list(dict.fromkeys(columns))
    unknown = [c for c in names if c not in reference.columns]
    absent = [c for c in names if c in reference.columns and c not in present]
    problems = []
    if unknown:
        problems.append(
            f"the reference has no column {_list(unknown)} (it has {_list(reference.columns)})"
        )
    if absent:
        problems.append(f"the current data has no column {_list(absent)}")
    if problems:
        raise InvalidInputError("; ".join(problems))
    return names, []


def _check_options(
    reference: ReferenceProfile,
    methods: Mapping[str, str],
    thresholds: Mapping[str, float],
    weights: Mapping[str, float] | None,
    min_rows: int,
    share_threshold: float,
) -> None:
    problems = []
    for option, mapping in (("methods", methods), ("thresholds", thresholds)):
        unknown = [c for c in mapping if c not in reference.columns]
        if unknown:
            problems.append(f"{option} name columns the reference lacks: {_list(unknown)}")
    for name, method in methods.items():
        if method not in METHODS:
            problems.append(f"column {name!r}: unknown method {method!r} (one of {_list(METHODS)})")
    for name, value in thresholds.items():
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            problems.append(f"column {name!r}: threshold {value!r} must be a positive number")
    for name, value in (weights or {}).items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"column {name!r}: weight {value!r} must be a finite number")
    if not isinstance(min_rows, int) or min_rows < 1:
        problems.append(f"min_rows must be a positive whole number, got {min_rows!r}")
    if not 0 < share_threshold <= 1:
        problems.append(f"share_threshold must lie in (0, 1], got {share_threshold!r}")
    if problems:
        raise InvalidInputError(
            f"{len(problems)} problem(s) with the drift options: " + "; ".join(problems)
        )


def _weight(weights: Mapping[str, float] | None, column: str) -> float:
    if weights is None:
        return 1.0
    return max(float(weights.get(column, 0.0)), 0.0)


@dataclass
class _Draft:
    """A column measured, before the correction across columns gives it a verdict."""

    ref: ColumnReference
    method: Method
    statistic: float
    p_value: float | None
    verdict_ready: bool  # enough values on both sides
    current_rows: int
    current_nulls: int
    bins: tuple[str, ...]
    reference_counts: tuple[int, ...]
    current_counts: tuple[int, ...]

    def noise_floor(self) -> float:
        """The distance a window of this size drawn from the reference reaches by chance."""
        if self.method == "wasserstein" and isinstance(self.ref, NumericReference):
            return noise.wasserstein_level(self.ref.sample, self.ref.std, self.current_rows)
        return noise.binned_level(self.method, self.reference_counts, self.current_rows)

    def result(
        self,
        threshold: float,
        p_adjusted: float | None,
        verdict: Verdict,
        weight: float,
        noise_floor: float | None,
    ) -> ColumnDrift:
        total = self.current_rows + self.current_nulls
        return ColumnDrift(
            column=self.ref.column,
            kind=self.ref.kind,
            method=self.method,
            statistic=min(self.statistic, _LARGEST),
            p_value=self.p_value,
            p_adjusted=p_adjusted,
            threshold=threshold,
            verdict=verdict,
            current_rows=self.current_rows,
            reference_null_share=self.ref.null_share,
            current_null_share=self.current_nulls / total if total else 0.0,
            bins=self.bins,
            reference_counts=self.reference_counts,
            current_counts=self.current_counts,
            weight=weight,
            noise_floor=noise_floor,
        )


def _compare_column(
    ref: ColumnReference, series: pl.Series, method: Method | None, min_rows: int
) -> _Draft:
    if isinstance(ref, NumericReference):
        return _numeric(ref, series, method, min_rows)
    return _categorical(ref, series, method, min_rows)


def _numeric(
    ref: NumericReference, series: pl.Series, method: Method | None, min_rows: int
) -> _Draft:
    import polars as pl

    dtype = series.dtype
    if not (dtype.is_numeric() or dtype in (pl.Boolean, pl.Null)):
        raise InvalidInputError(
            f"column {ref.column!r} is numeric ({ref.dtype}) in the reference but {dtype} in the "
            f"current data; cast it to a number before comparing"
        )
    method = method or default_method(ref)
    if method == "z":
        raise InvalidInputError(
            f"column {ref.column!r}: the z-test compares two values, and the reference has "
            f"{ref.count} numeric values in {len(ref.counts)} bins; use ks or wasserstein"
        )
    values = series.cast(pl.Float64).to_numpy()
    finite = np.isfinite(values)
    nulls = int(values.size - np.count_nonzero(finite))
    ordered = np.sort(values[finite] if nulls else values)
    counts, _ = bin_counts(ref, ordered)
    ready = ordered.size >= min_rows and ref.count > 0
    statistic, p_value = 0.0, None
    if ordered.size and ref.count:
        if method == "ks":
            statistic, p_value = statistics.ks(ref.sample, ordered, current_sorted=True)
        elif method == "wasserstein":
            statistic = statistics.wasserstein_normed(
                ref.sample, ordered, ref.std, current_sorted=True
            )
        else:
            statistic, p_value = _binned(method, ref.counts, counts)
    return _Draft(
        ref=ref,
        method=method,
        statistic=statistic,
        p_value=p_value,
        verdict_ready=ready,
        current_rows=int(ordered.size),
        current_nulls=nulls,
        bins=_numeric_bins(ref.edges),
        reference_counts=ref.counts,
        current_counts=tuple(counts),
    )


def _categorical(
    ref: CategoricalReference, series: pl.Series, method: Method | None, min_rows: int
) -> _Draft:
    counts, nulls = bin_counts(ref, series)
    ref_counts = (*ref.counts, ref.other)
    present = sum(counts)
    if method is None:
        unseen = 0
        if ref.count <= SMALL_REFERENCE and ref.other == 0 and len(ref.values) <= 2 and counts[-1]:
            unseen = _distinct_unseen(ref, series)
        method = default_method(ref, unseen)
    if method in _NUMERIC_ONLY:
        raise InvalidInputError(
            f"column {ref.column!r} is categorical in the reference; {method} compares numbers "
            f"value by value, use chisquare, jensenshannon or psi"
        )
    ready = present >= min_rows and ref.count > 0
    statistic, p_value = 0.0, None
    if present and ref.count:
        if method == "z":
            kept = [(r, c) for r, c in zip(ref_counts, counts, strict=True) if r or c]
            if len(kept) > 2 or (counts[-1] and _distinct_unseen(ref, series) > 1):
                raise InvalidInputError(
                    f"column {ref.column!r}: the z-test compares two values, and this column "
                    f"has more; use chisquare or jensenshannon"
                )
            if len(kept) == 2:
                statistic, p_value = statistics.z_test(
                    [kept[0][0], kept[1][0]], [kept[0][1], kept[1][1]]
                )
            else:
                statistic, p_value = 0.0, 1.0
            statistic = abs(statistic)
        else:
            statistic, p_value = _binned(method, ref_counts, counts)
    return _Draft(
        ref=ref,
        method=method,
        statistic=statistic,
        p_value=p_value,
        verdict_ready=ready,
        current_rows=present,
        current_nulls=nulls,
        bins=(*(str(v) for v in ref.values), "other"),
        reference_counts=ref_counts,
        current_counts=tuple(counts),
    )


def _binned(
    method: Method, ref_counts: Sequence[int], counts: Sequence[int]
) -> tuple[float, float | None]:
    if method == "psi":
        return statistics.psi(ref_counts, counts), None
    if method == "jensenshannon":
        return statistics.jensen_shannon(ref_counts, counts), None
    if method == "chisquare":
        return statistics.chi_square(ref_counts, counts)
    raise AssertionError(method)  # pragma: no cover - callers handle the others


def _distinct_unseen(ref: CategoricalReference, series: pl.Series) -> int:
    """Distinct non-null current values the reference does not list."""
    known = set(ref.values)
    return len({v for v in series.drop_nulls().unique().to_list() if v not in known})


def _numeric_bins(edges: Sequence[float]) -> tuple[str, ...]:
    if not edges:
        return ("all",)
    labels = [f"≤ {edges[0]:.3g}"]
    labels += [f"({lo:.3g}, {hi:.3g}]" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"> {edges[-1]:.3g}")
    return tuple(labels)


def _list(names: Any) -> str:
    return ", ".join(repr(n) for n in names)
