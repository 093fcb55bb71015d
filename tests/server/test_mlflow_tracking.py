"""The MLflow tracking protocol, driven by the real ``mlflow`` client against a live server:
what a team that already logs with ``mlflow`` sees when it points the client at shipyard."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.project import Project
from tests.server.conftest import Team

# The client must never call home from a test: no telemetry, and no retries that would turn a
# refused request into a long wait.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Dataset, DatasetInput, Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException, RestException  # noqa: E402

MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def tracking(
    live_server: str, team: Team, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowClient]:
    """The ``mlflow`` client pointed at the live server with carol's (contributor) token."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", team.tokens["contributor"])
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    _forget_active_experiment()
    mlflow.set_tracking_uri(live_server)
    try:
        yield MlflowClient(live_server)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        _forget_active_experiment()


def _forget_active_experiment() -> None:
    """``mlflow.set_experiment`` keeps the experiment in the process (a module global and the
    MLFLOW_EXPERIMENT_ID variable): no test may inherit another's."""
    import mlflow.tracking.fluent as fluent

    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _raw(live_server: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=live_server + MLFLOW, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_a_training_script_logs_through_mlflow_and_shipyard_records_it(
    tracking: MlflowClient, project: Project, tmp_path: Path
) -> None:
    """Params, stepped metrics, tags and the run's end written with ``mlflow`` are the run's
    params, metrics and tags in shipyard, made by the token's user, and the audit chain
    verifies."""
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="gbm") as active:
        mlflow.log_params({"max_depth": 3, "lr": 0.1})
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metric("auc", 0.91)
        mlflow.set_tags({"team": "risk", "stage": "dev"})
        run_id = active.info.run_id

    info = project.runs.get(run_id)
    assert info.name == "gbm"
    assert info.experiment == "churn"
    assert info.created_by == "carol"
    assert info.status == "FINISHED"
    assert info.params == {"lr": "0.1", "max_depth": "3"}
    assert info.metrics == {"auc": 0.91, "loss": 0.3}
    assert info.tags["team"] == "risk" and info.tags["stage"] == "dev"
    assert [p["value"] for p in project.runs.metric_history(run_id, "loss")] == [0.9, 0.5, 0.3]
    assert [r.id for r in project.runs.list(experiment="churn")] == [run_id]

    run = tracking.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.user_id == "carol"
    assert run.info.run_name == "gbm"
    assert run.data.params == {"lr": "0.1", "max_depth": "3"}
    assert run.data.metrics == {"auc": 0.91, "loss": 0.3}
    assert run.data.tags["team"] == "risk"
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time

    events = project.audit.list(entity=f"run:{run_id}")
    assert events and all(e.actor == "carol" and e.token_id for e in events)
    assert project.audit.verify().ok


