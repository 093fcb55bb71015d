"""Chart figures for the pages: plain functions from stored read-model data to plotly figure
documents (``{"data": [...], "layout": {...}}``), which static/shipyard.js hands to plotly.js.
Nothing here computes a statistic: every number comes from what the services stored.

>>> importance([{"feature": "age", "mean": 0.1, "std": 0.02}])["data"][0]["type"]
'bar'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shipyard._internal.words import count

__all__ = [
    "alias_timeline",
    "calibration",
    "column_profile",
    "confusion_matrix",
    "fairness",
    "importance",
    "metric_intervals",
    "metric_lines",
    "precision_recall",
    "residuals",
    "roc",
]

Figure = dict[str, Any]


def _layout(title: str, **more: Any) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, **more}


def column_profile(name: str, column: Mapping[str, Any]) -> Figure | None:
    """A column's stored profile: its quantiles (numbers) or its most frequent values
    (strings and categories); None for a column whose profile has neither."""
    quantiles = column.get("quantiles")
    if isinstance(quantiles, Mapping) and quantiles:
        qs = sorted(quantiles.items(), key=lambda kv: float(kv[0]))
        xs = ["min", *(f"p{float(q) * 100:g}" for q, _ in qs), "max"]
        ys = [column.get("min"), *(v for _, v in qs), column.get("max")]
        return {
            "data": [{"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys, "name": name}],
            "layout": _layout(f"{name}: quantiles", height=220),
        }
    top = column.get("top")
    if isinstance(top, Sequence) and top:
        return {
            "data": [
                {
                    "type": "bar",
                    "x": [str(t.get("value")) for t in top],
                    "y": [t.get("count") for t in top],
                    "name": name,
                }
            ],
            "layout": _layout(f"{name}: most frequent values", height=220),
        }
    return None


def metric_intervals(metrics: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Each metric's value with its bootstrap confidence interval (when it has one)."""
    names = list(metrics)
    values = [metrics[n].get("value") for n in names]
    high = [
        None if metrics[n].get("ci_high") is None else metrics[n]["ci_high"] - (v or 0)
        for n, v in zip(names, values, strict=True)
    ]
    low = [
        None if metrics[n].get("ci_low") is None else (v or 0) - metrics[n]["ci_low"]
        for n, v in zip(names, values, strict=True)
    ]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": names,
                "y": values,
                "error_y": {"type": "data", "array": high, "arrayminus": low, "visible": True},
                "name": "value",
            }
        ],
        "layout": _layout("Metrics with confidence intervals"),
    }


