"""Triggers and reproduction as a user sees them: a new dataset version, an opened alert and
a due cron schedule each run the retraining pipeline once (recorded on the run, kept across a
restart), its candidate is promoted to `challenger` but never to `production` by itself, and a
model made by the pipeline is rebuilt from its lineage."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import shipyard
from shipyard.errors import InvalidInputError
from shipyard.governance.policies import Policy
from shipyard.project import Project
from shipyard.stores.db.tables import alerts, pipeline_runs
from tests.cli.conftest import Cli

PIPELINE = """
import polars as pl
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step
from shipyard.pipelines import current, dataset


@step
def features(data) -> pl.DataFrame:
    return data.to_polars()


@step(model="credit")
def train(table: pl.DataFrame, C: float):
    return LogisticRegression(C=C).fit(table.select("x1", "x2").to_pandas(), table["y"].to_numpy())


@step
def evaluate(model, table: pl.DataFrame) -> float:
    fitted = current().project.models.load(model.ref)
    predicted = fitted.predict(table.select("x1", "x2").to_pandas())
    accuracy = float((predicted == table["y"].to_numpy()).mean())
    current().run.log_metric("accuracy", accuracy)
    return accuracy


@pipeline
def retrain(data=dataset("credit.train"), C: float = 1.0):
    t = features(data)
    evaluate(train(t, C), t)
"""

SCHEDULE = """
triggers:
  hourly:
    pipeline: pipeline.py:retrain
    cron: "0 * * * *"
  new-data:
    pipeline: pipeline.py:retrain
    dataset: credit.train
  drift:
    pipeline: pipeline.py:retrain
    alert: credit-drift
    params: {C: 0.5}
"""


def table(seed: int, rows: int = 60) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    return pl.DataFrame(
        {
            "x1": x[:, 0],
            "x2": x[:, 1],
            "y": (x[:, 0] + x[:, 1] + rng.normal(size=rows) > 0).astype(int),
        }
    )


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project with dataset credit.train, the retraining pipeline, a schedule, and a policy
    that auto-promotes to challenger but asks one approval."""
    root = tmp_path_factory.mktemp("sched") / "proj"
    project = shipyard.init_project(root, actor="alice")
    project.datasets.add("credit.train", table(1))
    (root / "pipeline.py").write_text(PIPELINE)
    (root / "schedule.yaml").write_text(SCHEDULE)
    project.policies.set("credit", {"approvals": {"min": 1}, "auto_promote": ["challenger"]})
    try:
        yield project
    finally:
        project.close()


def fired(firings: list[shipyard.pipelines.scheduler.Firing]) -> dict[str, str]:
    return {f.trigger: f.reason for f in firings if f.fired}


@pytest.mark.slow
def test_each_trigger_runs_the_pipeline_once_and_a_restart_does_not_run_it_again(
    proj: Project,
) -> None:
    """The first pass records where things stand; a new dataset version, an opened alert and
    a due cron fire each start one run tagged with what triggered it; the same pass again,
    from a reopened project, starts nothing; the candidate goes to challenger, not
    production."""
    t0 = datetime(2026, 12, 3, 8, 10, tzinfo=UTC)
    triggers = proj.scheduler.load()
    first = proj.scheduler.run_once(triggers, now=t0)
    assert fired(first) == {}
    assert {f.trigger: f.reason.split(":")[0] for f in first} == {
        "hourly": "first pass",
        "new-data": "first pass",
        "drift": "no alert opened since the last pass",
    }

    proj.datasets.add("credit.train", table(2))
    second = proj.scheduler.run_once(triggers, now=t0 + timedelta(minutes=5))
    assert fired(second) == {
        "new-data": "new dataset version credit.train@2 (after credit.train@1)"
    }
    [firing] = [f for f in second if f.fired]
    assert firing.status == "succeeded", firing.error
    assert firing.models == ["credit@1"]
    tags = proj.runs.get(firing.pipeline_run or "").tags
    assert tags["shipyard.trigger"] == "dataset" and tags["shipyard.trigger.name"] == "new-data"
    [promo] = firing.promoted
    assert promo["alias"] == "challenger" and promo["promoted"], promo
    assert proj.models.get("credit@challenger").version == 1
    with pytest.raises(shipyard.NotFoundError):
        proj.models.get("credit@production")

    with proj.context.audited() as tx:  # an alert as a drift monitor opens it
        tx.conn.execute(
            alerts.insert().values(
                monitor_id=1,
                monitor="credit-drift",
                deployment="credit",
                kind="drift",
                status="open",
                opened_at=t0,
                first_result_id=1,
                last_result_id=1,
                summary="income drifted",
                details={},
            )
        )
    restarted = shipyard.open_project(proj.context.settings.root, actor="alice")
    try:
        third = restarted.scheduler.run_once(triggers, now=t0 + timedelta(minutes=55))
        assert set(fired(third)) == {"drift", "hourly"}
        assert fired(third)["hourly"] == "cron 0 * * * *: due at 2026-12-03T09:00:00+00:00"
        runs = {f.trigger: restarted.runs.get(f.pipeline_run or "") for f in third if f.fired}
        assert runs["drift"].tags["shipyard.trigger.reason"].startswith("alert 1 of monitor")
        assert runs["drift"].params["C"] == "0.5"
        again = restarted.scheduler.run_once(triggers, now=t0 + timedelta(minutes=58))
        assert fired(again) == {}
        assert restarted.audit.verify().ok  # the automatic alias move is in the audit chain
    finally:
        restarted.close()


