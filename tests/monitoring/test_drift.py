"""compare(): per-column methods and verdicts, the minimum-window guard, the correction across
columns, the dataset verdict, and what happens with missing or mistyped columns."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from shipyard.errors import InvalidInputError
from shipyard.monitoring import statistics
from shipyard.monitoring.drift import compare, default_method
from shipyard.monitoring.reference import ReferenceProfile, build_reference


def _frame(n: int, *, seed: int, shift: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "income": rng.lognormal(10 + (0.4 if shift else 0.0), 0.5, n),
            "age": rng.normal(40, 10, n).round(),
            "score": rng.normal(0, 1, n),
            "city": rng.choice(["Lyon", "Paris", "Nice"], n, p=[0.3, 0.5, 0.2]),
            "plan": rng.choice(
                ["free", "pro", "team"], n, p=[0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2]
            ),
            "member": rng.random(n) < (0.6 if shift else 0.3),
        }
    )


@pytest.fixture(scope="module")
def big_reference() -> ReferenceProfile:
    stored = build_reference(_frame(20_000, seed=1), source="applicants@1").to_json()
    return ReferenceProfile.from_json(json.loads(json.dumps(stored)))


@pytest.fixture(scope="module")
def small_reference() -> ReferenceProfile:
    return build_reference(_frame(800, seed=2), source="applicants@2")


@pytest.fixture(scope="module")
def shifted() -> pl.DataFrame:
    return _frame(20_000, seed=3, shift=True)


@pytest.fixture(scope="module")
def same() -> pl.DataFrame:
    return _frame(20_000, seed=4)


def test_large_reference_uses_distances_and_flags_the_shifted_columns(
    big_reference: ReferenceProfile, shifted: pl.DataFrame
) -> None:
    """Above 1,000 reference rows numbers get the normed Wasserstein distance and categories
    Jensen–Shannon, and exactly the shifted columns drift, listed first."""
    report = compare(big_reference, shifted, current_name="batch-7")
    methods = {c.column: c.method for c in report.columns}
    assert methods == {
        "income": "wasserstein",
        "age": "wasserstein",
        "score": "wasserstein",
        "city": "jensenshannon",
        "plan": "jensenshannon",
        "member": "jensenshannon",
    }
    assert set(report.drifted_columns) == {"income", "plan", "member"}
    assert [c.column for c in report.columns[:3]] == report.drifted_columns
    severities = [c.severity for c in report.columns]
    assert severities == sorted(severities, reverse=True)
    assert report.share == pytest.approx(0.5)
    assert report.verdict == "drift"
    assert (report.reference, report.current, report.current_rows) == (
        "applicants@1",
        "batch-7",
        20_000,
    )


def test_same_distribution_does_not_drift(
    big_reference: ReferenceProfile, same: pl.DataFrame
) -> None:
    """A fresh sample of the reference's distribution drifts in no column."""
    report = compare(big_reference, same)
    assert report.drifted_columns == []
    assert report.verdict == "no drift"
    assert all(c.severity < 0.5 for c in report.columns)


def test_small_reference_uses_tests_corrected_across_columns(
    small_reference: ReferenceProfile, shifted: pl.DataFrame
) -> None:
    """Up to 1,000 reference rows numbers get KS, categories chi-square, two values the z-test,
    and each p-value is Benjamini–Hochberg adjusted across the tested columns."""
    report = compare(small_reference, shifted.head(3_000))
    by_name = {c.column: c for c in report.columns}
    assert {n: c.method for n, c in by_name.items()} == {
        "income": "ks",
        "age": "ks",
        "score": "ks",
        "city": "chisquare",
        "plan": "chisquare",
        "member": "z",
    }
    names = list(by_name)
    raw = [by_name[n].p_value for n in names]
    assert [by_name[n].p_adjusted for n in names] == pytest.approx(
        statistics.benjamini_hochberg(raw)
    )
    assert {"income", "plan", "member"} <= set(report.drifted_columns)
    for c in report.columns:
        assert c.drifted == (c.p_adjusted is not None and c.p_adjusted < 0.05)


def test_minimum_window_gives_insufficient_data_never_drift(
    big_reference: ReferenceProfile, shifted: pl.DataFrame
) -> None:
    """Below min_rows non-null values a column is 'insufficient data' even when shifted, and a
    frame where every column is short has no dataset verdict but 'insufficient data'."""
    report = compare(big_reference, shifted.head(150))
    assert {c.verdict for c in report.columns} == {"insufficient data"}
    assert report.verdict == "insufficient data"
    assert report.share == 0.0
    income = next(c for c in report.columns if c.column == "income")
    assert income.statistic > 0.1  # measured for information, but no verdict
    assert income.p_adjusted is None

    mixed = shifted.head(1_000).with_columns(
        pl.when(pl.int_range(pl.len()) < 900).then(None).otherwise(pl.col("income")).alias("income")
    )
    report = compare(big_reference, mixed)
    income = next(c for c in report.columns if c.column == "income")
    assert income.verdict == "insufficient data"
    assert income.current_rows == 100
    assert income.current_null_share == pytest.approx(0.9)
    assert report.columns[-1].column == "income"  # columns without a verdict come last
    assert report.share == pytest.approx(2 / 5)  # plan and member, of the five judged
    assert report.verdict == "no drift"


def test_weights_and_share_threshold_decide_the_dataset_verdict(
    big_reference: ReferenceProfile, shifted: pl.DataFrame
) -> None:
    """Weights (e.g. permutation importance) weight the share; unnamed columns weigh nothing."""
    report = compare(big_reference, shifted, weights={"score": 3.0, "income": 1.0})
    assert report.share == pytest.approx(0.25)
    assert report.verdict == "no drift"
    assert compare(big_reference, shifted, share_threshold=0.6).verdict == "no drift"
    nothing = compare(big_reference, shifted, weights={"age": -1.0})
    assert nothing.share == pytest.approx(0.5)  # all weights zero: unweighted
    assert {c.weight for c in nothing.columns} == {1.0}


