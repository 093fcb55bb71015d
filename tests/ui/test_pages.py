"""The web UI in process: sessions and CSRF, security headers, every page for a viewer,
role-aware actions that the services still decide, sanitised Markdown, artifact previews and
the local UI of ``shipyard ui``."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from shipyard._internal.markdown import render_markdown
from shipyard.project import Project
from shipyard.server.app import create_app
from shipyard.server.ui.sessions import SESSION_COOKIE, SessionSigner
from tests.server.conftest import Team, TestClient
from tests.ui.conftest import csrf_of, log_in

MODEL_PAGE = "/models/credit-risk/1"
PAGES = [
    "/",
    "/datasets",
    "/datasets/credit",
    "/datasets/credit/1",
    "/datasets/credit.train/1",
    "/datasets/credit.train/diff?a=1&b=1",
    "/contracts",
    "/contracts/applicants",
    "/features",
    "/models",
    "/models/credit-risk",
    MODEL_PAGE,
    "/deployments",
    "/deployments/credit-risk",
    "/deployments/credit-risk/metrics?window=900",
    "/audit?actor=alice&limit=20",
    "/runs",
]


def test_without_a_session_a_page_sends_the_browser_to_the_login_page(ui: TestClient) -> None:
    """No cookie: a page redirects to /login (remembering the page), an htmx request gets a
    401 that tells htmx where to go, and a POST is refused."""
    page = ui.get(MODEL_PAGE, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fmodels%2Fcredit-risk%2F1"
    fragment = ui.get("/audit", headers={"HX-Request": "true"}, follow_redirects=False)
    assert fragment.status_code == 401 and fragment.headers["hx-redirect"].startswith("/login")
    post = ui.post(f"{MODEL_PAGE}/approve", data={}, follow_redirects=False)
    assert post.status_code == 401 and "Log in" in post.text


def test_every_page_renders_for_a_viewer_and_names_them(ui: TestClient, team: Team) -> None:
    """vic (viewer) logs in and sees every page, each naming him and offering a logout."""
    log_in(ui, team.tokens["viewer"])
    for path in PAGES:
        response = ui.get(path)
        assert response.status_code == 200, f"{path}: {response.text[:300]}"
        assert 'id="current-user" data-user="vic"' in response.text or "metrics" in path, path
        if "metrics" not in path:  # a fragment has no header
            assert 'id="logout"' in response.text


def test_ui_responses_carry_the_security_headers_and_the_api_keeps_its_own(
    ui: TestClient,
) -> None:
    """Pages, the login page and static files forbid inline scripts, framing and sniffing;
    the REST API (whose docs page loads its own scripts) is left as it was."""
    for path in ("/login", "/static/shipyard.js", "/static/vendor/plotly.min.js"):
        headers = ui.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-eval" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    assert "content-security-policy" not in ui.get("/api/v1/users").headers


def test_scripts_come_from_the_server_itself(ui: TestClient, team: Team) -> None:
    """htmx (with its licence) and the plotly.js of the plotly wheel are served locally, and
    no page loads a script from elsewhere or inline."""
    htmx = ui.get("/static/htmx.min.js").text
    assert htmx.startswith("/*! htmx 2.") and "Zero-Clause BSD" in htmx
    assert "plotly.js v" in ui.get("/static/vendor/plotly.min.js").text[:200]
    log_in(ui, team.tokens["viewer"])
    html = ui.get(MODEL_PAGE).text
    assert '<script src="/static/vendor/plotly.min.js' in html
    assert "<script>" not in html and "http://" not in html.split("<main>")[0]


def test_the_session_cookie_holds_no_token_and_is_httponly_and_strict(
    ui: TestClient, team: Team, project: Project
) -> None:
    """The cookie names the token by id only, signed with a key only the server's user can
    read, and scripts and other sites never get it."""
    token = team.tokens["viewer"]
    form = ui.get("/login")
    response = ui.post(
        "/login",
        data={"token": token, "csrf_token": csrf_of(form.text), "next": "/datasets"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/datasets"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http in this test; https adds it
    secret = token.split("_", 2)[2]
    assert secret not in cookie and token.split("_")[1] in cookie
    signing_key = project.root / ".shipyard" / "ui-secret"
    assert signing_key.stat().st_mode & 0o777 == 0o600


def test_login_goes_only_to_pages_of_this_site(ui: TestClient, team: Team) -> None:
    """A ``next`` naming another site is ignored (no open redirect)."""
    form = ui.get("/login?next=//evil.example/x")
    assert 'value="/"' in form.text
    response = ui.post(
        "/login",
        data={"token": team.tokens["viewer"], "csrf_token": csrf_of(form.text), "next": "//e.x"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_a_forged_or_tampered_cookie_is_no_session(ui: TestClient, team: Team) -> None:
    """Only cookies signed with the server's secret count, and not after they expire."""
    log_in(ui, team.tokens["viewer"])
    real = ui.cookies[SESSION_COOKIE]
    token_id = team.tokens["admin"].split("_")[1]
    forged = [
        SessionSigner(b"x" * 32).issue(token_id, lifetime_seconds=60),  # another secret
        real.replace(real[:16], token_id),  # the admin's token id under vic's signature
        real[:-2] + ("AA" if not real.endswith("AA") else "BB"),
    ]
    for value in forged:
        ui.cookies.set(SESSION_COOKIE, value)
        assert ui.get("/", follow_redirects=False).status_code == 303, value
    signer: SessionSigner = ui.app.state.ui.signer  # type: ignore[attr-defined]
    expired = signer.issue(token_id, lifetime_seconds=-1)
    assert signer.read(expired) is None
    assert signer.read(signer.issue(token_id, lifetime_seconds=5)) is not None


