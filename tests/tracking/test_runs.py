"""Tracked runs on SQLite and PostgreSQL: what a run records, how it ends, who may start one,
and how runs are searched, compared, deleted and restored."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import shipyard
from shipyard.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from shipyard.project import Project
from shipyard.tracking.active import ActiveRun
from shipyard.tracking.capture import forget_captures, redact_command
from shipyard.tracking.search import FilterSyntaxError

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def small_frame(rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(rows),
            "amount": [float(i % 7) * 1.5 for i in range(rows)],
            "city": [["Oslo", "Lima", "Pune"][i % 3] for i in range(rows)],
        }
    )


def events_of(project: Project, run_id: str) -> list[str]:
    return [e.action for e in project.audit.list(entity=run_id, entity_kind="run")]


def audit_count(project: Project) -> int:
    return len(project.audit.list())


@pytest.fixture
def three_runs(project: Project) -> dict[str, str]:
    """Three runs of `credit` that differ in model, auc, team and status; returns name → id."""
    specs = [
        ("gbm-a", {"model": "gbm", "seed": 1}, 0.91, "risk", "FINISHED"),
        ("lr-b", {"model": "lr", "seed": 1}, 0.75, "risk", "FINISHED"),
        ("gbm-c", {"model": "gbm", "seed": 1}, 0.85, "growth", "KILLED"),
    ]
    ids = {}
    for name, params, auc, team, status in specs:
        run = project.start_run(experiment="credit", name=name, tags={"team": team})
        run.log_params(params)
        run.log_metric("auc", auc)
        run.end(status)
        ids[name] = run.id
    return ids


# -- what a run records -------------------------------------------------------------------------


def test_a_finished_run_records_params_metrics_tags_inputs_and_times(project: Project) -> None:
    """A run used as a context manager keeps its params, latest metrics, tags and inputs, and
    ends FINISHED with an end time after its start."""
    project.datasets.add("applicants", small_frame())
    with project.start_run(experiment="credit", name="gbm-1", tags={"team": "risk"}) as run:
        run.log_params({"model": "gbm", "max_depth": 3, "lr": 0.1})
        for step, loss in enumerate([0.9, 0.6, 0.4]):
            run.log_metric("loss", loss, step=step)
        run.log_metrics({"auc": 0.88, "f1": 0.7})
        run.set_tag("stage", "tuning")
        run.log_input("applicants@1", context="train")

    info = project.runs.get(run.id)
    assert info.name == "gbm-1" and info.experiment == "credit"
    assert info.status == "FINISHED" and info.error is None
    assert info.end_time is not None and info.end_time >= info.start_time
    assert info.duration_seconds is not None and info.duration_seconds >= 0
    assert info.created_by == "alice"
    assert info.params == {"lr": "0.1", "max_depth": "3", "model": "gbm"}
    assert info.metrics == {"auc": 0.88, "f1": 0.7, "loss": 0.4}
    assert info.tags == {"stage": "tuning", "team": "risk"}
    dataset = project.datasets.get("applicants@1")
    assert info.inputs == [
        {"dataset": "applicants@1", "context": "train", "digest": dataset.digest}
    ]


def test_metric_history_returns_every_point_in_step_order(project: Project) -> None:
    """Points logged out of order come back sorted by step, each with its value, and the
    latest value is the one at the highest step."""
    with project.start_run(experiment="credit") as run:
        for step, value in [(2, 0.3), (0, 0.9), (3, 0.2), (1, 0.5)]:
            run.log_metric("loss", value, step=step)
        run.log_metric("acc", 0.1)
        run.log_metric("acc", 0.2)  # without a step, steps count up per key

    history = project.runs.metric_history(run.id, "loss")
    assert [(p["step"], p["value"]) for p in history] == [(0, 0.9), (1, 0.5), (2, 0.3), (3, 0.2)]
    assert all(isinstance(p["timestamp"], int) for p in history)
    acc = project.runs.metric_history(run.id, "acc")
    assert [(p["step"], p["value"]) for p in acc] == [(0, 0.1), (1, 0.2)]
    assert project.runs.get(run.id).metrics == {"acc": 0.2, "loss": 0.2}


def test_artifacts_of_a_file_and_a_folder_read_back_identical(
    project: Project, tmp_path: Path
) -> None:
    """A logged file and every file of a logged folder are stored under their paths and read
    back byte for byte through the artifact store; a missing path is refused."""
    report = tmp_path / "report.txt"
    report.write_text("auc 0.9\n")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "roc.svg").write_bytes(b"<svg>roc</svg>")
    (folder / "sub" / "pr.svg").write_bytes(b"<svg>pr</svg>" * 100)

    with project.start_run(experiment="credit") as run:
        assert run.log_artifact(report) == ["report.txt"]
        assert run.log_artifact(folder) == ["plots/roc.svg", "plots/sub/pr.svg"]

        with pytest.raises(InvalidInputError, match=r"nowhere\.txt"):
            run.log_artifact(tmp_path / "nowhere.txt")

    stored = {a["path"]: a for a in project.runs.get(run.id).artifacts}
    originals = {
        "report.txt": report,
        "plots/roc.svg": folder / "roc.svg",
        "plots/sub/pr.svg": folder / "sub" / "pr.svg",
    }
    assert sorted(stored) == sorted(originals)
    for path, original in originals.items():
        data = original.read_bytes()
        assert stored[path]["size"] == len(data)
        assert project.artifacts.read_bytes(stored[path]["digest"]) == data


def test_an_exception_in_the_block_fails_the_run_and_propagates(project: Project) -> None:
    """The error leaves the with-block unchanged; the run is FAILED with the error text, an end
    time and the points logged before the error (Ctrl-C gives KILLED)."""
    with (
        pytest.raises(RuntimeError, match="loss diverged"),
        project.start_run(experiment="credit", name="unstable") as run,
    ):
        run.log_metric("loss", 0.5)
        raise RuntimeError("loss diverged")

    info = project.runs.get(run.id)
    assert info.status == "FAILED"
    assert info.error is not None and "RuntimeError: loss diverged" in info.error
    assert info.end_time is not None
    assert info.metrics == {"loss": 0.5}

    with pytest.raises(KeyboardInterrupt), project.start_run(experiment="credit") as stopped:
        raise KeyboardInterrupt
    assert project.runs.get(stopped.id).status == "KILLED"


@needs_git
def test_code_version_and_environment_are_captured(project: Project, tmp_path: Path) -> None:
    """A run started in a git repository records its commit and dirty flag, and the Python
    version, installed packages and command line of the process. Code is captured once per
    process and folder: a later run of the same process reuses it, a new process captures
    again (here: ``forget_captures``)."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
        )
        return done.stdout.strip()

    git("init", "--quiet", "--initial-branch=main")
    git("config", "user.email", "ci@example.com")
    git("config", "user.name", "CI")
    git("config", "commit.gpgsign", "false")
    (repo / "train.py").write_text("print('train')\n")
    git("add", "train.py")
    git("commit", "--quiet", "-m", "first")

    with project.runs.start("credit", capture_code_in=repo) as clean:
        pass
    (repo / "train.py").write_text("print('train harder')\n")
    with project.runs.start("credit", capture_code_in=repo) as same_process:
        pass
    forget_captures()
    with project.runs.start("credit", capture_code_in=repo) as dirty:
        pass

    head = git("rev-parse", "HEAD")
    clean_git = project.runs.get(clean.id).code["git"]
    assert clean_git["commit"] == head and clean_git["dirty"] is False
    assert project.runs.get(same_process.id).code == project.runs.get(clean.id).code
    info = project.runs.get(dirty.id)
    assert info.code["git"]["commit"] == head and info.code["git"]["dirty"] is True
    assert info.code["git"]["diff_digest"].startswith("blake3:")
    env = info.environment
    assert env["python_version"] == platform.python_version()
    assert "shipyard" in env["packages"]
    assert env["command"] == redact_command(sys.argv)


