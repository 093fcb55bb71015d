"""Evaluation reports: metrics as scikit-learn computes them, with bootstrap intervals,
per-group fairness as fairlearn computes it, permutation importance, and a JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from shipyard.data.preprocessing import PreprocessingSpec
from shipyard.errors import InvalidInputError
from shipyard.governance.evaluation import (
    EvaluationReport,
    _classification_statistic,
    _regression_statistic,
    evaluate,
)
from shipyard.registry.signatures import CheckedPredictor, infer_signature

INPUTS = ["age", "income", "city", "debt"]
SPEC = PreprocessingSpec.from_dict(
    {
        "columns": {
            "age": {"impute": "median", "scale": "standard"},
            "income": {"impute": "median", "scale": "standard"},
            "debt": {"scale": "standard"},
            "city": {"encode": {"method": "onehot"}},
        }
    }
)


def applicants(n: int, seed: int = 0) -> pd.DataFrame:
    """Applicants whose default depends on income and debt, not on age, city or gender."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=n),
            "income": rng.normal(3000, 800, size=n),
            "city": pd.Series(rng.choice(["Paris", "Lyon", "Nice"], size=n), dtype="str"),
            "debt": rng.normal(0, 1, size=n),
            "gender": pd.Series(rng.choice(["F", "M"], size=n), dtype="str"),
        }
    )
    score = 2 * (frame["income"] - 3000) / 800 + frame["debt"]
    frame["default"] = np.where(rng.random(n) < 1 / (1 + np.exp(-score)), "yes", "no")
    frame["grade"] = pd.cut(score + rng.normal(0, 0.5, n), [-np.inf, -1, 1, np.inf], labels=False)
    frame["amount"] = 100 * score + rng.normal(0, 20, n)
    return frame


def fit(label: str, estimator: Any, frame: pd.DataFrame) -> CheckedPredictor:
    model = Pipeline([("prep", SPEC.to_column_transformer()), ("model", estimator)])
    model.fit(frame[INPUTS], frame[label])
    return CheckedPredictor(model, infer_signature(model, frame[INPUTS].head()), name="m@1")


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return applicants(1500, seed=1)


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return applicants(1200, seed=2)


@pytest.fixture(scope="module")
def binary(train: pd.DataFrame) -> CheckedPredictor:
    return fit("default", LogisticRegression(), train)


@pytest.fixture(scope="module")
def binary_report(binary: CheckedPredictor, holdout: pd.DataFrame) -> EvaluationReport:
    return evaluate(binary, holdout, "default", sensitive=["gender", "city"], bootstrap=100)


# -- classification metrics -------------------------------------------------------------------


def test_binary_metrics_equal_scikit_learns(
    binary: CheckedPredictor, holdout: pd.DataFrame, binary_report: EvaluationReport
) -> None:
    """Binary metrics are scikit-learn's, for the last class ("yes") as the positive one."""
    y, pred = holdout["default"], binary.predict(holdout)
    proba = binary.predict_proba(holdout)[:, 1]
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, pos_label="yes"),
        "recall": skm.recall_score(y, pred, pos_label="yes"),
        "f1": skm.f1_score(y, pred, pos_label="yes"),
        "roc_auc": skm.roc_auc_score(y == "yes", proba),
        "log_loss": skm.log_loss(y == "yes", proba),
    }
    report = binary_report
    assert (report.task, report.rows, report.label) == ("binary", 1200, "default")
    assert {k: report.metric(k) for k in expected} == pytest.approx(expected, rel=1e-9)
    assert report.settings["positive_class"] == "yes"
    matrix = skm.confusion_matrix(y, pred, labels=["no", "yes"]).tolist()
    assert report.confusion_matrix == {"labels": ["no", "yes"], "matrix": matrix}


def test_intervals_bracket_the_value(binary_report: EvaluationReport) -> None:
    """Each metric comes with a 95% percentile interval that contains its value."""
    for name, entry in binary_report.metrics.items():
        assert entry["ci_low"] is not None and entry["ci_high"] is not None, name
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"], name
        assert entry["ci_high"] - entry["ci_low"] < 0.15, name


