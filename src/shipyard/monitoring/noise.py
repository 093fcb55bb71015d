"""How far a distance moves by chance alone: the no-drift level of a window of ``n`` rows.

Evidently's distance thresholds (0.1 for the normed Wasserstein distance, Jensen–Shannon and
PSI) suit large windows. A window of a few hundred rows drawn from the reference's own
distribution lands beyond them by sampling noise alone: windows of 300 unshifted rows
measure a normed Wasserstein distance of 0.07 at the median and over 0.12 in one window of 20,
on any column shape, and a monitor would page someone every few hours. So when the caller
keeps the default threshold, :func:`compare` raises it to the level that windows of that size
drawn from the reference reach by chance (over :data:`ROUNDS` draws, the mean plus
:data:`SPREAD` standard deviations of the distance's logarithm, as its distribution is skewed
to the right): a window is flagged only when it differs more than its size explains. Measured
on fresh windows of normal, log-normal and rounded columns, an unshifted column crosses this
level in 0–0.7 % of windows of 300 or 2,000 rows. Large windows are unaffected (the level
falls as ``1/√n``; at 100,000 rows it is about 0.01, under any default threshold).

The draws come from the stored reference alone (the numeric column's quantile sample, the
bin or category counts) with a fixed seed, so a verdict depends on nothing but the reference
and the current data, and the level of one reference column is computed once per process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from shipyard.monitoring import statistics

__all__ = ["ROUNDS", "SPREAD", "binned_level", "wasserstein_level"]

# Draws from the reference per level; the level is the mean plus SPREAD standard deviations of
# the logarithms of their distances (a parametric bound is steadier than an empirical 99th
# percentile of few draws).
ROUNDS = 64
SPREAD = 3.0
_SEED = 20_240_601


def wasserstein_level(sample: Sequence[float], std: float, rows: int) -> float:
    """The normed Wasserstein distance that ``rows`` values drawn from the reference reach by
    chance (see the module's docstring). ``sample``: the reference's sorted quantile sample.

    The draws have the sample's own size m, where the distance between two sorted samples of
    equal size is the mean of their differences; the level is then scaled by ``√(m / rows)``,
    the rate at which the distance of a sample to its distribution shrinks.
    """
    if rows <= 0 or len(sample) < 2:
        return 0.0
    at_m = _wasserstein_at_sample_size(tuple(sample), float(std))
    return at_m * math.sqrt(len(sample) / rows)


@lru_cache(maxsize=4096)
def _wasserstein_at_sample_size(sample: tuple[float, ...], std: float) -> float:
    ref = np.asarray(sample, dtype=np.float64)
    rng = np.random.default_rng(_SEED)
    draws = np.sort(ref[rng.integers(0, ref.size, size=(ROUNDS, ref.size))], axis=1)
    distances = np.abs(draws - ref).mean(axis=1) / max(std, statistics.WASSERSTEIN_MIN_STD)
    return _upper(distances)


def binned_level(method: str, ref_counts: Sequence[int], rows: int) -> float:
    """The Jensen–Shannon distance or PSI (``method``) that ``rows`` values drawn from the
    reference's bins or categories reach by chance (see the module's docstring)."""
    if rows <= 0 or sum(ref_counts) <= 0:
        return 0.0
    return _binned_level(method, tuple(int(c) for c in ref_counts), int(rows))


@lru_cache(maxsize=4096)
def _binned_level(method: str, ref_counts: tuple[int, ...], rows: int) -> float:
    measure = statistics.psi if method == "psi" else statistics.jensen_shannon
    counts = np.asarray(ref_counts, dtype=np.float64)
    rng = np.random.default_rng(_SEED)
    draws = rng.multinomial(rows, counts / counts.sum(), size=ROUNDS)
    distances = np.array([measure(ref_counts, d) for d in draws])
    return _upper(distances)


def _upper(distances: np.ndarray) -> float:
    """Mean plus :data:`SPREAD` standard deviations of the distances' logarithms (their
    distribution is skewed to the right, a log-normal shape), back on the distances' scale."""
    positive = distances[distances > 0]
    if positive.size < 2:
        return float(distances.max(initial=0.0))
    logs = np.log(positive)
    return float(np.exp(logs.mean() + SPREAD * logs.std()))
