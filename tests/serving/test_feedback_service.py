"""Feedback and KPIs through the Python API (``project.predictions``), on every backend: a
label only for a logged answer, once per request id, and one the answering version could
have given; KPI names from a bounded or declared set, values finite and bounded.

Answers are logged with the server's own :class:`PredictionLog` for versions registered in
the project (a classifier with classes 0 and 1, a regressor), so no server needs to run.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sqlalchemy import select

import shipyard
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.project import Project
from shipyard.serving.feedback import FeedbackItem
from shipyard.serving.prediction_log import PredictionLog, PredictionRecord
from shipyard.serving.predictions import MAX_KPI_NAMES
from shipyard.stores.db.tables import feedback

DEPLOYMENT = "scoring"


def rid(i: int) -> str:
    return f"{i:032x}"


def log_answers(project: Project, model: str, outputs: list[Any], *, first: int = 0) -> None:
    """Log one answer by ``model`` per output, with request ids ``rid(first)``, ..."""
    now = int(time.time() * 1000)
    log = PredictionLog(project, DEPLOYMENT, flush_seconds=0.05)
    log.put(
        PredictionRecord(rid(first + i), now, model, False, {"x": i}, out, 1.0)
        for i, out in enumerate(outputs)
    )
    log.close()
    assert (log.written, log.dropped) == (len(outputs), 0)


@pytest.fixture
def classifier(project: Project) -> str:
    """``clf@1``: a logistic regression with classes 0 and 1 and a signature, registered in
    the project; its answers 0, 1, 0, 1 are logged as rid(0) .. rid(3)."""
    x = pd.DataFrame({"x": np.arange(20.0)})
    model = LogisticRegression().fit(x, (x["x"] > 9).astype(int))
    ref = project.models.register_model("clf", model, input_example=x.head(5)).ref
    log_answers(project, ref, [0, 1, 0, 1])
    return ref


@pytest.fixture
def regressor(project: Project) -> str:
    """``reg@1``: a linear regression with a signature; answers 1.5 and 2.5 logged as rid(100)
    and rid(101)."""
    x = pd.DataFrame({"x": np.arange(20.0)})
    model = LinearRegression().fit(x, x["x"] * 2)
    ref = project.models.register_model("reg", model, input_example=x.head(5)).ref
    log_answers(project, ref, [1.5, 2.5], first=100)
    return ref


def stored_rows(project: Project) -> dict[str, Any]:
    with project.db.read() as conn:
        return {r.request_id: r for r in conn.execute(select(feedback))}


# -- feedback -------------------------------------------------------------------------------------


def test_a_label_is_stored_once_per_request_id_and_kept_unless_replaced(
    project: Project, classifier: str
) -> None:
    """The first label of a request id is stored; the same label again is unchanged, another
    label is kept out (with a message saying how to replace), and a replacement is stored
    with the label it replaced; each request id counts once in the metrics and accuracy."""
    first = project.predictions.record_feedback(DEPLOYMENT, [(rid(0), 0), (rid(1), 1)])
    assert [(r.status, r.label, r.correct, r.model) for r in first] == [
        ("stored", 0, True, classifier),
        ("stored", 1, True, classifier),
    ]
    again = project.predictions.record_feedback(DEPLOYMENT, [(rid(0), 0), (rid(1), 0)])
    assert [(r.status, r.label, r.correct) for r in again] == [
        ("unchanged", 0, True),
        ("kept", 1, True),
    ]
    assert again[1].message is not None and '"replace": true' in again[1].message
    [replaced] = project.predictions.record_feedback(DEPLOYMENT, [FeedbackItem(rid(1), 0, True)])
    assert (replaced.status, replaced.label, replaced.replaced_label) == ("replaced", 0, 1)
    assert replaced.correct is False
    row = stored_rows(project)[rid(1)]
    assert (json.loads(row.label), json.loads(row.replaced_label)) == (0, 1)
    assert row.replaced_at is not None and row.replaced_at >= row.time
    doc = project.predictions.metrics(DEPLOYMENT)
    assert doc["feedback"] == 2
    assert doc["accuracy"] == {classifier: 0.5}
    assert project.predictions.accuracy(DEPLOYMENT) == {classifier: 0.5}


def test_a_replacement_with_the_stored_label_changes_nothing(
    project: Project, classifier: str
) -> None:
    """Replacing a label with the same label (1.0 for the class 1) is unchanged: nothing is
    recorded as replaced."""
    project.predictions.record_feedback(DEPLOYMENT, [(rid(1), 1)])
    [result] = project.predictions.record_feedback(DEPLOYMENT, [(rid(1), 1.0, True)])
    assert (result.status, result.label) == ("unchanged", 1)
    assert stored_rows(project)[rid(1)].replaced_label is None


def test_concurrent_labels_for_one_request_id_store_exactly_one(
    project: Project, classifier: str
) -> None:
    """Eight threads sending a label for the same new request id at once: one is stored, the
    others see it (unchanged or kept), none fails, and one row is left."""
    barrier = threading.Barrier(8)
    statuses: list[str] = []
    errors: list[BaseException] = []

    def send(label: int) -> None:
        try:
            barrier.wait(timeout=30)
            [r] = project.predictions.record_feedback(DEPLOYMENT, [(rid(2), label)])
            statuses.append(r.status)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i % 2,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(statuses).count("stored") == 1
    assert set(statuses) <= {"stored", "unchanged", "kept"}
    assert len(stored_rows(project)) == 1


def test_a_label_outside_the_classes_is_refused_naming_the_item_and_the_classes(
    project: Project, classifier: str
) -> None:
    """A classifier's label must be one of its classes (1.0 is the class 1, but "1", true,
    null and [1] are not): otherwise InvalidInputError names the item, the model and the
    classes, and no label of the call is stored."""
    for label in (2, "1", True, None, [1]):
        with pytest.raises(InvalidInputError) as caught:
            project.predictions.record_feedback(DEPLOYMENT, [(rid(0), 0), (rid(1), label)])
        message = caught.value.message
        assert f"feedback item 1 ({rid(1)})" in message, label
        assert f"not a class of {classifier}; allowed: 0, 1" in message, label
    assert stored_rows(project) == {}


def test_a_regressor_takes_finite_numbers_only(project: Project, regressor: str) -> None:
    """A regressor's label must be a finite number: NaN, infinity, an integer beyond a
    double, text or false is refused naming the item and what the model needs."""
    for label in (float("nan"), float("inf"), 10**400, "2.5", False):
        with pytest.raises(InvalidInputError, match=r"feedback item 0 .*not a finite number"):
            project.predictions.record_feedback(DEPLOYMENT, [(rid(100), label)])
    [ok] = project.predictions.record_feedback(DEPLOYMENT, [(rid(100), np.float64(2.0))])
    assert (ok.status, ok.label, ok.correct) == ("stored", 2.0, False)


def test_a_version_without_a_signature_takes_labels_of_the_kind_it_answered(
    project: Project,
) -> None:
    """For answers by a version the registry cannot describe, a label must be of the kind of
    the logged answer: a number for a number, text for text."""
    log_answers(project, "ghost@1", [3, "cat"], first=200)
    with pytest.raises(InvalidInputError, match="not a finite number"):
        project.predictions.record_feedback(DEPLOYMENT, [(rid(200), "three")])
    results = project.predictions.record_feedback(DEPLOYMENT, [(rid(200), 3), (rid(201), "dog")])
    assert [(r.status, r.correct) for r in results] == [("stored", True), ("stored", False)]


def test_unknown_request_ids_are_not_found_listed_and_nothing_is_stored(
    project: Project, classifier: str
) -> None:
    """Labels for request ids the deployment never logged raise NotFoundError naming them
    (all of them in details), and the known ones of the same call are not stored either."""
    unknown = [rid(900 + i) for i in range(7)]
    items = [(rid(0), 0), *((u, 1) for u in unknown)]
    with pytest.raises(NotFoundError, match=f"'{unknown[0]}'.*and 2 more.*'{DEPLOYMENT}'") as e:
        project.predictions.record_feedback(DEPLOYMENT, items)
    assert e.value.details["request_ids"] == unknown
    assert stored_rows(project) == {}
    with pytest.raises(NotFoundError, match="not in the prediction log of deployment 'other'"):
        project.predictions.record_feedback("other", [(rid(0), 0)])


def test_malformed_feedback_items_are_refused_before_any_lookup(project: Project) -> None:
    """One request id twice in a call, a replace flag that is not true or false, an item of
    another shape or a request id that is not text: InvalidInputError naming the problem,
    nothing stored."""
    cases: list[tuple[list[Any], str]] = [
        ([(rid(0), 0), (rid(0), 1)], "items 0 and 1 are both for request id"),
        ([(rid(0), 0, "yes")], "replace must be true or false"),
        ([(rid(0),)], "expected (request_id, label)"),
        ([(5, 0)], "request_id must be the text of a request id"),
    ]
    for items, message in cases:
        with pytest.raises(InvalidInputError) as caught:
            project.predictions.record_feedback(DEPLOYMENT, items)
        assert message in caught.value.message
    assert stored_rows(project) == {}


# -- KPIs -----------------------------------------------------------------------------------------


KPI_NAMES_REFUSED = [
    "revenue\n# HELP injected",
    "revenue{x}",
    'revenue"',
    "net revenue",
    "1st",
    "x" * 65,
    "café",
    "",
    5,
]


def test_a_kpi_name_must_be_a_short_identifier(project: Project) -> None:
    """A KPI name is 1 to 64 ASCII letters, digits or underscores, not starting with a
    digit (it becomes a Prometheus label value): a newline, braces, a quote, a space, a
    leading digit, 65 characters, an accent, nothing or a number is refused, and the
    valid event of the same call is not stored."""
    for name in KPI_NAMES_REFUSED:
        with pytest.raises(InvalidInputError, match=r"kpi item 1: .* is not a KPI name"):
            project.predictions.record_kpis(
                DEPLOYMENT,
                [("revenue", 1.0, None), (name, 1.0, None)],  # type: ignore[list-item]
            )
    with pytest.raises(NotFoundError):
        project.predictions.metrics(DEPLOYMENT)


def test_a_kpi_value_must_be_a_finite_number_within_1e15(project: Project) -> None:
    """A KPI value outside ±1e15 (1e308 included), not finite, or not a number (true, text)
    is refused with the bounds."""
    for value in (1e308, -1.000001e15, 10**400, float("nan"), float("-inf"), True, "3"):
        with pytest.raises(InvalidInputError, match="finite number between -1e15 and 1e15"):
            project.predictions.record_kpi(DEPLOYMENT, "revenue", value)  # type: ignore[arg-type]


def test_kpi_values_at_the_bounds_are_stored(project: Project) -> None:
    """1e15 and -1e15 are within the bounds; a NumPy number is a number."""
    events: list[tuple[str, Any, None]] = [
        ("revenue", 1e15, None),
        ("revenue", -1e15, None),
        ("revenue", np.int64(3), None),
    ]
    project.predictions.record_kpis(DEPLOYMENT, events)
    assert project.predictions.metrics(DEPLOYMENT)["kpis"] == {"revenue": {"events": 3, "sum": 3.0}}


def test_a_deployment_takes_at_most_20_undeclared_kpi_names(project: Project) -> None:
    """Without declared KPIs a deployment records at most 20 distinct names, counting those
    stored before: the 21st new name is refused (the message gives the limit and how to
    declare names), known names are still taken, and another deployment has its own 20."""
    names = [f"kpi_{i}" for i in range(MAX_KPI_NAMES)]
    project.predictions.record_kpis(DEPLOYMENT, [(n, 1.0, None) for n in names[:15]])
    project.predictions.record_kpis(DEPLOYMENT, [(n, 1.0, None) for n in names[10:]])
    with pytest.raises(InvalidInputError) as caught:
        project.predictions.record_kpis(DEPLOYMENT, [("kpi_0", 1.0, None), ("extra", 2.0, None)])
    message = caught.value.message
    assert "'extra' would take it past 20" in message
    assert "[serving] kpis = " in message and "SHIPYARD_KPIS" in message
    assert caught.value.details == {"names": ["extra"], "limit": 20}
    project.predictions.record_kpi(DEPLOYMENT, "kpi_19", 1.0)
    project.predictions.record_kpi("another", "extra", 1.0)
    kpis = project.predictions.metrics(DEPLOYMENT)["kpis"]
    assert set(kpis) == set(names)
    assert kpis["kpi_0"]["events"] == 1


def test_declared_kpi_names_are_the_only_ones_taken(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SHIPYARD_KPIS declaring revenue and churned, any other name is refused naming
    the declared ones, and the declared ones are taken without the limit on names."""
    monkeypatch.setenv("SHIPYARD_KPIS", "revenue, churned")
    with shipyard.open_project(project.root) as declared:
        assert declared.settings.kpis == ("revenue", "churned")
        with pytest.raises(InvalidInputError, match=r"'clicks' is not one of .*revenue, churned"):
            declared.predictions.record_kpis(
                DEPLOYMENT, [("revenue", 1.0, None), ("clicks", 1.0, None)]
            )
        declared.predictions.record_kpis(
            DEPLOYMENT, [("revenue", 2.0, None)] * 30 + [("churned", 1.0, None)]
        )
        assert set(declared.predictions.metrics(DEPLOYMENT)["kpis"]) == {"revenue", "churned"}
