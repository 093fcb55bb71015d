"""The tracking primitives behind the MLflow protocol, used directly: what a remote client's
writes do to a run, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pytest

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.project import Project


def test_a_remote_run_keeps_the_clients_start_time_and_captures_nothing(
    project: Project,
) -> None:
    """``Runs.create`` records the client's start time and no server code or environment."""
    run = project.runs.create("remote", name="r1", tags={"k": "v"}, start_time=1_700_000_000_000)
    info = project.runs.get(run.id)
    assert info.start_time == 1_700_000_000_000
    assert info.code == {} and info.environment == {}
    assert info.tags == {"k": "v"} and info.status == "RUNNING"


def test_a_batch_is_written_whole_or_not_at_all(project: Project) -> None:
    """``log_batch`` writes points, params and tags in one go; one bad value refuses all of
    it, and a changed parameter refuses the batch too."""
    run = project.runs.create("batch")
    attached = project.runs.attach(run.id)
    attached.log_batch(
        metrics=[("loss", 0.5, 10, 0), ("loss", 0.25, 20, 1)], params={"p": 1}, tags={"t": "x"}
    )
    with pytest.raises(InvalidInputError, match="must be a number"):
        attached.log_batch(metrics=[("loss", 0.1, 30, 2), ("loss", "high", 30, 3)])
    with pytest.raises(ConflictError, match="'p'"):
        attached.log_batch(metrics=[("loss", 0.1, 30, 2)], params={"p": 2})
    info = project.runs.get(run.id)
    assert [p["step"] for p in project.runs.metric_history(run.id, "loss")] == [0, 1]
    assert info.params == {"p": "1"} and info.tags == {"t": "x"}
    assert info.metrics == {"loss": 0.25}
    [record] = project.runs.records([run.id])
    assert [(m.key, m.value, m.step, m.timestamp) for m in record.latest_metrics] == [
        ("loss", 0.25, 1, 20)
    ]
    assert project.audit.verify().ok


def test_attach_refuses_deleted_and_unknown_runs(project: Project) -> None:
    """Logging needs a run that exists and is not deleted; a finished one is fine."""
    run = project.runs.create("attach")
    project.runs.attach(run.id).update(status="FINISHED", end_time=5)
    project.runs.attach(run.id).log_batch(tags={"late": "1"})
    assert project.runs.get(run.id).end_time == 5
    project.runs.delete(run.id)
    with pytest.raises(ConflictError, match="is deleted; restore it"):
        project.runs.attach(run.id)
    with pytest.raises(NotFoundError):
        project.runs.attach("f" * 32)


def test_page_searches_load_only_their_page(project: Project) -> None:
    """``Runs.search`` pages with offset and limit and keeps deleted runs apart."""
    ids = []
    for i in range(5):
        run = project.runs.create("paged", name=f"r{i}", start_time=1000 + i)
        run.log_batch(metrics=[("auc", i / 10, 1, 0)])
        ids.append(run.id)
    project.runs.delete(ids[0])
    exp = project.runs.experiment(name="paged").id
    first = project.runs.search(experiment_ids=[exp], order_by=["metrics.auc DESC"], limit=2)
    rest = project.runs.search(
        experiment_ids=[exp], order_by=["metrics.auc DESC"], offset=2, limit=10
    )
    assert [r.name for r in first + rest] == ["r4", "r3", "r2", "r1"]
    deleted = project.runs.search(experiment_ids=[exp], lifecycle="deleted")
    assert [r.id for r in deleted] == [ids[0]]
    assert len(project.runs.search(experiment_ids=[exp], lifecycle="all")) == 5


def test_a_viewer_cannot_log_store_files_or_make_experiments(project: Project) -> None:
    """Every remote write checks the contributor role, the artifact tree before it stores
    a byte."""
    run = project.runs.create("roles")
    project.users.add("vic", "viewer")
    vic = project.as_actor("vic")
    with pytest.raises(PermissionDeniedError):
        vic.runs.create("roles")
    with pytest.raises(PermissionDeniedError):
        vic.runs.attach(run.id).log_batch(metrics=[("m", 1.0, 1, 0)])
    with pytest.raises(PermissionDeniedError):
        vic.runs.create_experiment("vic-made")
    exp = project.runs.experiment(name="roles").id
    with pytest.raises(PermissionDeniedError):
        vic.artifact_tree.put(f"{exp}/{run.id}/artifacts/x.txt", io.BytesIO(b"x"))
    assert project.runs.get(run.id).artifacts == []
