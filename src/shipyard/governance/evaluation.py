"""Evaluation reports: metrics with confidence intervals, per-group fairness, importance.

:func:`evaluate` scores a model on a labelled frame and returns an :class:`EvaluationReport`,
a JSON-ready value that a policy gate (:mod:`shipyard.governance.policies`) reads:

- **metrics**, each with a 95% percentile-bootstrap confidence interval. Classification:
  accuracy, precision, recall, f1 (binary: of the positive class, which is the last of the
  model's classes; multiclass: macro average over the classes that occur), roc_auc (binary:
  probability of the positive class; multiclass: one-vs-rest macro) and log_loss;
  regression: mae, rmse and r2.
- **groups**: per sensitive column, metrics per group (fairlearn ``MetricFrame``) and the
  fairness measures demographic parity difference, equalized odds difference and
  selection-rate ratio with its four-fifths flag (binary classification only).
- **importance**: permutation importance of each input column, as the drop of the main score
  (roc_auc for binary, accuracy for multiclass, r2 for regression) when it is shuffled.

A metric that a sample does not define (roc_auc when the label has one class, precision when
nothing is predicted positive, r2 of a constant label) is reported as ``None`` with a note
instead of failing; bootstrap resamples on which it is undefined are left out of its interval.

>>> report = evaluate(predictor, holdout, "default", sensitive=["gender"])  # doctest: +SKIP
>>> report.metric("roc_auc")  # doctest: +SKIP
0.871
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CLASSIFICATION_METRICS",
    "FAIRNESS_MEASURES",
    "LOWER_IS_BETTER",
    "METRICS",
    "REGRESSION_METRICS",
    "TASKS",
    "EvaluationReport",
    "Predictor",
    "evaluate",
]

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})
FAIRNESS_MEASURES = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "selection_rate_ratio",
)
CONFIDENCE = 0.95
FOUR_FIFTHS = 0.8
SMALL_GROUP_ROWS = 30  # below this a group's metrics get a note: they are mostly noise
MISSING_GROUP = "(missing)"
_IMPORTANCE_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
# Resamples are drawn in chunks of at most this many weights, so memory stays flat for
# large frames while each chunk is still one vectorised computation.
_CHUNK_CELLS = 4_000_000


class Predictor(Protocol):
    """What :func:`evaluate` needs of a model, as
    :class:`~shipyard.registry.signatures.CheckedPredictor` offers it."""

    @property
    def is_classifier(self) -> bool: ...

    @property
    def classes(self) -> Any: ...

    def predict(self, frame: Any) -> Any: ...

    def predict_proba(self, frame: Any) -> Any: ...


@dataclass(frozen=True)
class EvaluationReport:
    """How a model did on one labelled frame; JSON-ready through :meth:`to_dict`.

    ``metrics`` maps a metric name to ``{"value", "ci_low", "ci_high"}`` (``None`` where
    undefined); ``confusion_matrix`` is ``{"labels": [...], "matrix": [[...]]}`` with rows
    for the true class and columns for the predicted one (``None`` for regression);
    ``groups`` maps a sensitive column to ``{"metrics": {group: {...}}, "fairness": {...}}``;
    ``importance`` lists ``{"feature", "mean", "std"}`` by decreasing mean; ``notes`` says
    what could not be computed and why; ``settings`` records how the report was made.
    """

    task: str
    rows: int
    label: str
    metrics: dict[str, dict[str, float | None]]
    confusion_matrix: dict[str, Any] | None = None
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    importance: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        """The value of one metric; None when the report lacks it or it is undefined.

        >>> report.metric("roc_auc")  # doctest: +SKIP
        0.871
        """
        entry = self.metrics.get(name)
        return None if entry is None else entry.get("value")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data; :meth:`from_dict` reads it back equal."""
        return {
            "task": self.task,
            "rows": self.rows,
            "label": self.label,
            "metrics": _plain(self.metrics),
            "confusion_matrix": _plain(self.confusion_matrix),
            "groups": _plain(self.groups),
            "importance": _plain(self.importance),
            "notes": list(self.notes),
            "settings": _plain(self.settings),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> EvaluationReport:
        """Read back a document written by :meth:`to_dict`.

        Raises:
            InvalidInputError: the document is not an evaluation report (every problem named).
        """
        if not isinstance(doc, Mapping):
            raise InvalidInputError(f"an evaluation report is a mapping, got {type(doc).__name__}")
        problems: list[str] = []
        if doc.get("task") not in TASKS:
            problems.append(f"task: expected one of {', '.join(TASKS)}, got {doc.get('task')!r}")
        rows = doc.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            problems.append(f"rows: expected a positive whole number, got {rows!r}")
        if not isinstance(doc.get("label"), str):
            problems.append(f"label: expected text, got {doc.get('label')!r}")
        metrics = doc.get("metrics")
        if not isinstance(metrics, Mapping):
            problems.append("metrics: expected a mapping of metric name to value and interval")
        else:
            for name, entry in metrics.items():
                if not isinstance(entry, Mapping) or not all(
                    _is_number_or_none(entry.get(k)) for k in ("value", "ci_low", "ci_high")
                ):
                    problems.append(f"metrics.{name}: expected {{value, ci_low, ci_high}}")
        kinds = {
            "confusion_matrix": (Mapping, type(None)),
            "groups": (Mapping,),
            "importance": (list,),
            "notes": (list,),
            "settings": (Mapping,),
        }
        for key, types in kinds.items():
            if key in doc and not isinstance(doc[key], types):
                problems.append(f"{key}: has the wrong type ({type(doc[key]).__name__})")
        if problems:
            raise InvalidInputError.from_problems("evaluation report", problems)
        return cls(
            task=doc["task"],
            rows=int(doc["rows"]),
            label=doc["label"],
            metrics=_plain(metrics),
            confusion_matrix=_plain(doc.get("confusion_matrix")),
            groups=_plain(doc.get("groups", {})),
            importance=_plain(doc.get("importance", [])),
            notes=[str(n) for n in doc.get("notes", [])],
            settings=_plain(doc.get("settings", {})),
        )


def evaluate(
    predictor: Predictor,
    frame: Any,
    label: str,
    *,
    sensitive: Sequence[str] = (),
    bootstrap: int = 200,
    seed: int = 0,
    importance_repeats: int = 5,
    max_importance_rows: int = 5000,
) -> EvaluationReport:
    """Evaluate ``predictor`` on a pandas or polars ``frame`` holding the ``label`` column.

    The model sees its input columns only: those of its signature, else those it was
    fitted on (``feature_names_in_``), else every column but the label and the sensitive
    ones. Sensitive columns need not be model inputs. Results are the same for the same
    ``seed``; ``bootstrap=0`` gives no intervals, ``importance_repeats=0`` no importance.

    >>> evaluate(predictor, holdout, "default", sensitive=["gender", "age_band"])  # doctest: +SKIP

    Raises:
        InvalidInputError: the frame is empty or not a frame; the label, a sensitive or an
            input column is missing; the label has missing values or (for a classifier)
            values the model does not know; a setting is out of range.
    """
    import numpy as np

    _check_settings(bootstrap, importance_repeats, max_importance_rows)
    sensitive = list(sensitive)
    data, inputs = _select(predictor, frame, label, sensitive)
    seeds = np.random.SeedSequence(seed).spawn(2)
    notes: list[str] = []
    settings: dict[str, Any] = {
        "bootstrap": bootstrap,
        "confidence": CONFIDENCE,
        "seed": seed,
        "importance_repeats": importance_repeats,
    }
    x = data[inputs]
    y_raw = data[label]
    missing = int(y_raw.isna().sum())
    if missing:
        raise InvalidInputError(
            f"label column {label!r} has {missing} missing value{'s' if missing != 1 else ''}; "
            "evaluate on labelled rows only"
        )
    confusion: dict[str, Any] | None = None
    if predictor.is_classifier:
        classes = np.asarray(predictor.classes)
        if len(classes) < 2:
            raise InvalidInputError("the model knows fewer than two classes; nothing to evaluate")
        task = "binary" if len(classes) == 2 else "multiclass"
        y = _encode(y_raw.to_numpy(), classes, f"label column {label!r}")
        pred = _encode(np.asarray(predictor.predict(x)), classes, "the model's predictions")
        proba = _probabilities(predictor, x, len(classes), notes)
        statistic = _classification_statistic(y, pred, proba, len(classes))
        settings["average"] = "binary" if task == "binary" else "macro"
        if task == "binary":
            settings["positive_class"] = _plain(classes.tolist()[-1])
        cm = np.bincount(y * len(classes) + pred, minlength=len(classes) ** 2)
        confusion = {
            "labels": _plain(classes.tolist()),
            "matrix": cm.reshape(len(classes), len(classes)).tolist(),
        }
        # what the main score of permutation importance is computed from
        score: Any = proba[:, -1] if task == "binary" and proba is not None else pred
    else:
        task = "regression"
        try:
            y = y_raw.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"label column {label!r} holds {y_raw.dtype} values; a regression label "
                "holds numbers"
            ) from None
        pred = np.asarray(predictor.predict(x), dtype=float)
        statistic = _regression_statistic(y, pred)
        score = pred
        proba = None
    rng = np.random.default_rng(seeds[0])
    metrics = _metrics(statistic, len(data), bootstrap, rng, notes)
    notes.extend(_undefined_notes(metrics, task, has_proba=proba is not None))
    from shipyard.governance.fairness import group_report

    groups = {
        column: group_report(column, data[column], y, pred, task, notes) for column in sensitive
    }
    if task == "binary" and proba is None:
        notes.append("importance is not computed: it needs roc_auc, so class probabilities")
        importance_repeats = 0
    importance, used_rows = _importance(
        predictor,
        x,
        y,
        score,
        task,
        importance_repeats,
        max_importance_rows,
        np.random.default_rng(seeds[1]),
        notes,
    )
    settings["importance_rows"] = used_rows
    settings["importance_metric"] = _IMPORTANCE_METRIC[task]
    return EvaluationReport(
        task=task,
        rows=len(data),
        label=label,
        metrics=metrics,
        confusion_matrix=confusion,
        groups=groups,
        importance=importance,
        notes=notes,
        settings=settings,
    )


