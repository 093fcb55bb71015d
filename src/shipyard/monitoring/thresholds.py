"""What a monitor's result is held against: bounds on the metrics its kind measures.

A threshold is a metric and a bound, written ``METRIC<=X`` (breached when the metric is above
``X``) or ``METRIC>=X`` (breached below it); a bare number bounds the kind's main metric in its
natural direction. A monitor without thresholds uses its kind's defaults.

>>> parse_thresholds(["accuracy>=0.8"], "performance")
(Threshold(metric='accuracy', min=0.8, max=None),)
>>> parse_thresholds(["0.02"], "quality")
(Threshold(metric='refused_share', min=None, max=0.02),)
>>> Threshold("refused_share", max=0.02).breached({"refused_share": 0.05})
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "KINDS",
    "METRICS",
    "Kind",
    "Threshold",
    "breaches",
    "kpi_band",
    "parse_thresholds",
]

Kind = Literal["drift", "quality", "performance", "kpi"]
KINDS: tuple[Kind, ...] = ("drift", "quality", "performance", "kpi")

#: The metrics each kind measures per window, with what they mean; the first is the kind's
#: main metric (what a bare number bounds).
METRICS: dict[str, dict[str, str]] = {
    "drift": {
        "drift_share": "share of the reference's columns that drifted (weighted)",
    },
    "quality": {
        "refused_share": "share of rows the version's checks refuse (signature and contracts)",
        "null_share_increase": "largest rise of a column's null share over the reference's",
        "new_category_share": "largest share of rows with a category the reference never had",
    },
    "performance": {
        "accuracy": "share of labelled answers equal to their label (classifiers)",
        "roc_auc": "ROC AUC of labelled answers with probabilities (binary classifiers)",
        "rmse": "root mean squared error of labelled answers (regressors)",
        "mae": "mean absolute error of labelled answers (regressors)",
        "label_coverage": "share of answers that have a label",
        "estimated_accuracy": "accuracy expected without labels (CBPE, binary classifiers)",
        "estimated_roc_auc": "ROC AUC expected without labels (CBPE, binary classifiers)",
    },
    "kpi": {
        "sum": "the KPI's sum over the window",
        "mean": "the KPI's mean over the window",
        "events": "the number of KPI events in the window",
    },
}
_NATURAL: dict[str, Literal["min", "max"]] = {
    "drift_share": "max",
    "refused_share": "max",
    "null_share_increase": "max",
    "new_category_share": "max",
    "accuracy": "min",
    "roc_auc": "min",
    "rmse": "max",
    "mae": "max",
    "label_coverage": "min",
    "estimated_accuracy": "min",
    "estimated_roc_auc": "min",
}
_FORM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*(\S+)\s*")


@dataclass(frozen=True)
class Threshold(ReadModel):
    """A bound on one metric: breached when the metric is below ``min`` or above ``max``."""

    metric: str
    min: float | None = None
    max: float | None = None

    def breached(self, values: Mapping[str, Any]) -> bool:
        """Whether ``values`` break this bound (a metric with no value breaks nothing)."""
        value = values.get(self.metric)
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return False
        return (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        )

    def describe(self) -> str:
        """``accuracy >= 0.8`` (what must hold)."""
        if self.min is not None:
            return f"{self.metric} >= {self.min:g}"
        return f"{self.metric} <= {self.max:g}"

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Threshold:
        return cls(
            str(doc["metric"]),
            None if doc.get("min") is None else float(doc["min"]),
            None if doc.get("max") is None else float(doc["max"]),
        )


#: What a monitor of each kind is held against when it names no threshold (performance and
#: kpi have none: their bounds depend on the model and the business).
DEFAULT_THRESHOLDS: dict[str, tuple[Threshold, ...]] = {
    "drift": (Threshold("drift_share", max=0.5),),
    "quality": (
        Threshold("refused_share", max=0.05),
        Threshold("null_share_increase", max=0.1),
        Threshold("new_category_share", max=0.05),
    ),
    "performance": (),
    "kpi": (),
}


def parse_thresholds(texts: Sequence[str], kind: str) -> tuple[Threshold, ...]:
    """``texts`` (``METRIC<=X``, ``METRIC>=X`` or a bare number) as thresholds of ``kind``.

    Raises:
        InvalidInputError: an unknown metric for the kind, a bound that is not a finite
            number, or a bare number for a kind without a main metric (every problem listed).
    """
    metrics = METRICS[kind]
    problems: list[str] = []
    out: list[Threshold] = []
    for text in texts:
        match = _FORM.fullmatch(text)
        if match:
            metric, op, raw = match.groups()
        else:
            metric, op, raw = next(iter(metrics)), "", text.strip()
        bound = _number(raw)
        if metric not in metrics:
            problems.append(
                f"{text!r}: a {kind} monitor measures {', '.join(metrics)}, not {metric!r}"
            )
            continue
        if bound is None:
            problems.append(f"{text!r}: the bound must be a finite number")
            continue
        if not op:
            if kind == "kpi":
                problems.append(
                    f"{text!r}: a kpi monitor's bounds are --min and --max (or sum>=X, mean<=X)"
                )
                continue
            op = "<=" if _NATURAL[metric] == "max" else ">="
        out.append(Threshold(metric, min=bound) if op == ">=" else Threshold(metric, max=bound))
    if problems:
        raise InvalidInputError.from_problems("the thresholds", problems)
    return tuple(out)


def kpi_band(
    kind: str,
    kpi: str | None,
    aggregation: str,
    band_values: tuple[float | None, float | None],
    options: dict[str, Any],
    problems: list[str],
) -> tuple[Threshold, ...]:
    """A kpi monitor's options (``options`` gets the KPI's name and aggregation) and its band
    ``(min, max)`` as thresholds; each problem is appended to ``problems``. Any other kind
    takes none of them."""
    from shipyard.config import kpi_name_problem

    min_value, max_value = band_values

    if kind != "kpi":
        if kpi is not None or min_value is not None or max_value is not None:
            problems.append("--kpi, --min and --max apply to kpi monitors only")
        return ()
    if kpi is None:
        problems.append("a kpi monitor needs --kpi NAME (e.g. revenue)")
    elif (problem := kpi_name_problem(kpi)) is not None:
        problems.append(problem)
    if aggregation not in ("sum", "mean"):
        problems.append(f"--agg must be sum or mean, got {aggregation!r}")
    if min_value is None and max_value is None:
        problems.append("a kpi monitor needs a band: --min, --max or both")
    if min_value is not None and max_value is not None and min_value > max_value:
        problems.append(f"--min {min_value:g} is above --max {max_value:g}")
    options.update({"kpi": kpi, "aggregation": aggregation})
    band = []
    if min_value is not None:
        band.append(Threshold(aggregation, min=float(min_value)))
    if max_value is not None:
        band.append(Threshold(aggregation, max=float(max_value)))
    return tuple(band)


def breaches(thresholds: Sequence[Threshold], values: Mapping[str, Any]) -> list[Threshold]:
    """The thresholds ``values`` break, in order."""
    return [t for t in thresholds if t.breached(values)]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
