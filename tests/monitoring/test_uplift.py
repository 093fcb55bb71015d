"""KPI uplift (``project.predictions.uplift`` and ``shipyard deployments uplift``): a KPI per
prediction compared between the routes of a canary, or before and after a promotion, with
Welch's or a bootstrap interval, and "not enough data" rather than a guess.

The shop deployment's history is built once per backend: shop@1 takes production (promotion
1), a canary production=90 / challenger=10 with shop@2 (2), shop@2 takes production (3), then
shop@3 takes challenger (4). The log holds answers between those moves (written with the
server's own :class:`PredictionLog`), and seeded revenue events for some of them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.monitoring.uplift import difference_of_means
from shipyard.project import Project
from shipyard.serving.prediction_log import PredictionLog, PredictionRecord
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli

MODEL = "shop"
V1, V2, V3 = f"{MODEL}@1", f"{MODEL}@2", f"{MODEL}@3"
HOUR_MS = 3_600_000
# Conversion rate and mean revenue of a converted answer, per version.
BEHAVIOUR = {V1: (0.3, 20.0), V2: (0.5, 30.0), V3: (0.2, 15.0)}


# -- the statistic ----------------------------------------------------------------------------


def test_welch_interval_is_scipys_and_the_textbook_formula() -> None:
    """On skewed seeded data the difference, its 95% interval and p-value are those of
    scipy's Welch test, and the interval is mean difference ± t(0.975, Welch–Satterthwaite
    df) × standard error."""
    rng = np.random.default_rng(3)
    base, treat = rng.exponential(10.0, 120), rng.exponential(14.0, 90)
    d = difference_of_means(base, treat)
    scipy_result = stats.ttest_ind(treat, base, equal_var=False)
    interval = scipy_result.confidence_interval(0.95)
    assert d.difference == pytest.approx(treat.mean() - base.mean())
    assert (d.ci_low, d.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert d.p_value == pytest.approx(scipy_result.pvalue)
    vb, vt = base.var(ddof=1) / len(base), treat.var(ddof=1) / len(treat)
    df = (vb + vt) ** 2 / (vb**2 / (len(base) - 1) + vt**2 / (len(treat) - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(vb + vt)
    assert d.ci_low == pytest.approx(d.difference - half)
    assert d.ci_high == pytest.approx(d.difference + half)
    assert d.verdict == ("higher" if d.ci_low > 0 else "inconclusive")
    assert d.relative == pytest.approx(d.difference / base.mean())


def test_bootstrap_is_seeded_and_agrees_with_welch_on_large_samples() -> None:
    """The bootstrap interval is the same on every call and, on 2,000 values a side, close
    to Welch's; a clear drop is ``lower`` with either method."""
    rng = np.random.default_rng(5)
    base, treat = rng.normal(10.0, 3.0, 2000), rng.normal(9.0, 3.0, 2000)
    first = difference_of_means(base, treat, method="bootstrap")
    assert first == difference_of_means(base, treat, method="bootstrap")
    welch = difference_of_means(base, treat)
    assert first.ci_low is not None and first.ci_high is not None
    assert welch.ci_low is not None and welch.ci_high is not None
    width = welch.ci_high - welch.ci_low
    assert abs(first.ci_low - welch.ci_low) < 0.1 * width
    assert abs(first.ci_high - welch.ci_high) < 0.1 * width
    assert first.verdict == welch.verdict == "lower"
    assert first.p_value is None


def test_too_few_values_or_a_constant_kpi_is_not_enough_data() -> None:
    """Below the minimum per side, or when neither side varies, the verdict is "not enough
    data" with the reason and no figures; an interval that holds 0 is inconclusive."""
    short = difference_of_means([1.0, 2.0] * 10, [1.0, 3.0] * 20)
    assert (short.verdict, short.difference, short.ci_low) == ("not enough data", None, None)
    assert short.reason == "the baseline has 20 values; at least 30 are needed per side"
    flat = difference_of_means([0.0] * 40, [0.0] * 40)
    assert flat.verdict == "not enough data" and "does not vary" in str(flat.reason)
    same = difference_of_means([1.0, 2.0] * 20, [2.0, 1.0] * 20)
    assert same.verdict == "inconclusive" and same.difference == 0


