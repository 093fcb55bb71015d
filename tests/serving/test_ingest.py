"""``POST /feedback`` and ``POST /kpi`` on the running server: labels only for answers this
deployment gave (including one given a moment ago, before its log row is written), once per
request id, within the model's classes; KPI names that cannot break the metrics and values
that cannot swamp them; and, with an ingest token, only from clients that hold it.

Every test serves its own copy of the credit project (``credit-risk@1`` in production, a
logistic regression with classes 0 and 1).
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.exceptions import StarletteDeprecationWarning

from shipyard.errors import InvalidInputError
from shipyard.project import Project
from shipyard.serving.app import ServeConfig, create_app
from shipyard.serving.prediction_log import PredictionLog, PredictionRecord
from shipyard.stores.db.tables import feedback, predictions
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli
from tests.cli.conftest import cli_project as cli_project
from tests.serving.test_app import (
    MODEL,
    CreditProject,
    logged,
    metric,
    predict,
    serving,
)
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; the test client works the same on httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "s3cret-ingest-token"


@pytest.fixture
def client(credit: CreditProject) -> Iterator[TestClient]:
    """A server for the production alias of this test's credit project."""
    with serving(credit) as c:
        yield c


def labels_stored(project: Project) -> dict[str, Any]:
    """Request id -> stored feedback row."""
    with project.db.read() as conn:
        return {r.request_id: r for r in conn.execute(select(feedback))}


def in_table(project: Project, request_id: str) -> bool:
    with project.db.read() as conn:
        query = select(predictions.c.request_id).where(predictions.c.request_id == request_id)
        return conn.execute(query).first() is not None


# -- feedback: which request ids ------------------------------------------------------------------


def test_an_unknown_request_id_is_a_404_naming_it(credit: CreditProject) -> None:
    """A label for a request id this deployment never answered is refused with 404 naming it
    (after the bounded wait for log rows), counted, and nothing is stored or counted."""
    with serving(credit, feedback_wait_seconds=0.5) as client:
        response = client.post("/feedback", json={"request_id": "f" * 32, "label": 1})
        assert response.status_code == 404, response.text
        assert "'" + "f" * 32 + "'" in response.json()["error"]
        assert "not in the prediction log of deployment 'credit-risk'" in response.json()["error"]
        assert response.json()["details"] == {"request_ids": ["f" * 32]}
        assert metric(client, "shipyard_requests_total", endpoint="/feedback", code="404") == 1
        assert metric(client, "shipyard_prediction_errors_total", reason="unknown_request_id") == 1
        assert metric(client, "shipyard_feedback_total") == 0


def test_a_batch_with_one_unknown_request_id_stores_none_of_its_labels(
    credit: CreditProject, project: Project
) -> None:
    """Every item is checked before any is stored: a list with one unknown request id is a
    404 naming it, and the known request id of the list has no label afterwards."""
    with serving(credit, feedback_wait_seconds=0.5) as client:
        [known] = predict(client, credit.records[:1])["request_ids"]
        logged(project, 1)
        items = [{"request_id": known, "label": 0}, {"request_id": "e" * 32, "label": 0}]
        response = client.post("/feedback", json=items)
        assert response.status_code == 404, response.text
        assert "e" * 32 in response.json()["error"]
        assert known not in response.json()["error"]
    assert labels_stored(project) == {}


def test_feedback_right_after_a_prediction_is_accepted_before_the_log_is_written(
    credit: CreditProject, project: Project
) -> None:
    """With the log handed to its writer only every 30 s, a label sent right after the
    answer finds its row still in the server's buffer: the server hands the buffer over at
    once, waits (within its bound) for the row, and stores and judges the label."""
    with serving(credit, log_flush_seconds=30.0, feedback_wait_seconds=10.0) as client:
        body = predict(client, credit.records[:2])
        first, second = body["request_ids"]
        assert not in_table(project, first)
        items = [
            {"request_id": first, "label": body["predictions"][0]},
            {"request_id": second, "label": 1 - body["predictions"][1]},
        ]
        response = client.post("/feedback", json=items)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [(r["status"], r["correct"]) for r in results] == [
            ("stored", True),
            ("stored", False),
        ]
        assert metric(client, "shipyard_feedback_total", version="1") == 2
        assert metric(client, "shipyard_model_accuracy", version="1") == 0.5
    assert set(labels_stored(project)) == {first, second}


