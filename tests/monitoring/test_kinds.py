"""What each kind of monitor measures on a small deployment log of the credit project
(``credit-risk@1``, trained on credit.train@1, whose contract ``applicants`` is bound to
credit): quality (rows the version's checks refuse, null shares, new categories) and
performance (realized accuracy and label coverage from feedback); and the measures as plain
functions (RMSE, ROC AUC against scikit-learn). The log is written with the server's own
:class:`PredictionLog`, at chosen times.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import mean_squared_error, roc_auc_score

from shipyard.monitoring.measures import measure_performance
from shipyard.project import Project
from shipyard.serving.prediction_log import PredictionLog, PredictionRecord
from tests.governance.test_governance_service import LABEL, MODEL, V1, clone_credit_project
from tests.monitoring.conftest import T0, WINDOW, at

QUALITY, PERFORMANCE = "credit-quality", "credit-accuracy"


def rid(i: int) -> str:
    return f"{i:032x}"


def ms_in_window(k: int, i: int) -> int:
    """Milliseconds since the epoch of row ``i`` in window ``k`` (a second apart)."""
    return int((T0 + timedelta(seconds=(k - 1) * WINDOW + i)).timestamp() * 1000)


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, list[Any]]]:
    """The credit project with, in window 2 of deployment credit-risk, 80 answers by @1 to
    rows of its training data: rows 0-9 with an age of -5, rows 10-14 with housing "boat",
    rows 15-34 with no income; 40 of the answers (rows 40-79) labelled, 30 of them right.
    Window 3 holds 40 answers, 10 labelled. Yields the project and the answers of window 2."""
    root = tmp_path_factory.mktemp("kinds") / "proj"
    project = clone_credit_project(tmp_path_factory, root, evaluated=False)
    project.contracts.bind("credit", "applicants", new=True)
    rows = project.datasets.get("credit.train@1").to_pandas().drop(columns=[LABEL]).head(120)
    inputs = [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
        for row in rows.to_dict("records")
    ]
    for i in range(10):
        inputs[i]["age"] = -5
    for i in range(10, 15):
        inputs[i]["housing"] = "boat"
    for i in range(15, 35):
        inputs[i]["income"] = None
    answers = [i % 2 for i in range(120)]
    records = [
        PredictionRecord(rid(i), ms_in_window(2 if i < 80 else 3, i), V1, False, x, a, 1.0)
        for i, (x, a) in enumerate(zip(inputs, answers, strict=True))
    ]
    log = PredictionLog(project, MODEL, flush_seconds=0.05)
    log.put(records)
    log.close()
    assert (log.written, log.dropped) == (120, 0)
    labels = [(rid(i), answers[i] if i < 70 else 1 - answers[i]) for i in range(40, 80)]
    labels += [(rid(i), answers[i]) for i in range(80, 90)]
    project.predictions.record_feedback(MODEL, labels)
    project.monitors.add(
        QUALITY, deployment=MODEL, kind="quality", window_seconds=WINDOW, every_seconds=WINDOW
    )
    project.monitors.add(
        PERFORMANCE,
        deployment=MODEL,
        kind="performance",
        window_seconds=WINDOW,
        every_seconds=WINDOW,
        thresholds=["accuracy>=0.8"],
    )
    yield project, inputs[:80]
    project.close()


def test_quality_counts_refused_rows_null_shares_and_new_categories(
    credit: tuple[Project, list[Any]],
) -> None:
    """Refused rows are counted per column and check, most first: 20 without income (the
    contract wants a number), 10 aged -5 (at least 18), 5 housed in a "boat" (not an allowed
    value), which is also a new category (5 of 80 rows); income's null share rose from 0 to a
    quarter. The refused share is above the default 5 %: the window breaches and, with K = 1,
    opens an alert."""
    project, _ = credit
    outcome = project.monitors.run(QUALITY, now=at(2))
    result = outcome.result
    assert (result.status, result.rows) == ("breach", 80)
    values = result.values
    assert values["model"] == V1
    assert [(r["column"], r["rows"]) for r in values["refused"]] == [
        ("income", 20),
        ("age", 10),
        ("housing", 5),
    ]
    age = values["refused"][1]
    assert "greater than or equal to 18" in age["check"]
    assert age["share"] == pytest.approx(10 / 80)
    assert values["refused_share"] == pytest.approx(35 / 80)
    [new] = values["new_categories"]
    assert (new["column"], new["values"], new["rows"]) == ("housing", ["boat"], 5)
    assert values["new_category_share"] == pytest.approx(5 / 80)
    income = next(n for n in values["null_shares"] if n["column"] == "income")
    assert (income["reference"], income["current"]) == (0.0, pytest.approx(0.25))
    assert values["null_share_increase"] == pytest.approx(0.25)
    assert "refused_share <= 0.05" in result.breached
    assert outcome.fired and outcome.alert is not None
    assert "refused_share" in outcome.alert.summary
    assert result.message.startswith("35 of 80 rows refused; new categories in housing (boat)")


def test_quality_of_a_window_with_few_rows_is_insufficient_data(
    credit: tuple[Project, list[Any]],
) -> None:
    """Window 4 has no answers: the result is insufficient data, never a breach."""
    project, _ = credit
    result = project.monitors.run(QUALITY, now=at(4)).result
    assert (result.status, result.breached) == ("insufficient data", ())
    assert "the check needs 50" in result.message


def test_performance_is_realized_accuracy_with_label_coverage(
    credit: tuple[Project, list[Any]],
) -> None:
    """Window 2: 30 of 40 labelled answers right (accuracy 0.75, below 0.8: a breach), 40 of
    80 answers labelled; window 3: 10 labels, fewer than 30, so insufficient data."""
    project, _ = credit
    second = project.monitors.run(PERFORMANCE, now=at(2)).result
    assert second.status == "breach"
    assert second.values["accuracy"] == pytest.approx(0.75)
    assert second.values["label_coverage"] == pytest.approx(0.5)
    assert second.values["labelled"] == 40
    assert second.breached == ("accuracy >= 0.8",)
    assert "has no evaluation" in second.values["estimate_note"]  # so no CBPE estimate
    third = project.monitors.run(PERFORMANCE, now=at(3)).result
    assert third.status == "insufficient data"
    assert third.values["label_coverage"] == pytest.approx(0.25)
    assert "accuracy" not in third.values


def test_regression_and_probability_answers_are_scored_as_scikit_learn_does() -> None:
    """Numeric answers that are not whole numbers give RMSE and MAE; answers with the
    probabilities of two classes give ROC AUC; both equal scikit-learn's."""
    rng = np.random.default_rng(3)
    truth = rng.normal(10, 2, 50)
    guess = truth + rng.normal(0, 1, 50)
    m = measure_performance(list(guess), list(truth), min_labels=10)
    assert m.values["rmse"] == pytest.approx(math.sqrt(mean_squared_error(truth, guess)))
    assert m.values["mae"] == pytest.approx(float(np.mean(np.abs(guess - truth))))
    y = list(rng.integers(0, 2, 60))
    p = [float(v) for v in np.clip(np.array(y) * 0.3 + rng.uniform(0, 0.7, 60), 0, 1)]
    outputs = [{"prediction": int(q > 0.5), "probabilities": {"0": 1 - q, "1": q}} for q in p]
    m = measure_performance(outputs, y, min_labels=10)
    assert m.values["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    right = [int(q > 0.5) == t for q, t in zip(p, y, strict=True)]
    assert m.values["accuracy"] == pytest.approx(np.mean(right))
