"""A running server follows its deployment: promotions and rollbacks of the aliases it
serves, changes of routes, weights and shadow, and only ever versions that may serve.

An alias moved to a version that may not serve (not approved, rejected; here by editing the
alias table in the database, which governance would refuse) keeps the version it had; a
served version that is rejected stops serving; each is logged once and counted in
``shipyard_refused_versions_total``, and picked up once it may serve. Every wait is bounded
in time and in requests.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import update

from shipyard.errors import CheckFailedError
from shipyard.project import Project
from shipyard.serving.routing import ShadowPool
from shipyard.stores.db.tables import deployments, model_aliases
from tests.serving.test_app import (
    MODEL,
    CreditProject,
    TestClient,
    logged,
    metric,
    predict,
    serving,
    train,
)
from tests.serving.test_app import client as client
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project

WAIT_SECONDS = 10.0
MAX_REQUESTS = 3000


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Return once ``check()`` holds; fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still not {what} after {WAIT_SECONDS:.0f} s")
        time.sleep(0.05)


def versions_answering(client: TestClient, credit: CreditProject, n: int = 40) -> Counter[int]:
    """How many of ``n`` single-row predictions each version answered."""
    return Counter(predict(client, [credit.records[i % 50]])["version"] for i in range(n))


def refused(client: TestClient, alias: str, version: str) -> float:
    return metric(client, "shipyard_refused_versions_total", alias=alias, version=version)


@pytest.fixture
def carol(project: Project) -> Project:
    """The credit project as carol, a second approver (bob approved both versions)."""
    project.users.add("carol", "approver")
    return project.as_actor("carol")


def point_alias(project: Project, alias: str, version: int) -> None:
    """Point ``alias`` at ``version`` by editing the alias table, as someone with the
    database's password could, bypassing every check of governance."""
    with project.db.write() as conn:
        conn.execute(
            update(model_aliases).where(model_aliases.c.alias == alias).values(version=version)
        )


# -- promotions, rollbacks and database failures --------------------------------------------------


