"""Properties of compare() over generated data: identical data never drifts, a large shift
always does, and row order changes nothing."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from shipyard.monitoring.drift import compare
from shipyard.monitoring.reference import build_reference

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@hs.composite
def frames(draw: hs.DrawFn) -> pl.DataFrame:
    """A frame of 200-3,000 rows with a numeric and a categorical column of drawn shapes."""
    n = draw(hs.integers(200, 3_000))
    seed = draw(hs.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(hs.floats(1e-3, 1e6))
    numbers = rng.normal(draw(hs.floats(-1e6, 1e6)), scale, n)
    if draw(hs.booleans()):
        numbers = np.round(numbers / scale, 1) * scale  # many ties
    k = draw(hs.integers(2, 8))
    weights = rng.dirichlet(np.ones(k))
    labels = [f"v{i}" for i in range(k)]
    return pl.DataFrame({"x": numbers, "c": rng.choice(labels, n, p=weights)})


@SETTINGS
@given(frames())
def test_identical_data_never_drifts(frame: pl.DataFrame) -> None:
    """Comparing a frame with its own reference finds no drift in any column."""
    report = compare(build_reference(frame), frame)
    assert report.drifted_columns == []
    assert report.verdict == "no drift"


@SETTINGS
@given(frames(), hs.randoms(use_true_random=False))
def test_row_order_does_not_matter(frame: pl.DataFrame, rnd: object) -> None:
    """Shuffling the current rows gives the same report."""
    reference = build_reference(frame.head(frame.height // 2 + 50))
    current = frame.tail(frame.height // 2)
    order = list(range(current.height))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    assert compare(reference, current[order]) == compare(reference, current)


@settings(max_examples=15, deadline=None)
@given(
    hs.integers(0, 2**32 - 1),
    hs.sampled_from([500, 5_000]),
    hs.floats(0.5, 3.0),
    hs.sampled_from([-1.0, 1.0]),
)
def test_a_shifted_column_always_drifts_at_large_n(
    seed: int, reference_rows: int, shift: float, sign: float
) -> None:
    """A numeric column shifted by half a standard deviation or more, or a category whose share
    moves by 30 points, drifts on 20,000 current rows, with a small (tests) or large
    (distances) reference."""
    rng = np.random.default_rng(seed)
    reference = build_reference(
        pl.DataFrame(
            {
                "x": rng.normal(0, 1, reference_rows),
                "c": rng.choice(["a", "b", "c"], reference_rows, p=[0.5, 0.3, 0.2]),
            }
        )
    )
    current = pl.DataFrame(
        {
            "x": rng.normal(sign * shift, 1, 20_000),
            "c": rng.choice(["a", "b", "c"], 20_000, p=[0.2, 0.3, 0.5]),
        }
    )
    assert set(compare(reference, current).drifted_columns) == {"x", "c"}
