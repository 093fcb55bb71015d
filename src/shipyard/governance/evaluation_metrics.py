"""Metric statistics for evaluation reports: the metric names, and each metric's value with its
95% percentile-bootstrap confidence interval.

Every metric is computed by a :data:`Statistic` of bootstrap row weights, so that a value and
its interval share one definition. :func:`~shipyard.governance.evaluation.evaluate` builds its
report from these; :mod:`shipyard.governance.evaluation` re-exports the metric names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "CONFIDENCE",
    "LOWER_IS_BETTER",
    "METRICS",
    "REGRESSION_METRICS",
    "Statistic",
    "as_float",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})
CONFIDENCE = 0.95

# Resamples are drawn in chunks of at most this many weights, so memory stays flat for
# large frames while each chunk is still one vectorised computation.
_CHUNK_CELLS = 4_000_000

# A statistic maps bootstrap weights (resamples x rows, each row the count of times the row
# was drawn) to one value per resample and metric. The point estimate is the same statistic
# with all weights 1, so the value and its interval cannot disagree in definition.
Statistic = Callable[["np.ndarray"], dict[str, "np.ndarray"]]


def _metrics(
    statistic: Statistic, n: int, bootstrap: int, rng: np.random.Generator, notes: list[str]
) -> dict[str, dict[str, float | None]]:
    import numpy as np

    point = statistic(np.ones((1, n)))
    samples: dict[str, list[np.ndarray]] = {name: [] for name in point}
    for weights in _resample_weights(n, bootstrap, rng):
        for name, values in statistic(weights).items():
            samples[name].append(values)
    out: dict[str, dict[str, float | None]] = {}
    tail = (1 - CONFIDENCE) / 2 * 100
    for name, value in point.items():
        out[name] = {"value": as_float(value[0]), "ci_low": None, "ci_high": None}
        drawn = np.concatenate(samples[name]) if samples[name] else np.empty(0)
        defined = drawn[np.isfinite(drawn)]
        if out[name]["value"] is None or not defined.size:
            continue
        low, high = np.percentile(defined, [tail, 100 - tail])
        out[name] |= {"ci_low": float(low), "ci_high": float(high)}
        if skipped := drawn.size - defined.size:
            notes.append(
                f"{name}: {skipped} of {drawn.size} bootstrap resamples left out of its "
                "interval, as it is undefined on them"
            )
    return out


def _resample_weights(n: int, bootstrap: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    import numpy as np

    chunk = max(1, min(bootstrap, _CHUNK_CELLS // n))
    done = 0
    while done < bootstrap:
        b = min(chunk, bootstrap - done)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(float)
        done += b


def _classification_statistic(y: np.ndarray, pred: np.ndarray, proba: Any, k: int) -> Statistic:
    import numpy as np
    from scipy import sparse

    n = len(y)
    cells = sparse.csr_array((np.ones(n), (np.arange(n), y * k + pred)), shape=(n, k * k))
    if proba is not None:
        eps = np.finfo(proba.dtype).eps
        losses = -np.log(np.clip(proba[np.arange(n), y], eps, 1 - eps))  # as sklearn clips
        aucs = [_WeightedAuc(proba[:, c], y == c) for c in range(k)]

    def statistic(w: np.ndarray) -> dict[str, np.ndarray]:
        cm = (w @ cells).reshape(-1, k, k)
        tp = np.diagonal(cm, axis1=1, axis2=2)
        predicted, actual = cm.sum(axis=1), cm.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = {
                "accuracy": tp.sum(axis=1) / cm.sum(axis=(1, 2)),
                "precision": tp / predicted,
                "recall": tp / actual,
                "f1": 2 * tp / (predicted + actual),
            }
        for name in ("precision", "recall", "f1"):
            out[name] = out[name][:, -1] if k == 2 else _nanmean(out[name])
        if proba is None:
            out["roc_auc"] = out["log_loss"] = np.full(len(w), np.nan)
        else:
            per_class = [auc(w) for auc in (aucs[-1:] if k == 2 else aucs)]
            out["roc_auc"] = np.mean(per_class, axis=0)  # NaN when a class is absent
            out["log_loss"] = w @ losses / n
        return {name: out[name] for name in CLASSIFICATION_METRICS}

    return statistic


class _WeightedAuc:
    """ROC AUC of ``scores`` for ``positive`` rows under row weights, ties counted half (the
    Mann-Whitney form, equal to sklearn's trapezoidal AUC)."""

    def __init__(self, scores: np.ndarray, positive: np.ndarray) -> None:
        import numpy as np
        from scipy import sparse

        _, level = np.unique(scores, return_inverse=True)
        n, levels = len(scores), int(level.max()) + 1
        rows = np.arange(n)
        pos = positive.astype(float)
        self.pos = sparse.csr_array((pos, (rows, level)), shape=(n, levels))
        self.neg = sparse.csr_array((1 - pos, (rows, level)), shape=(n, levels))

    def __call__(self, w: np.ndarray) -> np.ndarray:
        import numpy as np

        pos, neg = w @ self.pos, w @ self.neg
        below = np.cumsum(neg, axis=1) - neg
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pairs > 0, wins / pairs, np.nan)


def _regression_statistic(y: np.ndarray, pred: np.ndarray) -> Statistic:
    import numpy as np

    n = len(y)
    err = pred - y
    absolute, squared = np.abs(err), err**2
    centred = y - y.mean()  # r2 is shift-invariant; centring avoids cancellation

    def statistic(w: np.ndarray) -> dict[str, np.ndarray]:
        sse = w @ squared
        spread = w @ centred**2
        total = spread - (w @ centred) ** 2 / n
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 1e-12 * spread, 1 - sse / total, np.nan)
        return {"mae": w @ absolute / n, "rmse": np.sqrt(sse / n), "r2": r2}

    return statistic


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN (as sklearn's ``zero_division=np.nan`` leaves out
    classes that never occur), NaN when all are NaN, without numpy's empty-slice warning."""
    import numpy as np

    defined = np.isfinite(values)
    count = defined.sum(axis=-1)
    total = np.where(defined, values, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _undefined_notes(
    metrics: Mapping[str, Mapping[str, float | None]], task: str, *, has_proba: bool
) -> list[str]:
    reasons = {
        "precision": "the model predicts no row as the positive class",
        "recall": "the label has no row of the positive class",
        "f1": "the positive class occurs neither in the label nor in the predictions",
        "roc_auc": (
            "the label has a single class"
            if task == "binary"
            else "not every class of the model occurs in the label"
        ),
        "r2": "the label is constant",
    }
    if not has_proba:  # roc_auc has its note already: the model gives no probabilities
        del reasons["roc_auc"]
    return [
        f"{name} is undefined on this data: {reasons[name]}"
        for name, entry in metrics.items()
        if entry["value"] is None and name in reasons
    ]


def as_float(value: Any) -> float | None:
    """A plain float, or None for NaN, infinity and missing values."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
