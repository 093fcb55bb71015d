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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shipyard._internal.words import count
from shipyard.errors import InvalidInputError
from shipyard.governance.evaluation_curves import classification_curves, regression_curves
from shipyard.governance.evaluation_metrics import (
    CLASSIFICATION_METRICS,
    CONFIDENCE,
    LOWER_IS_BETTER,
    METRICS,
    REGRESSION_METRICS,
    _classification_statistic,
    _metrics,
    _regression_statistic,
    _undefined_notes,
    _WeightedAuc,
)
from shipyard.governance.evaluation_metrics import as_float as as_float  # re-exported for fairness

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
FAIRNESS_MEASURES = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "selection_rate_ratio",
)
FOUR_FIFTHS = 0.8
SMALL_GROUP_ROWS = 30  # below this a group's metrics get a note: they are mostly noise
MISSING_GROUP = "(missing)"
_IMPORTANCE_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


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
    #: Data for charts (:mod:`shipyard.governance.evaluation_curves`): ``roc``, ``pr`` and
    #: ``calibration`` for a classifier with probabilities, ``residuals`` for a regressor;
    #: empty in reports made before curves were stored.
    curves: dict[str, Any] = field(default_factory=dict)

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
            "curves": _plain(self.curves),
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
            "curves": (Mapping,),
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
            curves=_plain(doc.get("curves", {})),
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
        curves = classification_curves(y, proba, classes.tolist())
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
        curves = regression_curves(y, pred, seed)
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
        curves=curves,
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
        notes.append(
            "the model gives no class probabilities, so roc_auc and log_loss are not computed"
        )
        return None
    proba = np.asarray(predictor.predict_proba(x), dtype=float)
    if proba.shape != (len(x), k):
        raise InvalidInputError(
            f"predict_proba gave an array of shape {proba.shape}; expected ({len(x)}, {k})"
        )
    return proba


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
        notes.append(f"importance is not computed: {metric} is undefined on its {count(m, 'row')}")
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