def test_feedback_for_another_workers_answer_waits_for_its_log(
    credit: CreditProject, project: Project
) -> None:
    """A request id answered by another worker (here a second prediction log flushing every
    half second, as a second worker's does) is not refused while that log is being
    written: the server looks again until the row arrives, within its wait."""
    answer = PredictionRecord("a" * 32, int(time.time() * 1000), credit.production, False, {}, 1, 1)
    with serving(credit, feedback_wait_seconds=10.0) as client:
        other = PredictionLog(project, MODEL, flush_seconds=0.5)
        try:
            other.put([answer])
            response = client.post("/feedback", json={"request_id": "a" * 32, "label": 1})
        finally:
            other.close()
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["status"] == "stored"


# -- feedback: once per request id ----------------------------------------------------------------


def test_the_same_request_id_twice_is_counted_once(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """Sending the same labels again, or other labels without "replace", changes nothing:
    the answers say unchanged / kept (with the stored label), and shipyard_feedback_total,
    shipyard_model_accuracy and `deployments metrics` count each request id once."""
    body = predict(client, credit.records[:4])
    logged(project, 4)
    answers = body["predictions"]
    labels = [answers[0], answers[1], answers[2], 1 - answers[3]]  # 3 of 4 right
    items = [
        {"request_id": r, "label": y} for r, y in zip(body["request_ids"], labels, strict=True)
    ]
    first = client.post("/feedback", json=items).json()
    assert (first["accepted"], first["stored"]) == (4, 4)
    again = client.post("/feedback", json=items).json()
    assert (again["accepted"], again["stored"], again["unchanged"]) == (4, 0, 4)
    flipped = [{**item, "label": 1 - item["label"]} for item in items]
    kept = client.post("/feedback", json=flipped).json()
    assert (kept["kept"], kept["stored"]) == (4, 0)
    assert [r["label"] for r in kept["results"]] == labels
    assert '"replace": true' in kept["results"][0]["message"]
    assert metric(client, "shipyard_feedback_total", version="1") == 4
    assert metric(client, "shipyard_model_accuracy", version="1") == 0.75
    doc = project.predictions.metrics(MODEL)
    assert doc["feedback"] == 4
    assert doc["accuracy"] == {credit.production: 0.75}


def test_a_replacement_is_recorded_and_reported(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """A label sent with "replace": true replaces the stored one: the answer says replaced
    and gives the old label, the row keeps it in replaced_label with the time, the accuracy
    follows the new label, and the feedback count does not grow."""
    body = predict(client, credit.records[:1])
    logged(project, 1)
    [rid], [answer] = body["request_ids"], body["predictions"]
    client.post("/feedback", json={"request_id": rid, "label": answer})
    assert metric(client, "shipyard_model_accuracy", version="1") == 1.0
    response = client.post(
        "/feedback", json={"request_id": rid, "label": 1 - answer, "replace": True}
    ).json()
    assert response["replaced"] == 1
    [result] = response["results"]
    assert (result["status"], result["label"], result["replaced_label"]) == (
        "replaced",
        1 - answer,
        answer,
    )
    assert result["correct"] is False
    row = labels_stored(project)[rid]
    assert (json.loads(row.label), json.loads(row.replaced_label)) == (1 - answer, answer)
    assert row.replaced_at is not None
    assert metric(client, "shipyard_model_accuracy", version="1") == 0.0
    assert metric(client, "shipyard_feedback_total", version="1") == 1
    assert project.predictions.metrics(MODEL)["feedback"] == 1


# -- feedback: which labels -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "label",
    [
        pytest.param(2, id="another-number"),
        pytest.param("yes", id="text"),
        pytest.param(True, id="true"),
        pytest.param(None, id="null"),
    ],
)
def test_a_label_outside_the_classes_is_a_422_naming_the_item_and_the_classes(
    credit: CreditProject, client: TestClient, project: Project, label: Any
) -> None:
    """A label the classifier could not have answered is refused with 422 naming the item
    and the allowed classes; the good label of the same list is not stored."""
    body = predict(client, credit.records[:2])
    logged(project, 2)
    good, bad = body["request_ids"]
    items = [{"request_id": good, "label": 0}, {"request_id": bad, "label": label}]
    response = client.post("/feedback", json=items)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert f"feedback item 1 ({bad})" in error
    assert f"not a class of {credit.production}; allowed: 0, 1" in error
    assert labels_stored(project) == {}
    assert metric(client, "shipyard_feedback_total") == 0


@pytest.mark.parametrize(
    ("item", "message"),
    [
        pytest.param(
            {"request_id": "a" * 32, "label": 1, "replce": True},
            'unknown key "replce"',
            id="misspelt-replace",
        ),
        pytest.param(
            {"request_id": "a" * 32, "label": 1, "replace": "yes"},
            "replace must be true or false",
            id="replace-not-a-bool",
        ),
        pytest.param(
            [{"request_id": "a" * 32, "label": 1}, {"request_id": "a" * 32, "label": 0}],
            "items 0 and 1 are both for request id",
            id="one-request-id-twice",
        ),
    ],
)
def test_a_malformed_feedback_item_is_a_422_naming_it(
    client: TestClient, item: Any, message: str
) -> None:
    """A misspelt key (which would silently drop "replace"), a replace flag that is not true
    or false, or one request id twice in a list is a 422 naming the problem."""
    response = client.post("/feedback", json=item)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


# -- KPIs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("revenue\nshipyard_up 1", id="newline"),
        pytest.param('revenue"} 1\nx{y="', id="braces-and-quotes"),
        pytest.param("{revenue}", id="braces"),
        pytest.param("net revenue", id="space"),
    ],
)
def test_a_kpi_name_that_could_break_the_metrics_is_a_422(client: TestClient, name: str) -> None:
    """A KPI name with a newline, braces, quotes or spaces is refused with 422 stating the
    rule, and never reaches /metrics."""
    response = client.post("/kpi", json={"name": name, "value": 1})
    assert response.status_code == 422, response.text
    assert "letters, digits or underscores" in response.json()["error"]
    assert metric(client, "shipyard_kpi_total") == 0
    assert "shipyard_up" not in client.get("/metrics").text