def fairness(column: str, group_metrics: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Per-group metrics of one sensitive column: a bar per group for each metric."""
    metric_names = sorted({k for m in group_metrics.values() for k in m if k != "count"})
    data = [
        {
            "type": "bar",
            "name": f"{group} (n={values.get('count', '?')})",
            "x": metric_names,
            "y": [values.get(k) for k in metric_names],
        }
        for group, values in group_metrics.items()
    ]
    return {"data": data, "layout": _layout(f"Metrics by {column}", barmode="group")}


def importance(features: Sequence[Mapping[str, Any]], top: int = 20) -> Figure:
    """Permutation importance (mean drop of the score, ± its standard deviation)."""
    shown = list(features)[:top][::-1]  # the largest at the top of a horizontal bar chart
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [f["feature"] for f in shown],
                "x": [f.get("mean") for f in shown],
                "error_x": {"type": "data", "array": [f.get("std") for f in shown]},
                "name": "importance",
            }
        ],
        "layout": _layout(
            "Permutation importance", height=max(260, 22 * len(shown) + 80), margin={"l": 140}
        ),
    }


def confusion_matrix(doc: Mapping[str, Any]) -> Figure:
    """The stored confusion matrix: rows are true labels, columns predicted ones."""
    labels = [str(x) for x in doc.get("labels", [])]
    matrix = doc.get("matrix", [])
    return {
        "data": [
            {
                "type": "heatmap",
                "x": labels,
                "y": labels,
                "z": matrix,
                "text": matrix,
                "texttemplate": "%{text}",
                "colorscale": "Blues",
                "showscale": False,
            }
        ],
        "layout": _layout(
            "Confusion matrix",
            xaxis={"title": {"text": "predicted"}, "type": "category"},
            yaxis={"title": {"text": "true"}, "type": "category", "autorange": "reversed"},
            height=300,
        ),
    }


def alias_timeline(events: Sequence[Any], now: datetime) -> Figure:
    """Which version each alias pointed at over time (a step line per alias), from the
    alias history (``AliasEvent`` read models, oldest first)."""
    by_alias: dict[str, tuple[list[str], list[int | None]]] = {}
    for e in events:
        xs, ys = by_alias.setdefault(e.alias, ([], []))
        xs.append(e.time.isoformat())
        ys.append(e.to_version)
    data = []
    for alias, (xs, ys) in by_alias.items():
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "line": {"shape": "hv"},
                "name": alias,
                "x": [*xs, now.isoformat()],
                "y": [*ys, ys[-1]],
            }
        )
    return {
        "data": data,
        "layout": _layout(
            "Alias timeline", yaxis={"title": {"text": "version"}, "dtick": 1}, height=260
        ),
    }


def metric_lines(title: str, series: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    """One line per metric over steps (points as ``MetricPoint.to_dict()``)."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": key,
                "x": [p["step"] for p in points],
                "y": [p["value"] for p in points],
            }
            for key, points in series.items()
        ],
        "layout": _layout(title, xaxis={"title": {"text": "step"}}, height=260),
    }


def _diagonal(name: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [0, 1],
        "y": [0, 1],
        "name": name,
        "line": {"dash": "dot", "color": "#98a2b3"},
    }


def roc(curves: Sequence[Mapping[str, Any]]) -> Figure:
    """The stored ROC curves (the positive class, or each class one-vs-rest), against the
    diagonal of a random guess."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": c["fpr"],
                "y": c["tpr"],
                "name": f"{c['label']} (AUC {c['auc']:.3f})",
            }
            for c in curves
        ]
        + [_diagonal("random")],
        "layout": _layout(
            "ROC curve",
            xaxis={"title": {"text": "false positive rate"}, "range": [0, 1]},
            yaxis={"title": {"text": "true positive rate"}, "range": [0, 1.02]},
        ),
    }


def precision_recall(curves: Sequence[Mapping[str, Any]]) -> Figure:
    """The stored precision-recall curves, with their average precision."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv"},
                "x": c["recall"],
                "y": c["precision"],
                "name": f"{c['label']} (AP {c['average_precision']:.3f})",
            }
            for c in curves
        ],
        "layout": _layout(
            "Precision-recall curve",
            xaxis={"title": {"text": "recall"}, "range": [0, 1]},
            yaxis={"title": {"text": "precision"}, "range": [0, 1.02]},
        ),
    }


def calibration(curves: Sequence[Mapping[str, Any]]) -> Figure:
    """Observed frequency of a class against the mean predicted probability, per
    probability bin, against perfect calibration."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": c["predicted"],
                "y": c["observed"],
                "name": str(c["label"]),
                "text": [count(int(n), "row") for n in c.get("count", [])],
            }
            for c in curves
        ]
        + [_diagonal("perfectly calibrated")],
        "layout": _layout(
            "Calibration",
            xaxis={"title": {"text": "mean predicted probability"}, "range": [0, 1]},
            yaxis={"title": {"text": "observed frequency"}, "range": [0, 1]},
        ),
    }


def residuals(curve: Mapping[str, Sequence[float]]) -> Figure:
    """A regressor's residuals (true minus predicted) against its predictions."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": curve["predicted"],
                "y": curve["residual"],
                "name": "residual",
                "marker": {"size": 4, "opacity": 0.6},
            }
        ],
        "layout": _layout(
            "Residuals",
            xaxis={"title": {"text": "predicted"}},
            yaxis={"title": {"text": "true - predicted"}, "zeroline": True},
        ),
    }
