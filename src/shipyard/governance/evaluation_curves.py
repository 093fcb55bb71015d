"""The curves of an evaluation report, for charts: ROC and precision–recall curves and a
calibration table for classifiers with probabilities, residuals for regressors.

Computed once with scikit-learn at evaluation time and stored in the report, so the web UI and
the model card draw them without the model or the data. Each curve keeps at most
:data:`MAX_POINTS` points (evenly spaced along it, ends kept), so a report stays small
whatever the holdout's size.

>>> curves = classification_curves(y, proba, classes)      # doctest: +SKIP
>>> curves["roc"][0]["auc"]                                  # doctest: +SKIP
0.871
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CALIBRATION_BINS", "MAX_POINTS", "classification_curves", "regression_curves"]

MAX_POINTS = 200
CALIBRATION_BINS = 10
#: A multiclass report draws one-vs-rest curves for at most this many classes.
MAX_CURVE_CLASSES = 10


def classification_curves(
    y: np.ndarray, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, Any]:
    """ROC, precision–recall and calibration for the positive class (binary) or each class
    one-vs-rest (multiclass, up to :data:`MAX_CURVE_CLASSES`). ``y`` holds class indices,
    ``proba`` one column per class. Empty without probabilities, and a class whose label
    takes a single value in ``y`` gets no curve (it is undefined)."""
    import numpy as np
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    if proba is None:
        return {}
    positives = [len(classes) - 1] if len(classes) == 2 else list(range(len(classes)))
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    calibration: list[dict[str, Any]] = []
    for k in positives[:MAX_CURVE_CLASSES]:
        truth = (y == k).astype(int)
        if truth.min() == truth.max():
            continue
        score = proba[:, k]
        label = str(classes[k])
        fpr, tpr, _ = roc_curve(truth, score)
        roc.append({"label": label, "auc": float(auc(fpr, tpr)), **_thin(fpr=fpr, tpr=tpr)})
        precision, recall, _ = precision_recall_curve(truth, score)
        pr.append(
            {
                "label": label,
                "average_precision": float(average_precision_score(truth, score)),
                **_thin(recall=recall, precision=precision),
            }
        )
        observed, predicted = calibration_curve(truth, score, n_bins=CALIBRATION_BINS)
        # calibration_curve leaves empty bins out; the counts come from the same binning.
        edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
        counts = np.bincount(np.searchsorted(edges[1:-1], score), minlength=CALIBRATION_BINS)
        calibration.append(
            {
                "label": label,
                "predicted": _floats(predicted),
                "observed": _floats(observed),
                "count": [int(c) for c in counts if c > 0],
            }
        )
    return {"roc": roc, "pr": pr, "calibration": calibration} if roc else {}


def regression_curves(y: np.ndarray, pred: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Residuals (label minus prediction) against the prediction, for a residual plot: every
    row, or :data:`MAX_POINTS` of them sampled with ``seed``, with how many there were."""
    import numpy as np

    index = np.arange(len(y))
    if len(y) > MAX_POINTS:
        index = np.sort(np.random.default_rng(seed).choice(len(y), MAX_POINTS, replace=False))
    finite = np.isfinite(pred[index]) & np.isfinite(y[index])
    index = index[finite]
    return {
        "residuals": {
            "predicted": _floats(pred[index]),
            "residual": _floats(y[index] - pred[index]),
            "rows": len(y),
        }
    }


def _thin(**series: np.ndarray) -> dict[str, list[float]]:
    """The series at most :data:`MAX_POINTS` evenly spaced indices, first and last kept."""
    import numpy as np

    n = len(next(iter(series.values())))
    keep = np.arange(n)
    if n > MAX_POINTS:
        keep = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))
    return {name: _floats(values[keep]) for name, values in series.items()}


def _floats(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]
