"""The runs pages in process: the runs table (filter, sort on a metric's last/min/max, pages,
count, column chooser, CSV export, a bad filter's message) and the comparison of runs (param
differences, one line per run and metric, bands per group, parallel coordinates).

The project: experiment ``sweep`` holds 30 runs ``gbm-00`` … ``rf-29`` (model cycling gbm, lr,
rf); run ``i`` logs ``loss`` at steps 0..19 as ``1/(step+1) + i/100`` except a spike of
``5 - i/10`` at step 3 (so its last value grows with ``i`` and its highest value falls), and
``auc = 0.5 + i/100`` once. Experiment ``baseline`` holds 3 runs without ``loss``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.project import Project
from tests.server.conftest import Team, TestClient
from tests.ui.conftest import log_in

MODELS = ("gbm", "lr", "rf")
SWEEP_RUNS = 30
_TEMPLATE: list[Path] = []


def loss(i: int, step: int) -> float:
    """Run ``i``'s loss at ``step``."""
    return 5 - i / 10 if step == 3 else 1 / (step + 1) + i / 100


def _populate(project: Project) -> None:
    ts = 1_700_000_000_000
    for i in range(SWEEP_RUNS):
        model = MODELS[i % 3]
        with project.start_run("sweep", name=f"{model}-{i:02d}") as run:
            run.log_batch(
                metrics=[("loss", loss(i, s), ts + s, s) for s in range(20)]
                + [("auc", 0.5 + i / 100, ts, 0)],
                params={"model": model, "lr": 0.01 * (i + 1), "depth": 6},
                tags={"team": "risk" if i % 2 else "growth"},
            )
    for i in range(3):
        with project.start_run("baseline", name=f"base-{i}") as run:
            run.log_batch(metrics=[("auc", 0.6, ts, 0)], params={"model": "dummy"})


