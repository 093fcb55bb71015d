"""The curves an evaluation report stores for the UI's charts: ROC, precision-recall and
calibration for a binary classifier, residuals for a regressor, each small whatever the
holdout's size, and kept through the report's JSON round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.governance.evaluation import EvaluationReport, evaluate
from shipyard.governance.evaluation_curves import CALIBRATION_BINS, MAX_POINTS, curves
from tests.governance.test_evaluation import applicants, fit


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return applicants(800, seed=1), applicants(3000, seed=2)


def test_a_binary_classifier_stores_roc_pr_and_calibration_curves(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """The ROC curve runs from (0, 0) to (1, 1) with the report's AUC under it; the curves
    keep at most MAX_POINTS points; calibration has one point per non-empty bin."""
    train, holdout = frames
    report = evaluate(
        fit("default", LogisticRegression(), train),
        holdout,
        "default",
        bootstrap=0,
        importance_repeats=0,
    )
    roc = report.curves["roc"]
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(roc["fpr"]) >= 0) and len(roc["fpr"]) <= MAX_POINTS
    assert skm.auc(roc["fpr"], roc["tpr"]) == pytest.approx(report.metric("roc_auc"), abs=0.01)
    pr = report.curves["precision_recall"]
    assert len(pr["recall"]) == len(pr["precision"]) <= MAX_POINTS
    assert min(pr["recall"]) == 0 and max(pr["recall"]) == 1
    cal = report.curves["calibration"]
    assert 2 <= len(cal["predicted"]) <= CALIBRATION_BINS
    assert all(0 <= p <= 1 for p in cal["predicted"] + cal["observed"])
    again = EvaluationReport.from_dict(report.to_dict())
    assert again.curves == report.curves


def test_a_regressor_stores_a_sample_of_its_residuals(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Residuals are true minus predicted, for an evenly spaced sample of the rows."""
    train, holdout = frames
    model = fit("amount", LinearRegression(), train)
    report = evaluate(model, holdout, "amount", bootstrap=0, importance_repeats=0)
    res = report.curves["residuals"]
    assert len(res["predicted"]) == len(res["residual"]) == 2 * MAX_POINTS
    pred = model.predict(holdout)
    assert res["predicted"][0] == pytest.approx(pred[0])
    assert res["residual"][-1] == pytest.approx(holdout["amount"].iloc[-1] - pred[-1])
    assert "roc" not in report.curves


def test_no_curves_without_probabilities_or_for_several_classes() -> None:
    """A multiclass model, or a binary one without probabilities, stores none."""
    y = np.array([0, 1, 2, 1])
    assert curves("multiclass", y, y, np.eye(3)[y]) == {}
    assert curves("binary", np.array([0, 1]), np.array([0, 1]), None) == {}
    assert curves("binary", np.array([1, 1]), np.array([1, 1]), np.array([[0.2, 0.8]] * 2)) == {}