def test_same_seed_same_report_polars_or_pandas(
    binary: CheckedPredictor, holdout: pd.DataFrame
) -> None:
    """The report depends on the seed only: a polars frame gives the same report as pandas,
    and another seed moves the intervals but not the values."""
    a = evaluate(binary, holdout, "default", sensitive=["gender"], bootstrap=50, seed=3)
    b = evaluate(
        binary, pl.from_pandas(holdout), "default", sensitive=["gender"], bootstrap=50, seed=3
    )
    c = evaluate(binary, holdout, "default", sensitive=["gender"], bootstrap=50, seed=4)
    assert a == b
    assert a.metric("roc_auc") == c.metric("roc_auc")
    assert a.metrics["roc_auc"]["ci_low"] != c.metrics["roc_auc"]["ci_low"]


def test_multiclass_metrics_are_macro_averages(train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    """For three classes precision, recall and f1 are macro averages and roc_auc is
    one-vs-rest, as scikit-learn computes them; fairness measures are left out with a note."""
    model = fit("grade", LogisticRegression(max_iter=500), train)
    report = evaluate(model, holdout, "grade", sensitive=["gender"], bootstrap=30)
    y, pred, proba = holdout["grade"], model.predict(holdout), model.predict_proba(holdout)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro", zero_division=np.nan),
        "recall": skm.recall_score(y, pred, average="macro", zero_division=np.nan),
        "f1": skm.f1_score(y, pred, average="macro", zero_division=np.nan),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y, proba, labels=[0, 1, 2]),
    }
    assert report.task == "multiclass"
    assert {k: report.metric(k) for k in expected} == pytest.approx(expected, rel=1e-9)
    assert report.confusion_matrix is not None and report.confusion_matrix["labels"] == [0, 1, 2]
    fairness = report.groups["gender"]["fairness"]
    assert set(fairness.values()) == {None}
    assert any(
        "fairness measures need a binary classifier" in n and n.endswith("are not computed")
        for n in report.notes
    )
    assert not any("None" in n for n in report.notes)  # notes read as words, not Python
    assert set(report.groups["gender"]["metrics"]["F"]) == {
        "count",
        "accuracy",
        "precision",
        "recall",
    }
    assert report.importance[0]["feature"] in ("income", "debt")