def sweep_project(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> Project:
    """A copy at ``dest`` of the sweep project (built once per process), opened as alice."""
    if not _TEMPLATE:
        root = tmp_path_factory.mktemp("sweep") / "proj"
        with shipyard.init_project(root, actor="alice") as project:
            _populate(project)
        _TEMPLATE.append(root)
    shutil.copytree(_TEMPLATE[0], dest)
    return shipyard.open_project(dest, actor="alice")


@pytest.fixture
def project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The sweep project (a copy per test); the UI fixtures (``ui``, ``team``) run over it."""
    proj = sweep_project(tmp_path_factory, tmp_path / "proj")
    try:
        yield proj
    finally:
        proj.close()


@pytest.fixture
def viewer(ui: TestClient, team: Team) -> TestClient:
    """The client logged in as vic, a viewer (reading runs needs no more)."""
    log_in(ui, team.tokens["viewer"])
    return ui


_ROW = re.compile(r'<tr data-run="([0-9a-f]+)">.*?<td>([^<]+)</td>', re.S)


def names(html: str) -> list[str]:
    """The run names of a runs table, in order."""
    return [m.group(2) for m in _ROW.finditer(html)]


def total(html: str) -> int:
    m = re.search(r'id="runs-count" data-total="(\d+)"', html)
    assert m is not None, html[:2000]
    return int(m.group(1))


def figures(html: str, section: str) -> list[dict[str, Any]]:
    """The plotly figures of the ``data-figure`` attributes inside the element ``section``."""
    start = html.index(f'id="{section}"')
    end = html.find("<h2>", start)
    part = html[start : end if end != -1 else len(html)]
    return [json.loads(unescape(f)) for f in re.findall(r'data-figure="([^"]*)"', part)]


def test_the_table_filters_sorts_on_a_metrics_last_min_or_max_and_counts(
    viewer: TestClient,
) -> None:
    """Filtered to the gbm runs, 10 of 30 match; sorted on loss's last value ascending gbm-00
    comes first, on its highest value gbm-27 (lowest spike) does; a descending sort reverses."""
    base = "/runs?experiment=sweep&filter=params.model+%3D+%27gbm%27"
    html = viewer.get(f"{base}&order=metrics.loss+ASC").text
    assert total(html) == 10
    assert names(html) == [f"gbm-{i:02d}" for i in range(0, 30, 3)]
    by_max = viewer.get(f"{base}&order=metrics.loss+ASC&stat=max").text
    assert names(by_max) == [f"gbm-{i:02d}" for i in range(27, -1, -3)]
    # the sorted column shows the statistic sorted on: gbm-27's highest loss is 5 - 2.7
    assert ">2.3</span>" in by_max
    by_auc = viewer.get(f"{base}&order=metrics.auc+DESC").text
    assert names(by_auc)[0] == "gbm-27"
    by_name = viewer.get("/runs?experiment=baseline&order=attributes.run_name+DESC").text
    assert names(by_name) == ["base-2", "base-1", "base-0"]


def test_sort_links_toggle_and_keep_the_rest_of_the_view(viewer: TestClient) -> None:
    """Each metric column offers last, min and max; clicking the sorted one reverses it, and
    every link keeps the experiments, filter and columns, so the URL is the view."""
    html = viewer.get(
        "/runs?experiment=sweep&filter=metrics.auc+%3E+0.6&col=metrics.loss&order=metrics.loss+ASC"
    ).text
    links = set(re.findall(r'href="(/runs\?[^"]+)"', unescape(html)))
    kept = "experiment=sweep&filter=metrics.auc+%3E+0.6"
    assert f"/runs?{kept}&order=metrics.loss+DESC&col=metrics.loss" in links
    assert f"/runs?{kept}&order=metrics.loss+ASC&stat=min&col=metrics.loss" in links
    assert f"/runs?{kept}&order=metrics.loss+ASC&stat=max&col=metrics.loss" in links
    assert f"/runs?{kept}&order=attributes.run_name+ASC&col=metrics.loss" in links
    # only the chosen column: no param, tag or other metric header
    assert re.findall(r'data-column="([^"]+)"', html) == ["metrics.loss"]


def test_the_table_pages_through_every_run_with_the_count(viewer: TestClient) -> None:
    """33 runs, 25 a page: the first page links to the next, the second holds the other 8."""
    first = viewer.get("/runs?limit=25&order=attributes.run_name+ASC").text
    assert total(first) == 33 and len(names(first)) == 25
    assert "showing 1–25" in first and 'id="page-next"' in first and 'id="page-prev"' not in first
    second = viewer.get("/runs?limit=25&order=attributes.run_name+ASC&offset=25").text
    assert len(names(second)) == 8 and "showing 26–33" in second
    assert set(names(first)).isdisjoint(names(second))
    assert 'id="page-next"' not in second and 'id="page-prev"' in second


def test_htmx_gets_only_the_table_part_and_history_gets_the_page(viewer: TestClient) -> None:
    """A sort or filter from the page swaps ``#runs-view`` only; restoring from history (or
    any other request) gets the whole page."""
    swap = {"HX-Request": "true", "HX-Target": "runs-view"}
    fragment = viewer.get("/runs?filter=params.model+%3D+%27lr%27", headers=swap).text
    assert '<div id="runs-view"' in fragment and "<html" not in fragment
    assert total(fragment) == 10
    restore = viewer.get("/runs", headers={**swap, "HX-History-Restore-Request": "true"}).text
    assert "<html" in restore and 'id="current-user"' in restore


def test_a_bad_filter_shows_the_services_message_not_a_500(viewer: TestClient) -> None:
    """A filter that does not parse: the page (422) and the htmx fragment (200, so htmx
    swaps it) show the parser's message above the form, which keeps the text to fix."""
    url = "/runs?filter=metrics.loss+%3E%3E+1"
    page = viewer.get(url)
    assert page.status_code == 422
    assert 'id="runs-error"' in page.text and "metrics.loss &gt;&gt; 1" in page.text
    assert 'value="metrics.loss &gt;&gt; 1"' in page.text and 'id="runs-table"' not in page.text
    swap = {"HX-Request": "true", "HX-Target": "runs-view"}
    fragment = viewer.get(url, headers=swap)
    assert fragment.status_code == 200 and 'id="runs-error"' in fragment.text
    unknown = viewer.get("/runs?experiment=nope")
    assert unknown.status_code == 404 and "no experiment &#39;nope&#39;" in unknown.text