# -- refusals -----------------------------------------------------------------------------------


def test_relogging_a_param_with_another_value_conflicts(project: Project) -> None:
    """Parameters are immutable: the same value again is accepted, a different one raises
    ConflictError naming the key and leaves the first value."""
    with project.start_run(experiment="credit") as run:
        run.log_param("max_depth", 3)
        run.log_param("max_depth", 3)
        with pytest.raises(ConflictError, match="max_depth"):
            run.log_param("max_depth", 5)
    assert project.runs.get(run.id).params == {"max_depth": "3"}


def test_a_metric_that_is_not_a_finite_number_is_refused(project: Project) -> None:
    """NaN, infinity and text raise InvalidInputError naming the metric; nothing is stored."""
    with project.start_run(experiment="credit") as run:
        for bad in (float("nan"), float("inf"), "high"):
            with pytest.raises(InvalidInputError, match="'auc'"):
                run.log_metric("auc", bad)
    assert project.runs.get(run.id).metrics == {}
    assert project.runs.metric_history(run.id, "auc") == []


def test_a_refused_log_metrics_call_stores_none_of_its_points(project: Project) -> None:
    """When one value of a ``log_metrics`` call is not a number, no point of that call is
    stored."""
    with (
        project.start_run(experiment="credit") as run,
        pytest.raises(InvalidInputError, match="'loss'"),
    ):
        run.log_metrics({"auc": 0.9, "loss": float("nan")})
    assert project.runs.metric_history(run.id, "auc") == []
    assert project.runs.get(run.id).metrics == {}


