"""Live performance of a deployment: realized metrics where labels came back, and, for a binary
classifier, an estimate without labels from its calibrated confidence (CBPE, as NannyML).

**Realized** (:func:`realized_metrics`): over the labelled answers of a window, accuracy (a
label agrees with the answer as feedback judges it), ROC AUC (binary, from the probability of
the positive class: the last of the model's classes, as evaluation takes it), RMSE and MAE for
a regressor, and the label coverage (labelled / answered).

**Estimated** (:func:`estimate_binary`): if a model's probabilities are calibrated, an answer
is right with the probability the model gives its answer, so the expected accuracy of a
window is the mean of those, with no label needed; the expected ROC curve takes, at each
score threshold, the expected true and false positives (sums of ``p`` and ``1 - p`` above
it). Calibration is fitted on labelled reference data (:func:`fit_calibration`): isotonic
regression of the label on the score, kept only when it beats the model's own probabilities
out of fold (Brier score); otherwise the model's probabilities are used as they are. The
estimate holds while the relation between inputs and label stays the same (covariate shift
only); a gap between estimate and realized figure when labels arrive is itself a signal.

The prediction log stores answers (labels), not probabilities: :func:`estimate_window` scores
the window's logged inputs again with the version that answered (``project.models.load``) and
takes as reference the dataset of the version's newest evaluation (a held-out set, whose
probabilities are honest, unlike the training data's) unless told another.

>>> [w.estimate.accuracy for w in estimate_window(project, "credit-risk", since)]  # doctest: +SKIP
[0.81]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.serving.feedback import same_answer

if TYPE_CHECKING:
    import numpy as np

    from shipyard.project import Project

__all__ = [
    "MIN_REFERENCE_ROWS",
    "Calibration",
    "PerformanceEstimate",
    "RealizedMetrics",
    "WindowPerformance",
    "estimate_binary",
    "estimate_window",
    "fit_calibration",
    "realized_metrics",
]

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
#: Labelled reference rows a calibration needs (with both classes present).
MIN_REFERENCE_ROWS = 100
CALIBRATION_FOLDS = 5


@dataclass(frozen=True)
class RealizedMetrics(ReadModel):
    """Metrics of a window's answers against the labels that came back: ``coverage`` is
    ``labelled / predictions`` (None without predictions); a metric is None when the window
    does not define it (no label, one class only for ROC AUC, the wrong task)."""

    task: Task
    predictions: int
    labelled: int
    coverage: float | None
    accuracy: float | None = None
    roc_auc: float | None = None
    rmse: float | None = None
    mae: float | None = None


@dataclass(frozen=True)
class Calibration(ReadModel):
    """How scores become probabilities: ``isotonic`` (the step function ``x`` → ``y``,
    interpolated between its points and flat beyond them) or ``model`` (the model's own
    probabilities, which did as well on the reference). ``brier_model`` and
    ``brier_isotonic`` are the Brier scores of each on the reference, the isotonic one out of
    fold. JSON-ready: a monitor may store it and :meth:`apply` it later."""

    method: Literal["isotonic", "model"]
    reference_rows: int
    brier_model: float
    brier_isotonic: float
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the positive class for the model's ``scores``."""
        import numpy as np

        s = np.asarray(scores, dtype=float)
        if self.method == "model":
            return np.asarray(np.clip(s, 0.0, 1.0))
        return np.asarray(np.interp(s, np.asarray(self.x), np.asarray(self.y)))


@dataclass(frozen=True)
class PerformanceEstimate(ReadModel):
    """The expected performance of a binary classifier on ``rows`` unlabelled answers:
    ``accuracy`` with ``accuracy_std``, the standard deviation of the realized accuracy
    around it from sampling alone (a realized figure further than about 3 of those from the
    estimate says the model's confidence no longer holds), and ``roc_auc`` (None when every
    calibrated probability is 0 or every one is 1)."""

    rows: int
    accuracy: float
    accuracy_std: float
    roc_auc: float | None
    calibration: Literal["isotonic", "model"]


@dataclass(frozen=True)
class WindowPerformance(ReadModel):
    """One version's answers in a window: what was realized, and the estimate (binary
    classifiers with probabilities; None otherwise) with the calibration and the reference
    dataset it came from."""

    model: str
    realized: RealizedMetrics
    estimate: PerformanceEstimate | None
    calibration: Calibration | None
    reference: str | None


# -- realized ---------------------------------------------------------------------------------