def test_revoking_the_token_ends_its_sessions(ui: TestClient, team: Team, project: Project) -> None:
    """Each request re-checks the session's token: revoked, the next page asks to log in."""
    log_in(ui, team.tokens["viewer"])
    assert ui.get("/").status_code == 200
    project.tokens.revoke(team.tokens["viewer"].split("_")[1])
    response = ui.get("/datasets", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_a_failed_login_is_refused_and_counted_by_the_failure_throttle(ui: TestClient) -> None:
    """A wrong token shows the login page again with why, and counts like a bad bearer
    token, so guessing through the form is as slow as through the API."""
    form = ui.get("/login")
    bad = "shp_0123456789abcdef_" + "A" * 43
    response = ui.post("/login", data={"token": bad, "csrf_token": csrf_of(form.text)})
    assert response.status_code == 401
    assert "login refused: unknown token 0123456789abcdef" in response.text
    assert SESSION_COOKIE not in response.cookies
    assert ui.app.state.throttle.count("testclient") == 1  # type: ignore[attr-defined]


def test_a_post_without_its_csrf_token_is_refused(
    ui: TestClient, team: Team, project: Project
) -> None:
    """An approver's session alone does not approve: the form's token must come too (as a
    field or an htmx header), so another site cannot post in the user's name."""
    log_in(ui, team.tokens["approver"])
    csrf = csrf_of(ui.get(MODEL_PAGE).text)
    for data, headers in (({}, {}), ({"csrf_token": "forged"}, {}), ({}, {"X-CSRF-Token": "x"})):
        refused = ui.post(f"{MODEL_PAGE}/approve", data=data, headers=headers)
        assert refused.status_code == 403 and "security token" in refused.text
    assert project.approvals.list("credit-risk@1") == []
    no_login_csrf = ui.post("/login", data={"token": team.tokens["viewer"]})
    assert no_login_csrf.status_code == 403
    verified = ui.post("/audit/verify", headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert verified.status_code == 200 and 'id="verify-ok"' in verified.text


def test_a_viewer_has_no_approve_button_and_the_service_refuses_their_post(
    ui: TestClient, team: Team, project: Project
) -> None:
    """The page hides what vic may not do; posting anyway gets the service's 403 as a
    message, and nothing changes."""
    log_in(ui, team.tokens["viewer"])
    html = ui.get(MODEL_PAGE).text
    assert 'id="approve"' not in html and 'id="promote"' not in html
    response = ui.post(f"{MODEL_PAGE}/approve", data={"csrf_token": csrf_of(html)})
    assert response.status_code == 403
    assert "user &#39;vic&#39; is a viewer and cannot approve models" in response.text
    assert 'data-user="vic"' in response.text
    assert project.approvals.list("credit-risk@1") == []


def test_an_approver_approves_from_the_model_page(
    ui: TestClient, team: Team, project: Project
) -> None:
    """abe sees the buttons, approves with a comment, and the version is approved, recorded
    as his, through his token."""
    log_in(ui, team.tokens["approver"])
    html = ui.get(MODEL_PAGE).text
    assert 'id="approve"' in html and 'id="promote"' in html
    response = ui.post(
        f"{MODEL_PAGE}/approve",
        data={"csrf_token": csrf_of(html), "comment": "checked the card"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == MODEL_PAGE
    assert project.approvals.standing("credit-risk@1") == "approved"
    event = project.audit.list(action="model.approve")[-1]
    assert event.actor == "abe" and event.token_id == team.tokens["approver"].split("_")[1]
    assert '<span class="status approved">approved</span>' in ui.get(MODEL_PAGE).text


def test_a_refused_promotion_shows_every_failed_check(ui: TestClient, team: Team) -> None:
    """Promoting an unapproved version: the policy's refusal is the page's message."""
    log_in(ui, team.tokens["approver"])
    html = ui.get(MODEL_PAGE).text
    response = ui.post(
        f"{MODEL_PAGE}/promote", data={"csrf_token": csrf_of(html), "alias": "production"}
    )
    assert response.status_code == 422
    assert "promotion of credit-risk@1 to production refused" in response.text


def test_user_written_text_is_sanitised_markdown(
    ui: TestClient, team: Team, project: Project
) -> None:
    """A dataset message with a script and a javascript: link is shown as Markdown without
    either."""
    message = (
        "**reviewed** <script>alert('x')</script> [click](javascript:alert(1)) "
        '<a href="javascript:alert(2)">raw</a> [ok](https://e.org)'
    )
    project.datasets.add("notes", pl.DataFrame({"a": [1, 2]}), message=message)
    log_in(ui, team.tokens["viewer"])
    html = ui.get("/datasets/notes").text
    assert "<strong>reviewed</strong>" in html
    assert "<script>alert" not in html and "alert('x')" not in html
    assert 'href="javascript' not in html and ">raw</a>" in html
    assert '<a href="https://e.org" rel="noopener noreferrer nofollow">ok</a>' in html


def test_render_markdown_removes_scripts_handlers_and_script_urls() -> None:
    """The sanitiser keeps formatting and plain links only."""
    html = str(
        render_markdown(
            '<img src=x onerror="alert(1)"> <a href="javascript:alert(1)">a</a> '
            "<iframe src='https://e.org'></iframe> `code` | a |\n|---|\n| 1 |"
        )
    )
    for bad in ("onerror", "javascript:", "<iframe", "<img"):
        assert bad not in html
    assert "<code>code</code>" in html


def test_a_run_page_lists_artifacts_with_previews_and_charts(
    ui: TestClient, team: Team, project: Project, tmp_path: Path
) -> None:
    """Text, CSV, Parquet and image artifacts are previewed; metrics with a history get a
    chart each, system metrics their own; an artifact downloads, an SVG never inline."""
    files = tmp_path / "artifacts"
    files.mkdir()
    (files / "notes.txt").write_text("learning rate was halved at step 3\n")
    pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}).write_csv(files / "pred.csv")
    pl.DataFrame({"score": [0.25, 0.75]}).write_parquet(files / "scores.parquet")
    (files / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    (files / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    with project.start_run("ui", name="previewed") as run:
        for step in range(5):
            run.log_metrics({"loss": 1 / (step + 1), "system.cpu_percent": 10.0 + step}, step=step)
        run.log_artifact(files, name="out")
    log_in(ui, team.tokens["viewer"])
    html = ui.get(f"/runs/{run.id}").text
    assert "learning rate was halved" in html
    assert "<th>x</th><th>y</th>" in html and "<td>0.75</td>" in html
    assert f'<img src="/runs/{run.id}/artifacts/out/plot.png"' in html
    assert html.count('class="chart"') == 2 and 'id="system-charts"' in html
    png = ui.get(f"/runs/{run.id}/artifacts/out/plot.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    svg = ui.get(f"/runs/{run.id}/artifacts/out/drawing.svg")
    assert svg.headers["content-type"] == "application/octet-stream"
    assert svg.headers["content-disposition"].startswith("attachment")


def test_the_local_ui_acts_as_the_os_user_without_login(project: Project, team: Team) -> None:
    """``shipyard ui``: no login, but only a browser that opened the printed address (with
    this launch's key) is answered; the user named, POSTs still need the page's CSRF token,
    and only loopback host names are answered (no DNS rebinding)."""
    del team
    app = create_app(project, ui_actor="abe")
    with TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1:8000") as c:
        # Without this launch's key (another user of the machine), only the way in answers.
        refused = c.get("/", follow_redirects=True)
        assert refused.status_code == 401 and "the address `shipyard ui` printed" in refused.text
        assert c.get("/local-login?key=guess", follow_redirects=False).headers["location"] == (
            "/login"
        )
        c.get(f"/local-login?key={app.state.ui.local_key}")
        home = c.get("/")
        assert home.status_code == 200 and 'data-user="abe"' in home.text
        assert 'id="logout"' not in home.text
        assert c.post(f"{MODEL_PAGE}/approve", data={}).status_code == 403
        ok = c.post(f"{MODEL_PAGE}/approve", data={"csrf_token": csrf_of(home.text)})
        assert ok.status_code == 200  # followed the redirect back to the page
        assert c.get("/", headers={"host": "evil.example"}).status_code == 400
    assert project.approvals.list("credit-risk@1")[0].approver == "abe"


@pytest.mark.parametrize("lifetime", [3600])
def test_a_session_never_outlives_its_token(
    ui: TestClient, project: Project, team: Team, lifetime: int
) -> None:
    """A token that expires in an hour gives a session of at most an hour."""
    del team
    token = project.tokens.create("vic", expires=f"{lifetime}s").token
    log_in(ui, token)
    signer: SessionSigner = ui.app.state.ui.signer  # type: ignore[attr-defined]
    session = signer.read(ui.cookies[SESSION_COOKIE])
    assert session is not None and session.expires <= time.time() + lifetime + 1


def test_a_deployment_page_shows_the_prediction_logs_figures_for_a_window(
    ui: TestClient, team: Team, project: Project
) -> None:
    """Four answers of credit-risk@1 logged under the default deployment, two labelled (one
    right) and a KPI: the page counts them, with accuracy 0.5, and the window selector asks
    for the figures alone."""
    from shipyard.serving.prediction_log import PredictionLog, PredictionRecord

    now = int(time.time() * 1000)
    log = PredictionLog(project, "credit-risk", flush_seconds=0.05)
    log.put(
        PredictionRecord(f"{i:032x}", now, "credit-risk@1", False, {"x": i}, i % 2, 2.0 + i)
        for i in range(4)
    )
    log.close()
    project.predictions.record_feedback("credit-risk", [(f"{0:032x}", 0), (f"{1:032x}", 0)])
    project.predictions.record_kpi("credit-risk", "revenue", 12.5)
    log_in(ui, team.tokens["viewer"])
    html = ui.get("/deployments/credit-risk").text
    assert '<th>predictions</th><td class="num">4</td>' in html
    assert '<td>credit-risk@1</td><td class="num">4</td>' in html and ">0.5</td>" in html
    assert '<td>revenue</td><td class="num">1</td><td class="num">12.5</td>' in html
    assert 'hx-get="/deployments/credit-risk/metrics"' in html
    fragment = ui.get("/deployments/credit-risk/metrics?window=900").text
    assert fragment.lstrip().startswith('<div class="grid">') and "<html" not in fragment


def test_the_model_page_shows_the_newest_evaluation(
    ui: TestClient, team: Team, project: Project
) -> None:
    """With two evaluations of a version, the page shows the one made last (as the model card
    does), and says that there are two."""
    project.evaluations.evaluate("credit-risk@1", "credit.train@1", bootstrap=0)
    log_in(ui, team.tokens["viewer"])
    html = ui.get(MODEL_PAGE).text
    assert "(2 evaluations; the latest is shown)" in html
    shown = html.split("(2 evaluations", 1)[0].rsplit("On ", 1)[1]
    assert "credit.train@1" in shown and "credit.test@1" not in shown


def test_column_types_read_as_people_write_them(
    ui: TestClient, team: Team, project: Project
) -> None:
    """The schema table of a version shows `datetime[us, UTC]`, not Python's
    `Datetime(time_unit='us', time_zone='UTC')`; a diff names the old and new types alike."""
    at = pl.Series("at", [1_700_000_000_000_000, 1_700_000_060_000_000]).cast(pl.Datetime("us"))
    project.datasets.add("events", pl.DataFrame({"id": [1, 2], "at": at}))
    project.datasets.add(
        "events", pl.DataFrame({"id": [1, 2], "at": at.dt.replace_time_zone("UTC")})
    )
    log_in(ui, team.tokens["viewer"])
    page = ui.get("/datasets/events/2").text
    assert "<code>datetime[us, UTC]</code>" in page and "time_unit" not in page
    diff = ui.get("/datasets/events/diff?a=1&b=2").text
    assert "at: datetime[us] → datetime[us, UTC]" in diff and "time_unit" not in diff
