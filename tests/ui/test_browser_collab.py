"""Collaboration in a real browser (Playwright driving Debian's Chromium): a comment with a
mention posted from a model page reaches a webhook receiver on 127.0.0.1 through the live
server's background delivery worker, and the generated docs open from disk and search
without a server. Screenshots go with those of tests/ui/test_browser.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from shipyard.collaboration.webhooks import new_secret
from shipyard.project import Project
from tests.collaboration.conftest import Receiver, receiver, webhook_settings
from tests.server.conftest import Team, running_server
from tests.ui.test_browser import MODEL_PAGE, _log_in, _page

__all__ = ["receiver", "webhook_settings"]  # fixtures of tests/collaboration, used here

#: The same worker as tests/ui/test_browser.py, so `pytest -n` starts one browser.
pytestmark = pytest.mark.xdist_group("browser")

#: The longest a test waits for the background worker to deliver.
DELIVERY_SECONDS = 10.0


@pytest.fixture
def live_delivering(project: Project, team: Team) -> Iterator[str]:
    """A live server over the credit project whose webhook worker runs in the background
    (webhooks may reach 127.0.0.1: ``webhook_settings``); its base URL."""
    del team
    with running_server(project, background=True) as url:
        yield url


def test_a_mention_in_a_comment_reaches_the_webhook_receiver(
    browser: Any,
    live_delivering: str,
    team: Team,
    project: Project,
    receiver: Receiver,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    """alice subscribes a receiver to mentions; carol comments "@abe" on credit-risk@1 from
    its page, sees her comment with the mention highlighted, and the server's worker posts a
    signed ``comment.mention`` naming abe to the receiver, with no call to deliver. A blank
    comment's refusal shows in the form."""
    secret = new_secret()
    secrets = project.settings.webhook_secret_dirs[0]  # .shipyard/webhook-secrets
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "hook.secret").write_text(secret, encoding="utf-8")
    project.webhooks.add(
        receiver.url, ["comment.mention"], secret_file=str(secrets / "hook.secret")
    )
    page, violations = _page(browser, live_delivering)
    _log_in(page, team.tokens["contributor"])
    page.goto(MODEL_PAGE)
    page.fill("#comment-text", "Calibration looks off above 0.8; @abe can you **review**?")
    page.click("#comment-add")
    page.wait_for_selector("#comment-list .comment .mention")
    assert page.text_content("#comment-list .comment .mention") == "@abe"
    assert page.text_content("#comment-list .comment strong.author") == "carol"
    page.locator("#comments").screenshot(path=str(screenshots / "model-comments.png"))
    page.fill("#comment-text", "   ")  # refused by the service: its message shows in the form
    page.click("#comment-add")
    page.wait_for_selector("#comment-form .form-error .flash.error")
    assert "a comment needs some text" in page.text_content("#comment-form .form-error")

    deadline = time.monotonic() + DELIVERY_SECONDS
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(receiver.received) == 1, "the worker did not deliver within the bound"
    delivery = Verifier(secret).verify(receiver.received[0].body, receiver.received[0].headers)
    assert delivery["type"] == "comment.mention"
    assert delivery["data"]["mentions"] == ["abe"]
    assert (delivery["data"]["actor"], delivery["data"]["on"]) == ("carol", "model:credit-risk@1")
    assert violations == []
    page.context.close()


def test_the_generated_docs_open_from_disk_and_search(
    browser: Any, project: Project, tmp_path: Path, screenshots: Path
) -> None:
    """The docs site built from the project opens as file:// pages; typing a model's name in
    the search box lists it, and its result opens the model's page, all without a server."""
    site = tmp_path / "site"
    project.docs.build(site)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((site / "index.html").as_uri())
    page.fill("#search-input", "credit-risk")
    page.wait_for_selector("#search-results a.result")
    titles = page.eval_on_selector_all("#search-results a.result", "els => els.map(e => e.text)")
    assert any("credit-risk" in t for t in titles), titles
    page.screenshot(path=str(screenshots / "docs-search.png"))
    page.fill("#search-input", "no-such-thing-anywhere")
    page.wait_for_selector("#search-results .empty")
    page.fill("#search-input", "credit-risk")
    page.click("#search-results a.result >> nth=0")
    page.wait_for_load_state()
    assert page.url.startswith("file://") and "credit-risk" in page.content()
    assert all(url.startswith("file://") for url in requests), requests
    context.close()