def test_metric_history_comes_back_point_by_point_and_in_pages(
    tracking: MlflowClient, live_server: str, team: Team
) -> None:
    """``get_metric_history`` returns every step; a paged request hands out a token that
    continues the same history and is refused for another one."""
    mlflow.set_experiment("history")
    with mlflow.start_run() as active:
        for step in range(7):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("other", 1.0)
    run_id = active.info.run_id

    history = tracking.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(7))
    assert history[3].value == pytest.approx(0.25)

    with _raw(live_server, team.tokens["viewer"]) as http:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 3}
        pages: list[list[int]] = []
        token = None
        for _ in range(10):  # bounded: 7 points in pages of 3
            r = http.get("/metrics/get-history", params={**params, "page_token": token or ""})
            assert r.status_code == 200, r.text
            body = r.json()
            pages.append([m["step"] for m in body["metrics"]])
            assert all(isinstance(m["timestamp"], int) for m in body["metrics"])
            token = body.get("next_page_token")
            if not token:
                break
        assert pages == [[0, 1, 2], [3, 4, 5], [6]]

        first = http.get("/metrics/get-history", params=params).json()["next_page_token"]
        other = {"run_id": run_id, "metric_key": "other", "max_results": 3, "page_token": first}
        refused = http.get("/metrics/get-history", params=other)
        assert refused.status_code == 400
        assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_search_runs_filters_orders_and_pages(tracking: MlflowClient) -> None:
    """``search_runs`` with a metric filter and an order returns the matching runs in order;
    ``max_results`` with ``page_token`` walks them page by page without repeats."""
    exp_id = mlflow.set_experiment("search").experiment_id
    for i, model in enumerate(["gbm", "rf", "gbm", "lr", "gbm"]):
        with mlflow.start_run(run_name=f"r{i}"):
            mlflow.log_param("model", model)
            mlflow.log_metric("auc", 0.5 + i / 10)

    found = tracking.search_runs(
        [exp_id],
        filter_string="metrics.auc > 0.55 and params.model = 'gbm'",
        order_by=["metrics.auc DESC"],
    )
    assert [r.info.run_name for r in found] == ["r4", "r2"]

    by_name = tracking.search_runs([exp_id], filter_string="attributes.run_name = 'r3'")
    assert [r.data.params["model"] for r in by_name] == ["lr"]
    finished = tracking.search_runs([exp_id], filter_string="attributes.status = 'FINISHED'")
    assert len(finished) == 5
    # As in MLflow, attributes need no prefix.
    bare = tracking.search_runs(
        [exp_id],
        filter_string="status = 'FINISHED' and run_name != 'r0'",
        order_by=["start_time DESC"],
    )
    assert [r.info.run_name for r in bare] == ["r4", "r3", "r2", "r1"]

    seen: list[str] = []
    page = tracking.search_runs([exp_id], order_by=["metrics.auc ASC"], max_results=2)
    for _ in range(5):  # bounded: 5 runs in pages of 2
        seen += [r.info.run_name for r in page]
        if not page.token:
            break
        page = tracking.search_runs(
            [exp_id], order_by=["metrics.auc ASC"], max_results=2, page_token=page.token
        )
    assert seen == ["r0", "r1", "r2", "r3", "r4"]

    frame = mlflow.search_runs([exp_id], filter_string="params.model = 'rf'")
    assert list(frame["tags.mlflow.runName"]) == ["r1"]
    assert list(frame["metrics.auc"]) == [pytest.approx(0.6)]


def test_a_page_token_of_another_search_is_refused(tracking: MlflowClient) -> None:
    """A page token only continues the search that made it."""
    exp_id = mlflow.set_experiment("tokens").experiment_id
    for _ in range(3):
        with mlflow.start_run():
            mlflow.log_metric("auc", 0.7)
    page = tracking.search_runs([exp_id], max_results=1)
    assert page.token
    with pytest.raises(RestException, match="INVALID_PARAMETER_VALUE"):
        tracking.search_runs(
            [exp_id], filter_string="metrics.auc > 0.1", max_results=1, page_token=page.token
        )
    with pytest.raises(RestException, match="INVALID_PARAMETER_VALUE"):
        tracking.search_runs([exp_id], max_results=1, page_token="not-a-token")


def test_artifacts_go_up_and_come_back_byte_for_byte(
    tracking: MlflowClient, project: Project, tmp_path: Path
) -> None:
    """``log_artifact`` stores a file with the run (``shipyard runs show`` lists it),
    ``list_artifacts`` shows it and ``download_artifacts`` returns the same bytes."""
    report = tmp_path / "report.txt"
    report.write_bytes(b"precision 0.9\n" * 1000)
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "roc.bin").write_bytes(bytes(range(256)) * 10)
    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as active:
        mlflow.log_artifact(str(report))
        mlflow.log_artifacts(str(plots), artifact_path="plots")
    run_id = active.info.run_id

    info = project.runs.get(run_id)
    assert {a["path"] for a in info.artifacts} == {"report.txt", "plots/roc.bin"}

    top = tracking.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [("plots", True), ("report.txt", False)]
    assert top[1].file_size == report.stat().st_size
    # Addressed by run id and sub-path, MLflow 3's client also asks the logged-models search
    # for a model of that name (the registry's routes); by artifact URI it asks the proxy only.
    root = tracking.get_run(run_id).info.artifact_uri
    assert root == f"mlflow-artifacts:/{info_exp_id(tracking, run_id)}/{run_id}/artifacts"
    listed = mlflow.artifacts.list_artifacts(artifact_uri=f"{root}/plots")
    assert [(f.path, f.file_size) for f in listed] == [("plots/roc.bin", 2560)]

    out = tmp_path / "out"
    out.mkdir()
    got = mlflow.artifacts.download_artifacts(artifact_uri=f"{root}/report.txt", dst_path=str(out))
    assert Path(got).read_bytes() == report.read_bytes()
    folder = mlflow.artifacts.download_artifacts(artifact_uri=f"{root}/plots", dst_path=str(out))
    assert (Path(folder) / "roc.bin").read_bytes() == (plots / "roc.bin").read_bytes()
    assert project.audit.verify().ok


