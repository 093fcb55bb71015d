"""Drift of current data against a stored reference, column by column and for the dataset.

INTERFACE DRAFT: the read models and signatures here are what monitors, the CLI and the
server build on; the bodies are being written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shipyard._internal.encode import ReadModel
from shipyard.monitoring.reference import ReferenceProfile

if TYPE_CHECKING:
    import polars as pl

__all__ = ["MIN_ROWS", "ColumnDrift", "DriftReport", "Verdict", "compare"]

# Below this many current rows the verdict is "insufficient data", never drift.
MIN_ROWS = 200
# The dataset drifts when at least this (weighted) share of its columns drift.
DRIFT_SHARE = 0.5

Verdict = Literal["drift", "no drift", "insufficient data"]
Method = Literal["psi", "ks", "chisquare", "jensenshannon", "wasserstein", "z"]


@dataclass(frozen=True)
class ColumnDrift(ReadModel):
    """One column's comparison: the method, its statistic and threshold, and the verdict.

    ``p_value`` is set for tests (ks, chisquare, z) and ``p_adjusted`` is it after the
    Benjamini–Hochberg correction across the columns tested; a test column drifts when
    ``p_adjusted < threshold``, a distance column when ``statistic >= threshold``.
    ``reference_counts`` / ``current_counts`` are the two distributions in the reference's bins
    (numeric) or values + "other" (categorical), for charts; ``bins`` labels them.
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

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"


@dataclass(frozen=True)
class DriftReport(ReadModel):
    """The comparison of a current frame with a reference: per column (most drifted first) and
    for the dataset (``share``: weighted share of drifted columns among those compared)."""

    reference: str
    current: str
    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]
    share: float
    share_threshold: float
    verdict: Verdict
    json_properties = ("drifted_columns",)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"


def compare(
    reference: ReferenceProfile,
    current: pl.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, Method] | None = None,
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    min_rows: int = MIN_ROWS,
    share_threshold: float = DRIFT_SHARE,
    current_name: str = "",
) -> DriftReport:
    """Compare ``current`` with ``reference`` on ``columns`` (default: every reference column
    present in ``current``). ``methods`` / ``thresholds`` override the defaults per column;
    ``weights`` (e.g. permutation importance) weight the dataset share."""
    raise NotImplementedError("being written")
