"""What a deployment answered, summarised from its prediction log: ``Deployments.metrics``
(predictions, latency percentiles, accuracy from feedback, KPIs over a window) on every
backend, and ``shipyard deployments metrics`` on the command line.

The log is written with the server's own :class:`PredictionLog`, so the figures are known
exactly: no model needs to run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import shipyard
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.project import Project
from shipyard.serving.prediction_log import PredictionLog, PredictionRecord
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli
from tests.cli.conftest import cli_project as cli_project

MODEL = "credit-risk"
V1, V2 = f"{MODEL}@1", f"{MODEL}@2"
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Traffic:
    """What was logged: answered rows by model (request id, output, latency), shadow rows,
    the span of the answers in the last hour, labels sent and KPI events."""

    answers: dict[str, list[tuple[str, int, float]]]
    span_seconds: float


def log_traffic(project: Project) -> Traffic:
    """Log, for ``credit-risk``: 60 answers by @1 (latency 1..60 ms) and 40 by @2 (101..140
    ms) over the last 50 seconds, a shadow score by @2 for each answer of @1, and 10 answers
    by @1 two hours ago; then feedback (@1: 15 of 20 right, @2: 10 of 10 right) and KPI
    events (revenue 10 + 20 + 30.5, one click)."""
    now = int(time.time() * 1000)
    answers: dict[str, list[tuple[str, int, float]]] = {V1: [], V2: []}
    records = []
    for i in range(100):
        model = V1 if i < 60 else V2
        rid, output = f"{i:032x}", i % 2
        latency = float(i + 1) if model == V1 else float(i + 41)
        when = now - 50_000 + i * 500
        answers[model].append((rid, output, latency))
        records.append(PredictionRecord(rid, when, model, False, {"i": i}, output, latency))
        if model == V1:
            records.append(PredictionRecord(rid, when, V2, True, {"i": i}, 1 - output, 0.5))
    for i in range(10):
        rid = f"{1000 + i:032x}"
        records.append(PredictionRecord(rid, now - 2 * HOUR_MS, V1, False, {"i": i}, 0, 500.0))
    log = PredictionLog(project, MODEL, flush_seconds=0.05)
    log.put(records)
    log.close()
    assert (log.written, log.dropped) == (len(records), 0)
    v1_labels = [
        (rid, out if k < 15 else 1 - out) for k, (rid, out, _) in enumerate(answers[V1][:20])
    ]
    v2_labels = [(rid, out) for rid, out, _ in answers[V2][:10]]
    project.predictions.record_feedback(MODEL, v1_labels + v2_labels)
    for name, value in [("revenue", 10.0), ("revenue", 20.0), ("revenue", 30.5), ("clicks", 1.0)]:
        project.predictions.record_kpi(MODEL, name, value)
    return Traffic(answers, span_seconds=99 * 0.5)


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": pytest.approx(p50), "p95": pytest.approx(p95), "p99": pytest.approx(p99)}


def test_metrics_summarise_the_last_hour_of_a_deployment(project: Project) -> None:
    """Over one hour: the answered rows (not shadow scores, not older rows), their latency
    percentiles overall and per version, throughput, feedback, accuracy per version and
    KPI event counts and sums."""
    traffic = log_traffic(project)
    doc = project.predictions.metrics(MODEL, window_seconds=3600)
    latencies = {m: [lat for _, _, lat in rows] for m, rows in traffic.answers.items()}
    assert doc["deployment"] == MODEL
    assert doc["window_seconds"] == 3600
    assert doc["predictions"] == 100
    assert doc["throughput_per_second"] == pytest.approx(100 / traffic.span_seconds, rel=0.01)
    assert doc["latency_ms"] == percentiles(latencies[V1] + latencies[V2])
    assert doc["by_model"] == {
        V1: {"predictions": 60, "latency_ms": percentiles(latencies[V1]), "accuracy": 0.75},
        V2: {"predictions": 40, "latency_ms": percentiles(latencies[V2]), "accuracy": 1.0},
    }
    assert doc["feedback"] == 30
    assert doc["accuracy"] == {V1: 0.75, V2: 1.0}
    assert doc["kpis"] == {
        "revenue": {"events": 3, "sum": pytest.approx(60.5)},
        "clicks": {"events": 1, "sum": 1.0},
    }


def test_a_longer_window_takes_in_older_predictions(project: Project) -> None:
    """Three hours back, the ten answers of two hours ago count too (500 ms each)."""
    log_traffic(project)
    doc = project.predictions.metrics(MODEL, window_seconds=3 * 3600)
    assert doc["predictions"] == 110
    assert doc["by_model"][V1]["predictions"] == 70
    assert doc["latency_ms"]["p99"] == pytest.approx(500.0)


def test_the_log_joins_labels_and_keeps_shadow_scores_apart(project: Project) -> None:
    """``predictions`` returns the answered rows with their inputs, outputs and the labels
    sent later; shadow scores only with ``include_shadow``, and ``since`` cuts older rows."""
    traffic = log_traffic(project)
    answered = project.predictions.list(MODEL).set_index("request_id")
    assert len(answered) == 110
    assert not answered["shadow"].any()
    rid, output, latency = traffic.answers[V1][16]
    assert answered.loc[rid, "inputs"] == {"i": 16}
    assert (answered.loc[rid, "output"], answered.loc[rid, "label"]) == (output, 1 - output)
    assert answered.loc[rid, "latency_ms"] == latency
    everything = project.predictions.list(MODEL, include_shadow=True)
    assert len(everything) == 170
    assert set(everything[everything["shadow"]]["model"]) == {V2}
    recent = project.predictions.list(MODEL, since=time.time() - 3600)
    assert len(recent) == 100


def test_a_deployment_that_never_logged_is_not_found(project: Project) -> None:
    """Metrics of a name that never served say so and how to start it."""
    log_traffic(project)
    with pytest.raises(NotFoundError, match=r"no deployment 'churn'.*shipyard serve churn"):
        project.predictions.metrics("churn")


def test_empty_feedback_and_bad_kpis_are_refused(project: Project) -> None:
    """No feedback items, a KPI without a usable name, or a value that is not finite are
    refused with InvalidInputError before anything is stored."""
    with pytest.raises(InvalidInputError, match="no feedback"):
        project.predictions.record_feedback(MODEL, [])
    with pytest.raises(InvalidInputError, match="is not a KPI name"):
        project.predictions.record_kpi(MODEL, "", 1.0)
    with pytest.raises(InvalidInputError, match="finite"):
        project.predictions.record_kpi(MODEL, "revenue", float("nan"))
    with pytest.raises(NotFoundError):
        project.predictions.metrics(MODEL)


def test_a_long_request_id_is_refused_never_a_database_error(
    project: Project, backend: str
) -> None:
    """Feedback for a request id longer than the 32 characters the server issues is refused
    with InvalidInputError naming the limit, the same way on every backend."""
    with pytest.raises(InvalidInputError, match="at most 32 characters"):
        project.predictions.record_feedback(MODEL, [("x" * 40, 1)])


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def logged_cli_project(cli_project: Path) -> Path:
    """The CLI project (current directory) with the traffic of :func:`log_traffic`."""
    with shipyard.open_project(cli_project) as project:
        log_traffic(project)
    return cli_project


def test_cli_metrics_json_is_the_service_summary(logged_cli_project: Path, cli: Cli) -> None:
    """``shipyard deployments metrics credit-risk --window 1h --json`` prints the summary
    of the last hour as one JSON document."""
    res = cli("deployments", "metrics", MODEL, "--window", "1h", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["predictions"] == 100
    assert doc["window_seconds"] == 3600
    assert doc["accuracy"] == {V1: 0.75, V2: 1.0}
    assert doc["kpis"]["revenue"] == {"events": 3, "sum": 60.5}
    assert set(doc["by_model"]) == {V1, V2}
    wider = cli("deployments", "metrics", MODEL, "--window", "3h", "--json").json()
    assert wider["predictions"] == 110


def test_cli_metrics_table_shows_latency_accuracy_and_kpis(
    logged_cli_project: Path, cli: Cli
) -> None:
    """Without --json the command prints the counts, latency percentiles, a row per model
    version with its accuracy, and the KPI sums."""
    res = cli("deployments", "metrics", MODEL)
    assert res.code == 0, res.stderr
    assert "100 predictions" in res.stdout
    assert "p50" in res.stdout and "p99" in res.stdout
    assert V1 in res.stdout and "0.750" in res.stdout
    assert "kpi revenue: 3 events, sum 60.50" in res.stdout


def test_cli_metrics_of_an_unknown_deployment_exits_1_with_a_message(
    logged_cli_project: Path, cli: Cli
) -> None:
    """An unknown deployment is an error (exit 1) naming it, without a traceback: on stderr,
    or as the one JSON document under --json."""
    res = cli("deployments", "metrics", "churn")
    assert res.code == 1
    assert "no deployment 'churn'" in res.stderr
    assert "Traceback" not in res.stderr
    as_json = cli("deployments", "metrics", "churn", "--json")
    assert as_json.code == 1
    assert as_json.json()["error"] == "not_found"
    assert "no deployment 'churn'" in as_json.json()["message"]


@pytest.mark.parametrize("window", ["1x", "h", "-1h", "soon"])
def test_cli_metrics_with_a_bad_window_is_a_usage_error(
    logged_cli_project: Path, cli: Cli, window: str
) -> None:
    """A window that is not a number with s, m, h or d is a usage error (exit 2) showing
    the expected form."""
    res = cli("deployments", "metrics", MODEL, "--window", window)
    assert res.code == 2
    assert "30m, 1h or 7d" in res.stderr
