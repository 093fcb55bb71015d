"""Checks of the Prometheus config, alert rules and Grafana dashboard in ``deploy/``.

The promtool tests need ``promtool`` (Debian's ``prometheus`` package); without it they are
skipped, unless ``SHIPYARD_REQUIRE_SERVICES=1`` (set by CI) turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "shipyard-dashboard.json"
README = DEPLOY / "README.md"

# Mirrors the server's metric definitions in src/shipyard/serving/metrics.py, as exposed at
# GET /metrics (counters with their `_total` suffix). Change both together.
EXPORTED_METRICS = frozenset(
    {
        "shipyard_requests_total",
        "shipyard_request_duration_seconds",
        "shipyard_predictions_total",
        "shipyard_prediction_errors_total",
        "shipyard_inflight_requests",
        "shipyard_model_accuracy",
        "shipyard_feedback_total",
        "shipyard_kpi_total",
        "shipyard_kpi_value_sum",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "shipyard_cpu_utilization_ratio",
        "shipyard_prediction_log_dropped_total",
        "shipyard_refresh_errors_total",
        "shipyard_refused_versions_total",
        "shipyard_shadow_dropped_total",
        "shipyard_contract_violations_total",
        "shipyard_feature_drift",
        "shipyard_dataset_drift_share",
        "shipyard_feature_null_share",
        "shipyard_drift_window_rows",
    }
)
HISTOGRAMS = frozenset({"shipyard_request_duration_seconds"})
# Metrics carrying the model and version labels, which dashboard queries must filter on.
MODEL_LABELLED = frozenset(
    {
        "shipyard_requests_total",
        "shipyard_request_duration_seconds_bucket",
        "shipyard_request_duration_seconds_sum",
        "shipyard_request_duration_seconds_count",
        "shipyard_predictions_total",
        "shipyard_prediction_errors_total",
        "shipyard_model_accuracy",
        "shipyard_feedback_total",
        "shipyard_contract_violations_total",
        "shipyard_feature_drift",
        "shipyard_dataset_drift_share",
        "shipyard_feature_null_share",
        "shipyard_drift_window_rows",
    }
)
# Series Prometheus makes itself for every scrape target.
PROMETHEUS_SERIES = frozenset({"up"})

# Names of series a query may select: histograms only through their sample suffixes.
SERIES_NAMES = frozenset(
    {name for name in EXPORTED_METRICS if name not in HISTOGRAMS}
    | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)

PROMQL_WORDS = frozenset(
    {
        # aggregation operators
        *("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"),
        *("bottomk", "topk", "quantile"),
        # keywords and set operators
        *("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"),
        *("and", "or", "unless", "atan2"),
        # functions
        *("abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max"),
        *("clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta"),
        *("deriv", "exp", "floor", "histogram_quantile", "holt_winters", "hour", "idelta"),
        *("increase", "irate", "label_join", "label_replace", "ln", "log2", "log10", "minute"),
        *("month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort"),
        *("sort_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time"),
        *("min_over_time", "max_over_time", "sum_over_time", "count_over_time"),
        *("quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time"),
        *("present_over_time",),
    }
)

REQUIRED_ALERTS = frozenset(
    {
        "ShipyardHighErrorRate",
        "ShipyardHighLatencyP99",
        "ShipyardAccuracyDrop",
        "ShipyardPredictionLogDropping",
        "ShipyardDown",
        "ShipyardVersionRefused",
        "ShipyardFeatureDrift",
        "ShipyardDatasetDrift",
        "ShipyardContractViolations",
    }
)

# (keyword in a panel title, metric one of those panels must query)
REQUIRED_PANELS = [
    ("request rate", "shipyard_requests_total"),
    ("error", "shipyard_requests_total"),
    ("latency", "shipyard_request_duration_seconds_bucket"),
    ("in-flight", "shipyard_inflight_requests"),
    ("cpu", "shipyard_cpu_utilization_ratio"),
    ("cpu", "process_cpu_seconds_total"),
    ("memory", "process_resident_memory_bytes"),
    ("accuracy", "shipyard_model_accuracy"),
    ("feedback", "shipyard_feedback_total"),
    ("kpi", "shipyard_kpi_total"),
    ("kpi", "shipyard_kpi_value_sum"),
    ("predictions per second", "shipyard_predictions_total"),
    ("prediction-log", "shipyard_prediction_log_dropped_total"),
    ("drift", "shipyard_feature_drift"),
    ("drift", "shipyard_dataset_drift_share"),
    ("drift window", "shipyard_drift_window_rows"),
    ("null share", "shipyard_feature_null_share"),
    ("contract", "shipyard_contract_violations_total"),
]

_MATCHERS = re.compile(r"\{[^{}]*\}")
_PLACEHOLDER = re.compile(r"\{#(\d+)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?:\s*\{#(\d+)\})?")


def selectors(expr: str) -> list[tuple[str, str]]:
    """Return (metric name, label matchers) for every series selector of a PromQL expression."""
    blocks: list[str] = []

    def stash(match: re.Match[str]) -> str:
        blocks.append(match.group(0))
        return f"{{#{len(blocks) - 1}}}"

    text = _MATCHERS.sub(stash, expr)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _STRING.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    found = []
    for match in _IDENT.finditer(text):
        name, block = match.group(1), match.group(2)
        if name in PROMQL_WORDS:
            assert block is None, f"label matchers after {name!r} in {expr!r}"
            continue
        found.append((name, blocks[int(block)] if block is not None else ""))
    return found


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects."""
    return {name for name, _ in selectors(expr)}