def test_a_viewer_cannot_start_or_write_to_a_run(project: Project) -> None:
    """A viewer starting a run, or logging to one, gets PermissionDeniedError and writes no
    run, experiment, param or audit event."""
    project.users.add("victor", "viewer")
    viewer = project.as_actor("victor")
    before = audit_count(project)
    with pytest.raises(PermissionDeniedError):
        viewer.start_run(experiment="credit")
    assert audit_count(project) == before
    assert project.runs.list() == []
    assert project.runs.experiments() == []

    with project.start_run(experiment="credit") as run:
        run.log_param("model", "gbm")
    before = audit_count(project)
    foreign = ActiveRun(
        viewer.context,
        run.id,
        run.name,
        run.experiment,
        datasets=viewer.datasets,
        models=viewer.models,
    )
    with pytest.raises(PermissionDeniedError):
        foreign.log_param("extra", 1)
    with pytest.raises(PermissionDeniedError):
        viewer.runs.delete(run.id)
    assert audit_count(project) == before
    assert project.runs.get(run.id).params == {"model": "gbm"}
    assert project.runs.get(run.id).lifecycle == "active"


# -- buffering ----------------------------------------------------------------------------------


def test_buffered_points_are_invisible_to_others_until_flush_or_end(project: Project) -> None:
    """A run and its metric points are batched: another process sees nothing of the run until
    ``flush()`` writes it with its points, and the rest when the run ends."""
    run = project.start_run(experiment="credit")
    for step in range(3):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    other = shipyard.open_project(project.root)
    try:
        with pytest.raises(NotFoundError):
            other.runs.get(run.id)
        assert other.runs.list() == []

        assert run.flush() == 3
        assert len(other.runs.metric_history(run.id, "loss")) == 3

        run.log_metric("loss", 0.1, step=3)
        assert len(other.runs.metric_history(run.id, "loss")) == 3
        run.end()
        assert len(other.runs.metric_history(run.id, "loss")) == 4
        assert other.runs.get(run.id).metrics == {"loss": 0.1}
    finally:
        other.close()


def test_points_of_a_refused_flush_are_written_by_the_next_one(project: Project) -> None:
    """A flush that fails (here: bob lost his contributor role mid-run) keeps its points in
    the buffer, and the next successful flush writes them with the newer ones."""
    project.users.add("bob", "contributor")
    run = project.as_actor("bob").start_run(experiment="credit")
    run.log_metric("loss", 0.9, step=0)
    project.users.add("bob", "viewer")
    with pytest.raises(PermissionDeniedError):
        run.flush()
    with pytest.raises(NotFoundError):  # the run's first write was refused: nothing is stored
        project.runs.get(run.id)

    project.users.add("bob", "contributor")
    run.log_metric("loss", 0.5, step=1)
    written = run.flush()
    history = project.runs.metric_history(run.id, "loss")
    assert [(p["step"], p["value"]) for p in history] == [(0, 0.9), (1, 0.5)]
    assert written == 2
    run.end()
    assert project.runs.get(run.id).metrics == {"loss": 0.5}