def test_a_project_that_declares_its_kpis_takes_no_other_name(credit: CreditProject) -> None:
    """With `[serving] kpis = ["revenue", "churned"]` in shipyard.toml, /kpi takes those and
    refuses any other name with 422 naming the declared ones."""
    config = credit.root / "shipyard.toml"
    config.write_text(
        config.read_text() + '\n[serving]\nkpis = ["revenue", "churned"]\n', encoding="utf-8"
    )
    with serving(credit) as client:
        ok = client.post(
            "/kpi", json=[{"name": "revenue", "value": 5}, {"name": "churned", "value": 1}]
        )
        assert ok.status_code == 200, ok.text
        refused = client.post("/kpi", json={"name": "clicks", "value": 1})
        assert refused.status_code == 422, refused.text
        assert (
            "'clicks' is not one of the KPIs this project declares (revenue, churned)"
            in (refused.json()["error"])
        )
        assert metric(client, "shipyard_kpi_total", name="clicks") == 0


def test_the_21st_distinct_kpi_name_is_refused(client: TestClient, project: Project) -> None:
    """Without declared KPIs a deployment takes 20 distinct names; a 21st is a 422 that
    explains the limit and how to declare names, and known names are still taken."""
    events = [{"name": f"kpi_{i}", "value": i} for i in range(20)]
    assert client.post("/kpi", json=events).status_code == 200
    response = client.post("/kpi", json={"name": "kpi_20", "value": 1})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "'kpi_20' would take it past 20" in error
    assert "[serving] kpis" in error and "SHIPYARD_KPIS" in error
    assert client.post("/kpi", json={"name": "kpi_3", "value": 1}).status_code == 200
    assert len(project.predictions.metrics(MODEL)["kpis"]) == 20


@pytest.mark.parametrize("value", [1e308, -1e308, 1.5e15])
def test_a_kpi_value_beyond_1e15_is_a_422(client: TestClient, value: float) -> None:
    """A KPI value beyond ±1e15 (1e308 is valid JSON) is refused with 422 giving the
    bounds, and no sum moves."""
    response = client.post("/kpi", json={"name": "revenue", "value": value})
    assert response.status_code == 422, response.text
    assert "finite number between -1e15 and 1e15" in response.json()["error"]
    assert metric(client, "shipyard_kpi_value_sum") == 0


# -- the ingest token -----------------------------------------------------------------------------


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "ingest.token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