def info_exp_id(client: MlflowClient, run_id: str) -> str:
    return str(client.get_run(run_id).info.experiment_id)


def test_log_input_records_the_dataset_the_run_read(
    tracking: MlflowClient, project: Project
) -> None:
    """A pandas dataset logged with ``log_input`` comes back with its name, digest, source
    and context; shipyard lists it among the run's inputs."""
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/train.csv", name="train")
    mlflow.set_experiment("inputs")
    with mlflow.start_run() as active:
        mlflow.log_input(dataset, context="training")
    run = tracking.get_run(active.info.run_id)

    [logged] = run.inputs.dataset_inputs
    assert logged.dataset.name == "train"
    assert logged.dataset.digest == dataset.digest
    described = dataset.to_dict()
    assert logged.dataset.source_type == described["source_type"]
    assert logged.dataset.source == described["source"]
    assert logged.dataset.schema == described["schema"]
    assert logged.dataset.profile == described["profile"]
    assert {t.key: t.value for t in logged.tags}["mlflow.data.context"] == "training"

    inputs = project.runs.get(active.info.run_id).inputs
    assert [(i["dataset"], i["context"]) for i in inputs] == [
        (f"external:train@{dataset.digest}", "training")
    ]


def test_log_input_of_a_shipyard_dataset_links_the_version(
    tracking: MlflowClient, project: Project, sample_csv: Any
) -> None:
    """A dataset named like a shipyard dataset version becomes a lineage input of the run."""
    from mlflow.entities import InputTag

    version = project.datasets.add("credit", sample_csv())
    mlflow.set_experiment("lineage")
    with mlflow.start_run() as active:
        ds = Dataset(name=version.ref, digest="x", source_type="shipyard", source="{}")
        tracking.log_inputs(
            active.info.run_id,
            [DatasetInput(ds, [InputTag("mlflow.data.context", "train")])],
        )
    inputs = project.runs.get(active.info.run_id).inputs
    assert inputs == [{"dataset": version.ref, "context": "train", "digest": version.digest}]


