"""The web UI in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``,
installed by ``.ci/run``; never ``playwright install``) against a live server.

Screenshots of the main pages go to ``ui-screenshots*/`` under the run's pytest temporary
folder (``pytest --basetemp DIR`` to choose it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.project import Project
from tests.server.conftest import Team, running_server

#: One worker runs them all, so `pytest -n` starts one browser, not one per worker.
pytestmark = pytest.mark.xdist_group("browser")

MODEL_PAGE = "/models/credit-risk/1"
#: The charts of credit-risk@1's evaluation and their traces: metrics with intervals, ROC
#: (with the diagonal), precision-recall, calibration (with the diagonal), the confusion
#: matrix, one bar per gender group, permutation importance.
EVALUATION_TRACES = [1, 2, 1, 2, 1, 3, 1]


@pytest.fixture
def live(project: Project, team: Team) -> Iterator[str]:
    """A live server over the credit project with its team; its base URL."""
    del team
    with running_server(project) as url:
        yield url


def _page(browser: Any, base: str) -> tuple[Any, list[str]]:
    """A page in a fresh context (its own cookies) and the CSP violations it reports."""
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page, violations


def _log_in(page: Any, token: str) -> None:
    page.goto("/login")
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_selector("#current-user")


def _traces(page: Any) -> list[int]:
    """The number of traces plotly drew in each chart of the page's evaluation section."""
    page.wait_for_function(
        "document.querySelectorAll('#evaluation-charts .chart').length === "
        "document.querySelectorAll('#evaluation-charts .js-plotly-plot').length"
    )
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#evaluation-charts .js-plotly-plot", "els => els.map(e => e.data.length)"
    )


def test_log_in_see_the_charts_and_log_out(
    browser: Any, live: str, team: Team, screenshots: Path
) -> None:
    """alice logs in with her token, sees her name on every main page and the model's
    evaluation drawn by plotly (with no Content-Security-Policy complaint), then logs out."""
    page, violations = _page(browser, live)
    _log_in(page, team.tokens["admin"])
    assert page.text_content("#current-user") == "alice"
    for name, path in [
        ("home", "/"),
        ("datasets", "/datasets"),
        ("dataset-version", "/datasets/credit/1"),
        ("models", "/models/credit-risk"),
        ("model-version", MODEL_PAGE),
        ("audit", "/audit"),
        ("runs", "/runs"),
    ]:
        page.goto(path)
        assert page.text_content("#current-user") == "alice", path
        if path == MODEL_PAGE:
            assert _traces(page) == EVALUATION_TRACES
        if path == "/datasets/credit/1":
            page.wait_for_selector("#profile-charts .js-plotly-plot")
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    page.goto("/audit")
    page.click("#verify")
    page.wait_for_selector("#verify-ok")  # an htmx POST carrying the CSRF header
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto("/models")
    assert "/login?next=" in page.url
    assert violations == []
    page.context.close()


def test_a_viewer_has_no_approve_button_and_an_approver_approves(
    browser: Any, live: str, team: Team, project: Project
) -> None:
    """vic sees the model without any decision button; abe approves from the page, the
    status turns to approved, and the approval is his."""
    viewer, _ = _page(browser, live)
    _log_in(viewer, team.tokens["viewer"])
    viewer.goto(MODEL_PAGE)
    assert viewer.text_content("#model-status") == "candidate"
    assert viewer.locator("#approve").count() == 0 and viewer.locator("#promote").count() == 0
    viewer.context.close()

    approver, violations = _page(browser, live)
    _log_in(approver, team.tokens["approver"])
    approver.goto(MODEL_PAGE)
    approver.fill("#decide input[name=comment]", "evaluation and card reviewed")
    approver.click("#approve")
    approver.wait_for_selector("#model-status .status.approved")
    assert approver.text_content("#model-status") == "approved"
    assert project.approvals.list("credit-risk@1")[0].approver == "abe"
    assert violations == []
    approver.context.close()