def test_selectors_parses_promql() -> None:
    """The selector parser finds metric names and matchers, not functions, labels or variables."""
    expr = (
        "histogram_quantile(0.99, sum by (le, version) (rate(shipyard_request_duration_seconds"
        '_bucket{model=~"$model"}[$__rate_interval]))) > 1e3 and on (instance) up offset 5m'
    )
    assert selectors(expr) == [
        ("shipyard_request_duration_seconds_bucket", '{model=~"$model"}'),
        ("up", ""),
    ]


# -- promtool ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of promtool, skipping (or failing under SHIPYARD_REQUIRE_SERVICES=1) without it."""
    path = shutil.which("promtool")
    if path is None:
        message = (
            "promtool not found on PATH: install Debian's prometheus package "
            "(apt-get install prometheus), which provides /usr/bin/promtool"
        )
        if os.environ.get("SHIPYARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} (required: SHIPYARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
    return path


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool with the arguments and assert that it succeeds."""
    result = subprocess.run(
        [promtool, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result


def test_promtool_check_config(promtool: str) -> None:
    """``promtool check config`` accepts prometheus.yml and finds its rule file."""
    result = run_promtool(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules(promtool: str) -> None:
    """``promtool check rules`` accepts alerts.yml."""
    result = run_promtool(promtool, "check", "rules", ALERTS)
    assert f"{len(REQUIRED_ALERTS)} rules found" in result.stdout + result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    """``promtool test rules`` passes the alert unit tests in alerts_test.yml."""
    result = run_promtool(promtool, "test", "rules", ALERTS_TEST)
    assert "SUCCESS" in result.stdout + result.stderr


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Every dashboard query, with Grafana variables filled in, parses as PromQL."""
    values = {"__rate_interval": "1m", "__range": "1h", "__interval": "1m"}
    rules = []
    for panel in panels():
        for target in panel["targets"]:
            expr = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), ".*"), target["expr"])
            rules.append(
                {"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr}
            )
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool(promtool, "check", "rules", path)
    assert f"{len(rules)} rules found" in result.stdout + result.stderr


# -- Prometheus config and alert rules -----------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    """Return every alerting rule of alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_prometheus_config_scrapes_shipyard() -> None:
    """prometheus.yml scrapes job shipyard at 127.0.0.1:8080 every 15s and loads alerts.yml."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert "alerts.yml" in config["rule_files"]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "shipyard"]
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert "127.0.0.1:8080" in targets


def test_alerts_have_severity_and_runbook_annotations() -> None:
    """Every required alert exists with a severity, a summary and a templated description."""
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert rules.keys() >= REQUIRED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert "{{ $labels." in annotations["description"], name


def test_alert_expressions_match_the_specification() -> None:
    """The alert expressions use the agreed windows, quantile, aggregation and 1-day baseline."""
    rules = {rule["alert"]: rule for rule in alert_rules()}
    compact = {name: re.sub(r"\s+", "", rule["expr"]) for name, rule in rules.items()}
    assert "sumby(model,version)(rate(shipyard_requests_total{" in compact["ShipyardHighErrorRate"]
    assert "[5m]" in compact["ShipyardHighErrorRate"]
    assert (
        "histogram_quantile(0.99,sumby(le,model,version)"
        "(rate(shipyard_request_duration_seconds_bucket[5m])))" in compact["ShipyardHighLatencyP99"]
    )
    assert "avg_over_time(shipyard_model_accuracy[1d])" in compact["ShipyardAccuracyDrop"]
    assert "shipyard_prediction_log_dropped_total" in compact["ShipyardPredictionLogDropping"]
    assert compact["ShipyardDown"] == 'up{job="shipyard"}==0'
    assert 'shipyard_feature_drift{method="psi"}>0.25' in compact["ShipyardFeatureDrift"]
    assert 'shipyard_feature_drift{method="jensenshannon"}>0.2' in compact["ShipyardFeatureDrift"]
    assert compact["ShipyardDatasetDrift"] == (
        "maxby(model,version)(shipyard_dataset_drift_share)>=0.5"
    )
    assert "rate(shipyard_contract_violations_total[10m])" in compact["ShipyardContractViolations"]
    assert rules["ShipyardDown"]["for"] == "2m"


def test_alert_rules_use_only_exported_metrics() -> None:
    """Every metric an alert rule selects is exported by the server (or is Prometheus' ``up``)."""
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - SERIES_NAMES - PROMETHEUS_SERIES
        assert not unknown, f"{rule['alert']} uses unknown metrics {sorted(unknown)}"


# -- Grafana dashboard ------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    """Return the parsed dashboard JSON."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    """Return every panel of the dashboard, including panels nested in rows."""
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [panel for panel in found if panel["type"] != "row"]


def variable_query(variable: dict[str, Any]) -> str:
    """Return the query of a template variable, whether stored as a string or an object."""
    query = variable.get("query", "")
    if isinstance(query, dict):
        query = query.get("query", "")
    return re.sub(r"\s+", "", query)


def test_dashboard_has_title_uid_and_variables() -> None:
    """The dashboard has its title, a uid and the datasource, model and version variables."""
    data = dashboard()
    assert data["title"] == "shipyard model serving"
    assert data["uid"]
    assert data["schemaVersion"] >= 36
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["model"]["type"] == "query"
    assert variable_query(variables["model"]) == "label_values(shipyard_requests_total,model)"
    assert variables["version"]["type"] == "query"
    assert (
        variable_query(variables["version"])
        == 'label_values(shipyard_requests_total{model=~"$model"},version)'
    )
    for name in ("model", "version"):
        assert variables[name]["datasource"]["uid"] in {"$datasource", "${datasource}"}


def test_dashboard_panels_have_ids_positions_and_targets() -> None:
    """Every panel has a unique id, a gridPos inside the 24-column grid and at least one target."""
    all_panels = panels()
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {ids}"
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["targets"], panel["title"]
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_targets_use_datasource_variable() -> None:
    """Every panel and every target queries the data source chosen in ``$datasource``."""
    for panel in panels():
        assert panel["datasource"]["uid"] in {"$datasource", "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in {"$datasource", "${datasource}"}, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_queries_use_only_exported_metrics() -> None:
    """Every metric a dashboard query selects is one the server exports."""
    for panel in panels():
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']!r}"
            unknown = names - SERIES_NAMES
            assert not unknown, f"{panel['title']} uses unknown metrics {sorted(unknown)}"


def test_dashboard_queries_filter_model_and_version() -> None:
    """Every selector of a model-labelled metric filters on ``$model`` and ``$version``."""
    for panel in panels():
        for target in panel["targets"]:
            for name, matchers in selectors(target["expr"]):
                if name in MODEL_LABELLED:
                    compact = matchers.replace(" ", "")
                    assert 'model=~"$model"' in compact, f"{panel['title']}: {name}{matchers}"
                    assert 'version=~"$version"' in compact, f"{panel['title']}: {name}{matchers}"


@pytest.mark.parametrize(("keyword", "metric"), REQUIRED_PANELS)
def test_dashboard_covers_topic(keyword: str, metric: str) -> None:
    """A panel whose title names the topic queries the metric behind it."""
    matching = [panel for panel in panels() if keyword in panel["title"].lower()]
    assert matching, f"no panel title contains {keyword!r}"
    assert any(
        metric in metric_names(target["expr"]) for panel in matching for target in panel["targets"]
    ), f"no {keyword!r} panel queries {metric}"


def test_latency_panels_use_histogram_quantile() -> None:
    """Every latency panel computes quantiles with histogram_quantile over the duration buckets."""
    latency = [panel for panel in panels() if "latency" in panel["title"].lower()]
    assert latency
    for panel in latency:
        for target in panel["targets"]:
            assert "histogram_quantile(" in target["expr"], panel["title"]
            assert metric_names(target["expr"]) == {"shipyard_request_duration_seconds_bucket"}
    quantiles = {
        match
        for panel in latency
        for target in panel["targets"]
        for match in re.findall(r"histogram_quantile\(\s*([\d.]+)", target["expr"])
    }
    assert {"0.5", "0.95", "0.99"} <= quantiles


# -- documentation ----------------------------------------------------------------------------


def test_readme_lists_every_exported_metric() -> None:
    """deploy/README.md documents every metric the server exports."""
    text = README.read_text()
    missing = [name for name in sorted(EXPORTED_METRICS) if f"`{name}`" not in text]
    assert not missing, f"deploy/README.md does not list {missing}"
