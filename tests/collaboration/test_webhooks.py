"""Webhooks end to end: real HTTP receivers on 127.0.0.1, the queue driven with a clock the
test moves, every format's body, retries, timeouts, refused addresses and secrets kept out of
every output."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks import WebhookVerificationError

import shipyard
from shipyard.collaboration.webhook_delivery import DISABLE_AFTER, DeliveryWorker
from shipyard.collaboration.webhook_events import EVENTS, events_of
from shipyard.collaboration.webhook_formats import signature_headers
from shipyard.collaboration.webhooks import Webhooks, new_secret
from shipyard.errors import InvalidInputError, PermissionDeniedError
from shipyard.project import Project
from shipyard.stores.audit import AuditEvent
from tests.collaboration.conftest import FakeClock, Receiver

JIRA_SECRET = "ann@example.com:jira-token-5f1e2d"
TRELLO_SECRET = "trello-key-77aa:trello-token-99bb"


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[Path, str]:
    secret = new_secret()
    path = tmp_path / "hook.secret"
    path.write_text(secret + "\n", encoding="utf-8")
    return path, secret


def hooks(project: Project, clock: FakeClock | None = None) -> Webhooks:
    """The project's webhook service on ``clock``."""
    return Webhooks(project.context, clock=clock)


def test_the_signature_matches_the_specs_example() -> None:
    """The Standard Webhooks example (secret, id, timestamp, body) signs to its documented
    signature."""
    headers = signature_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        '{"test": 2432232314}',
    )
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_a_new_dataset_reaches_a_receiver_that_verifies_the_signature_and_refuses_replays(
    project: Project,
    receiver: Receiver,
    secret_file: tuple[Path, str],
    sample_csv: Callable[..., Path],
) -> None:
    """A generic webhook gets `dataset.created` as signed JSON; the receiver's check passes,
    and the same message signed 6 minutes ago is refused as a replay."""
    path, secret = secret_file
    hook = project.webhooks.add(receiver.url, ["dataset.created"], secret_file=str(path))
    project.datasets.add("sales", sample_csv())
    summary = project.webhooks.deliver()
    assert (summary.queued, summary.delivered) == (1, 1)
    [got] = receiver.received
    doc = Verifier(secret).verify(got.body, got.headers)
    assert doc["type"] == "dataset.created"
    assert doc["data"]["dataset"] == "sales@1"
    assert doc["data"]["actor"] == "alice"
    [delivery] = project.webhooks.deliveries(hook.id)
    assert got.headers["webhook-id"] == delivery.id
    assert (delivery.status, [a.status_code for a in delivery.attempts]) == ("delivered", [200])
    # The same delivery signed 6 minutes ago, replayed now:
    old = FakeClock()
    old.advance(minutes=-6)
    project.webhooks.redeliver(delivery.id)
    hooks(project, old).redeliver(delivery.id)
    replay = receiver.received[-1]
    with pytest.raises(WebhookVerificationError, match="too old"):
        Verifier(secret).verify(replay.body, replay.headers)
    Verifier(secret).verify(receiver.received[-2].body, receiver.received[-2].headers)
    tampered = replay.body.replace(b"sales@1", b"sales@2")
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(tampered, {**receiver.received[-2].headers})


def test_a_failing_receiver_is_retried_with_backoff_and_retry_after_until_it_recovers(
    project: Project,
    receiver: Receiver,
    clock: FakeClock,
    secret_file: tuple[Path, str],
    sample_csv: Callable[..., Path],
) -> None:
    """500, then 429 with Retry-After: 600, then 200: the second try comes 5 s later, the third
    only after 600 s (not the 5 min of the schedule); every attempt is recorded."""
    receiver.script = [(500, {}, b"boom"), (429, {"Retry-After": "600"}, b"slow down")]
    service = hooks(project, clock)
    hook = service.add(receiver.url, ["dataset.created"], secret_file=str(secret_file[0]))
    project.datasets.add("sales", sample_csv())
    assert service.deliver().retrying == 1
    assert service.deliver().retrying == 0  # not due yet
    clock.advance(seconds=5)
    assert service.deliver().retrying == 1
    clock.advance(seconds=300)
    assert service.deliver() == type(service.deliver())()  # Retry-After is longer
    clock.advance(seconds=300)
    assert service.deliver().delivered == 1
    [d] = service.deliveries(hook.id)
    assert d.status == "delivered"
    assert [(a.status_code, a.outcome) for a in d.attempts] == [
        (500, "retry"),
        (429, "retry"),
        (200, "delivered"),
    ]
    assert [a.response for a in d.attempts] == ["boom", "slow down", "ok"]
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert service.get(hook.id).failures == 0


