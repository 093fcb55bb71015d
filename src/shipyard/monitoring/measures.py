"""What a monitor measures in one window, per kind, as plain functions of the window's rows
(and, where the kind needs one, the reference): no database, no clock.

Each returns a :class:`Measurement`: the status (``ok`` until the thresholds are applied,
``insufficient data`` below the kind's minimum, never a breach), the number of rows, the
metric values and their details, and a one-line message.

>>> m = measure_kpi([3.0, 5.0], name="revenue", aggregation="sum", min_events=1)
>>> (m.status, m.values["sum"], m.values["events"])
('ok', 8.0, 2)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shipyard._internal.words import count
from shipyard.monitoring.reference import CategoricalReference, ReferenceProfile

if TYPE_CHECKING:
    from shipyard.monitoring.drift import DriftReport
    from shipyard.monitoring.performance import PerformanceEstimate
    from shipyard.registry.row_checks import RowChecks

__all__ = [
    "MIN_LABELS",
    "MIN_ROWS",
    "Measurement",
    "Status",
    "measure_drift",
    "measure_kpi",
    "measure_performance",
    "measure_quality",
]

Status = Literal["ok", "breach", "insufficient data", "error"]

#: Fewest rows a quality window needs (below, the shares say little).
MIN_ROWS = 50
#: Fewest labelled answers a performance window needs.
MIN_LABELS = 30
#: New values listed per column (the count covers them all).
_NEW_VALUES_SHOWN = 5


@dataclass(frozen=True)
class Measurement:
    """One window measured: ``values`` holds the metrics (numbers, or None when the window
    cannot give one) and their details."""

    status: Status
    rows: int
    values: dict[str, Any] = field(default_factory=dict)
    message: str = ""


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def measure_quality(
    inputs: Sequence[Mapping[str, Any]],
    *,
    checks: RowChecks,
    reference: ReferenceProfile | None,
    min_rows: int = MIN_ROWS,
) -> Measurement:
    """The rows the version's ``checks`` refuse (overall, and per column and check), each
    column's null share beside the reference's, and the values of categorical columns the
    reference never had (only where the reference lists all its values: with an "other"
    bucket, a value outside the top ones may not be new)."""
    n = len(inputs)
    if n < max(min_rows, 1):
        return Measurement(
            "insufficient data",
            n,
            {},
            f"{count(n, 'row')} in the window; the check needs {min_rows}",
        )
    refused_rows = 0
    by_check: Counter[tuple[str, str]] = Counter()
    for i, row in enumerate(inputs):
        errors: list[dict[str, Any]] = []
        if checks.models or checks.columns:
            checks.check(dict(row), i, errors)
        if errors:
            refused_rows += 1
            for key in {(str(e["field"]), str(e["reason"])) for e in errors}:
                by_check[key] += 1
    refused = [
        {"column": col, "check": why, "rows": k, "share": k / n}
        for (col, why), k in sorted(by_check.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    nulls: list[dict[str, Any]] = []
    new_categories: list[dict[str, Any]] = []
    columns = reference.columns if reference is not None else {}
    for name, ref in columns.items():
        column = [row.get(name) for row in inputs]
        current = sum(1 for v in column if _is_null(v)) / n
        nulls.append(
            {
                "column": name,
                "reference": ref.null_share,
                "current": current,
                "increase": current - ref.null_share,
            }
        )
        if isinstance(ref, CategoricalReference) and ref.other == 0:
            known = {str(v) for v in ref.values}
            unseen = Counter(str(v) for v in column if not _is_null(v) and str(v) not in known)
            if unseen:
                rows = sum(unseen.values())
                new_categories.append(
                    {
                        "column": name,
                        "rows": rows,
                        "share": rows / n,
                        "values": [v for v, _ in unseen.most_common(_NEW_VALUES_SHOWN)],
                    }
                )
    nulls.sort(key=lambda d: -d["increase"])
    new_categories.sort(key=lambda d: -d["share"])
    values: dict[str, Any] = {
        "refused_share": refused_rows / n,
        "null_share_increase": max((max(d["increase"], 0.0) for d in nulls), default=0.0),
        "new_category_share": max((d["share"] for d in new_categories), default=0.0),
        "refused": refused,
        "null_shares": nulls,
        "new_categories": new_categories,
    }
    message = f"{refused_rows} of {n} rows refused"
    if new_categories:
        top = new_categories[0]
        message += f"; new categories in {top['column']} ({', '.join(top['values'])})"
    return Measurement("ok", n, values, message)


def measure_performance(
    outputs: Sequence[Any],
    labels: Sequence[Any],
    *,
    min_labels: int = MIN_LABELS,
    estimate: PerformanceEstimate | None = None,
) -> Measurement:
    """Realized performance of the labelled answers
    (:func:`shipyard.monitoring.performance.realized_metrics`): accuracy for classifiers (and
    ROC AUC when answers carry the probabilities of two classes), RMSE and MAE for regressors
    (numeric answers that are not all whole numbers), with the share of answers labelled; and,
    beside it, the ``estimate`` made without labels (CBPE), which is measured even when too
    few labels came back for the realized figures."""
    from shipyard.monitoring.performance import realized_metrics

    n = len(outputs)
    truth = [None if _is_null(lab) else lab for lab in labels]
    labelled = sum(lab is not None for lab in truth)
    values: dict[str, Any] = {"label_coverage": labelled / n if n else 0.0, "labelled": labelled}
    if estimate is not None:
        values["estimated_accuracy"] = estimate.accuracy
        values["estimated_accuracy_std"] = estimate.accuracy_std
        values["estimated_roc_auc"] = estimate.roc_auc
    shown = f" (estimated accuracy {estimate.accuracy:.4g} without labels)" if estimate else ""
    if labelled < min_labels:
        status: Status = "ok" if estimate is not None and n else "insufficient data"
        return Measurement(
            status,
            n,
            values,
            f"{labelled} labelled answers of {n}; the realized figures need {min_labels}" + shown,
        )
    answers = [_answer(o) for o in outputs]
    classes, scores = _probabilities(outputs)
    task = "regression" if _regression(answers, truth) else _task(answers, truth, classes)
    realized = realized_metrics(answers, truth, task=task, classes=classes, scores=scores)
    for metric in ("accuracy", "roc_auc", "rmse", "mae"):
        if getattr(realized, metric) is not None:
            values[metric] = getattr(realized, metric)
    if task == "regression":
        message = f"RMSE {values['rmse']:.4g} on {labelled} labelled answers"
    else:
        message = f"accuracy {values['accuracy']:.4g} on {labelled} labelled answers"
    coverage = values["label_coverage"]
    return Measurement("ok", n, values, message + f" (label coverage {coverage:.0%})" + shown)


def _answer(output: Any) -> Any:
    return output.get("prediction") if isinstance(output, Mapping) else output


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _regression(answers: Sequence[Any], truth: Sequence[Any]) -> bool:
    known = [t for t in truth if t is not None]
    if not all(_number(a) for a in answers) or not all(_number(t) for t in known):
        return False
    return any(float(a) != round(float(a)) for a in answers)


def _task(
    answers: Sequence[Any], truth: Sequence[Any], classes: list[Any] | None
) -> Literal["binary", "multiclass"]:
    seen = classes or {str(v) for v in [*answers, *truth] if v is not None}
    return "binary" if len(seen) <= 2 else "multiclass"


def _probabilities(outputs: Sequence[Any]) -> tuple[list[Any] | None, list[float] | None]:
    """From answers shaped ``{"prediction", "probabilities": {class: p}}`` with two classes:
    the classes (sorted, the positive one last) and the positive class's probability."""
    probs = [o.get("probabilities") if isinstance(o, Mapping) else None for o in outputs]
    if not probs or not all(isinstance(p, Mapping) and len(p) == 2 for p in probs):
        return None, None
    classes = sorted(probs[0], key=str)  # type: ignore[arg-type]
    return classes, [float(p[classes[-1]]) for p in probs]  # type: ignore[index]


