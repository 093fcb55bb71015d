"""Comments on the entity pages of the web UI, in process: the block htmx loads into a page,
adding (a contributor) and the viewer's refusal, editing one's own comment with its history,
sanitised Markdown with highlighted mentions, and the redirect of a post without htmx."""

from __future__ import annotations

from urllib.parse import quote

from shipyard.project import Project
from tests.server.conftest import Team, TestClient
from tests.ui.conftest import csrf_of, log_in

MODEL = "model:credit-risk@1"
BLOCK = f"/comments?on={quote(MODEL)}"


def _htmx(client: TestClient, page: str) -> dict[str, str]:
    """The headers htmx sends from ``page`` (its CSRF token included)."""
    return {"HX-Request": "true", "X-CSRF-Token": csrf_of(client.get(page).text)}


def test_a_contributor_comments_on_a_model_version_with_markdown_and_a_mention(
    ui: TestClient, team: Team, project: Project
) -> None:
    """carol opens the model page (its comments block loads from /comments), posts Markdown
    with a mention and a script; the refreshed block shows it sanitised, the mention
    highlighted, and the comment is hers."""
    log_in(ui, team.tokens["contributor"])
    page = ui.get("/models/credit-risk/1").text
    assert 'hx-get="/comments?on=model%3Acredit-risk%401"' in page
    block = ui.get(BLOCK).text
    assert 'id="no-comments"' in block and 'id="comment-form"' in block
    posted = ui.post(
        BLOCK,
        data={"text": "**Looks right**; @abe please review <script>alert(1)</script>"},
        headers=_htmx(ui, "/models/credit-risk/1"),
    )
    assert posted.status_code == 200, posted.text
    assert "<strong>Looks right</strong>" in posted.text
    assert '<span class="mention">@abe</span> please review' in posted.text
    assert "<script>alert" not in posted.text
    assert 'id="comment-count">(1)' in posted.text
    [comment] = project.comments.list(MODEL)
    assert (comment.author, comment.mentions) == ("carol", ("abe",))


def test_a_viewer_reads_comments_but_gets_the_services_refusal_when_posting(
    ui: TestClient, team: Team, project: Project
) -> None:
    """vic sees carol's comment without a form or an edit button; his post (with a valid
    CSRF token) is answered 403 with the service's message, and nothing is added."""
    project.as_actor("carol").comments.add(MODEL, "first look")
    log_in(ui, team.tokens["viewer"])
    block = ui.get(BLOCK).text
    assert "first look" in block and 'data-author="carol"' in block
    assert 'id="comment-form"' not in block and "comment-edit" not in block
    refused = ui.post(BLOCK, data={"text": "me too"}, headers=_htmx(ui, "/models/credit-risk/1"))
    assert refused.status_code == 403
    assert "vic&#39; is a viewer and cannot comment" in refused.text
    assert [c.text for c in project.comments.list(MODEL)] == ["first look"]


def test_a_post_without_the_csrf_token_is_refused(ui: TestClient, team: Team) -> None:
    """A form post that lacks the session's CSRF token never reaches the service."""
    log_in(ui, team.tokens["contributor"])
    refused = ui.post(BLOCK, data={"text": "hi"}, headers={"HX-Request": "true"})
    assert refused.status_code == 403 and "security token" in refused.text


def test_the_author_edits_their_comment_and_its_history_keeps_every_text(
    ui: TestClient, team: Team, project: Project
) -> None:
    """carol gets an edit form for her comment only, saves a new text, and the block marks
    it edited; the history (fragment and page) lists both texts; abe may not edit it."""
    mine = project.as_actor("carol").comments.add(MODEL, "auc is 0.71")
    theirs = project.as_actor("abe").comments.add(MODEL, "checked the card")
    log_in(ui, team.tokens["contributor"])
    block = ui.get(BLOCK).text
    assert f'hx-get="/comments/{mine.id}/edit"' in block
    assert f'hx-get="/comments/{theirs.id}/edit"' not in block
    form = ui.get(f"/comments/{mine.id}/edit", headers={"HX-Request": "true"}).text
    assert "auc is 0.71</textarea>" in form
    saved = ui.post(
        f"/comments/{mine.id}",
        data={"text": "auc is 0.74 on the new split, @vic"},
        headers=_htmx(ui, "/models/credit-risk/1"),
    )
    assert saved.status_code == 200, saved.text
    assert "auc is 0.74 on the new split" in saved.text and "(2 versions)" in saved.text
    fragment = ui.get(f"/comments/{mine.id}/history", headers={"HX-Request": "true"}).text
    assert fragment.index("auc is 0.71") < fragment.index("auc is 0.74")
    assert '<span class="mention">@vic</span>' in fragment
    history_page = ui.get(f"/comments/{mine.id}/history").text
    assert 'href="/models/credit-risk/1#comments"' in history_page and "auc is 0.71" in history_page

    log_in(ui, team.tokens["approver"])
    refused = ui.post(
        f"/comments/{mine.id}", data={"text": "x"}, headers=_htmx(ui, "/models/credit-risk/1")
    )
    assert refused.status_code == 403 and "only its author edits it" in refused.text
    assert project.comments.get(mine.id).text == "auc is 0.74 on the new split, @vic"


def test_a_post_without_htmx_returns_to_the_entitys_page(
    ui: TestClient, team: Team, project: Project
) -> None:
    """A plain form post (no JavaScript) adds the comment and redirects to the page it is on;
    so does an edit."""
    log_in(ui, team.tokens["contributor"])
    page = ui.get("/datasets/credit/1").text
    on = quote("dataset:credit@1")
    assert f'hx-get="/comments?on={on}"' in page
    posted = ui.post(
        f"/comments?on={on}",
        data={"text": "Q1 batch", "csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/datasets/credit/1#comments"
    [comment] = project.comments.list("dataset:credit@1")
    edited = ui.post(
        f"/comments/{comment.id}",
        data={"text": "Q1 batch, checked", "csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert edited.headers["location"] == "/datasets/credit/1#comments"


def test_run_and_deployment_pages_carry_their_comments(
    ui: TestClient, team: Team, project: Project
) -> None:
    """A run's page and a stored deployment's page load their own comments; the default
    deployment (not stored, nothing to comment on) has no comments block."""
    log_in(ui, team.tokens["viewer"])
    assert "comments?on=" not in ui.get("/deployments/credit-risk").text
    abe = project.as_actor("abe")
    abe.approvals.approve("credit-risk@1")
    abe.promotions.promote("credit-risk@1", to="production")
    abe.deployments.set("credit-risk", {"production": 100})
    run_id = project.models.get("credit-risk@1").run_id
    assert run_id is not None
    for entity, path in [(f"run:{run_id}", f"/runs/{run_id}"), ("deployment:credit-risk", "")]:
        project.as_actor("carol").comments.add(entity, f"note on {entity}")
        page = ui.get(path or "/deployments/credit-risk").text
        assert f'hx-get="/comments?on={quote(entity)}"' in page, entity
        assert f"note on {entity}" in ui.get(f"/comments?on={quote(entity)}").text
