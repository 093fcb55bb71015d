"""The runs pages in a real browser (Playwright driving Debian's Chromium, as in
test_browser.py): filter the runs table, sort it, pick runs, open their comparison and find
its charts drawn by plotly with the expected number of traces. Screenshots of the table and
the comparison go with the other UI screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.project import Project
from tests.server.conftest import Team, running_server
from tests.ui.test_browser import _log_in, _page
from tests.ui.test_runs_pages import project  # noqa: F401  (the sweep project of 33 runs)

#: The same worker as test_browser.py, so `pytest -n` still starts one browser.
pytestmark = pytest.mark.xdist_group("browser")


@pytest.fixture
def live(project: Project, team: Team) -> Iterator[str]:  # noqa: F811
    """A live server over the sweep project with its team; its base URL."""
    del team
    with running_server(project) as url:
        yield url


def _drawn(page: Any, section: str) -> list[Any]:
    """What plotly drew in each chart of ``section``: its traces' types."""
    page.wait_for_function(
        f"document.querySelectorAll('#{section} .chart').length > 0 && "
        f"document.querySelectorAll('#{section} .chart').length === "
        f"document.querySelectorAll('#{section} .js-plotly-plot').length"
    )
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"#{section} .js-plotly-plot", "els => els.map(e => e._fullData.map(t => t.type))"
    )


def _names(page: Any) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#runs-table tbody tr[data-run] td:nth-child(3)", "tds => tds.map(td => td.textContent)"
    )


def test_filter_the_runs_table_pick_runs_and_compare_them(
    browser: Any, live: str, team: Team, screenshots: Path
) -> None:
    """vic filters the sweep to its gbm runs (htmx swaps the table and the URL follows),
    sorts on loss's highest value, picks four runs, compares them grouped by model, and sees
    a line per run in each metric chart, a band and a mean per group, and a line per run
    in the parallel coordinates, with no Content-Security-Policy complaint."""
    page, violations = _page(browser, live)
    _log_in(page, team.tokens["viewer"])
    page.goto("/runs?experiment=sweep&col=params.model&col=params.lr&col=metrics.loss")
    assert page.get_attribute("#runs-count", "data-total") == "30"
    page.fill("#runs-filter", "params.model = 'gbm'")
    page.click("#runs-show")
    page.wait_for_selector("#runs-count[data-total='10']")
    assert "filter=params.model" in page.url  # the view is in the URL, ready to share
    assert _names(page)[0].startswith("gbm-")
    page.click("th[data-column='metrics.loss'] a.stat >> text=max")
    page.wait_for_selector("th[data-column='metrics.loss'] a.stat.asc")
    assert _names(page)[:2] == ["gbm-27", "gbm-24"]  # the lowest spike first
    page.click("#column-chooser summary")
    page.wait_for_selector("#columns-apply")  # the chooser's keys arrived
    assert page.is_checked("#column-choices input[value='metrics.loss']")
    assert page.is_disabled("#compare-selected")
    picks = page.locator(".run-pick")
    for i in range(4):
        picks.nth(i).check()
    assert page.text_content("#picked-count") == "4 runs picked"
    page.screenshot(path=str(screenshots / "runs-table.png"), full_page=True)

    page.click("#compare-selected")
    page.wait_for_url("**/runs/compare?**")
    assert page.locator("#compare-runs tbody tr").count() == 4
    page.select_option("#group-by", "model")
    page.click("#compare-apply")
    page.wait_for_url("**group_by=model**")
    assert _drawn(page, "compare-charts") == [["scatter"] * 4, ["scatter"] * 4]  # auc, loss
    # gbm runs only (one group): a band and a mean line per metric
    assert _drawn(page, "group-charts") == [["scatter"] * 2, ["scatter"] * 2]
    assert _drawn(page, "parallel-chart") == [["scatter"] * 4]  # a line per run
    page.screenshot(path=str(screenshots / "runs-compare.png"), full_page=True)
    assert violations == []
    page.context.close()