# -- audit and lineage --------------------------------------------------------------------------


def test_every_write_of_a_run_is_audited(project: Project) -> None:
    """A short run is written whole when it ends, with one audit event naming its params,
    tags, metrics and status; a run that flushes first is written then (``run.start``), and
    each later write leaves its own event. The hash chain still verifies."""
    with project.start_run(experiment="credit", tags={"team": "risk"}) as run:
        run.log_param("model", "gbm")
        run.log_metric("auc", 0.9)
    events = project.audit.list(entity=run.id, entity_kind="run")
    assert [e.action for e in events] == ["run.record"]
    payload = events[0].payload
    assert payload["params"] == {"model": "gbm"} and payload["tags"] == {"team": "risk"}
    assert (payload["points"], payload["keys"], payload["status"]) == (1, ["auc"], "FINISHED")

    with project.start_run(experiment="credit") as long_run:
        long_run.log_param("model", "gbm")
        long_run.log_metric("loss", 0.5)
        long_run.flush()
        long_run.log_param("seed", 1)
        long_run.log_metric("loss", 0.4)
    actions = events_of(project, long_run.id)
    assert actions[0] == "run.start" and actions[-1] == "run.end"
    assert "run.params" in actions and "run.metrics" in actions
    assert project.runs.get(long_run.id).params == {"model": "gbm", "seed": "1"}
    assert project.audit.verify().ok


def test_an_input_dataset_is_linked_to_the_run(project: Project) -> None:
    """``log_input`` adds a dataset → run edge to the dataset's lineage; logging it twice adds
    no second input, and an unknown dataset raises NotFoundError."""
    project.datasets.add("applicants", small_frame())
    with project.start_run(experiment="credit") as run:
        run.log_input("applicants@1", context="train")
        run.log_input("applicants", context="train")
        with pytest.raises(NotFoundError):
            run.log_input("nothing@1")
    down = project.datasets.lineage("applicants@1")["downstream"]
    assert down == [
        {"parent": "dataset:applicants@1", "child": f"run:{run.id}", "relation": "input:train"}
    ]
    assert len(project.runs.get(run.id).inputs) == 1


# -- search -------------------------------------------------------------------------------------


def _names(project: Project, ids: dict[str, str], **kwargs: Any) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[r.id] for r in project.runs.list(**kwargs)]


FILTERS = {
    "metrics.auc > 0.8": {"gbm-a", "gbm-c"},
    "params.model = 'gbm'": {"gbm-a", "gbm-c"},
    "tags.team = 'risk'": {"gbm-a", "lr-b"},
    "attributes.status = 'FINISHED'": {"gbm-a", "lr-b"},
    "metrics.auc > 0.8 and params.model = 'gbm' and tags.team = 'risk'": {"gbm-a"},
    "metrics.auc > 0.99": set(),
}


def test_list_filters_on_metrics_params_tags_and_attributes(
    project: Project, three_runs: dict[str, str]
) -> None:
    """A filter selects exactly the runs whose metrics, params, tags or status match."""
    found = {f: set(_names(project, three_runs, filter=f)) for f in FILTERS}
    assert found == FILTERS


def test_list_orders_by_a_metric_and_limits(project: Project, three_runs: dict[str, str]) -> None:
    """``order_by="metrics.auc DESC"`` sorts best first, ``limit`` keeps the first ones, and an
    unknown experiment raises NotFoundError."""
    assert _names(project, three_runs, order_by="metrics.auc DESC") == ["gbm-a", "gbm-c", "lr-b"]
    assert _names(project, three_runs, order_by=["metrics.auc ASC"]) == ["lr-b", "gbm-c", "gbm-a"]
    assert _names(project, three_runs, order_by="metrics.auc DESC", limit=1) == ["gbm-a"]
    assert len(_names(project, three_runs, experiment="credit", limit=2)) == 2
    with pytest.raises(NotFoundError, match="no experiment 'nope'"):
        project.runs.list(experiment="nope")


