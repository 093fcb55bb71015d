"""``shipyard monitor`` (add, list, show, history, run, remove) and ``shipyard alerts`` (list,
show) on the command line: one JSON document under ``--json``, exit 3 when a run opens an
alert, 2 for a usage error, 1 for bad input with a message naming the problem. The monitor is
a KPI floor (revenue at least 10 per 10 minutes) on a deployment with no recent revenue, so
the current window breaches."""

from __future__ import annotations

import signal
import subprocess
import sys

from shipyard.project import Project
from tests.cli.conftest import Cli, Result
from tests.monitoring.conftest import fresh, kpi_in_window


def test_add_run_show_and_alerts_through_the_cli(cli: Cli, shared: Project) -> None:
    """A run that opens an alert exits 3 and says so; running again in the same window exits
    0 with the stored result; history, show and the alert commands report what happened."""
    deployment, name = fresh("shop"), fresh("revenue")
    kpi_in_window(shared, -100, 50.0, deployment=deployment)

    def run(*args: str) -> Result:
        return cli("--project", shared.root, *args)

    added = run(
        "monitor", "add", name, "--deployment", deployment, "--kind", "kpi", "--kpi",
        "revenue", "--min", "10", "--window", "10m", "--every", "10m", "--json",
    )  # fmt: skip
    assert added.code == 0, added.stderr
    doc = added.json()
    assert (doc["name"], doc["window_seconds"], doc["thresholds"]) == (
        name,
        600,
        [{"metric": "sum", "min": 10.0, "max": None}],
    )
    listed = run("monitor", "list", "--deployment", deployment, "--json")
    assert [m["name"] for m in listed.json()] == [name]
    first = run("monitor", "run", name, "--json")
    assert first.code == 3, first.stderr
    [outcome] = first.json()
    assert (outcome["result"]["status"], outcome["alert_event"]) == ("breach", "opened")
    again = run("monitor", "run", name)
    assert again.code == 0
    assert "breach" in again.stdout and "(measured before)" in again.stdout
    history = run("monitor", "history", name, "--json").json()
    assert [r["status"] for r in history] == ["breach"]
    shown = run("monitor", "show", name, "--json").json()
    alert_id = shown["open_alert"]["id"]
    assert shown["latest"]["id"] == history[0]["id"]
    alerts = run("alerts", "list", "--open", "--monitor", name, "--json").json()
    assert [a["id"] for a in alerts] == [alert_id]
    text = run("alerts", "show", str(alert_id))
    assert text.code == 0 and f"alert {alert_id} (open)" in text.stdout
    assert "sum >= 10" in text.stdout
    removed = run("monitor", "remove", name, "--json")
    assert removed.code == 0 and removed.json()["name"] == name


def test_usage_and_input_errors_exit_2_and_1(cli: Cli, shared: Project) -> None:
    """``monitor run`` needs a name or --all (exit 2); an unknown kind is refused naming the
    kinds (exit 1); an unknown alert is not found (exit 1)."""
    deployment = fresh("shop")
    kpi_in_window(shared, -100, 50.0, deployment=deployment)
    usage = cli("--project", shared.root, "monitor", "run")
    assert usage.code == 2
    bad = cli(
        "--project", shared.root, "monitor", "add", "x", "--deployment", deployment,
        "--kind", "latency",
    )  # fmt: skip
    assert bad.code == 1
    assert "unknown kind 'latency': choose drift, quality, performance, kpi" in bad.stderr
    missing = cli("--project", shared.root, "alerts", "show", "999999")
    assert missing.code == 1 and "no alert 999999" in missing.stderr


def test_watch_runs_until_ctrl_c_and_exits_cleanly(shared: Project) -> None:
    """``monitor watch`` prints the result of the current window, then keeps waiting; Ctrl-C
    (SIGINT) ends it with exit 0 and no traceback, the result stored."""
    deployment, name = fresh("shop"), fresh("revenue")
    kpi_in_window(shared, -100, 50.0, deployment=deployment)
    shared.monitors.add(name, deployment=deployment, kind="kpi", kpi="revenue", min_value=10.0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "--project", str(shared.root), "monitor", "watch",
         "--deployment", deployment],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first look's result
        assert line.startswith(f"{name}: breach for "), line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert [r.status for r in shared.monitors.history(name)] == ["breach"]