def test_pandas_frames_give_the_same_report(
    big_reference: ReferenceProfile, shifted: pl.DataFrame
) -> None:
    """A pandas frame is compared exactly as the polars frame it converts to."""
    assert compare(big_reference, shifted.to_pandas()) == compare(big_reference, shifted)


def test_methods_and_thresholds_can_be_chosen_per_column(
    big_reference: ReferenceProfile, same: pl.DataFrame
) -> None:
    """A named method and threshold replace the defaults for that column only."""
    report = compare(
        big_reference, same, methods={"score": "psi", "city": "chisquare"}, thresholds={"age": 1e-6}
    )
    by_name = {c.column: c for c in report.columns}
    assert by_name["score"].method == "psi"
    assert len(by_name["score"].bins) == len(by_name["score"].reference_counts) == 10
    assert by_name["city"].method == "chisquare"
    assert by_name["age"].drifted


def test_missing_columns_are_listed_or_refused(
    big_reference: ReferenceProfile, same: pl.DataFrame
) -> None:
    """Absent reference columns are listed when the columns are implied, and refused by name
    when the caller named them."""
    report = compare(big_reference, same.drop("city", "score"))
    assert report.missing_columns == ("score", "city")
    assert "city" not in [c.column for c in report.columns]
    with pytest.raises(InvalidInputError, match="current data has no column 'city'"):
        compare(big_reference, same.drop("city"), columns=["age", "city"])
    with pytest.raises(InvalidInputError, match="reference has no column 'salary'"):
        compare(big_reference, same, columns=["salary"])
    with pytest.raises(InvalidInputError, match="none of the reference's columns"):
        compare(big_reference, pl.DataFrame({"x": [1, 2]}))


def test_unfit_options_are_refused_with_the_column_named(
    big_reference: ReferenceProfile, same: pl.DataFrame
) -> None:
    """A method that cannot compare a column, a text column where numbers were, and thresholds
    out of range are refused before anything is computed."""
    with pytest.raises(InvalidInputError, match="'city' is categorical"):
        compare(big_reference, same, methods={"city": "ks"})
    with pytest.raises(InvalidInputError, match="'income': the z-test"):
        compare(big_reference, same, methods={"income": "z"})
    with pytest.raises(InvalidInputError, match="'age' is numeric"):
        compare(big_reference, same.with_columns(pl.col("age").cast(pl.String)))
    with pytest.raises(InvalidInputError, match="2 problem"):
        compare(big_reference, same, thresholds={"age": -1.0}, min_rows=0)
    with pytest.raises(InvalidInputError, match="below 1"):
        compare(big_reference, same, methods={"age": "ks"}, thresholds={"age": 5.0})


def test_report_is_strict_json(big_reference: ReferenceProfile) -> None:
    """The report encodes as strict JSON even when chi-square meets a never-seen value."""
    frame = _frame(500, seed=5).with_columns(pl.lit("Marseille").alias("city"))
    report = compare(big_reference, frame, methods={"city": "chisquare"})
    doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    city = next(c for c in doc["columns"] if c["column"] == "city")
    assert city["verdict"] == "drift"
    assert city["current_counts"][-1] == 500  # counted as "other"
    assert "drifted_columns" in doc


def test_default_method_follows_reference_size(big_reference: ReferenceProfile) -> None:
    """The default depends on the column's kind and on its reference size, as in Evidently."""
    assert default_method(big_reference.columns["income"]) == "wasserstein"
    assert default_method(big_reference.columns["member"]) == "jensenshannon"


def test_small_unshifted_windows_stay_quiet_while_a_shift_still_drifts(
    big_reference: ReferenceProfile,
) -> None:
    """A window of 300 rows from the reference's own distribution crosses Evidently's fixed
    0.1 by sampling noise alone; judged against the noise level of its size it stays quiet,
    and a real shift of the same size still drifts."""
    cols = ["income", "age", "score", "city", "plan"]
    fixed = {c: 0.1 for c in cols}
    noisy_under_fixed = 0
    for seed in range(100, 120):
        window = _frame(300, seed=seed)
        report = compare(big_reference, window, columns=cols)
        assert report.drifted_columns == [], (seed, report.drifted_columns)
        for c in report.columns:
            assert c.noise_floor is not None and c.threshold == max(0.1, c.noise_floor)
        noisy_under_fixed += len(
            compare(big_reference, window, columns=cols, thresholds=fixed).drifted_columns
        )
    assert noisy_under_fixed > 0  # the fixed threshold alone would have paged someone
    shifted = compare(big_reference, _frame(300, seed=7, shift=True), columns=cols)
    assert {"income", "plan"} <= set(shifted.drifted_columns)


def test_noise_floor_falls_with_the_window_and_leaves_large_windows_alone(
    big_reference: ReferenceProfile, same: pl.DataFrame
) -> None:
    """The floor shrinks as the window grows (about 1/√n), is never applied to a threshold the
    caller set, and at 20,000 rows the default threshold stands."""
    floors = [
        next(c for c in compare(big_reference, same.head(n)).columns if c.column == "income")
        for n in (250, 1_000, 20_000)
    ]
    assert floors[0].noise_floor > floors[1].noise_floor > floors[2].noise_floor  # type: ignore[operator]
    assert floors[2].threshold == 0.1
    explicit = compare(big_reference, same.head(250), thresholds={"income": 0.1})
    income = next(c for c in explicit.columns if c.column == "income")
    assert income.noise_floor is None and income.threshold == 0.1