def test_with_an_ingest_token_feedback_and_kpis_need_it_and_predict_stays_open(
    credit: CreditProject, project: Project, token_file: Path
) -> None:
    """With --ingest-token-file, /feedback and /kpi answer 401 (with WWW-Authenticate:
    Bearer) without a token or with another one, and 200 with `Bearer <token>`; /predict
    needs no token; no answer echoes the token."""
    with serving(credit, ingest_token_file=str(token_file)) as client:
        body = predict(client, credit.records[:1])  # no token needed
        logged(project, 1)
        item = {"request_id": body["request_ids"][0], "label": 0}
        kpi = {"name": "revenue", "value": 1}
        bodies = []
        for path, doc in [("/feedback", item), ("/kpi", kpi)]:
            missing = client.post(path, json=doc)
            wrong = client.post(path, json=doc, headers={"Authorization": "Bearer nope"})
            basic = client.post(path, json=doc, headers={"Authorization": f"Basic {TOKEN}"})
            for refused in (missing, wrong, basic):
                assert refused.status_code == 401, refused.text
                assert refused.headers["www-authenticate"].startswith("Bearer")
                assert "Authorization: Bearer <token>" in missing.json()["error"]
            ok = client.post(path, json=doc, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200, ok.text
            bodies += [missing.text, wrong.text, basic.text, ok.text]
        assert metric(client, "shipyard_requests_total", code="401") == 6
        assert metric(client, "shipyard_feedback_total") == 1
        assert metric(client, "shipyard_kpi_total") == 1
        assert not any(TOKEN in text for text in bodies)


@pytest.mark.parametrize("content", [None, "", "  \n"], ids=["missing", "empty", "blank"])
def test_a_server_with_a_missing_or_empty_token_file_does_not_start(
    credit: CreditProject, tmp_path: Path, content: str | None
) -> None:
    """create_app refuses a token file that does not exist or holds no token, naming it."""
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    config = ServeConfig(str(credit.root), MODEL, {"production": 100}, ingest_token_file=str(path))
    with pytest.raises(InvalidInputError, match=f"ingest token file {path}"):
        create_app(config)


@pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
def test_serve_with_a_missing_or_empty_token_file_exits_1(
    cli: Cli, cli_project: Path, tmp_path: Path, content: str | None
) -> None:
    """`shipyard serve --ingest-token-file FILE` exits 1 naming FILE, before any server
    starts, when FILE is missing or empty."""
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    res = cli("serve", "credit-risk@production", "--ingest-token-file", path)
    assert res.code == 1, res.stderr
    assert f"ingest token file {path}" in res.stderr
    assert "unexpected" not in res.stderr and "serving" not in res.stderr


# -- fuzzing --------------------------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def _feedback_bodies(request_ids: list[str]) -> st.SearchStrategy[Any]:
    ids = st.sampled_from(request_ids) | st.text(max_size=40) | _json
    labels = st.sampled_from([0, 1, 0.0, 1.0, 2, True, "1", None]) | _json
    item = st.fixed_dictionaries(
        {"request_id": ids, "label": labels}, optional={"replace": st.booleans() | _json}
    )
    return st.one_of(item, st.lists(item, max_size=5), _json)


def _kpi_bodies() -> st.SearchStrategy[Any]:
    names = (
        st.sampled_from(["revenue", "churned"])
        | st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,63}", fullmatch=True)
        | st.text(max_size=70)
        | _json
    )
    values = (
        st.floats(allow_nan=False, allow_infinity=False)
        | st.integers(min_value=-(2**70), max_value=2**70)
        | _json
    )
    item = st.fixed_dictionaries(
        {"name": names, "value": values}, optional={"request_id": st.text(max_size=40) | _json}
    )
    return st.one_of(item, st.lists(item, max_size=5), _json)


def test_fuzzed_feedback_and_kpi_bodies_never_get_a_5xx(
    credit: CreditProject, project: Project
) -> None:
    """Random JSON documents and random items (real and random request ids, labels in and
    out of the classes, replace flags, random KPI names and values) posted to /feedback
    and /kpi are each answered with a status below 500, and each label counts once."""
    seen: Counter[int] = Counter()
    with serving(credit, feedback_wait_seconds=0.0) as client:
        request_ids = predict(client, credit.records[:5])["request_ids"]
        logged(project, 5)

        @settings(
            max_examples=80,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(feedback=_feedback_bodies(request_ids), kpi=_kpi_bodies())
        def check(feedback: Any, kpi: Any) -> None:
            for path, body in [("/feedback", feedback), ("/kpi", kpi)]:
                response = client.post(
                    path, content=json.dumps(body), headers={"content-type": "application/json"}
                )
                seen[response.status_code] += 1
                assert response.status_code < 500, (path, body, response.text)

        check()
        assert metric(client, "shipyard_feedback_total") <= 5
        stored = len(labels_stored(project))
        assert metric(client, "shipyard_feedback_total") == stored
    assert sum(seen.values()) >= 100
    assert {200, 422} <= set(seen)