def test_multiclass_roc_auc_is_none_when_a_class_is_missing(
    train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    """When a class never occurs in the label, multiclass roc_auc is None with a note."""
    model = fit("grade", LogisticRegression(max_iter=500), train)
    report = evaluate(model, holdout[holdout["grade"] != 2], "grade", bootstrap=20)
    assert report.metric("roc_auc") is None
    assert report.metric("accuracy") is not None
    assert any(n.startswith("roc_auc is undefined") for n in report.notes)


def test_a_label_with_one_class_gives_notes_not_errors(
    binary: CheckedPredictor, holdout: pd.DataFrame
) -> None:
    """On rows of one class only, roc_auc is None with a note, and so is importance, which is
    measured in roc_auc for a binary model."""
    report = evaluate(binary, holdout[holdout["default"] == "no"], "default", bootstrap=20)
    assert report.metric("roc_auc") is None
    assert report.metrics["roc_auc"] == {"value": None, "ci_low": None, "ci_high": None}
    assert report.metric("recall") is None  # no positive row
    assert report.metric("accuracy") is not None
    assert report.importance == []
    assert any("roc_auc is undefined" in n and "single class" in n for n in report.notes)
    assert any(n.startswith("importance is not computed") for n in report.notes)


def test_a_model_without_probabilities(train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    """A classifier without predict_proba gets accuracy and friends; roc_auc and log_loss
    are None and the note says why, in words."""
    model = fit("default", LinearSVC(), train)
    report = evaluate(model, holdout, "default", bootstrap=10)
    assert report.metric("roc_auc") is None and report.metric("log_loss") is None
    assert report.metric("f1") is not None
    assert (
        "the model gives no class probabilities, so roc_auc and log_loss are not computed"
        in report.notes
    )
    assert not any("None" in n for n in report.notes)
    assert not any(n.startswith("roc_auc is undefined") for n in report.notes)


def test_resamples_where_a_metric_is_undefined_are_left_out(
    binary: CheckedPredictor, holdout: pd.DataFrame
) -> None:
    """With two positive rows among forty, many resamples have no positive row; roc_auc's
    interval comes from the others, and a note says how many were left out."""
    frame = pd.concat(
        [holdout[holdout["default"] == "no"].head(38), holdout[holdout["default"] == "yes"].head(2)]
    )
    report = evaluate(binary, frame, "default", bootstrap=200)
    entry = report.metrics["roc_auc"]
    assert entry["value"] is not None and entry["ci_low"] is not None
    skipped = [n for n in report.notes if n.startswith("roc_auc: ")]
    assert len(skipped) == 1 and "of 200 bootstrap resamples left out" in skipped[0]


# -- regression -------------------------------------------------------------------------------


def test_regression_metrics_equal_scikit_learns(train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    """A regressor gets mae, rmse and r2, per-group mae and rmse, and importance in r2."""
    model = fit("amount", LinearRegression(), train)
    report = evaluate(model, holdout, "amount", sensitive=["gender"], bootstrap=50)
    y, pred = holdout["amount"], model.predict(holdout)
    expected = {
        "mae": skm.mean_absolute_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }
    assert report.task == "regression" and report.confusion_matrix is None
    assert {k: report.metric(k) for k in expected} == pytest.approx(expected, rel=1e-9)
    female = holdout["gender"] == "F"
    group = report.groups["gender"]["metrics"]["F"]
    assert group["count"] == int(female.sum())
    assert group["mae"] == pytest.approx(skm.mean_absolute_error(y[female], pred[female]))
    assert report.settings["importance_metric"] == "r2"
    assert report.importance[0]["feature"] == "income"


def test_a_constant_regression_label_leaves_r2_undefined(train: pd.DataFrame) -> None:
    """r2 of a constant label is None with a note; mae and rmse are still reported."""
    model = fit("amount", LinearRegression(), train)
    frame = train.head(50).assign(amount=5.0)
    report = evaluate(model, frame, "amount", bootstrap=10)
    assert report.metric("r2") is None and report.metric("mae") is not None
    assert any("the label is constant" in n for n in report.notes)


# -- groups and fairness ----------------------------------------------------------------------


def test_fairness_equals_fairlearns(
    binary: CheckedPredictor, holdout: pd.DataFrame, binary_report: EvaluationReport
) -> None:
    """Demographic parity and equalized odds differences are fairlearn's; the selection-rate
    ratio is the lowest group rate over the highest, flagged against the four-fifths rule."""
    y = (holdout["default"] == "yes").to_numpy()
    pred = binary.predict(holdout) == "yes"
    for column in ("gender", "city"):
        section = binary_report.groups[column]
        fairness = section["fairness"]
        groups = holdout[column]
        assert fairness["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y, pred, sensitive_features=groups)
        )
        assert fairness["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y, pred, sensitive_features=groups)
        )
        rates = {g: pred[groups == g].mean() for g in groups.unique()}
        ratio = min(rates.values()) / max(rates.values())
        assert fairness["selection_rate_ratio"] == pytest.approx(ratio)
        assert fairness["four_fifths"] is bool(ratio >= 0.8)
        assert {g: m["count"] for g, m in section["metrics"].items()} == (
            groups.value_counts().to_dict()
        )
        assert {g: m["selection_rate"] for g, m in section["metrics"].items()} == pytest.approx(
            rates
        )


def test_unequal_selection_fails_the_four_fifths_rule(
    binary: CheckedPredictor, holdout: pd.DataFrame
) -> None:
    """A sensitive column that tracks income (which drives the prediction) shows unequal
    selection rates, a ratio below 0.8 and four_fifths false."""
    frame = holdout.assign(band=np.where(holdout["income"] > 3000, "high", "low"))
    report = evaluate(binary, frame, "default", sensitive=["band"], bootstrap=0)
    fairness = report.groups["band"]["fairness"]
    assert fairness["selection_rate_ratio"] < 0.8 and fairness["four_fifths"] is False
    assert fairness["demographic_parity_difference"] > 0.3


def test_tiny_and_missing_groups_are_reported(
    binary: CheckedPredictor, holdout: pd.DataFrame
) -> None:
    """A group of two rows and rows with no value are reported with their count and a note;
    nothing crashes when a group has no positive row."""
    frame = holdout.head(300).copy()
    region = pd.Series(["north"] * 300, dtype="object")
    region.iloc[0] = "island"
    region.iloc[1] = "island"
    region.iloc[2] = None
    frame["region"] = region
    frame.loc[[0, 1], "default"] = "no"
    report = evaluate(binary, frame, "default", sensitive=["region"], bootstrap=10)
    groups = report.groups["region"]["metrics"]
    assert {g: m["count"] for g, m in groups.items()} == {
        "(missing)": 1,
        "island": 2,
        "north": 297,
    }
    assert groups["island"]["recall"] is None
    assert any("'island' has 2 rows" in n for n in report.notes)
    assert report.groups["region"]["fairness"]["equalized_odds_difference"] is not None


# -- importance -------------------------------------------------------------------------------


def test_importance_ranks_the_informative_columns_first(
    binary_report: EvaluationReport,
) -> None:
    """Shuffling income or debt costs roc_auc; shuffling age or city costs about nothing.
    The list is sorted by mean drop and the sensitive column is not a model input."""
    features = [item["feature"] for item in binary_report.importance]
    assert features[:2] == ["income", "debt"]
    assert sorted(features) == sorted(INPUTS)
    means = [item["mean"] for item in binary_report.importance]
    assert means == sorted(means, reverse=True)
    noise = {i["feature"]: i for i in binary_report.importance}["age"]
    assert abs(noise["mean"]) < 0.02 and noise["std"] >= 0
    assert binary_report.settings["importance_metric"] == "roc_auc"


def test_importance_uses_a_capped_sample(binary: CheckedPredictor, holdout: pd.DataFrame) -> None:
    """At most max_importance_rows rows are shuffled; repeats=0 turns importance off."""
    report = evaluate(binary, holdout, "default", bootstrap=0, max_importance_rows=200)
    assert report.settings["importance_rows"] == 200 and len(report.importance) == 4
    off = evaluate(binary, holdout, "default", bootstrap=0, importance_repeats=0)
    assert off.importance == [] and off.metrics["roc_auc"]["ci_low"] is None


def test_a_model_without_signature_gets_its_fitted_columns(
    train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    """Without a signature the model is given the columns it was fitted on."""
    model = Pipeline([("prep", SPEC.to_column_transformer()), ("model", LogisticRegression())])
    model.fit(train[INPUTS], train["default"])
    report = evaluate(CheckedPredictor(model, None), holdout, "default", bootstrap=0)
    assert sorted(i["feature"] for i in report.importance) == sorted(INPUTS)


# -- the document -----------------------------------------------------------------------------


def test_report_round_trips_through_json(binary_report: EvaluationReport) -> None:
    """to_dict is plain JSON (str keys, floats) and from_dict reads it back equal."""
    text = json.dumps(binary_report.to_dict(), allow_nan=False)
    assert EvaluationReport.from_dict(json.loads(text)) == binary_report
    doc = binary_report.to_dict()
    assert list(doc) == [
        "task",
        "rows",
        "label",
        "metrics",
        "confusion_matrix",
        "groups",
        "importance",
        "notes",
        "settings",
        "curves",
    ]
    assert set(doc["groups"]["gender"]["fairness"]) == {
        "demographic_parity_difference",
        "equalized_odds_difference",
        "selection_rate_ratio",
        "four_fifths",
    }


def test_from_dict_lists_every_problem() -> None:
    """A broken document is refused with each problem named."""
    with pytest.raises(InvalidInputError) as caught:
        EvaluationReport.from_dict({"task": "ranking", "rows": 0, "metrics": {"f1": 3}})
    problems = caught.value.details["problems"]
    assert len(problems) == 4
    assert problems[0].startswith("task: expected one of binary, multiclass, regression")


# -- errors -----------------------------------------------------------------------------------


def test_missing_columns_are_named(binary: CheckedPredictor, holdout: pd.DataFrame) -> None:
    """A missing label, sensitive or input column is named, with a hint for a typo."""
    with pytest.raises(InvalidInputError) as caught:
        evaluate(binary, holdout.drop(columns="debt"), "defualt", sensitive=["sex"])
    message = str(caught.value)
    assert "label column 'defualt' is not in the frame; did you mean 'default'?" in message
    assert "sensitive column 'sex'" in message
    assert "input column 'debt'" in message
    assert caught.value.details["problems"] and len(caught.value.details["problems"]) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.head(0), "has no rows"),
        (lambda f: f.assign(default=f["default"].where(f.index > 2)), "3 missing values"),
        (lambda f: f.assign(default="maybe"), "values the model does not know: 'maybe'"),
    ],
)
def test_bad_frames_are_refused(
    binary: CheckedPredictor, holdout: pd.DataFrame, change: Any, message: str
) -> None:
    """An empty frame, missing labels or labels the model does not know are refused."""
    with pytest.raises(InvalidInputError, match=message):
        evaluate(binary, change(holdout), "default")


def test_bad_settings_are_refused(binary: CheckedPredictor, holdout: pd.DataFrame) -> None:
    """Negative counts are refused, all at once."""
    with pytest.raises(InvalidInputError, match="2 problems"):
        evaluate(binary, holdout, "default", bootstrap=-1, max_importance_rows=0)
    with pytest.raises(InvalidInputError, match="pandas or polars DataFrame"):
        evaluate(binary, holdout.to_dict(), "default")


# -- the vectorised bootstrap -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 1), st.sampled_from([0.1, 0.3, 0.5, 0.9])),
        min_size=2,
        max_size=40,
    ),
    st.data(),
)
def test_weighted_statistics_equal_metrics_on_the_resample(
    rows: list[tuple[int, int, float]], data: st.DataObject
) -> None:
    """The bootstrap computes each resample's metrics from row counts; they equal
    scikit-learn's metrics on the resampled rows (scores with ties included)."""
    y = np.array([r[0] for r in rows])
    pred = np.array([r[1] for r in rows])
    p1 = np.array([r[2] for r in rows])
    proba = np.column_stack([1 - p1, p1])
    n = len(rows)
    picks = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n)))
    weights = np.bincount(picks, minlength=n).astype(float)[None, :]
    got = {k: v[0] for k, v in _classification_statistic(y, pred, proba, 2)(weights).items()}
    yt, yp, pp = y[picks], pred[picks], p1[picks]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(yt, yp))
    assert got["log_loss"] == pytest.approx(skm.log_loss(yt, pp, labels=[0, 1]))
    if yp.any():
        assert got["precision"] == pytest.approx(skm.precision_score(yt, yp))
    else:
        assert np.isnan(got["precision"])
    if len(set(yt)) == 2:
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(yt, pp))
    else:
        assert np.isnan(got["roc_auc"])
    values = p1 * 10 + y
    got_r = _regression_statistic(y.astype(float), values)(weights)
    assert got_r["mae"][0] == pytest.approx(skm.mean_absolute_error(yt, values[picks]))
    if len(set(yt)) == 2:
        assert got_r["r2"][0] == pytest.approx(skm.r2_score(yt, values[picks]))