# -- input ------------------------------------------------------------------------------------


def _check_settings(bootstrap: int, repeats: int, max_rows: int) -> None:
    problems = []
    for name, value, low in (
        ("bootstrap", bootstrap, 0),
        ("importance_repeats", repeats, 0),
        ("max_importance_rows", max_rows, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"{name} must be a whole number >= {low}, got {value!r}")
    if problems:
        raise InvalidInputError.from_problems("the evaluation settings", problems)


def _select(
    predictor: Predictor, frame: Any, label: str, sensitive: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """The needed columns as one pandas frame (the model's input and the label and
    sensitive columns), and the names of the input columns."""
    import pandas as pd
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pd.DataFrame | pl.DataFrame):
        raise InvalidInputError(
            f"expected a pandas or polars DataFrame to evaluate on, got {type(frame).__name__}"
        )
    columns = [str(c) for c in frame.columns]
    inputs = _input_columns(predictor, columns, label, sensitive)
    problems = []
    for role, names in (("label", [label]), ("sensitive", sensitive), ("input", inputs)):
        for name in names:
            if name not in columns:
                close = difflib.get_close_matches(name, columns, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"{role} column {name!r} is not in the frame{hint}")
    if problems:
        raise InvalidInputError.from_problems("the evaluation frame", problems)
    if frame.shape[0] == 0:
        raise InvalidInputError("the evaluation frame has no rows")
    needed = list(dict.fromkeys([*inputs, label, *sensitive]))
    if isinstance(frame, pl.DataFrame):
        return frame.select(needed).to_pandas(), inputs
    return frame[needed].reset_index(drop=True), inputs


def _input_columns(
    predictor: Predictor, columns: list[str], label: str, sensitive: list[str]
) -> list[str]:
    signature = getattr(predictor, "signature", None)
    if signature is not None:
        return list(signature.columns)
    for holder in (getattr(predictor, "model", None), predictor):
        names = getattr(holder, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
    return [c for c in columns if c != label and c not in sensitive]


def _encode(values: np.ndarray, classes: np.ndarray, what: str) -> np.ndarray:
    """Each value as the index of its class; unknown values are an error."""
    import numpy as np

    codes = np.full(len(values), -1, dtype=np.int64)
    for i, c in enumerate(classes):
        codes[(values == c) & (codes < 0)] = i
    if (codes < 0).any():
        unknown = list(dict.fromkeys(values[codes < 0].tolist()))
        shown = ", ".join(repr(v) for v in unknown[:5]) + (", …" if len(unknown) > 5 else "")
        known = ", ".join(repr(c) for c in classes.tolist())
        raise InvalidInputError(
            f"{what} has values the model does not know: {shown} (its classes are {known})"
        )
    return codes


def _probabilities(predictor: Predictor, x: pd.DataFrame, k: int, notes: list[str]) -> Any:
    import numpy as np

    model = getattr(predictor, "model", predictor)
    if not hasattr(model, "predict_proba"):
        notes.append("the model gives no class probabilities, so roc_auc and log_loss are None")
        return None
    proba = np.asarray(predictor.predict_proba(x), dtype=float)
    if proba.shape != (len(x), k):
        raise InvalidInputError(
            f"predict_proba gave an array of shape {proba.shape}; expected ({len(x)}, {k})"
        )
    return proba


# -- metrics ----------------------------------------------------------------------------------

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


# -- groups and fairness ----------------------------------------------------------------------


# -- importance -------------------------------------------------------------------------------


def _importance(
    predictor: Predictor,
    x: pd.DataFrame,
    y: np.ndarray,
    score: np.ndarray,
    task: str,
    repeats: int,
    max_rows: int,
    rng: np.random.Generator,
    notes: list[str],
) -> tuple[list[dict[str, Any]], int]:
    """Permutation importance: for each input column, the drop of the main score when the
    column is shuffled, ``repeats`` times on one seeded sample of at most ``max_rows`` rows.
    The shuffled copies of a column are predicted in one call."""
    import numpy as np
    import pandas as pd

    n = len(x)
    m = min(n, max_rows)
    if repeats == 0 or x.shape[1] == 0:
        return [], 0
    rows = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    sample, y_s = x.iloc[rows].reset_index(drop=True), y[rows]
    metric = _IMPORTANCE_METRIC[task]
    scorer = _importance_scorer(task, y_s)
    base = scorer(score[rows])
    if math.isnan(base):
        notes.append(f"importance is not computed: {metric} is undefined on its {m} rows")
        return [], 0
    stacked = pd.concat([sample] * repeats, ignore_index=True)
    out: list[dict[str, Any]] = []
    for column in sample.columns:
        shuffled = stacked.copy(deep=False)
        shuffled[column] = pd.concat(
            [sample[column].take(rng.permutation(m)) for _ in range(repeats)], ignore_index=True
        )
        if task == "binary":
            scores = np.asarray(predictor.predict_proba(shuffled), dtype=float)[:, -1]
        else:
            scores = np.asarray(predictor.predict(shuffled))
            if task == "multiclass":
                scores = _encode(scores, np.asarray(predictor.classes), "the model's predictions")
            else:
                scores = scores.astype(float)
        drops = [base - scorer(block) for block in scores.reshape(repeats, m)]
        out.append({"feature": str(column), "mean": _mean(drops), "std": _std(drops)})
    out.sort(key=lambda item: (-float(item["mean"]), str(item["feature"])))
    return out, m


def _importance_scorer(task: str, y: np.ndarray) -> Callable[[np.ndarray], float]:
    import numpy as np

    ones = np.ones((1, len(y)))
    if task == "binary":
        return lambda s: float(_WeightedAuc(s, y == 1)(ones)[0])
    if task == "multiclass":
        return lambda p: float(np.mean(p == y))
    return lambda p: float(_regression_statistic(y, p)(ones)["r2"][0])


# -- JSON -------------------------------------------------------------------------------------


def as_float(value: Any) -> float | None:
    """A plain float, or None for NaN, infinity and missing values."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _std(values: list[float]) -> float:
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _plain(value: Any) -> Any:
    """A deep copy as plain JSON data: str keys, Python scalars, NaN as None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # a numpy scalar
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)
