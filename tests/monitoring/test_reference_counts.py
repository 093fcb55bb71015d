"""bin_counts counts a Series, an array or a list alike, and as Python equality would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from shipyard.monitoring.reference import (
    SAMPLE_SIZE,
    CategoricalReference,
    bin_counts,
    build_reference,
)


def _loop(ref: CategoricalReference, values: list[object]) -> tuple[list[int], int]:
    """The plain definition: nulls and NaN apart, Python equality against the reference values."""
    out = [0] * (len(ref.values) + 1)
    nulls = 0
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            nulls += 1
        else:
            out[ref.values.index(v) if v in ref.values else len(ref.values)] += 1
    return out, nulls


def _ref(values: tuple[object, ...]) -> CategoricalReference:
    return CategoricalReference(
        column="c", dtype="x", count=10, nulls=0, values=values, counts=(5,) * len(values), other=0
    )


CASES = [
    (("a", "b"), ["a", "b", "c", None, "a"] * 300),
    ((1, 2, 3), [1, 2, 2, 3, 4, None] * 300),
    ((1, 2, 3), [1.0, 2.5, float("nan"), 3.0] * 300),
    ((True, False), [True, False, None, True] * 300),
    ((0, 1), [True, False, True] * 300),  # True == 1
    ((1, 2), ["1", "2", "x"] * 300),  # text never equals a number
    ((0.5, 1.5), [0.5, 1.5, 2.5] * 300),
]


@pytest.mark.parametrize("values,current", CASES)
def test_categorical_counts_match_python_equality(
    values: tuple[object, ...], current: list[object]
) -> None:
    """Vectorised counting of a polars or pandas Series, an array and a long or short list
    gives the counts a plain Python loop gives."""
    ref = _ref(values)
    want = _loop(ref, current)
    assert bin_counts(ref, current) == want
    assert bin_counts(ref, current[:7]) == _loop(ref, current[:7])
    assert bin_counts(ref, pl.Series(current, strict=False)) == want
    assert bin_counts(ref, pd.Series(current)) == want
    assert bin_counts(ref, np.array(current, dtype=object)) == want


def test_numeric_counts_are_the_same_sorted_or_not() -> None:
    """Numeric values land in the same reference bins whether they come sorted or not, with
    NaN and infinities counted as nulls."""
    rng = np.random.default_rng(3)
    ref = build_reference(pl.DataFrame({"x": rng.normal(size=5_000)})).columns["x"]
    values = np.concatenate([rng.normal(size=3_000), ref.edges, [np.nan, np.inf]])
    shuffled = bin_counts(ref, values)
    assert bin_counts(ref, np.sort(values)) == shuffled
    assert bin_counts(ref, pl.Series(values)) == shuffled
    assert shuffled[1] == 2
    expected = np.bincount(np.searchsorted(ref.edges, values[:-2], side="left"), minlength=10)
    assert shuffled[0] == [int(n) for n in expected]


def test_numeric_sample_is_the_reference_quantiles() -> None:
    """A long numeric column keeps its quantiles as the sample; a short one keeps every value."""
    values = np.arange(100_000, dtype=float)
    ref = build_reference(pl.DataFrame({"x": values, "y": np.arange(100_000) % 7})).columns["x"]
    assert len(ref.sample) == SAMPLE_SIZE
    assert ref.sample[0] == pytest.approx(99_999 * 0.0005)  # linear interpolation
    assert ref.sample[-1] == pytest.approx(99_999 * 0.9995)
    short = build_reference(pl.DataFrame({"x": values[:50]})).columns["x"]
    assert short.sample == tuple(values[:50])
