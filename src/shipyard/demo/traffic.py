"""The demo's serving step: serve production on 127.0.0.1, send traffic, feedback and KPIs."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    import polars as pl
    from rich.console import Console

    from shipyard.data.datasets import DatasetVersion
    from shipyard.project import Project

__all__ = ["send_batch", "serve_and_drive", "serving"]

LABEL = "default"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_and_drive(
    project: Project, model: str, holdout: DatasetVersion, out: Console, *, requests: int = 300
) -> dict[str, Any]:
    """Start the server in this process, send ``requests`` single-row predictions (and a few
    bad ones), feedback for each and a revenue KPI per approved loan; print and return the
    metrics summary; stop the server."""
    with serving(project, model) as (client, port):
        out.print(f"$ shipyard serve {model} --port {port}   (in the background)")
        frame = holdout.to_polars().head(requests)
        labels = frame[LABEL].to_list()
        rows = json.loads(frame.drop(LABEL).write_json())
        answered: list[tuple[str, Any, Any]] = []
        by_version: dict[str, int] = {}
        started = time.perf_counter()
        for row, label in zip(rows, labels, strict=True):
            r = client.post("/predict", json={"records": [row]})
            r.raise_for_status()
            body = r.json()
            answered.append((body["request_ids"][0], body["predictions"][0], label))
            who = f"{model}@{body['version']} ({body['alias']})"
            by_version[who] = by_version.get(who, 0) + 1
        elapsed = time.perf_counter() - started
        out.print(
            f"sent {len(rows)} single-row requests in {elapsed:.1f} s; answered by "
            + ", ".join(f"{who} {n}" for who, n in sorted(by_version.items()))
        )
        bad = {
            "a missing column": {"records": [{k: v for k, v in rows[0].items() if k != "income"}]},
            "a wrong type": {"records": [{**rows[0], "age": "forty"}]},
            "a value outside the contract": {"records": [{**rows[0], "age": 250}]},
            "an unknown category": {"records": [{**rows[0], "gender": "unknown"}]},
        }
        for what, doc in bad.items():
            r = client.post("/predict", json=doc)
            out.print(f"  {what}: HTTP {r.status_code} {r.json()['error']}")
        r = client.post("/predict", content=b"{not json")
        out.print(f"  malformed JSON: HTTP {r.status_code}")
        _wait_logged(project, model, len(answered))
        r = client.post(
            "/feedback",
            json=[{"request_id": rid, "label": label} for rid, _, label in answered],
        )
        out.print(f"$ POST /feedback with {len(answered)} true labels -> HTTP {r.status_code}")
        revenue = 0.0
        for rid, prediction, _ in answered:
            if prediction == 0:  # approved as low risk: the loan earns its fee
                fee = 120.0
                revenue += fee
                client.post("/kpi", json={"name": "revenue", "value": fee, "request_id": rid})
        out.print(f"$ POST /kpi revenue for each approved loan -> {revenue:,.0f} in total")
        text = client.get("/metrics").text
    summary = project.predictions.metrics(model)
    exported = _pick(text)
    out.print("from /metrics: " + ", ".join(f"{k} {v}" for k, v in exported.items()))
    lat = summary["latency_ms"]
    out.print(
        f"$ shipyard deployments metrics {model} --window 1h\n"
        f"  {summary['predictions']} predictions, latency p50 {lat['p50']:.1f} ms / p99 "
        f"{lat['p99']:.1f} ms, accuracy {_fmt(summary['accuracy'])}, "
        f"revenue {summary['kpis'].get('revenue', {}).get('sum', 0):,.0f}"
    )
    out.print(f"server on port {port} stopped cleanly")
    return summary


@contextlib.contextmanager
def serving(project: Project, model: str) -> Iterator[tuple[httpx.Client, int]]:
    """Serve deployment ``model`` of ``project`` on a free port of 127.0.0.1 in this process
    while the block runs; yields an HTTP client for it and the port."""
    import httpx
    import uvicorn

    from shipyard.serving.app import ServeConfig, create_app

    port = _free_port()
    config = ServeConfig(project=str(project.root), deployment=model)
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="shipyard-demo-server", daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            _wait_ready(client)
            yield client, port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def send_batch(
    project: Project, model: str, frame: pl.DataFrame, *, chunk: int = 50
) -> dict[str, int]:
    """Serve ``model`` and send the rows of ``frame`` (without the label) to ``/predict``,
    ``chunk`` rows per request; wait until the prediction log holds them. Returns how many
    rows each answering version took."""
    rows = json.loads(frame.drop(LABEL, strict=False).write_json())
    before = _logged(project, model)
    by_version: dict[str, int] = {}
    with serving(project, model) as (client, _):
        for start in range(0, len(rows), chunk):
            r = client.post("/predict", json={"records": rows[start : start + chunk]})
            r.raise_for_status()
            body = r.json()
            who = f"{model}@{body['version']} ({body['alias']})"
            by_version[who] = by_version.get(who, 0) + len(body["predictions"])
        _wait_logged(project, model, before + len(rows))
    return by_version


def _logged(project: Project, model: str) -> int:
    from shipyard.errors import NotFoundError

    try:
        return int(project.predictions.metrics(model)["predictions"])
    except NotFoundError:  # nothing logged yet
        return 0


def _wait_ready(client: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get("/v2/health/ready").status_code == 200:
                return
        except Exception:  # not listening yet
            pass
        time.sleep(0.1)
    raise RuntimeError("the demo server did not become ready in time")


def _wait_logged(project: Project, model: str, rows: int, timeout: float = 15.0) -> None:
    """The prediction log is written in the background: wait until it holds every row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _logged(project, model) >= rows:
            return
        time.sleep(0.2)


def _pick(text: str) -> dict[str, str]:
    """A few figures from the /metrics exposition, read with prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = {"predictions": 0.0, "errors": 0.0, "revenue": 0.0}
    accuracy: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shipyard_predictions_total":
                totals["predictions"] += sample.value
            elif sample.name == "shipyard_prediction_errors_total":
                totals["errors"] += sample.value
            elif sample.name == "shipyard_kpi_value_sum":
                totals["revenue"] += sample.value
            elif sample.name == "shipyard_model_accuracy":
                accuracy[f"accuracy @{sample.labels.get('version')}"] = sample.value
    shown = {k: f"{v:,.0f}" for k, v in totals.items()}
    return {**shown, **{k: f"{v:.3f}" for k, v in sorted(accuracy.items())}}


def _fmt(accuracy: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()) or "n/a"
