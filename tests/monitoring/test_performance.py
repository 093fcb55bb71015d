"""Live performance: realized metrics of a window against scikit-learn, and the estimate of a
binary classifier's accuracy and ROC AUC without labels (CBPE) against the realized figures
on seeded synthetic data, with and without a calibration; then both for a deployment's
logged answers, re-scored with the version that answered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, roc_auc_score

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.monitoring.performance import (
    Calibration,
    estimate_binary,
    estimate_window,
    fit_calibration,
    realized_metrics,
)
from shipyard.project import Project
from shipyard.serving.prediction_log import PredictionLog, PredictionRecord
from tests.governance.test_governance_service import LABEL, MODEL, V1, clone_credit_project

N = 20_000
# Estimate and realized figure on 20,000 rows: the sampling error of accuracy is about 0.003.
TOLERANCE = 0.015


def synthetic(
    seed: int, n: int = N, *, a: float = 2.0, b: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities of the positive class drawn from Beta(a, b), and labels drawn
    from them: a perfectly calibrated model's scores and what happened."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n)
    return p, rng.random(n) < p


def realized(scores: np.ndarray, truth: np.ndarray, answered: np.ndarray) -> tuple[float, float]:
    return float(np.mean(answered == truth)), float(roc_auc_score(truth, scores))


# -- realized ---------------------------------------------------------------------------------


def test_realized_metrics_are_scikit_learns_over_the_labelled_answers() -> None:
    """Accuracy and ROC AUC (binary) and RMSE and MAE (regression) are scikit-learn's on the
    rows with a label; coverage is the labelled share; a window without labels has none."""
    rng = np.random.default_rng(1)
    scores = rng.random(300)
    answers = [int(s >= 0.5) for s in scores]
    truth = [int(v) for v in rng.random(300) < scores]
    labels: list[int | None] = [t if i % 3 else None for i, t in enumerate(truth)]
    kept = [i for i in range(300) if i % 3]
    m = realized_metrics(answers, labels, task="binary", classes=[0, 1], scores=scores)
    assert (m.predictions, m.labelled, m.coverage) == (300, 200, pytest.approx(200 / 300))
    assert m.accuracy == pytest.approx(
        accuracy_score([truth[i] for i in kept], [answers[i] for i in kept])
    )
    assert m.roc_auc == pytest.approx(roc_auc_score([truth[i] for i in kept], scores[kept]))
    assert (m.rmse, m.mae) == (None, None)
    y, guess = rng.normal(size=50), rng.normal(size=50)
    r = realized_metrics(list(guess), list(y), task="regression")
    assert r.rmse == pytest.approx(np.sqrt(mean_squared_error(y, guess)))
    assert r.mae == pytest.approx(mean_absolute_error(y, guess))
    assert r.coverage == 1.0 and r.accuracy is None
    none = realized_metrics([0, 1], [None, None], task="binary")
    assert (none.labelled, none.coverage, none.accuracy) == (0, 0.0, None)
    with pytest.raises(InvalidInputError, match="one value per row"):
        realized_metrics([0, 1], [0], task="binary")


# -- estimated --------------------------------------------------------------------------------


def test_cbpe_matches_realized_accuracy_and_auc_of_a_calibrated_model() -> None:
    """For a calibrated model the calibration keeps its probabilities, and the estimate made
    without labels is within 0.015 of the realized accuracy and ROC AUC, on the reference's
    distribution and on a shifted one where both drop."""
    ref_scores, ref_truth = synthetic(0, 5000)
    calibration = fit_calibration(ref_scores, ref_truth)
    assert calibration.method == "model"
    for seed, shape in ((1, (2.0, 2.0)), (2, (6.0, 6.0))):
        scores, truth = synthetic(seed, a=shape[0], b=shape[1])
        answered = scores >= 0.5
        estimate = estimate_binary(scores, answered, calibration)
        accuracy, auc = realized(scores, truth, answered)
        assert estimate.rows == N
        assert estimate.accuracy == pytest.approx(accuracy, abs=TOLERANCE)
        assert estimate.roc_auc == pytest.approx(auc, abs=TOLERANCE)
        assert abs(estimate.accuracy - accuracy) < 4 * estimate.accuracy_std
    shifted = estimate_binary(*(lambda s: (s, s >= 0.5))(synthetic(2, a=6, b=6)[0]), calibration)
    assert (
        shifted.accuracy
        < estimate_binary(synthetic(1)[0], synthetic(1)[0] >= 0.5, calibration).accuracy - 0.05
    )


def test_cbpe_calibrates_an_overconfident_model_on_the_reference() -> None:
    """A model whose scores are distorted (true p squashed towards 0 and 1) gets an isotonic
    calibration from the labelled reference; with it the estimate matches the realized
    accuracy and ROC AUC, while taking its scores as probabilities would miss by far."""

    def distort(p: np.ndarray) -> np.ndarray:
        return p**3 / (p**3 + (1 - p) ** 3)

    ref_p, ref_truth = synthetic(3, 5000)
    calibration = fit_calibration(distort(ref_p), ref_truth)
    assert calibration.method == "isotonic"
    assert calibration.brier_isotonic < calibration.brier_model
    p, truth = synthetic(4)
    scores = distort(p)
    answered = scores >= 0.5
    estimate = estimate_binary(scores, answered, calibration)
    accuracy, auc = realized(scores, truth, answered)
    assert estimate.calibration == "isotonic"
    assert estimate.accuracy == pytest.approx(accuracy, abs=TOLERANCE)
    assert estimate.roc_auc == pytest.approx(auc, abs=TOLERANCE)
    naive = Calibration("model", 0, 0.0, 0.0)
    assert abs(estimate_binary(scores, answered, naive).accuracy - accuracy) > 0.05
    # Stored as JSON and read back, the calibration gives the same probabilities.
    again = Calibration(**json.loads(json.dumps(calibration.to_dict())))
    assert np.array_equal(again.apply(scores), calibration.apply(scores))


def test_a_reference_that_cannot_calibrate_is_refused() -> None:
    """Fewer than 100 labelled rows, one class only, or scores that are not probabilities
    are refused with the reason."""
    with pytest.raises(InvalidInputError, match="at least 100 labelled reference rows, got 50"):
        fit_calibration(np.full(50, 0.5), np.arange(50) % 2 == 0)
    with pytest.raises(InvalidInputError, match="one class only"):
        fit_calibration(np.full(200, 0.5), np.zeros(200, dtype=bool))
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        fit_calibration(np.linspace(-1, 1, 200), np.arange(200) % 2 == 0)


# -- a deployment's window --------------------------------------------------------------------


@pytest.fixture
def credit(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The evaluated credit project (credit-risk@1 evaluated on credit.test@1)."""
    project = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=True)
    yield project
    project.close()