def realized_metrics(
    answers: Sequence[Any],
    labels: Sequence[Any],
    *,
    task: Task,
    classes: Sequence[Any] | None = None,
    scores: Sequence[float] | np.ndarray | None = None,
) -> RealizedMetrics:
    """Realized metrics of ``answers`` against ``labels`` (None where no label came back),
    row by row. ``scores`` (binary): the probability of the positive class, the last of
    ``classes``, for each row; ROC AUC needs them.

    >>> realized_metrics([0, 1, 1], [0, 0, None], task="binary").accuracy
    0.5

    Raises:
        InvalidInputError: an unknown task, or sequences of different lengths.
    """
    import numpy as np

    if task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if len(answers) != len(labels) or (scores is not None and len(scores) != len(answers)):
        raise InvalidInputError("answers, labels and scores need one value per row each")
    n = len(answers)
    rows = [i for i, label in enumerate(labels) if label is not None and label == label]
    coverage = len(rows) / n if n else None
    if not rows:
        return RealizedMetrics(task, n, 0, coverage)
    if task == "regression":
        from sklearn.metrics import mean_absolute_error, root_mean_squared_error

        truth = np.asarray([float(labels[i]) for i in rows])
        guess = np.asarray([float(answers[i]) for i in rows])
        return RealizedMetrics(
            task,
            n,
            len(rows),
            coverage,
            rmse=float(root_mean_squared_error(truth, guess)),
            mae=float(mean_absolute_error(truth, guess)),
        )
    accuracy = float(np.mean([same_answer(answers[i], labels[i]) for i in rows]))
    roc_auc = None
    if task == "binary" and scores is not None and classes is not None and len(classes) == 2:
        from sklearn.metrics import roc_auc_score

        positive = [same_answer(labels[i], classes[-1]) for i in rows]
        if 0 < sum(positive) < len(positive):
            roc_auc = float(roc_auc_score(positive, np.asarray(scores, dtype=float)[rows]))
    return RealizedMetrics(task, n, len(rows), coverage, accuracy=accuracy, roc_auc=roc_auc)


# -- estimated --------------------------------------------------------------------------------


def fit_calibration(
    scores: Sequence[float] | np.ndarray,
    positive: Sequence[bool] | np.ndarray,
    *,
    seed: int = 0,
) -> Calibration:
    """Calibration of a binary classifier's ``scores`` (probability of the positive class)
    from labelled reference rows (``positive``: whether each row's label is the positive
    class): isotonic regression when it beats the scores themselves out of fold (Brier
    score, :data:`CALIBRATION_FOLDS` seeded folds), else the scores as they are.

    Raises:
        InvalidInputError: fewer than :data:`MIN_REFERENCE_ROWS` rows, one class only, or
            scores outside [0, 1] or of another length than the labels.
    """
    import numpy as np
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import StratifiedKFold

    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise InvalidInputError("a calibration needs one score and one label per reference row")
    if len(s) < MIN_REFERENCE_ROWS:
        raise InvalidInputError(
            f"a calibration needs at least {MIN_REFERENCE_ROWS} labelled reference rows, got "
            f"{len(s)}; give a larger reference dataset"
        )
    if y.all() or not y.any():
        raise InvalidInputError("the reference holds one class only; it cannot calibrate")
    if not (np.isfinite(s).all() and s.min() >= 0 and s.max() <= 1):
        raise InvalidInputError("scores must be probabilities between 0 and 1")
    folds = min(CALIBRATION_FOLDS, int(y.sum()), int((~y).sum()))
    out_of_fold = np.empty_like(s)
    if folds >= 2:
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(s, y):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            out_of_fold[test] = iso.fit(s[train], y[train]).predict(s[test])
    else:
        out_of_fold[:] = s  # too few of a class to check: keep the model's probabilities
    brier_model = float(np.mean((s - y) ** 2))
    brier_isotonic = float(np.mean((out_of_fold - y) ** 2))
    if brier_isotonic >= brier_model:
        return Calibration("model", len(s), brier_model, brier_isotonic)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    return Calibration(
        "isotonic",
        len(s),
        brier_model,
        brier_isotonic,
        tuple(float(v) for v in iso.X_thresholds_),
        tuple(float(v) for v in iso.y_thresholds_),
    )


def estimate_binary(
    scores: Sequence[float] | np.ndarray,
    predicted_positive: Sequence[bool] | np.ndarray,
    calibration: Calibration,
) -> PerformanceEstimate:
    """CBPE for a binary classifier: expected accuracy and ROC AUC of unlabelled answers
    from the model's ``scores`` (probability of the positive class), whether it answered the
    positive class (``predicted_positive``: its own ``predict()``, whatever its threshold)
    and a :class:`Calibration`.

    Raises:
        InvalidInputError: no rows, or inputs of different lengths.
    """
    import numpy as np

    s = np.asarray(scores, dtype=float)
    answered = np.asarray(predicted_positive, dtype=bool)
    if s.shape != answered.shape or s.ndim != 1:
        raise InvalidInputError("an estimate needs one score and one answer per row")
    if len(s) == 0:
        raise InvalidInputError("an estimate needs at least one answer")
    p = calibration.apply(s)
    right = np.where(answered, p, 1.0 - p)
    std = float(np.sqrt(np.sum(right * (1.0 - right))) / len(s))
    return PerformanceEstimate(
        len(s), float(right.mean()), std, _expected_roc_auc(s, p), calibration.method
    )