def test_log_batch_beyond_mlflows_limits_is_refused_with_mlflows_words(
    tracking: MlflowClient, live_server: str, team: Team
) -> None:
    """Too many metrics, params, tags or bytes in one log-batch get MLflow's own error text,
    and nothing of the refused batch is written."""
    run = tracking.create_run(mlflow.set_experiment("limits").experiment_id)
    run_id = run.info.run_id
    metric = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    cases = [
        ({"metrics": [metric] * 1001}, "at most 1000 metrics. Got 1001 metrics."),
        (
            {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
            "at most 100 params. Got 101 params.",
        ),
        (
            {"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]},
            "at most 100 tags. Got 101 tags.",
        ),
        (
            {
                "metrics": [metric] * 950,
                "params": [{"key": f"p{i}", "value": "v"} for i in range(51)],
            },
            "at most 1000 metrics, params, and tags. Got 1001 metrics, params, and tags.",
        ),
    ]
    with _raw(live_server, team.tokens["contributor"]) as http:
        for body, words in cases:
            r = http.post("/runs/log-batch", json={"run_id": run_id, **body})
            assert r.status_code == 400
            assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            assert words in r.json()["message"]
            assert "Please split up" in r.json()["message"]
        big = {"run_id": run_id, "tags": [{"key": "t", "value": "x" * 1_000_001}]}
        r = http.post("/runs/log-batch", json=big)
        assert r.status_code == 400
        assert r.json()["message"].startswith(
            "Batched logging API requests must be at most 1000000 bytes, got a request of size"
        )
    fresh = tracking.get_run(run_id)
    assert fresh.data.metrics == {} and fresh.data.params == {}
    assert "t" not in fresh.data.tags


def test_log_batch_writes_metrics_params_and_tags_together(
    tracking: MlflowClient, project: Project
) -> None:
    """``log_batch`` lands every point, parameter and tag; re-logging a parameter with the
    same value is fine, with another value it is refused."""
    run = tracking.create_run(mlflow.set_experiment("batch").experiment_id)
    run_id = run.info.run_id
    points = [Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(2500)]
    tracking.log_batch(
        run_id, metrics=points, params=[Param("opt", "adam")], tags=[RunTag("k", "v")]
    )
    tracking.log_batch(run_id, params=[Param("opt", "adam")])
    with pytest.raises(RestException, match=r"INVALID_PARAMETER_VALUE.*'opt'"):
        tracking.log_batch(run_id, params=[Param("opt", "sgd")])
    with pytest.raises(MlflowException, match=r"INVALID_PARAMETER_VALUE.*'opt'"):
        tracking.log_param(run_id, "opt", "sgd")
    tracking.set_terminated(run_id)

    history = project.runs.metric_history(run_id, "loss")
    assert len(history) == 2500 and history[-1]["step"] == 2499
    info = project.runs.get(run_id)
    assert info.params == {"opt": "adam"} and info.tags["k"] == "v"
    assert info.metrics == {"loss": pytest.approx(1 / 2500)}


def test_nan_and_infinity_come_back_exactly_through_the_mlflow_client(
    tracking: MlflowClient, live_server: str, team: Team, project: Project
) -> None:
    """NaN, inf and -inf logged with ``mlflow`` (which sends "NaN", "Infinity") read back as
    those floats from get_run, search_runs and get_metric_history, not as 0.0; the server's
    answers are strict JSON with MLflow's strings. log-batch and log-metric both take bare
    NaN and Infinity tokens too, and store the same values."""
    nan, inf = float("nan"), float("inf")
    exp_id = mlflow.set_experiment("diverging").experiment_id
    with mlflow.start_run() as active:
        mlflow.log_metrics({"loss": nan, "up": inf, "down": -inf, "auc": 0.5})
        run_id = active.info.run_id
    tracking.log_metric(run_id, "single", nan)

    def exact(metrics: dict[str, float]) -> None:
        assert math.isnan(metrics["loss"]) and math.isnan(metrics["single"])
        assert (metrics["up"], metrics["down"], metrics["auc"]) == (inf, -inf, 0.5)

    exact(tracking.get_run(run_id).data.metrics)
    exact(tracking.search_runs([exp_id])[0].data.metrics)
    exact(mlflow.get_run(run_id).data.metrics)
    assert [m.value for m in tracking.get_metric_history(run_id, "up")] == [inf]
    assert math.isnan(tracking.get_metric_history(run_id, "loss")[0].value)

    def refuse(token: str) -> None:
        raise AssertionError(f"bare {token} in a JSON answer")

    with _raw(live_server, team.tokens["contributor"]) as http:
        batch = b'{"run_id": "%s", "metrics": [{"key": "b", "value": NaN, "timestamp": 1, '
        batch += b'"step": 0}, {"key": "c", "value": -Infinity, "timestamp": 1, "step": 0}]}'
        r = http.post(
            "/runs/log-batch",
            content=batch % run_id.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        one = b'{"run_id": "%s", "key": "d", "value": NaN, "timestamp": 1, "step": 0}'
        r = http.post(
            "/runs/log-metric",
            content=one % run_id.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        answer = json.loads(
            http.get("/runs/get", params={"run_id": run_id}).text, parse_constant=refuse
        )
    values = {m["key"]: m["value"] for m in answer["run"]["data"]["metrics"]}
    assert (values["loss"], values["up"], values["down"]) == ("NaN", "Infinity", "-Infinity")
    assert (values["b"], values["c"], values["d"]) == ("NaN", "-Infinity", "NaN")
    stored = project.runs.get(run_id).metrics
    assert math.isnan(stored["b"]) and math.isnan(stored["d"]) and stored["c"] == -inf


def test_tags_can_be_deleted_and_runs_deleted_and_restored(tracking: MlflowClient) -> None:
    """delete-tag removes a tag; a deleted run leaves searches, refuses logging, and comes
    back with restore."""
    exp_id = mlflow.set_experiment("lifecycle").experiment_id
    run_id = tracking.create_run(exp_id).info.run_id
    tracking.set_tag(run_id, "temp", "1")
    tracking.delete_tag(run_id, "temp")
    assert "temp" not in tracking.get_run(run_id).data.tags
    with pytest.raises(RestException, match="RESOURCE_DOES_NOT_EXIST"):
        tracking.delete_tag(run_id, "never-set")

    tracking.delete_run(run_id)
    assert tracking.get_run(run_id).info.lifecycle_stage == "deleted"
    assert tracking.search_runs([exp_id]) == []
    from mlflow.entities import ViewType

    assert len(tracking.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    with pytest.raises(RestException, match="must be in the 'active' state"):
        tracking.log_metric(run_id, "auc", 0.5)
    tracking.restore_run(run_id)
    tracking.log_metric(run_id, "auc", 0.5)
    assert tracking.get_run(run_id).data.metrics == {"auc": 0.5}


def test_experiments_are_created_found_and_searched(tracking: MlflowClient) -> None:
    """Experiments made through MLflow are found by id and name; a duplicate name is
    refused; search finds them by name."""
    exp_id = tracking.create_experiment("forecast")
    assert tracking.get_experiment(exp_id).name == "forecast"
    assert tracking.get_experiment_by_name("forecast").experiment_id == exp_id
    assert tracking.get_experiment_by_name("missing") is None
    with pytest.raises(RestException, match="RESOURCE_ALREADY_EXISTS"):
        tracking.create_experiment("forecast")
    tracking.create_experiment("forecast-v2")
    names = {e.name for e in tracking.search_experiments(filter_string="name LIKE 'fore%'")}
    assert names == {"forecast", "forecast-v2"}


def test_a_viewer_reads_but_cannot_log(
    tracking: MlflowClient, live_server: str, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a viewer's token the client reads runs but every write is PERMISSION_DENIED,
    artifacts included."""
    exp_id = mlflow.set_experiment("roles").experiment_id
    run_id = tracking.create_run(exp_id).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", team.tokens["viewer"])
    viewer = MlflowClient(live_server)
    assert viewer.get_run(run_id).info.run_id == run_id
    writes = [
        lambda: viewer.create_run(exp_id),
        lambda: viewer.log_metric(run_id, "auc", 0.5),
        lambda: viewer.log_param(run_id, "p", "1"),
        lambda: viewer.set_tag(run_id, "t", "1"),
        lambda: viewer.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)]),
        lambda: viewer.set_terminated(run_id),
        lambda: viewer.delete_run(run_id),
        lambda: viewer.create_experiment("viewer-made"),
        lambda: viewer.log_inputs(run_id, [DatasetInput(Dataset("d", "x", "local", "{}"), [])]),
    ]
    for write in writes:
        with pytest.raises(RestException, match="PERMISSION_DENIED"):
            write()
    with _raw(live_server, team.tokens["viewer"]) as http:
        r = http.put(
            f"{live_server}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/x.txt",
            content=b"x",
        )
        assert r.status_code == 403
        assert r.json()["error_code"] == "PERMISSION_DENIED"


def test_no_token_is_refused(live_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a token the client gets a 401 on tracking and artifact routes alike."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    client = MlflowClient(live_server)
    with pytest.raises(MlflowException) as refused:
        client.search_experiments()
    assert "401" in str(refused.value) or "UNAUTHENTICATED" in str(refused.value)
    r = httpx.get(f"{live_server}/api/2.0/mlflow-artifacts/artifacts", params={"path": "1"})
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"


def test_a_run_without_an_experiment_goes_to_default(
    tracking: MlflowClient, project: Project
) -> None:
    """With no experiment set, the client's experiment "0" is shipyard's ``default``."""
    with mlflow.start_run() as active:
        mlflow.log_metric("auc", 0.5)
    assert project.runs.get(active.info.run_id).experiment == "default"
    assert tracking.get_experiment("0").name == "default"


def test_ajax_prefix_serves_the_same_runs(
    tracking: MlflowClient, live_server: str, team: Team
) -> None:
    """The UI's ``/ajax-api`` prefix answers like ``/api``, with times as JSON numbers."""
    mlflow.set_experiment("ajax")
    with mlflow.start_run() as active:
        mlflow.log_metric("auc", 0.8, step=4)
    r = httpx.get(
        f"{live_server}/ajax-api/2.0/mlflow/runs/get",
        params={"run_id": active.info.run_id},
        headers={"Authorization": f"Bearer {team.tokens['viewer']}"},
    )
    assert r.status_code == 200
    run = r.json()["run"]
    assert isinstance(run["info"]["start_time"], int)
    assert run["data"]["metrics"] == [
        {"key": "auc", "value": 0.8, "timestamp": run["data"]["metrics"][0]["timestamp"], "step": 4}
    ]
    assert isinstance(run["data"]["metrics"][0]["timestamp"], int)
