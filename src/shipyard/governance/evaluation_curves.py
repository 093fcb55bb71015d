"""The curves an evaluation report stores for charts: ROC, precision-recall and calibration
for a binary classifier with probabilities, residuals for a regressor. Computed by
scikit-learn; each curve keeps at most :data:`MAX_POINTS` points (evenly spaced along it,
both ends kept), so a stored report stays small whatever the size of the holdout.

>>> curves("binary", y, pred, proba)["roc"].keys()          # doctest: +SKIP
dict_keys(['fpr', 'tpr'])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CALIBRATION_BINS", "MAX_POINTS", "curves"]

MAX_POINTS = 200
CALIBRATION_BINS = 10


def _spaced(n: int, most: int) -> np.ndarray[Any, Any]:
    """At most ``most`` indices into ``n`` items, evenly spaced, the first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def _floats(values: np.ndarray[Any, Any], keep: np.ndarray[Any, Any]) -> list[float]:
    return [float(v) for v in values[keep]]


def curves(
    task: str, y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any], proba: Any
) -> dict[str, dict[str, list[float]]]:
    """The curves of one evaluation (``y`` encoded as class indices for classifiers, the
    positive class last); empty for a multiclass model or a binary one without
    probabilities."""
    if task == "regression":
        keep = _spaced(len(y), MAX_POINTS * 2)
        return {
            "residuals": {
                "predicted": _floats(pred, keep),
                "residual": _floats(y - pred, keep),
            }
        }
    if task != "binary" or proba is None or len(np.unique(y)) < 2:
        return {}
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    score = np.asarray(proba)[:, -1]
    fpr, tpr, _ = roc_curve(y, score)
    precision, recall, _ = precision_recall_curve(y, score)
    observed, predicted = calibration_curve(y, score, n_bins=CALIBRATION_BINS)
    roc_keep, pr_keep = _spaced(len(fpr), MAX_POINTS), _spaced(len(recall), MAX_POINTS)
    return {
        "roc": {"fpr": _floats(fpr, roc_keep), "tpr": _floats(tpr, roc_keep)},
        "precision_recall": {
            "recall": _floats(recall, pr_keep),
            "precision": _floats(precision, pr_keep),
        },
        "calibration": {
            "predicted": [float(v) for v in predicted],
            "observed": [float(v) for v in observed],
        },
    }
