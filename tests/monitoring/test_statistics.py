"""The drift statistics agree with scipy (and Evidently's definitions) on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shipyard.monitoring import statistics as st

RNG = np.random.default_rng(7)


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [
        (rng.normal(size=1000), rng.normal(size=20_000)),  # asymptotic KS p-value
        (rng.normal(size=1000), rng.normal(0.1, 1.2, size=50_000)),
        (rng.normal(size=300), rng.normal(0.3, 1, size=2_000)),  # exact KS p-value
        (np.round(rng.normal(size=1000), 1), np.round(rng.normal(size=30_000), 1)),  # ties
        (rng.exponential(size=1000) + 1e6, rng.exponential(1.1, size=12_000) + 1e6),  # offset
        (rng.integers(0, 6, 1000).astype(float), rng.integers(0, 8, 15_000).astype(float)),
        (np.array([1.0, 2.0, 3.0]), np.array([2.5])),
    ]


@pytest.mark.parametrize("ref,cur", _pairs())
def test_ks_matches_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    """ks() gives ks_2samp's statistic and p-value, with ties and in both p-value modes."""
    d, p = st.ks(ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("ref,cur", _pairs())
def test_wasserstein_matches_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    """wasserstein_normed() is scipy's wasserstein_distance divided by the reference's spread."""
    got = st.wasserstein_normed(ref, cur, 2.5)
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur) / 2.5, rel=1e-9, abs=1e-12)


def test_wasserstein_uses_a_floor_for_a_constant_reference() -> None:
    """A reference without spread is normalised by 0.001, so the distance stays finite."""
    assert st.wasserstein_normed([1.0, 1.0], [1.5], 0.0) == pytest.approx(500.0)


def test_value_tests_ignore_non_finite_values_and_accept_sorted_input() -> None:
    """NaN and infinities are left out, and a presorted current sample gives the same result."""
    ref, cur = RNG.normal(size=500), RNG.normal(size=12_000)
    dirty = np.concatenate([cur, [np.nan, np.inf, -np.inf]])
    assert st.ks(ref, dirty) == st.ks(ref, np.sort(cur), current_sorted=True)
    assert st.wasserstein_normed(ref, dirty, 1.0) == pytest.approx(
        st.wasserstein_normed(ref, np.sort(cur), 1.0, current_sorted=True), rel=1e-12
    )


COUNTS = [
    ([10, 20, 70], [20, 20, 60]),
    ([500, 300, 150, 50], [100, 300, 400, 200]),
    ([5, 0, 95], [0, 10, 90]),
    ([1, 1], [1000, 3]),
]


@pytest.mark.parametrize("ref,cur", COUNTS)
def test_jensen_shannon_matches_scipy(ref: list[int], cur: list[int]) -> None:
    """jensen_shannon() is scipy's jensenshannon distance with its default (natural) base."""
    assert st.jensen_shannon(ref, cur) == pytest.approx(jensenshannon(ref, cur), rel=1e-9)


@pytest.mark.parametrize("ref,cur", [c for c in COUNTS if 0 not in c[0]])
def test_chi_square_matches_scipy(ref: list[int], cur: list[int]) -> None:
    """chi_square() tests the current counts against the reference's proportions, as scipy does."""
    expected = np.asarray(ref, dtype=float) * sum(cur) / sum(ref)
    want = stats.chisquare(cur, expected)
    statistic, p = st.chi_square(ref, cur)
    assert statistic == pytest.approx(want.statistic, rel=1e-9)
    assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)


def test_chi_square_flags_a_value_the_reference_never_had() -> None:
    """A current value in a bin the reference left empty is certain drift, without a warning."""
    assert st.chi_square([50, 50, 0], [50, 45, 5]) == (math.inf, 0.0)
    assert st.chi_square([50, 50, 0], [40, 60, 0])[1] == pytest.approx(
        stats.chisquare([40, 60], [50, 50]).pvalue
    )


def test_psi_by_hand_and_with_an_empty_bin() -> None:
    """PSI is Σ (c - r)·ln(c / r) over the bin shares, an empty share counting as 1e-4."""
    r = np.array([0.1, 0.2, 0.7])
    c = np.array([0.2, 0.2, 0.6])
    assert st.psi([10, 20, 70], [20, 20, 60]) == pytest.approx(np.sum((c - r) * np.log(c / r)))
    empty = st.psi([50, 50], [100, 0])
    assert empty == pytest.approx(
        (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    )
    assert st.psi([3, 4, 5], [30, 40, 50]) == pytest.approx(0.0, abs=1e-15)


def test_z_test_matches_the_two_proportion_formula() -> None:
    """The z-test is the pooled two-proportion test with a two-sided normal p-value."""
    z, p = st.z_test([300, 700], [360, 640])
    p1, p2, pooled = 0.3, 0.36, 660 / 2000
    want = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 1000))
    assert z == pytest.approx(want, rel=1e-12)
    assert p == pytest.approx(2 * stats.norm.sf(abs(want)), rel=1e-12)
    assert st.z_test([10, 0], [20, 0]) == (0.0, 1.0)


def test_benjamini_hochberg_on_a_worked_example() -> None:
    """Adjusted p-values follow the step-up rule computed by hand, in the order given."""
    p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2]
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.2, 0.5 -> ·6/rank: 0.03, 0.03, 0.06, 0.06, 0.24, 0.5
    want = [0.03, 0.06, 0.06, 0.03, 0.5, 0.24]
    assert st.benjamini_hochberg(p) == pytest.approx(want, rel=1e-12)
    assert st.benjamini_hochberg([]) == []
    assert st.benjamini_hochberg([0.9, 0.95]) == pytest.approx([0.95, 0.95])


def test_statistics_refuse_bad_counts() -> None:
    """Counts of different bins, negative counts or an empty side are refused with a message."""
    with pytest.raises(ValueError, match="same bins"):
        st.psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        st.jensen_shannon([1, -2], [1, 2])
    with pytest.raises(ValueError, match="at least one"):
        st.chi_square([0, 0], [1, 2])
    with pytest.raises(ValueError, match="between 0 and 1"):
        st.benjamini_hochberg([0.5, 1.5])