def test_the_column_chooser_offers_every_key_and_ticks_the_shown_ones(viewer: TestClient) -> None:
    """The chooser (loaded on first open) lists the params, metrics and tags of the chosen
    experiments; a chosen column comes back ticked, and choosing columns shows exactly them."""
    page = viewer.get("/runs?experiment=sweep&col=params.model&col=tags.team").text
    chooser = re.search(r'<details id="column-chooser" hx-get="([^"]+)"', page)
    assert chooser is not None
    html = viewer.get(unescape(chooser.group(1))).text
    offered = re.findall(r'name="col" value="([^"]+)"( checked)?', html)
    assert offered == [
        ("params.depth", ""),
        ("params.lr", ""),
        ("params.model", " checked"),
        ("metrics.auc", ""),
        ("metrics.loss", ""),
        ("tags.team", " checked"),
    ]
    assert re.findall(r'data-column="([^"]+)"', page) == ["params.model", "tags.team"]
    assert ">risk</td>" in page and ">0.5</span>" not in page  # no metric column
    baseline = viewer.get("/runs/columns?experiment=baseline").text
    assert re.findall(r'value="([^"]+)"', baseline) == ["params.model", "metrics.auc"]


def test_the_csv_export_holds_every_filtered_run_in_order(viewer: TestClient) -> None:
    """The export link of a filtered, sorted view streams all its runs (not only the page),
    with the chosen columns and a metric's last, min and max."""
    page = viewer.get(
        "/runs?experiment=sweep&filter=params.model+%3D+%27rf%27&order=metrics.loss+DESC"
        "&col=params.model&col=metrics.loss&limit=25"
    ).text
    link = re.search(r'id="runs-csv" href="([^"]+)"', page)
    assert link is not None
    response = viewer.get(unescape(link.group(1)))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["name"] for r in rows] == [f"rf-{i:02d}" for i in range(29, 1, -3)]
    assert float(rows[0]["metrics.loss"]) == pytest.approx(loss(29, 19))
    assert float(rows[0]["min(metrics.loss)"]) == pytest.approx(loss(29, 19))
    assert float(rows[0]["max(metrics.loss)"]) == pytest.approx(loss(29, 3))
    assert set(rows[0]) >= {"params.model", "id", "experiment"} and "params.lr" not in rows[0]


def _run_ids(project: Project, experiment: str = "sweep") -> dict[str, str]:
    return {r.name: r.id for r in project.runs.list(experiment=experiment)}