def test_a_receiver_that_hangs_times_out_and_stays_queued(
    project: Project,
    receiver: Receiver,
    clock: FakeClock,
    secret_file: tuple[Path, str],
    sample_csv: Callable[..., Path],
) -> None:
    """With a 1 s timeout, a receiver that never answers gives a timed-out attempt and a retry
    5 s later; the delivery is not lost."""
    receiver.script = ["hang"]
    service = hooks(project, clock)
    hook = service.add(receiver.url, ["dataset.created"], secret_file=str(secret_file[0]))
    project.datasets.add("sales", sample_csv())
    assert service.deliver().retrying == 1
    [d] = service.deliveries(hook.id)
    [attempt] = d.attempts
    assert attempt.status_code is None
    assert "timed out" in (attempt.error or "")
    assert 900 <= attempt.latency_ms < 2900
    assert d.status == "pending" and d.next_attempt_at == clock.now + timedelta(seconds=5)
    receiver.release.set()


def test_private_addresses_off_the_allow_list_are_refused_when_added_and_when_sent(
    tmp_path: Path,
    project: Project,
    receiver: Receiver,
    secret_file: tuple[Path, str],
    sample_csv: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """127.0.0.2 is refused at `add` (only 127.0.0.1 is allowed); a webhook added while
    127.0.0.1 was allowed is refused at send time once the list no longer holds it, and
    the receiver gets nothing."""
    port = receiver.url.split(":")[2].split("/")[0]
    with pytest.raises(PermissionDeniedError, match=r"127\.0\.0\.2"):
        project.webhooks.add(
            f"http://127.0.0.2:{port}/hook", ["dataset.created"], secret_file=str(secret_file[0])
        )
    with pytest.raises(PermissionDeniedError, match="private or local"):
        project.webhooks.add("http://[::1]:9/x", ["dataset.created"], format="slack")
    with pytest.raises(InvalidInputError, match="http"):
        project.webhooks.add("file:///etc/passwd", ["dataset.created"], format="slack")
    hook = project.webhooks.add(receiver.url, ["dataset.created"], format="slack")
    monkeypatch.setenv("SHIPYARD_WEBHOOKS_ALLOW", "10.0.0.0/8")
    strict = shipyard.open_project(project.root, db_url=project.settings.db_url)
    try:
        strict.datasets.add("sales", sample_csv())
        assert strict.webhooks.deliver().failed == 1
        [d] = strict.webhooks.deliveries(hook.id)
        assert d.status == "failed"
        assert "private or local address" in (d.attempts[0].error or "")
    finally:
        strict.close()
    assert receiver.received == []


def test_slack_jira_and_trello_get_the_bodies_their_apis_expect_and_secrets_show_nowhere(
    project: Project,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    sample_csv: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Slack gets {text, blocks}; Jira an issue at /rest/api/2/issue with basic auth; Trello
    a card at /1/cards with key and token. A receiver that echoes the token back does not
    put it into the attempt; no listing, delivery, audit event or log holds a secret."""
    monkeypatch.setenv("SHIPYARD_WEBHOOK_JIRA", JIRA_SECRET)
    monkeypatch.setenv("SHIPYARD_WEBHOOK_TRELLO", TRELLO_SECRET)
    slack = project.webhooks.add(receiver.url, ["dataset.created"], format="slack")
    jira = project.webhooks.add(
        receiver.url,
        ["dataset.created"],
        format="jira",
        secret_env="SHIPYARD_WEBHOOK_JIRA",
        options={"jira_project": "MLOPS", "jira_issue_type": "Bug"},
    )
    trello = project.webhooks.add(
        receiver.url,
        ["dataset.created"],
        format="trello",
        secret_env="SHIPYARD_WEBHOOK_TRELLO",
        options={"trello_list": "list-123"},
    )
    receiver.script = [
        (200, {}, b"ok"),
        (201, {}, b'{"id": "10001", "key": "MLOPS-1"}'),
        (400, {}, b'{"message": "invalid token trello-token-99bb"}'),
    ]
    project.datasets.add("sales", sample_csv())
    project.webhooks.deliver()
    by_path = {r.path: r for r in receiver.received}
    body = by_path["/hook"].json()
    assert body["text"].startswith("alice added dataset sales@1")
    assert body["blocks"][0]["type"] == "section"
    issue = by_path["/hook/rest/api/2/issue"]
    fields = issue.json()["fields"]
    assert fields["project"] == {"key": "MLOPS"}
    assert fields["issuetype"] == {"name": "Bug"}
    assert fields["summary"].startswith("alice added dataset sales@1")
    assert "event: dataset.created" in fields["description"]
    expected = base64.b64encode(JIRA_SECRET.encode()).decode()
    assert issue.headers["authorization"] == f"Basic {expected}"
    card = by_path["/hook/1/cards"].json()
    assert (card["idList"], card["key"], card["token"]) == (
        "list-123",
        "trello-key-77aa",
        "trello-token-99bb",
    )
    assert card["name"].startswith("alice added dataset sales@1")
    [failed] = project.webhooks.deliveries(trello.id)
    assert failed.status == "failed" and failed.attempts[0].status_code == 400
    assert "***" in failed.attempts[0].response
    shown = json.dumps(
        [
            [h.to_dict() for h in project.webhooks.list()],
            [d.to_dict() for h in (slack, jira, trello) for d in project.webhooks.deliveries(h.id)],
            [e.to_dict() for e in project.audit.list()],
        ],
        default=str,
    )
    out = capsys.readouterr()
    for secret in (JIRA_SECRET, *JIRA_SECRET.split(":"), *TRELLO_SECRET.split(":")):
        assert secret not in shown
        assert secret not in out.out + out.err
    assert "env SHIPYARD_WEBHOOK_JIRA" in shown


def test_a_mention_in_a_comment_reaches_a_comment_mention_webhook(
    project: Project, receiver: Receiver, sample_csv: Callable[..., Path]
) -> None:
    """carol mentions @abe on sales@1: a webhook on comment.mention gets who, where and the
    text; a comment without a mention sends nothing."""
    project.users.add("abe", "approver")
    project.users.add("carol", "contributor")
    project.datasets.add("sales", sample_csv())
    hook = project.webhooks.add(receiver.url, ["comment.mention"], format="slack")
    carol = project.as_actor("carol")
    carol.comments.add("dataset:sales@1", "no mention here")
    c = carol.comments.add("dataset:sales@1", "@abe the nulls in `amount`?")
    assert project.webhooks.deliver().delivered == 1
    [got] = receiver.received
    assert got.json()["text"] == "carol mentioned @abe on dataset:sales@1"
    [d] = project.webhooks.deliveries(hook.id)
    assert d.payload["data"]["comment_id"] == c.id
    assert d.payload["data"]["mentions"] == ["abe"]
    assert d.payload["data"]["text"] == "@abe the nulls in `amount`?"


def test_a_webhook_that_keeps_failing_is_disabled_and_says_why(
    project: Project, receiver: Receiver, sample_csv: Callable[..., Path]
) -> None:
    """After DISABLE_AFTER deliveries in a row end failed (HTTP 404 is final), the webhook is
    disabled with the reason in `list`; its other queued deliveries are cancelled; enabling
    it again clears the count."""
    receiver.script = [(404, {}, b"gone")] * (DISABLE_AFTER + 2)
    hook = project.webhooks.add(receiver.url, ["dataset.created"], format="slack")
    for i in range(DISABLE_AFTER + 1):
        project.datasets.add(f"d{i}", sample_csv(f"d{i}.csv", rows=[{"x": i}]))
    summary = project.webhooks.deliver()
    assert summary.failed == DISABLE_AFTER
    [listed] = project.webhooks.list()
    assert not listed.enabled
    assert f"after {DISABLE_AFTER} deliveries in a row failed" in (listed.disabled_reason or "")
    assert "HTTP 404" in (listed.disabled_reason or "")
    statuses = sorted(d.status for d in project.webhooks.deliveries(hook.id))
    assert statuses == ["cancelled"] + ["failed"] * DISABLE_AFTER
    assert len(receiver.received) == DISABLE_AFTER
    again = project.webhooks.enable(hook.id)
    assert (again.enabled, again.failures, again.disabled_reason) == (True, 0, None)
    assert [e.action for e in project.audit.list(entity_kind="webhook")][-2:] == [
        "webhook.disable",
        "webhook.enable",
    ]


def test_only_an_admin_manages_webhooks(project: Project, receiver: Receiver) -> None:
    """An approver can neither add nor list webhooks; a bad event or format is refused."""
    project.users.add("abe", "approver")
    with pytest.raises(PermissionDeniedError, match="admin"):
        project.as_actor("abe").webhooks.add(receiver.url, ["model.promoted"], format="slack")
    with pytest.raises(PermissionDeniedError, match="admin"):
        project.as_actor("abe").webhooks.list()
    with pytest.raises(InvalidInputError, match="unknown webhook events"):
        project.webhooks.add(receiver.url, ["model.exploded"], format="slack")
    with pytest.raises(InvalidInputError, match="needs a signing secret"):
        project.webhooks.add(receiver.url, ["model.promoted"])
    with pytest.raises(InvalidInputError, match="jira-project"):
        project.webhooks.add(receiver.url, ["*"], format="jira", secret_env="X")


def test_every_event_is_produced_by_the_audit_action_that_means_it() -> None:
    """Each subscribable event comes from its audit action (and a failed validation, a
    comment without new mentions or a passed validation means nothing)."""
    cases = {
        ("dataset.add", "sales@1", '{"rows": 4}'): ["dataset.created"],
        ("dataset.add", "sales@2", '{"status": "invalid", "contract": "c@1"}'): [
            "dataset.created",
            "dataset.validation_failed",
        ],
        ("dataset.validate", "sales@1", '{"passed": false}'): ["dataset.validation_failed"],
        ("dataset.validate", "sales@1", '{"passed": true}'): [],
        ("model.register", "m@1", "{}"): ["model.registered"],
        ("model.approval_request", "m@1", "{}"): ["approval.requested"],
        ("model.approve", "m@1", "{}"): ["approval.given"],
        ("model.reject", "m@1", "{}"): ["approval.rejected"],
        ("model.promote", "m@1", '{"alias": "production"}'): ["model.promoted"],
        ("model.alias.rollback", "m@1", '{"alias": "production", "from": 2, "to": 1}'): [
            "model.rolled_back"
        ],
        ("deployment.set", "credit", '{"routes": {"production": 100}}'): ["deployment.changed"],
        ("comment.add", "4", '{"new_mentions": ["abe"], "on": "run:x"}'): ["comment.mention"],
        ("comment.edit", "4", '{"new_mentions": []}'): [],
        ("alert.open", "7", '{"monitor": "m", "summary": "s", "notify": [2]}'): ["alert.opened"],
        ("alert.resolve", "7", '{"monitor": "m", "summary": "s"}'): ["alert.resolved"],
        ("model.load", "m@1", "{}"): [],
    }
    seen: set[str] = set()
    for (action, entity, payload), expected in cases.items():
        event = AuditEvent(1, "t", "abe", action, "x", entity, json.loads(payload), "", "")
        got = [w.type for w in events_of(event)]
        assert got == expected, action
        seen.update(got)
    assert seen == set(EVENTS)


def test_an_approval_request_reaches_an_approval_requested_webhook(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    """`approvals.request` records model.approval_request, delivered as approval.requested."""
    from tests.governance.test_governance_service import V1, clone_credit_project

    project = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=False)
    try:
        project.webhooks.add(receiver.url, ["approval.requested"], format="slack")
        project.approvals.request(V1, comment="card is written")
        assert project.webhooks.deliver().delivered == 1
        assert receiver.received[0].json()["text"] == f"alice asks for a review of model {V1}"
    finally:
        project.close()


@pytest.mark.postgres
def test_two_workers_on_one_postgresql_database_never_send_a_delivery_twice(
    tmp_path: Path, pg_schema_url: str, receiver: Receiver, sample_csv: Callable[..., Path]
) -> None:
    """Two projects (two connection pools, as two servers) dispatch and send at the same time:
    each of 12 events is queued once and received once."""
    first = shipyard.init_project(tmp_path / "proj", db_url=pg_schema_url)
    second = shipyard.open_project(tmp_path / "proj", db_url=pg_schema_url)
    try:
        first.webhooks.add(receiver.url, ["dataset.created"], format="slack")
        for i in range(12):
            first.datasets.add(f"d{i}", sample_csv(f"d{i}.csv", rows=[{"x": i}]))
        workers = [DeliveryWorker(p.context) for p in (first, second)]
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def work(worker: DeliveryWorker) -> None:
            try:
                start.wait(10)
                for _ in range(5):
                    worker.run_once()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        texts = [r.json()["text"] for r in receiver.received]  # one per dataset name
        assert len(texts) == 12 and len(set(texts)) == 12
    finally:
        second.close()
        first.close()


def test_an_event_that_means_two_things_queues_both_and_the_queue_goes_on(
    project: Project, receiver: Receiver, sample_csv: Callable[..., Path]
) -> None:
    """A version added despite failing its contract is both dataset.created and
    dataset.validation_failed: a webhook on both gets two deliveries, and later events still
    reach it (the dispatcher's cursor moved on)."""
    from shipyard.data.contracts import Contract

    project.contracts.add("sales", Contract.from_yaml("columns: {amount: {type: float, min: 0}}"))
    project.contracts.bind("sales", "sales", new=True)
    project.webhooks.add(
        receiver.url, ["dataset.created", "dataset.validation_failed"], format="slack"
    )
    bad = sample_csv("bad.csv", text="id,amount\n1,-5.0\n")
    project.datasets.add("sales", bad, on_invalid="allow")
    assert project.webhooks.deliver().delivered == 2
    project.datasets.add("sales", sample_csv("good.csv", text="id,amount\n1,5.0\n"))
    assert project.webhooks.deliver().delivered == 1
    assert len(receiver.received) == 3


def test_a_contributor_posts_to_a_webhook_and_gets_the_delivery_back(
    project: Project, receiver: Receiver
) -> None:
    """Webhooks.post needs the contributor role, and returns the delivery it made to a
    contributor (reading other deliveries stays an admin's)."""
    hook = project.webhooks.add(receiver.url, ["dataset.created"], format="slack")
    project.users.add("carol", "contributor")
    carol = project.as_actor("carol")
    d = carol.webhooks.post(hook.id, "digest", {"summary": "the week"})
    assert (d.event, d.status) == ("digest", "delivered")
    assert receiver.received[0].json()["text"] == "the week"
    with pytest.raises(PermissionDeniedError):
        carol.webhooks.deliveries(hook.id)
    project.users.add("vic", "viewer")
    with pytest.raises(PermissionDeniedError):
        project.as_actor("vic").webhooks.post(hook.id, "digest", {"summary": "no"})


def test_a_secret_can_only_come_from_a_webhook_secret_folder_or_variable(
    project: Project, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin cannot have a webhook read any file or variable of the server and send it to
    its URL: a secret file outside the allowed folders, or a variable not named
    SHIPYARD_WEBHOOK_…, is refused when added, and refused again when sent if the folder
    stopped being allowed; .shipyard/webhook-secrets is always allowed."""
    monkeypatch.setenv("SHIPYARD_DB_PASSWORD", "hunter2")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.secret"
    outside.write_text("user:pass", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="secret file must be in"):
        project.webhooks.add(
            receiver.url, ["dataset.created"], format="jira", secret_file=str(outside),
            options={"jira_project": "OPS"},
        )  # fmt: skip
    with pytest.raises(InvalidInputError, match="SHIPYARD_WEBHOOK_"):
        project.webhooks.add(
            receiver.url, ["dataset.created"], format="jira", secret_env="SHIPYARD_DB_PASSWORD",
            options={"jira_project": "OPS"},
        )  # fmt: skip
    folder = project.settings.webhook_secret_dirs[0]
    folder.mkdir(parents=True)
    (folder / "jira.secret").write_text("ann@example.com:tok", encoding="utf-8")
    hook = project.webhooks.add(
        receiver.url, ["dataset.created"], format="jira", secret_file=str(folder / "jira.secret"),
        options={"jira_project": "OPS"},
    )  # fmt: skip
    assert project.webhooks.test(hook.id).status == "delivered"
    inside = tmp_path / "generic.secret"
    inside.write_text(new_secret(), encoding="utf-8")
    generic = project.webhooks.add(receiver.url, ["dataset.created"], secret_file=str(inside))
    monkeypatch.setenv("SHIPYARD_WEBHOOKS_SECRET_DIRS", str(folder))
    with shipyard.open_project(project.settings.root, actor="alice") as later:
        d = later.webhooks.test(generic.id)
    assert d.status != "delivered"
    assert "secret file must be in" in (d.attempts[-1].error or "")
    assert len(receiver.received) == 1


def test_the_audit_log_records_only_a_webhooks_origin(project: Project, receiver: Receiver) -> None:
    """A webhook's path can be its credential (Discord, Teams): the audit log, which every
    user reads, records only the scheme, host and port when it is added and removed."""
    url = receiver.url + "/T0KEN-5f1e2d?sig=abc"
    hook = project.webhooks.add(url, ["dataset.created"], format="slack")
    project.webhooks.remove(hook.id)
    events = [e for e in project.audit.list() if e.action.startswith("webhook.")]
    assert [e.action for e in events] == ["webhook.add", "webhook.remove"]
    origin = receiver.url.rsplit("/", 1)[0] + "/…"
    assert all(e.payload["url"] == origin for e in events)
    assert "T0KEN" not in json.dumps([e.to_dict() for e in events])
