"""Eight processes logging to one project at once lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard

WORKER = r"""
import sys
import shipyard
project = shipyard.open_project(sys.argv[1])
n = int(sys.argv[2])
with project.start_run("concurrent", name=f"worker-{sys.argv[3]}") as run:
    run.log_params({"worker": sys.argv[3]})
    for step in range(n):
        run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / n}, step=step)
        if step % 250 == 0:
            run.flush()  # many small transactions, interleaved with the other workers
    run.set_tag("done", "yes")
print(run.id)
"""

WORKERS = 8
STEPS = 1500


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_project(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A project on SQLite or PostgreSQL and the environment its workers need."""
    env = dict(os.environ, SHIPYARD_USER="alice")
    if request.param == "postgres":
        env["SHIPYARD_DB_URL"] = str(request.getfixturevalue("pg_schema_url"))
        shipyard.init_project(tmp_path / "p", db_url=env["SHIPYARD_DB_URL"]).close()
    else:
        shipyard.init_project(tmp_path / "p").close()
    return tmp_path / "p", env


def test_eight_processes_logging_at_once_lose_no_point(
    shared_project: tuple[Path, dict[str, str]],
) -> None:
    """Every point of every worker is stored, each metric's range is right, every run
    finished, and the audit chain holds."""
    root, env = shared_project
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), str(STEPS), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(WORKERS)
    ]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        ids.append(out.strip())
    project = shipyard.open_project(root, db_url=env.get("SHIPYARD_DB_URL"))
    try:
        runs = project.runs.list(experiment="concurrent")
        assert sorted(r.id for r in runs) == sorted(ids)
        for run_id in ids:
            info = project.runs.get(run_id)
            assert info.status == "FINISHED" and info.tags == {"done": "yes"}
            assert info.metrics["loss"] == pytest.approx(1.0 / STEPS)
            (row,) = project.runs.table(filter=f"attributes.run_id = '{run_id}'").rows
            loss, acc = row.metrics["loss"], row.metrics["acc"]
            assert (loss.min, loss.max) == (pytest.approx(1.0 / STEPS), 1.0)
            assert (acc.min, acc.max) == (0.0, pytest.approx((STEPS - 1) / STEPS))
            assert len(project.runs.metric_history(run_id, "loss")) == STEPS
            assert len(project.runs.metric_history(run_id, "acc")) == STEPS
        assert project.audit.verify().ok
    finally:
        project.close()
