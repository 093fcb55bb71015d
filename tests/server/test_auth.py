"""Tokens and authentication: stored hashed, shown once, expiring and revocable; a request's
token names the actor of every change it makes, and failures are slowed down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from shipyard.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.project import Project
from shipyard.server import auth
from shipyard.stores.db.tables import api_tokens
from tests.server.conftest import Team, TestClient


def test_health_and_version_need_no_token_and_everything_else_does(api: TestClient) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/version").json()["api"] == "v1"
    response = api.get("/api/v1/users")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_is_shown_once_and_stored_only_as_a_salted_hash(project: Project) -> None:
    new = project.tokens.create(label="ci")
    secret = new.token.split("_", 2)[2]
    with project.db.read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == new.info.id)).one()
    assert secret not in str(tuple(row)) and new.token not in str(tuple(row))
    assert "token" not in project.tokens.get(new.info.id).to_dict()
    events = project.audit.list(entity=new.info.id)
    assert [e.action for e in events] == ["token.create"]
    assert new.token not in str(events[0].to_dict())


def test_the_token_user_is_the_actor_and_events_record_the_token(
    project: Project, team: Team, api: TestClient
) -> None:
    me = api.get("/api/v1/users/me", headers=team.headers("approver")).json()
    assert me["name"] == "abe" and me["role"] == "approver"
    made = api.post("/api/v1/tokens", json={"label": "second"}, headers=team.headers("viewer"))
    assert made.status_code == 200, made.text
    token_id = made.json()["id"]
    event = project.audit.list(entity=token_id)[0]
    assert event.actor == "vic"
    assert event.token_id == team.tokens["viewer"].split("_")[1]
    assert project.audit.verify().ok


@pytest.mark.parametrize(
    "header",
    [
        "Bearer shp_0123456789abcdef_" + "A" * 43,  # unknown id
        "Bearer not-a-token",
        "Token abc",
        "Basic !!!",
    ],
)
def test_bad_credentials_are_401_and_never_echo_the_token(api: TestClient, header: str) -> None:
    response = api.get("/api/v1/users", headers={"Authorization": header})
    assert response.status_code == 401
    assert "A" * 43 not in response.text and "not-a-token" not in response.text


def test_a_wrong_secret_for_a_real_id_is_refused(team: Team, api: TestClient) -> None:
    real = team.tokens["admin"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    response = api.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert "does not match" in response.json()["message"]


def test_basic_auth_with_the_token_as_password_works_for_its_user_only(
    team: Team, api: TestClient
) -> None:
    ok = api.get("/api/v1/users/me", auth=("carol", team.tokens["contributor"]))
    assert ok.status_code == 200 and ok.json()["name"] == "carol"
    wrong = api.get("/api/v1/users/me", auth=("alice", team.tokens["contributor"]))
    assert wrong.status_code == 401


def test_revoked_and_expired_tokens_are_refused_from_the_next_request(
    project: Project, team: Team, api: TestClient
) -> None:
    headers = team.headers("contributor")
    assert api.get("/api/v1/users/me", headers=headers).status_code == 200
    token_id = team.tokens["contributor"].split("_")[1]
    # carol revokes her own token through the API
    revoked = api.delete(f"/api/v1/tokens/{token_id}", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    after = api.get("/api/v1/users/me", headers=headers)
    assert after.status_code == 401 and "revoked" in after.json()["message"]

    short = project.tokens.create("vic", expires=timedelta(microseconds=1))
    response = api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {short.token}"})
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_only_the_owner_or_an_admin_manages_a_token(project: Project, team: Team) -> None:
    del team
    carol = project.as_actor("carol")
    mine = carol.tokens.create(label="mine")
    with pytest.raises(PermissionDeniedError):
        carol.tokens.create("abe")
    with pytest.raises(PermissionDeniedError):
        carol.tokens.list("abe")
    abe_token = project.tokens.create("abe")  # alice is admin
    with pytest.raises(NotFoundError):
        carol.tokens.revoke(abe_token.info.id)
    assert {t.id for t in carol.tokens.list()} >= {mine.info.id}
    assert project.tokens.revoke(mine.info.id).revoked_by == "alice"
    with pytest.raises(NotFoundError, match="users add"):
        project.tokens.create("nobody")
    with pytest.raises(InvalidInputError, match="duration"):
        project.tokens.create(expires="soon")


def test_repeated_failures_from_one_address_are_slowed_then_refused(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(auth.asyncio, "sleep", record_sleep)
    bad = {"Authorization": "Bearer shp_0123456789abcdef_" + "B" * 43}
    statuses = [
        api.get("/api/v1/users", headers=bad).status_code for _ in range(auth.REFUSE_AFTER + 2)
    ]
    assert statuses[: auth.REFUSE_AFTER] == [401] * auth.REFUSE_AFTER
    assert statuses[-1] == 429
    assert slept[0] > 0 and len(slept) == auth.REFUSE_AFTER - auth.FREE_FAILURES
    assert slept == sorted(slept) and max(slept) == auth.MAX_DELAY_SECONDS


def test_audit_verify_catches_a_token_row_forged_or_unrevoked_with_sql(project: Project) -> None:
    from sqlalchemy import update

    kept = project.tokens.create(label="kept")
    gone = project.tokens.create(label="gone")
    project.tokens.revoke(gone.info.id)
    assert project.audit.verify().ok
    with project.db.write() as conn:
        conn.execute(
            update(api_tokens).where(api_tokens.c.id == gone.info.id).values(revoked_at=None)
        )
        conn.execute(
            update(api_tokens).where(api_tokens.c.id == kept.info.id).values(hash="0" * 64)
        )
    report = project.audit.verify()
    assert not report.ok
    flagged = {(m.table, m.key) for m in report.state}
    assert flagged == {("api_tokens", gone.info.id), ("api_tokens", kept.info.id)}