def test_estimate_window_rescores_the_logged_answers_of_each_version(credit: Project) -> None:
    """credit-risk@1's answers to the 420 training applicants are logged, with labels for
    every other one: the window's realized accuracy and coverage are those of the labelled
    half, and the estimate, calibrated on its evaluation dataset, is close to the accuracy
    on all 420."""
    frame = credit.datasets.get("credit.train@1").to_pandas()
    predictor = credit.models.load(V1)
    answers = [a["prediction"] for a in predictor.answer(frame)]
    inputs = json.loads(frame.drop(columns=[LABEL]).to_json(orient="records", date_format="iso"))
    now = int(time.time() * 1000)
    rids = [f"{i:032x}" for i in range(len(frame))]
    log = PredictionLog(credit, MODEL, flush_seconds=0.05)
    log.put(
        PredictionRecord(rid, now, V1, False, row, answer, 1.0)
        for rid, row, answer in zip(rids, inputs, answers, strict=True)
    )
    log.close()
    truth = [int(v) for v in frame[LABEL]]
    credit.predictions.record_feedback(MODEL, list(zip(rids, truth, strict=True))[::2])
    [window] = estimate_window(credit, MODEL, since=now / 1000 - 60)
    assert window.model == V1 and window.reference == "credit.test@1"
    half = slice(None, None, 2)
    assert window.realized.coverage == pytest.approx(0.5, abs=0.01)
    assert window.realized.accuracy == pytest.approx(accuracy_score(truth[half], answers[half]))
    assert window.realized.roc_auc is not None
    assert window.estimate is not None and window.calibration is not None
    assert window.estimate.rows == len(frame)
    everyone = accuracy_score(truth, answers)
    assert abs(window.estimate.accuracy - everyone) < 4 * window.estimate.accuracy_std + 0.02
    assert estimate_window(credit, MODEL, since=now / 1000 - 60, until=now / 1000 - 30) == []


def test_estimate_window_needs_a_reference_for_an_unevaluated_version(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A binary classifier without an evaluation, and no reference named, is not found with
    the command that evaluates it."""
    project = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=False)
    try:
        frame = project.datasets.get("credit.test@1").to_pandas().head(3)
        inputs = json.loads(
            frame.drop(columns=[LABEL]).to_json(orient="records", date_format="iso")
        )
        log = PredictionLog(project, MODEL, flush_seconds=0.05)
        now = int(time.time() * 1000)
        log.put(
            PredictionRecord(f"{i:032x}", now, V1, False, r, 0, 1.0) for i, r in enumerate(inputs)
        )
        log.close()
        with pytest.raises(NotFoundError, match=r"has no evaluation.*shipyard models evaluate"):
            estimate_window(project, MODEL, since=now / 1000 - 60)
    finally:
        project.close()
