"""Per-group metrics and fairness measures for evaluation reports (fairlearn MetricFrame)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from shipyard._internal import words
from shipyard.governance.evaluation import (
    FAIRNESS_MEASURES,
    FOUR_FIFTHS,
    MISSING_GROUP,
    SMALL_GROUP_ROWS,
    as_float,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["group_report"]


def group_report(
    column: str, values: pd.Series, y: np.ndarray, pred: np.ndarray, task: str, notes: list[str]
) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from fairlearn.metrics import MetricFrame, count

    missing = values.isna().tolist()
    keys = pd.Series(
        [
            MISSING_GROUP if gone else str(v)
            for v, gone in zip(values.tolist(), missing, strict=True)
        ],
        name=column,
        dtype=object,
    )
    functions: dict[str, Callable[[Any, Any], float]] = {"count": count}
    if task == "binary":
        functions |= {
            "selection_rate": lambda t, p: float(np.mean(p == 1)),
            "accuracy": lambda t, p: float(np.mean(t == p)),
            "precision": lambda t, p: _ratio(np.sum((p == 1) & (t == 1)), np.sum(p == 1)),
            "recall": lambda t, p: _ratio(np.sum((p == 1) & (t == 1)), np.sum(t == 1)),
            "false_positive_rate": lambda t, p: _ratio(np.sum((p == 1) & (t == 0)), np.sum(t == 0)),
        }
    elif task == "multiclass":
        functions |= {
            "accuracy": lambda t, p: float(np.mean(t == p)),
            "precision": lambda t, p: _macro(t, p, by_prediction=True),
            "recall": lambda t, p: _macro(t, p, by_prediction=False),
        }
    else:
        functions |= {
            "mae": lambda t, p: float(np.mean(np.abs(p - t))),
            "rmse": lambda t, p: float(np.sqrt(np.mean((p - t) ** 2))),
        }
    table = MetricFrame(metrics=functions, y_true=y, y_pred=pred, sensitive_features=keys).by_group
    per_group: dict[str, dict[str, Any]] = {}
    for group, row in table.iterrows():
        entry: dict[str, Any] = {"count": int(row["count"])}
        entry |= {name: as_float(row[name]) for name in functions if name != "count"}
        per_group[str(group)] = entry
        if entry["count"] < SMALL_GROUP_ROWS:
            notes.append(
                f"{column}: group {str(group)!r} has {words.count(int(entry['count']), 'row')}; "
                "its metrics are too uncertain to rely on"
            )
    return {"metrics": per_group, "fairness": _fairness(column, per_group, task, notes)}


def _fairness(
    column: str, per_group: Mapping[str, Mapping[str, Any]], task: str, notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(FAIRNESS_MEASURES)
    out["four_fifths"] = None
    if task != "binary":
        notes.append(
            f"{column}: fairness measures need a binary classifier ('selected' = predicted "
            f"positive); the model does {task}, so they are not computed"
        )
        return out
    rates = [g["selection_rate"] for g in per_group.values()]
    out["demographic_parity_difference"] = max(rates) - min(rates)
    out["selection_rate_ratio"] = min(rates) / max(rates) if max(rates) > 0 else 1.0
    out["four_fifths"] = out["selection_rate_ratio"] >= FOUR_FIFTHS
    gaps = []
    for measure, who in (("recall", "positive"), ("false_positive_rate", "negative")):
        defined = {k: g[measure] for k, g in per_group.items() if g[measure] is not None}
        if len(defined) < len(per_group):
            left_out = ", ".join(repr(k) for k in per_group if k not in defined)
            notes.append(
                f"{column}: equalized_odds_difference leaves out groups without {who} rows "
                f"for its {'true' if who == 'positive' else 'false'} positive rate: {left_out}"
            )
        if defined:
            gaps.append(max(defined.values()) - min(defined.values()))
    out["equalized_odds_difference"] = max(gaps) if gaps else None
    return out


def _ratio(numerator: Any, denominator: Any) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan


def _macro(t: Any, p: Any, *, by_prediction: bool) -> float:
    import numpy as np

    t, p = np.asarray(t), np.asarray(p)
    scores = [
        _ratio(np.sum((t == c) & (p == c)), np.sum((p if by_prediction else t) == c))
        for c in np.union1d(t, p)
    ]
    defined = [s for s in scores if not math.isnan(s)]
    return sum(defined) / len(defined) if defined else math.nan