def test_a_promotion_is_picked_up_while_requests_keep_succeeding(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """While a client keeps sending requests, moving production to version 2 (promotion) and
    back (rollback) fails no request, and within seconds the answers come from the new
    holder; no answer comes from the old one after the switch."""
    answers: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def traffic() -> None:
        i = 0
        while not stop.is_set() and i < 20 * MAX_REQUESTS:
            r = client.post("/predict", json={"records": [credit.records[i % 50]]})
            answers.append((r.status_code, r.json().get("version")))
            i += 1

    def wait_for(version: int) -> None:
        wait_until(lambda: bool(answers) and answers[-1][1] == version, f"answering {version}")

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        time.sleep(0.3)
        project.promotions.promote(credit.challenger, to="production", comment="hot reload")
        wait_for(2)
        time.sleep(0.3)
        project.promotions.rollback(MODEL, alias="production", comment="back")
        wait_for(1)
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    assert len(answers) > 20
    assert {code for code, _ in answers} == {200}
    versions = [v for _, v in answers]
    switches = [b for a, b in pairwise(versions) if a != b]
    assert switches == [2, 1], "an old version answered after the alias moved"


def test_the_server_follows_its_deployment_again_after_the_database_fails_for_a_while(
    credit: CreditProject, client: TestClient, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """While the table of aliases cannot be read (renamed away in the project's database,
    so the server's reads fail with the database's own error), the server keeps answering
    with the loaded version, logs and counts each failed round; once the table is back, a
    promotion is still picked up."""

    def answering_version() -> int:
        return int(predict(client, credit.records[:1])["version"])

    assert answering_version() == 1
    with project.db.write() as conn:
        conn.exec_driver_sql("ALTER TABLE model_aliases RENAME TO model_aliases_away")
    try:
        wait_until(
            lambda: metric(client, "shipyard_refresh_errors_total", refresh="aliases") >= 2,
            "counting failed rounds",
        )
        assert answering_version() == 1
    finally:
        with project.db.write() as conn:
            conn.exec_driver_sql("ALTER TABLE model_aliases_away RENAME TO model_aliases")
    assert "cannot follow deployment 'credit-risk'" in caplog.text
    assert "model_aliases" in caplog.text

    project.promotions.promote(credit.challenger, to="production", comment="after the outage")
    wait_until(lambda: answering_version() == 2, "answering with version 2")


# -- routes, weights and shadow -------------------------------------------------------------------


def test_a_canary_split_answers_from_both_versions(credit: CreditProject, project: Project) -> None:
    """With the deployment's routes production=50, challenger=50, each version answers
    between a quarter and three quarters of 200 requests, with its own alias, and /metrics
    labels both under the deployment's name."""
    project.deployments.set(MODEL, {"production": 50, "challenger": 50})
    with serving(credit) as client:
        bodies = [predict(client, [credit.records[i % 50]]) for i in range(200)]
        by_version = Counter(b["version"] for b in bodies)
        assert set(by_version) == {1, 2}
        assert all(50 <= n <= 150 for n in by_version.values()), by_version
        assert {(b["version"], b["alias"]) for b in bodies} == {
            (1, "production"),
            (2, "challenger"),
        }
        for version, n in by_version.items():
            labels = {"model": MODEL, "version": str(version), "code": "200"}
            assert metric(client, "shipyard_requests_total", **labels) == n
            assert metric(client, "shipyard_predictions_total", version=str(version)) == n
        meta = client.get(f"/v2/models/{MODEL}").json()
        assert meta["aliases"] == {"production": 1, "challenger": 2}


def test_shadow_scores_every_request_with_the_challenger_without_answering_with_it(
    credit: CreditProject, project: Project
) -> None:
    """With the deployment's shadow challenger every answer comes from production, and the
    prediction log (with shadow rows) holds a challenger score for each request id, while
    the log of answers holds production rows only."""
    project.deployments.set(MODEL, {"production": 100}, shadow="challenger")
    with serving(credit) as client:
        bodies = [predict(client, credit.records[i : i + 3]) for i in range(0, 30, 3)]
        assert {b["version"] for b in bodies} == {1}
        ids = {rid for b in bodies for rid in b["request_ids"]}
        log = logged(project, 60, include_shadow=True)
        assert metric(client, "shipyard_shadow_dropped_total") == 0
    shadow = log[log["shadow"]]
    assert set(shadow["model"]) == {credit.challenger}
    assert set(shadow["request_id"]) == ids
    answered = project.predictions.list(MODEL)
    assert set(answered["model"]) == {credit.production}
    assert set(answered["request_id"]) == ids
    expected = project.models.load(credit.challenger).predict(credit.frame(30))
    by_id = shadow.set_index("request_id")["output"]
    ordered = [rid for b in bodies for rid in b["request_ids"]]
    assert [by_id[rid] for rid in ordered] == expected.tolist()


def test_a_deployment_named_apart_from_its_model_keys_the_log_and_metrics_by_its_name(
    credit: CreditProject, project: Project
) -> None:
    """The deployment credit-risk-eu of the model credit-risk answers as credit-risk's
    versions, under its own name: in the answers, the v2 paths, the metrics' model label and
    the prediction log."""
    project.deployments.set("credit-risk-eu", {"challenger": 100}, model=MODEL)
    with serving(credit, deployment="credit-risk-eu") as client:
        body = predict(client, credit.records[:3])
        assert (body["model"], body["deployment"], body["version"]) == (MODEL, "credit-risk-eu", 2)
        assert client.get("/v2/models/credit-risk-eu").json()["aliases"] == {"challenger": 2}
        assert client.get(f"/v2/models/{MODEL}").status_code == 404
        assert metric(client, "shipyard_predictions_total", model="credit-risk-eu") == 3
        logged_rows = logged_for(project, "credit-risk-eu", 3)
    assert set(logged_rows["request_id"]) == set(body["request_ids"])
    assert set(logged_rows["model"]) == {credit.challenger}


def logged_for(project: Project, name: str, rows: int) -> Any:
    """The prediction log of the deployment ``name`` once it holds ``rows`` rows."""
    deadline = time.monotonic() + WAIT_SECONDS
    log = project.predictions.list(name)
    while len(log) < rows and time.monotonic() < deadline:
        time.sleep(0.1)
        log = project.predictions.list(name)
    assert len(log) >= rows, f"the log of {name} has {len(log)} of {rows} rows"
    return log


def test_a_deployment_change_is_followed_within_seconds(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """A server started on the model's default deployment (production alone) takes up,
    each within seconds: a canary route to challenger, then a shadow instead of it, then
    all traffic moved to challenger by weights (production at 0)."""
    assert versions_answering(client, credit) == {1: 40}
    project.deployments.set(MODEL, {"production": 50, "challenger": 50})
    wait_until(lambda: set(versions_answering(client, credit)) == {1, 2}, "splitting traffic")
    assert client.get(f"/v2/models/{MODEL}").json()["aliases"] == {
        "production": 1,
        "challenger": 2,
    }

    project.deployments.set(MODEL, {"production": 100}, shadow="challenger")

    def shadowing() -> bool:
        deployment = client.get(f"/v2/models/{MODEL}").json()["parameters"]["deployment"]
        return "shadow challenger (credit-risk@2)" in deployment

    wait_until(shadowing, "shadowing with challenger")
    bodies = [predict(client, credit.records[i : i + 2]) for i in range(0, 20, 2)]
    assert {b["version"] for b in bodies} == {1}
    ids = {rid for b in bodies for rid in b["request_ids"]}
    log = logged(project, 20, include_shadow=True)
    deadline = time.monotonic() + WAIT_SECONDS
    while not ids <= set(log[log["shadow"]]["request_id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        log = project.predictions.list(MODEL, include_shadow=True)
    assert ids <= set(log[log["shadow"]]["request_id"])

    project.deployments.set(MODEL, {"production": 0, "challenger": 100})
    wait_until(lambda: versions_answering(client, credit) == {2: 40}, "answering with 2 alone")


def test_shadow_work_beyond_the_pool_is_dropped_and_counted() -> None:
    """A shadow pool of one thread and one waiting place, its thread held: the second
    submission waits, the third is dropped and reported; once released, the two accepted
    run."""
    release, done, drops = threading.Event(), [], []

    def work(i: int) -> None:
        release.wait(WAIT_SECONDS)
        done.append(i)

    pool = ShadowPool(workers=1, queue=1, on_drop=lambda: drops.append(1))
    try:
        assert pool.submit(work, 1)
        assert pool.submit(work, 2)
        assert not pool.submit(work, 3)
        assert drops == [1]
    finally:
        release.set()
        pool.close()
    assert sorted(done) == [1, 2]


# -- versions that may not serve ------------------------------------------------------------------


@pytest.mark.parametrize("standing", ["unapproved", "rejected"])
def test_an_alias_moved_to_a_version_that_may_not_serve_keeps_the_previous_one(
    credit: CreditProject,
    client: TestClient,
    project: Project,
    carol: Project,
    standing: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When production is pointed (in the database, past governance) at version 3, which
    is not approved or was rejected, the server keeps answering with version 1, logs why
    once and counts it once in shipyard_refused_versions_total; once version 3 may serve
    (an approval; carol's later approval replacing her rejection) it is picked up."""
    ref = train(project)
    if standing == "rejected":
        project.as_actor("bob").approvals.approve(ref)
        carol.approvals.reject(ref, comment="leaks a feature")
    point_alias(project, "production", 3)
    wait_until(lambda: refused(client, "production", "3") == 1, "counting the refusal")
    assert versions_answering(client, credit) == {1: 40}
    time.sleep(1.0)  # several more rounds (every 0.2 s) see the same refusal
    assert refused(client, "production", "3") == 1
    warnings = [
        r.getMessage() for r in caplog.records if "credit-risk@3 may not serve" in r.getMessage()
    ]
    assert len(warnings) == 1, warnings
    reason = "was rejected (by carol)" if standing == "rejected" else "is not approved"
    assert reason in warnings[0] and "keeps credit-risk@1 for production" in warnings[0]

    (carol if standing == "rejected" else project.as_actor("bob")).approvals.approve(ref)
    wait_until(lambda: versions_answering(client, credit, 5) == {3: 5}, "answering with 3")
    assert refused(client, "production", "3") == 1


def test_a_served_version_that_is_rejected_stops_serving_until_it_may_again(
    credit: CreditProject, project: Project, carol: Project
) -> None:
    """With a canary production=50, challenger=50, carol's rejection of the challenger's
    version takes it out of traffic within seconds (counted once); her later approval
    brings it back."""
    project.deployments.set(MODEL, {"production": 50, "challenger": 50})
    with serving(credit) as client:
        assert set(versions_answering(client, credit)) == {1, 2}
        carol.approvals.reject(credit.challenger, comment="unfair to a group")
        wait_until(lambda: versions_answering(client, credit) == {1: 40}, "answering with 1")
        assert refused(client, "challenger", "2") == 1
        carol.approvals.approve(credit.challenger, comment="fixed")
        wait_until(lambda: 2 in versions_answering(client, credit), "answering with 2 again")


def test_when_no_version_may_serve_predictions_are_a_503_naming_the_fix(
    credit: CreditProject, client: TestClient, project: Project, carol: Project
) -> None:
    """Rejecting the only served version makes /predict and the model metadata answer 503
    (saying how an approver restores service) and /v2/health/ready 503; a promotion of a
    servable version brings answers back."""
    carol.approvals.reject(credit.production, comment="recalled")

    def status() -> int:
        return client.post("/predict", json={"records": credit.records[:1]}).status_code

    wait_until(lambda: status() == 503, "refusing predictions")
    response = client.post("/predict", json={"records": credit.records[:1]})
    assert "no version of credit-risk may serve now" in response.json()["error"]
    assert "shipyard deployments set credit-risk" in response.json()["error"]
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get(f"/v2/models/{MODEL}").status_code == 503
    assert metric(client, "shipyard_prediction_errors_total", reason="unservable") >= 1
    project.as_actor("bob").promotions.promote(credit.challenger, to="production")
    wait_until(lambda: status() == 200, "answering again")
    assert client.get("/v2/health/ready").status_code == 200


def test_a_server_does_not_start_with_a_version_that_may_not_serve(
    credit: CreditProject, project: Project, carol: Project
) -> None:
    """An app whose deployment routes to a rejected version fails at start-up with
    CheckFailedError naming the alias and the reason, before it loads a model."""
    carol.approvals.reject(credit.production, comment="recalled")
    with (
        pytest.raises(CheckFailedError, match=r"production: credit-risk@1 was rejected"),
        serving(credit),
    ):
        pass


def test_an_alias_added_with_a_holder_that_may_not_serve_is_not_added(
    credit: CreditProject, project: Project
) -> None:
    """When the stored deployment gains a challenger route whose holder is not approved
    (deployment and alias edited in one database transaction, past governance), the server
    does not add it: production answers everything and the refusal is counted."""
    project.deployments.set(MODEL, {"production": 100})
    train(project)
    with serving(credit) as client:
        with project.db.write() as conn:
            conn.execute(
                update(deployments)
                .where(deployments.c.name == MODEL)
                .values(routes={"production": 50, "challenger": 50}, version=2)
            )
            conn.execute(
                update(model_aliases).where(model_aliases.c.alias == "challenger").values(version=3)
            )
        wait_until(lambda: refused(client, "challenger", "3") == 1, "counting the refusal")
        assert versions_answering(client, credit) == {1: 40}
        assert client.get(f"/v2/models/{MODEL}").json()["aliases"] == {"production": 1}