def test_the_comparison_draws_a_line_per_run_and_metric_bands_per_group_and_parcoords(
    viewer: TestClient, project: Project
) -> None:
    """Six runs, two metrics, grouped by model: a chart per metric with a line per run,
    a band and a mean line per group (3 groups), and a parallel-coordinates chart with a
    line per run across the differing params (lr, model) and the two metrics."""
    ids = _run_ids(project)
    picked = [ids[f"{MODELS[i % 3]}-{i:02d}"] for i in range(6)]
    query = "&".join(f"run={r}" for r in picked)
    html = viewer.get(f"/runs/compare?{query}&metric=loss&metric=auc&group_by=model").text
    overlays = figures(html, "compare-charts")
    assert [len(f["data"]) for f in overlays] == [6, 6]
    assert overlays[0]["data"][0]["x"] == list(range(20))
    assert overlays[0]["data"][0]["y"][3] == pytest.approx(5.0)
    bands = figures(html, "group-charts")
    assert [len(f["data"]) for f in bands] == [6, 6]  # band + mean for gbm, lr, rf
    fills = [t for t in bands[0]["data"] if t.get("fill") == "toself"]
    assert len(fills) == 3 and all(len(t["x"]) == 40 for t in fills)
    (parallel,) = figures(html, "parallel-chart")
    axes = ["params.lr", "params.model", "metrics.auc", "metrics.loss"]
    assert parallel["layout"]["xaxis"]["ticktext"] == axes
    assert [len(t["x"]) for t in parallel["data"]] == [4] * 6  # a line per run over 4 axes
    # gbm-00 has the lowest lr, auc and last loss: the bottom of each number axis
    first = parallel["data"][0]
    assert first["y"] == [0.0, 0.0, 0.0, 0.0] and first["name"].startswith("gbm-00")
    assert parallel["data"][5]["y"] == [1.0, 1.0, 1.0, 1.0]  # rf-05: the top of each
    # params: the differing ones marked, the same (depth) folded away
    assert re.findall(r'<tr class="differs"><th>([^<]+)</th>', html)[:2] == ["lr", "model"]
    assert '<details id="same-params"><summary>1 parameter' in html


def test_the_comparison_charts_the_first_metrics_by_default(
    viewer: TestClient, project: Project
) -> None:
    """Without ``metric``, every metric (up to six, system metrics aside) gets a chart, and
    no grouping draws no band."""
    ids = list(_run_ids(project).values())[:3]
    html = viewer.get("/runs/compare?" + "&".join(f"run={r}" for r in ids)).text
    assert [len(f["data"]) for f in figures(html, "compare-charts")] == [3, 3]
    assert 'id="group-charts"' not in html
    assert len(re.findall(r'name="metric" value="[^"]+" checked', html)) == 2


@pytest.mark.parametrize("count", [0, 1, 21])
def test_fewer_than_two_or_more_than_twenty_runs_get_a_clear_message(
    viewer: TestClient, project: Project, count: int
) -> None:
    """The page says how many runs a comparison holds and how to pick them."""
    ids = list(_run_ids(project).values()) + list(_run_ids(project, "baseline").values())
    response = viewer.get("/runs/compare?" + "&".join(f"run={r}" for r in ids[:count]))
    assert response.status_code == 422
    assert f"a comparison holds 2 to 20 runs, not {count}" in response.text
    assert 'href="/runs"' in response.text and "data-figure" not in response.text


def test_the_runs_pages_need_a_session(ui: TestClient, project: Project) -> None:
    """Without logging in, the table, the export, the chooser and the comparison send the
    browser to the login page."""
    ids = list(_run_ids(project).values())[:2]
    for path in (
        "/runs",
        "/runs/export.csv",
        "/runs/columns",
        f"/runs/compare?run={ids[0]}&run={ids[1]}",
    ):
        response = ui.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


def test_the_parallel_chart_keeps_at_most_eight_parameter_axes(tmp_path: Path) -> None:
    """Runs that differ in a dozen parameters get eight parameter axes, those both runs have
    first, and an axis per chosen metric."""
    import shipyard
    from shipyard.server.ui.comparison_charts import MAX_PARAM_AXES, parallel_coordinates

    with shipyard.init_project(tmp_path / "p", actor="alice") as project:
        ids = []
        for i in range(2):
            with project.start_run("wide") as run:
                params = {f"p{k:02d}": str(k + i) for k in range(12)}
                if i == 1:
                    params["only_second"] = "x"
                run.log_params(params)
                run.log_metrics({"auc": 0.5 + i / 10})
            ids.append(run.id)
        figure = parallel_coordinates(project.runs.comparison(ids, metrics=["auc"]))
    names = figure["layout"]["xaxis"]["ticktext"]
    assert MAX_PARAM_AXES == 8
    assert names == [f"params.p{k:02d}" for k in range(8)] + ["metrics.auc"]