def test_a_policy_cannot_auto_promote_to_production() -> None:
    """production always needs its approvals, so a policy that lists it is refused."""
    with pytest.raises(InvalidInputError, match="never promoted automatically"):
        Policy.from_yaml("auto_promote: [challenger, production]\n")


@pytest.mark.slow
def test_a_pipeline_model_reproduces_and_a_tampered_record_does_not(
    proj: Project, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reproduce` rebuilds the model from the stored code, params and pinned data with the
    identical digest or the same metrics (exit 0); with another dataset version recorded as
    its input it says the data and the artifact differ (exit 3); a model not made by a
    pipeline is refused with the reason (exit 1)."""
    proj.datasets.add("credit.train", table(3))
    made = proj.pipelines.run(str(proj.context.settings.root / "pipeline.py"), params={"C": 2.0})
    ref = made.step("train").outputs["ref"]  # type: ignore[index]
    monkeypatch.chdir(proj.context.settings.root)
    ok = cli("reproduce", ref, "--json")
    assert ok.code == 0, ok.stderr
    import json

    doc = json.loads(ok.stdout)
    assert doc["outcome"] in ("identical", "equivalent") and doc["reproduced"]
    assert [m["within_tolerance"] for m in doc["metrics"]] == [True]

    with proj.context.audited() as tx:
        dag = tx.conn.execute(pipeline_runs.select().where(pipeline_runs.c.id == made.id)).one().dag
        pin = dag["inputs"]["dataset:credit.train"]
        first = proj.datasets.get("credit.train@1")
        dag["inputs"]["dataset:credit.train"] = {**pin, "ref": first.ref, "digest": first.digest}
        tx.conn.execute(pipeline_runs.update().where(pipeline_runs.c.id == made.id).values(dag=dag))
    bad = cli("reproduce", ref, "--json")
    assert bad.code == 3, bad.stderr
    doc = json.loads(bad.stdout)
    assert doc["outcome"] == "differs"
    assert {"data", "artifact"} <= {d["what"] for d in doc["differences"]}

    from sklearn.linear_model import LogisticRegression

    plain = proj.models.register_model("plain", LogisticRegression().fit([[0], [1]], [0, 1]))
    refused = cli("reproduce", plain.ref)
    assert refused.code == 1 and "not made by a pipeline" in refused.stderr

    # One pass from the command line reports on every trigger in one JSON document.
    once = cli("scheduler", "--once", "--json")
    assert once.code == 0, once.stderr
    doc = json.loads(once.stdout)
    assert doc["passes"] == 1
    assert {f["trigger"] for f in doc["firings"]} == {"hourly", "new-data", "drift"}


@pytest.mark.slow
def test_sigterm_stops_the_scheduler_cleanly(proj: Project) -> None:
    """A foreground scheduler stops on SIGTERM with exit 0 and says so."""
    env = {**os.environ, "PYTHONPATH": str(Path(shipyard.__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "scheduler", "--interval", "0.2"],
        cwd=proj.context.settings.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "the scheduler printed nothing"
        assert proc.stdout is not None and proc.stdout.readline().startswith("scheduler:")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "scheduler: stopped after" in out