# -- curves for charts ------------------------------------------------------------------------


def test_binary_curves_are_scikit_learns_and_stay_small(
    binary: CheckedPredictor, holdout: pd.DataFrame, binary_report: EvaluationReport
) -> None:
    """The stored ROC curve runs from (0, 0) to (1, 1) with the report's roc_auc as its area;
    precision-recall carries scikit-learn's average precision; calibration bins hold every
    row; no curve has more than 200 points."""
    import numpy as np

    from shipyard.governance.evaluation_curves import MAX_POINTS

    curves = binary_report.curves
    [roc], [pr], [cal] = curves["roc"], curves["pr"], curves["calibration"]
    assert roc["label"] == pr["label"] == cal["label"] == "yes"
    assert roc["auc"] == pytest.approx(binary_report.metric("roc_auc"), rel=1e-9)
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert all(np.diff(roc["fpr"]) >= 0) and all(np.diff(roc["tpr"]) >= 0)
    proba = binary.predict_proba(holdout)[:, 1]
    truth = holdout["default"] == "yes"
    assert pr["average_precision"] == pytest.approx(skm.average_precision_score(truth, proba))
    assert sum(cal["count"]) == binary_report.rows
    assert len(cal["predicted"]) == len(cal["observed"]) == len(cal["count"])
    for series in (roc["fpr"], pr["recall"]):
        assert 2 <= len(series) <= MAX_POINTS
    assert EvaluationReport.from_dict(binary_report.to_dict()) == binary_report


def test_multiclass_curves_are_one_per_class_and_regression_has_residuals(
    train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    """A multiclass report has a one-vs-rest ROC curve per class; a regressor's report holds
    label minus prediction for a sample of rows, and a report stored before curves existed
    reads back with none."""
    model = fit("grade", LogisticRegression(max_iter=500), train)
    report = evaluate(model, holdout, "grade", bootstrap=0, importance_repeats=0)
    assert [c["label"] for c in report.curves["roc"]] == [str(c) for c in model.classes]
    reg = fit("amount", LinearRegression(), train)
    r = evaluate(reg, holdout, "amount", bootstrap=0, importance_repeats=0).curves["residuals"]
    assert r["rows"] == len(holdout) and len(r["predicted"]) == 200
    pred, y = reg.predict(holdout), holdout["amount"].to_numpy()
    for p, res in zip(r["predicted"], r["residual"], strict=True):
        row = int(np.argmin(np.abs(pred - p)))
        assert res == pytest.approx(y[row] - pred[row], abs=1e-4)
    old = {k: v for k, v in report.to_dict().items() if k != "curves"}
    assert EvaluationReport.from_dict(old).curves == {}