# -- the shop deployment ----------------------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    """The project, and what each phase logged: (request id, version, revenue or None)."""

    project: Project
    root: Path
    phases: dict[str, list[tuple[str, str, float | None]]]

    def revenue(self, phase: str, model: str | None = None, *, skip: bool = False) -> list[float]:
        rows = [v for _, m, v in self.phases[phase] if model is None or m == model]
        return [v for v in rows if v is not None] if skip else [v or 0.0 for v in rows]


def _answers(
    rng: np.random.Generator, model: str, count: int
) -> list[tuple[str, str, float | None]]:
    rate, mean = BEHAVIOUR[model]
    return [
        (
            uuid.uuid4().hex,
            model,
            round(float(rng.exponential(mean)), 2) if rng.random() < rate else None,
        )
        for _ in range(count)
    ]


def build_shop(project: Project) -> dict[str, list[tuple[str, str, float | None]]]:
    """Register shop@1..3, move the aliases (four promotions, times marked between them),
    log the answers of each phase and their revenue events."""
    x = pd.DataFrame({"x": np.arange(20.0)})
    y = (x["x"] > 9).astype(int)
    for c in (1.0, 2.0, 3.0):
        project.models.register_model(MODEL, LogisticRegression(C=c).fit(x, y), input_example=x)
    project.users.add("bob", "approver")
    project.policies.set(MODEL, {"require": []})
    bob = project.as_actor("bob")
    for ref in (V1, V2, V3):
        bob.approvals.approve(ref)
    marks: dict[str, int] = {}

    def mark(phase: str) -> None:
        time.sleep(0.02)
        marks[phase] = int(time.time() * 1000)
        time.sleep(0.02)

    bob.promotions.promote(V1)
    bob.promotions.promote(V2, to="challenger")  # not a route yet: no promotion
    bob.deployments.set(MODEL, {"production": 90, "challenger": 10}, comment="canary")
    mark("canary")
    bob.promotions.promote(V2)
    mark("v2 alone")
    bob.promotions.promote(V3, to="challenger")
    mark("new canary")
    rng = np.random.default_rng(11)
    phases = {
        "old": _answers(rng, V1, 30),
        "canary": _answers(rng, V1, 40) + _answers(rng, V2, 40),
        "v2 alone": _answers(rng, V2, 40),
        "new canary": _answers(rng, V2, 40) + _answers(rng, V3, 40),
        # The old version answering for the moment a server takes to reload.
        "stragglers": _answers(rng, V1, 5),
    }
    when = {**marks, "old": marks["canary"] - 2 * HOUR_MS, "stragglers": marks["new canary"]}
    log = PredictionLog(project, MODEL, flush_seconds=0.05)
    log.put(
        PredictionRecord(rid, when[phase], model, False, {"x": 1.0}, 1, 2.0)
        for phase, rows in phases.items()
        for rid, model, _ in rows
    )
    log.close()
    assert log.dropped == 0
    events: list[tuple[str, float, str | None]] = []
    for rows in phases.values():
        events += [("revenue", value, rid) for rid, _, value in rows if value is not None]
    # Two events of one answer add up; events of another KPI or without a request id are
    # not joined.
    rid = next(r for r, m, v in phases["new canary"] if m == V3 and v is not None)
    events += [("revenue", 5.0, rid), ("revenue", 999.0, None), ("clicks", 1.0, rid)]
    project.predictions.record_kpis(MODEL, events)
    phases["new canary"] = [
        (r, m, (v or 0.0) + 5.0 if r == rid else v) for r, m, v in phases["new canary"]
    ]
    return phases


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    """The shop project on SQLite, then on a private PostgreSQL schema, built once."""
    root = tmp_path_factory.mktemp("shop") / "proj"
    schema, admin = None, None
    if request.param == "sqlite":
        url = f"sqlite:///{root.parent / 'metadata.db'}"
    else:
        from sqlalchemy import text

        admin = request.getfixturevalue("_pg_admin_engine")
        schema = f"t_{uuid.uuid4().hex}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
        url = str(url.render_as_string(hide_password=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        mp.setenv("SHIPYARD_USER", "alice")
        project = shipyard.init_project(root, db_url=url, actor="alice")
        try:
            yield Shop(project, root, build_shop(project))
        finally:
            project.close()
            if admin is not None:
                from sqlalchemy import text

                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _arm(report: Any, name: str) -> Any:
    [found] = [a for a in report.arms if a.name == name]
    return found


def test_by_route_compares_the_routes_since_the_latest_promotion(shop: Shop) -> None:
    """By route, production (shop@2) is the baseline and challenger (shop@3) is compared
    with it, over the answers since shop@3 took challenger: missing revenue counts as 0, two
    events of one answer add up, and the straggling answers of shop@1 are left out and
    counted."""
    report = shop.project.predictions.uplift(MODEL, "revenue")
    assert (report.mode, report.method, report.missing) == ("by-route", "welch", "zero")
    assert [(a.name, a.models, a.predictions) for a in report.arms] == [
        ("production", (V2,), 40),
        ("challenger", (V3,), 40),
    ]
    production = shop.revenue("new canary", V2)
    challenger = shop.revenue("new canary", V3)
    assert _arm(report, "production").mean == pytest.approx(np.mean(production))
    assert _arm(report, "challenger").mean == pytest.approx(np.mean(challenger))
    assert _arm(report, "challenger").with_kpi == sum(
        v is not None for _, m, v in shop.phases["new canary"] if m == V3
    )
    assert report.unassigned == 5
    [comparison] = report.comparisons
    expected = difference_of_means(production, challenger)
    assert (comparison.baseline, comparison.arm) == ("production", "challenger")
    assert comparison.verdict == expected.verdict
    assert comparison.difference == pytest.approx(expected.difference)
    assert (comparison.ci_low, comparison.ci_high) == (
        pytest.approx(expected.ci_low),
        pytest.approx(expected.ci_high),
    )


def test_missing_skip_compares_only_answers_with_a_kpi_event(shop: Shop) -> None:
    """With ``missing="skip"`` each arm holds only the answers that have a revenue event:
    its size is the count of those, its mean theirs."""
    report = shop.project.predictions.uplift(MODEL, "revenue", missing="skip", min_samples=5)
    for name, model in (("production", V2), ("challenger", V3)):
        values = shop.revenue("new canary", model, skip=True)
        arm = _arm(report, name)
        assert (arm.predictions, arm.n, arm.with_kpi) == (40, len(values), len(values))
        assert arm.mean == pytest.approx(np.mean(values))


def test_around_a_promotion_compares_the_windows_between_its_neighbours(shop: Shop) -> None:
    """Around promotion 3 (shop@2 takes production) the before window is the canary's traffic
    (both versions, from promotion 2 on, not the older answers) and the after window is
    shop@2 alone (until promotion 4); -1 is the latest promotion, 4."""
    third = shop.project.predictions.uplift(MODEL, "revenue", around_promotion=3)
    assert third.promotion is not None and third.promotion.number == 3
    assert third.promotion.description == f"production: {V1} → {V2} (promote)"
    before, after = third.arms
    assert (before.name, before.models, before.predictions) == ("before", (V1, V2), 80)
    assert (after.name, after.models, after.predictions) == ("after", (V2,), 40)
    assert before.mean == pytest.approx(np.mean(shop.revenue("canary")))
    assert after.mean == pytest.approx(np.mean(shop.revenue("v2 alone")))
    expected = difference_of_means(shop.revenue("canary"), shop.revenue("v2 alone"))
    assert third.comparisons[0].difference == pytest.approx(expected.difference)
    assert third.comparisons[0].verdict == expected.verdict
    latest = shop.project.predictions.uplift(MODEL, "revenue", around_promotion=-1)
    assert latest.promotion is not None and latest.promotion.number == 4
    assert [a.predictions for a in latest.arms] == [40, 85]


def test_promotions_are_numbered_from_alias_and_deployment_history(shop: Shop) -> None:
    """Asking for a promotion that does not exist lists them: production's first holder,
    the canary's new routes, and the two alias moves of routes (not challenger's first move,
    which took no traffic)."""
    with pytest.raises(NotFoundError, match="has no promotion 9: it has 4") as info:
        shop.project.predictions.uplift(MODEL, "revenue", around_promotion=9)
    found = info.value.details["promotions"]
    assert [(p["number"], p["kind"], p["description"]) for p in found] == [
        (1, "alias", f"production: nothing → {V1} (promote)"),
        (2, "deployment", "routes production=100 → production=90,challenger=10"),
        (3, "alias", f"production: {V1} → {V2} (promote)"),
        (4, "alias", f"challenger: {V2} → {V3} (promote)"),
    ]


def test_a_short_window_is_not_enough_data(shop: Shop) -> None:
    """With 50 values needed per side, the 40 answers after promotion 3 are not enough: the
    verdict says so and gives no interval."""
    report = shop.project.predictions.uplift(MODEL, "revenue", around_promotion=3, min_samples=50)
    [comparison] = report.comparisons
    assert comparison.verdict == "not enough data"
    assert (comparison.difference, comparison.ci_low, comparison.ci_high) == (None, None, None)
    assert comparison.reason == "after has 40 values; at least 50 are needed per side"


def test_an_unknown_kpi_or_bad_option_is_refused(shop: Shop) -> None:
    """A KPI the deployment never recorded is not found (the message lists those it has); a
    bad option is refused with every problem named."""
    with pytest.raises(NotFoundError, match=r"no KPI 'profit' \(it records: clicks, revenue\)"):
        shop.project.predictions.uplift(MODEL, "profit")
    with pytest.raises(InvalidInputError) as info:
        shop.project.predictions.uplift(
            MODEL,
            "revenue",
            method="magic",  # type: ignore[arg-type]
            window_seconds=-1,
        )
    assert "method must be one of welch, bootstrap" in info.value.message
    assert "window must be a positive duration" in info.value.message


def test_the_cli_prints_the_report(shop: Shop, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """`shipyard deployments uplift` prints the service's report as one JSON document (-1
    being the latest promotion), a table and verdict lines otherwise, and refuses
    --by-route with --around-promotion (exit 2)."""
    monkeypatch.chdir(shop.root)
    res = cli(
        "deployments", "uplift", MODEL, "--kpi", "revenue", "--around-promotion", "3", "--json"
    )
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc == shop.project.predictions.uplift(MODEL, "revenue", around_promotion=3).to_dict()
    assert [a["predictions"] for a in doc["arms"]] == [80, 40]
    res = cli(
        "deployments", "uplift", MODEL, "--kpi", "revenue", "--around-promotion", "-1", "--json"
    )
    assert res.code == 0, res.stderr
    assert res.json()["promotion"]["number"] == 4
    res = cli("deployments", "uplift", MODEL, "--kpi", "revenue", "--method", "bootstrap")
    assert res.code == 0, res.stderr
    assert "challenger vs production" in res.stdout and "(bootstrap)" in res.stdout
    res = cli(
        "deployments", "uplift", MODEL, "--kpi", "revenue", "--by-route", "--around-promotion", "1"
    )
    assert res.code == 2