def _expected_roc_auc(scores: np.ndarray, p: np.ndarray) -> float | None:
    """The area under the expected ROC curve: thresholds at each distinct score, expected
    true positives ``sum(p)`` and false positives ``sum(1 - p)`` above each."""
    import numpy as np

    positives, negatives = float(p.sum()), float((1.0 - p).sum())
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-scores, kind="stable")
    s, q = scores[order], p[order]
    tp, fp = np.cumsum(q), np.cumsum(1.0 - q)
    # One point per distinct score: rows with equal scores cross the threshold together.
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tpr = np.r_[0.0, tp[last] / positives]
    fpr = np.r_[0.0, fp[last] / negatives]
    return float(np.trapezoid(tpr, fpr))


# -- a deployment's window --------------------------------------------------------------------


def estimate_window(
    project: Project,
    deployment: str,
    since: float,
    until: float | None = None,
    *,
    reference: str | None = None,
    label: str | None = None,
) -> list[WindowPerformance]:
    """Realized and estimated performance of each version that answered for ``deployment``
    between ``since`` and ``until`` (epoch seconds; ``until`` None: now), by version.

    The estimate is made for binary classifiers with probabilities: their answers' inputs are
    scored again with the version, and the calibration is fitted on ``reference`` (a dataset
    ref with the ``label`` column; default: the dataset and label of the version's newest
    evaluation). Other versions get realized metrics only.

    Raises:
        NotFoundError: a binary classifier without an evaluation and no ``reference`` given
            (evaluate it with ``shipyard models evaluate``).
        InvalidInputError: the reference cannot calibrate (too small, one class, no label).
    """
    import numpy as np

    frame = project.predictions.list(deployment, since=since)
    if until is not None:
        frame = frame[frame["time_ms"] <= until * 1000]
    out = []
    for model, rows in frame.groupby("model", sort=True):
        ref = str(model)
        answers = list(rows["output"])
        labels = [None if v is None or v != v else v for v in rows["label"]]
        predictor = project.models.load(ref)
        classes = predictor.classes
        task: Task = (
            "regression" if classes is None else "binary" if len(classes) == 2 else "multiclass"
        )
        if task != "binary" or not hasattr(predictor.model, "predict_proba"):
            realized = realized_metrics(answers, labels, task=task, classes=_plain(classes))
            out.append(WindowPerformance(ref, realized, None, None, None))
            continue
        positive_class = _plain(classes)[-1]
        reference_ref, reference_label = _reference(project, ref, reference, label)
        ref_frame = project.datasets.get(reference_ref).to_pandas()
        if reference_label not in ref_frame.columns:
            raise InvalidInputError(
                f"the reference {reference_ref} has no column {reference_label!r}; name the "
                "label column"
            )
        ref_scores = predictor.predict_proba(ref_frame)[:, 1]
        ref_positive = [same_answer(v, positive_class) for v in ref_frame[reference_label]]
        calibration = fit_calibration(ref_scores, ref_positive)
        inputs = predictor.validate_records(list(rows["inputs"]))
        scores = predictor.predict_proba(inputs)[:, 1]
        answered = np.asarray([same_answer(a, positive_class) for a in answers])
        realized = realized_metrics(
            answers, labels, task="binary", classes=_plain(classes), scores=scores
        )
        estimate = estimate_binary(scores, answered, calibration)
        out.append(WindowPerformance(ref, realized, estimate, calibration, reference_ref))
    return out


def _reference(
    project: Project, ref: str, reference: str | None, label: str | None
) -> tuple[str, str]:
    """The reference dataset and label column for ``ref``'s calibration."""
    if reference is not None:
        if label is None:
            raise InvalidInputError(
                f"name the label column of the reference {reference} for the calibration"
            )
        return project.datasets.get(reference).ref, label
    evaluation = project.evaluations.latest(ref)
    if evaluation is None:
        raise NotFoundError(
            f"{ref} has no evaluation, whose dataset would calibrate its probabilities: "
            f"evaluate it on a held-out set with `shipyard models evaluate {ref} --data "
            "DATASET@N`, or name a labelled reference dataset"
        )
    return evaluation.dataset, label or evaluation.label


def _plain(classes: Any) -> list[Any]:
    from shipyard.registry.signatures import plain_value

    return [] if classes is None else [plain_value(c) for c in classes]
