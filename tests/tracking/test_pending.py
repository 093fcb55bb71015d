"""A run that this process started is written whole or not at all: a process killed before
the run's first write leaves nothing, and one that exits without ending it keeps what it
logged."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shipyard
from shipyard.errors import NotFoundError

CHILD = """
import os, signal, sys
import shipyard

project = shipyard.open_project(sys.argv[1])
run = project.start_run("sweep", name=sys.argv[2])
run.log_params({"lr": 0.1, "depth": 3})
run.log_metrics({f"m{i}": i / 10 for i in range(20)})
print(run.id, flush=True)
if sys.argv[2] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
# "left": the script ends without ending the run
"""


@pytest.mark.slow
def test_a_killed_run_leaves_nothing_and_an_unended_one_keeps_what_it_logged(
    tmp_path: Path,
) -> None:
    """A process killed after logging (before the run's first write) leaves no run, no
    experiment and no audit event; a process that exits without ending its run stores it,
    still RUNNING, with its params and metrics. The audit chain verifies."""
    project = shipyard.init_project(tmp_path / "p")
    try:
        events_before = len(project.audit.list())
        script = textwrap.dedent(CHILD)
        ids = {}
        for how in ("killed", "left"):
            done = subprocess.run(
                [sys.executable, "-c", script, str(project.root), how],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            ids[how] = done.stdout.strip()
            assert len(ids[how]) == 32, done.stderr

        with pytest.raises(NotFoundError):
            project.runs.get(ids["killed"])
        left = project.runs.get(ids["left"])
        assert left.status == "RUNNING"
        assert left.params == {"depth": "3", "lr": "0.1"}
        assert len(left.metrics) == 20
        assert [r.id for r in project.runs.list()] == [ids["left"]]
        events = project.audit.list()[events_before:]
        assert {e.entity for e in events if e.entity_kind == "run"} == {ids["left"]}
        assert project.audit.verify().ok
    finally:
        project.close()