def measure_kpi(
    values: Sequence[float],
    *,
    name: str,
    aggregation: Literal["sum", "mean"],
    min_events: int,
) -> Measurement:
    """A KPI's sum or mean over the window's events (a sum of no events is 0)."""
    n = len(values)
    doc: dict[str, Any] = {"events": n, "sum": float(sum(values)), "mean": None}
    if n:
        doc["mean"] = doc["sum"] / n
    if n < min_events or (aggregation == "mean" and n == 0):
        need = max(min_events, 1)
        return Measurement(
            "insufficient data",
            n,
            doc,
            f"{count(n, f'{name} event')} in the window; the check needs {need}",
        )
    return Measurement(
        "ok", n, doc, f"{name} {aggregation} {doc[aggregation]:.6g} ({count(n, 'event')})"
    )


def measure_drift(report: DriftReport) -> Measurement:
    """A drift report (:meth:`shipyard.monitoring.drift_service.Drift.compare` of the window's
    inputs) as a measurement: the weighted share of drifted columns and, per column, the
    method, statistic and verdict; below the report's minimum rows, insufficient data."""
    n = report.current_rows
    if report.verdict == "insufficient data":
        return Measurement(
            "insufficient data", n, {}, f"{count(n, 'row')} in the window; too few for drift"
        )
    values: dict[str, Any] = {
        "drift_share": report.share,
        "drifted_columns": report.drifted_columns,
        "reference": report.reference,
        "columns": [
            {
                "column": c.column,
                "method": c.method,
                "statistic": c.statistic,
                "p_adjusted": c.p_adjusted,
                "threshold": c.threshold,
                "verdict": c.verdict,
            }
            for c in report.columns
        ],
    }
    drifted = report.drifted_columns
    message = f"{len(drifted)} of {len(report.columns)} columns drifted" + (
        f" ({', '.join(drifted)})" if drifted else ""
    )
    return Measurement("ok", n, values, message)