MALFORMED = {"metrics.auc > 0.8 and": 21, "metrics.auc >> 0.8": 13, "params.model = gbm": 15}


def test_a_malformed_filter_names_the_position(project: Project) -> None:
    """A filter that does not parse raises FilterSyntaxError, an InvalidInputError, whose
    message points at the offending position."""
    for filter_, position in MALFORMED.items():
        with pytest.raises(FilterSyntaxError) as info:
            project.runs.list(filter=filter_)
        assert isinstance(info.value, InvalidInputError)
        assert info.value.position == position, filter_
        assert f"position {position}" in str(info.value)


def test_compare_marks_the_keys_that_differ(project: Project, three_runs: dict[str, str]) -> None:
    """Compare lists params and metrics side by side; ``differs`` is true only where the runs
    disagree; an id prefix is enough and a single run is refused."""
    doc = project.runs.compare([three_runs["gbm-a"][:10], three_runs["lr-b"]])
    assert [r["name"] for r in doc["runs"]] == ["gbm-a", "lr-b"]
    params = {row["key"]: row for row in doc["params"]}
    assert params["model"] == {"key": "model", "values": ["gbm", "lr"], "differs": True}
    assert params["seed"] == {"key": "seed", "values": ["1", "1"], "differs": False}
    metrics = {row["key"]: row for row in doc["metrics"]}
    assert metrics["auc"]["values"] == [0.91, 0.75] and metrics["auc"]["differs"] is True
    with pytest.raises(InvalidInputError, match="two"):
        project.runs.compare([three_runs["gbm-a"]])


def test_get_by_prefix_and_unknown_ids(project: Project, three_runs: dict[str, str]) -> None:
    """A unique id prefix finds the run, whose JSON document has ISO times and the full record;
    an unknown or non-hex id raises NotFoundError."""
    full = three_runs["lr-b"]
    assert project.runs.get(full[:8]).id == full
    with pytest.raises(NotFoundError):
        project.runs.get("0" * 32)
    with pytest.raises(NotFoundError, match="hexadecimal"):
        project.runs.get("not-a-run")
    doc = project.runs.get(three_runs["gbm-c"][:8]).to_dict()
    assert doc["status"] == "KILLED" and doc["tags"] == {"team": "growth"}
    assert doc["start_time"].endswith("+00:00")
    assert {"inputs", "artifacts", "code", "environment", "error"} <= set(doc)
    assert "environment" not in project.runs.get(full).to_dict(
        exclude=("inputs", "artifacts", "code", "environment", "error")
    )


def test_delete_hides_a_run_and_restore_brings_it_back(
    project: Project, three_runs: dict[str, str]
) -> None:
    """A deleted run leaves searches and experiment counts (``include_deleted`` still shows
    it), keeps its history, and comes back on restore."""
    gone = three_runs["lr-b"]
    assert project.runs.delete(gone).lifecycle == "deleted"
    assert gone not in {r.id for r in project.runs.list()}
    assert gone in {r.id for r in project.runs.list(include_deleted=True)}
    assert project.runs.get(gone).metrics == {"auc": 0.75}
    assert [e.runs for e in project.runs.experiments()] == [2]

    assert project.runs.restore(gone).lifecycle == "active"
    assert gone in {r.id for r in project.runs.list()}
    assert [e.runs for e in project.runs.experiments()] == [3]
    assert {"run.delete", "run.restore"} <= set(events_of(project, gone))


def test_experiments_list_counts_runs(project: Project) -> None:
    """Each experiment is listed once, by name, with its number of runs and its creator."""
    for experiment in ("credit", "credit", "churn"):
        with project.start_run(experiment=experiment):
            pass
    exps = {e.name: e for e in project.runs.experiments()}
    assert sorted(exps) == ["churn", "credit"]
    assert exps["credit"].runs == 2 and exps["churn"].runs == 1
    assert exps["credit"].created_by == "alice"
    assert exps["credit"].to_dict()["last_run"] is not None
