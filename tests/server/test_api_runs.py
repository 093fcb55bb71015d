"""``/api/v1/runs`` and ``/api/v1/experiments``: a client with no database logs a whole run
over HTTP, request by request, and reads and searches runs as ``shipyard runs`` does; the
token's user is the author, and roles are the services' own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.project import Project
from shipyard.server.auth import FailureThrottle
from tests.server.conftest import Team, TestClient

API = "/api/v1"
CLIENT_CODE = {"git": {"commit": "f" * 40, "branch": "laptop-work", "dirty": True}}
CLIENT_ENV = {"python_version": "3.11.9", "hostname": "carols-laptop", "packages": {}}


def _start(api: TestClient, team: Team, role: str = "contributor", **body: Any) -> Any:
    response = api.post(
        f"{API}/runs",
        json={"experiment": "credit", "code": CLIENT_CODE, "environment": CLIENT_ENV, **body},
        headers=team.headers(role),
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def train_data(project: Project, tmp_path: Path) -> str:
    (tmp_path / "train.csv").write_text("age,income,label\n34,52000,0\n51,61000,1\n29,40000,0\n")
    return project.datasets.add("credit.train", tmp_path / "train.csv").ref


def test_a_whole_run_is_logged_over_http_by_the_token_user(
    project: Project, team: Team, api: TestClient, train_data: str
) -> None:
    """Start, params, a metric batch, tags, an input, an artifact and the end: the run reads
    back with all of it, the client's code and environment (not the server's), carol as its
    author and her token on every event."""
    h = team.headers("contributor")
    run = _start(api, team, name="logreg", tags={"team": "risk"})
    assert (run["status"], run["name"], run["created_by"]) == ("RUNNING", "logreg", "carol")
    assert run["code"] == CLIENT_CODE and run["environment"] == CLIENT_ENV
    rid = run["id"]
    url = f"{API}/runs/{rid}"
    assert (
        api.post(f"{url}/params", json={"params": {"C": 1.0, "penalty": "l2"}}, headers=h).json()[
            "logged"
        ]
        == 2
    )
    points = [
        {"key": "loss", "value": 0.9, "step": 0, "timestamp": 1_700_000_000_000},
        {"key": "loss", "value": 0.5, "step": 1, "timestamp": 1_700_000_001_000},
        {"key": "auc", "value": 0.74},
    ]
    assert api.post(f"{url}/metrics", json={"metrics": points}, headers=h).json() == {"logged": 3}
    assert api.post(f"{url}/tags", json={"tags": {"stage": "tuning"}}, headers=h).status_code == 200
    assert api.post(f"{url}/inputs", json={"dataset": train_data}, headers=h).status_code == 200
    stored = api.put(f"{url}/artifacts/plots/roc.txt", content=b"auc 0.74\n", headers=h)
    assert stored.status_code == 200, stored.text
    assert stored.json()["path"] == "plots/roc.txt" and stored.json()["size"] == 9
    ended = api.post(f"{url}/end", json={"status": "FINISHED"}, headers=h)
    assert ended.status_code == 200 and ended.json()["status"] == "FINISHED"

    shown = api.get(url, headers=team.headers("viewer")).json()
    assert shown == project.runs.get(rid).to_dict()
    assert shown["params"] == {"C": "1.0", "penalty": "l2"}
    assert shown["metrics"] == {"auc": 0.74, "loss": 0.5}
    assert shown["tags"] == {"stage": "tuning", "team": "risk"}
    assert shown["inputs"][0]["dataset"] == train_data
    assert shown["artifacts"][0]["digest"] == stored.json()["digest"]
    history = project.runs.metric_history(rid, "loss")
    assert [(p["step"], p["timestamp"]) for p in history] == [
        (0, 1_700_000_000_000),
        (1, 1_700_000_001_000),
    ]
    events = project.audit.list(entity=f"run:{rid}")
    assert {e.actor for e in events} == {"carol"}
    assert {e.token_id for e in events} == {team.tokens["contributor"].split("_")[1]}
    assert project.audit.verify().ok


def test_points_without_a_step_carry_on_across_requests(team: Team, api: TestClient) -> None:
    """The server keeps no buffer between requests, yet steps count up per key as they do in
    one process; an ended run stays as it ended."""
    h = team.headers("contributor")
    rid = _start(api, team)["id"]
    for value in (0.3, 0.2):
        api.post(
            f"{API}/runs/{rid}/metrics",
            json={"metrics": [{"key": "loss", "value": value}]},
            headers=h,
        )
    series = api.get(f"{API}/runs/{rid}/metrics/loss", headers=h).json()
    assert [(p["step"], p["value"]) for p in series["points"]] == [(0, 0.3), (1, 0.2)]
    assert (
        api.post(
            f"{API}/runs/{rid}/end", json={"status": "FAILED", "error": "oom"}, headers=h
        ).json()["status"]
        == "FAILED"
    )
    again = api.post(f"{API}/runs/{rid}/end", headers=h)
    assert again.json()["status"] == "FAILED" and again.json()["error"] == "oom"


def test_metric_history_is_downsampled_on_the_server_and_keeps_a_spike(
    project: Project, team: Team, api: TestClient
) -> None:
    """10,000 points asked for with max_points=50 come back as at most 50 that keep the first,
    the last and the one spike."""
    with project.start_run("credit") as run:
        run.log_points(
            [("loss", 100.0 if s == 7_321 else 1.0 / (s + 1), s, None) for s in range(10_000)]
        )
    url = f"{API}/runs/{run.id}/metrics/loss"
    series = api.get(f"{url}?max_points=50", headers=team.headers("viewer")).json()
    assert series["downsampled"] is True and series["total"] == 10_000
    steps = [p["step"] for p in series["points"]]
    assert len(steps) <= 50 and steps == sorted(steps)
    assert steps[0] == 0 and steps[-1] == 9_999 and 7_321 in steps
    whole = api.get(url, headers=team.headers("viewer")).json()
    assert whole["downsampled"] is False and len(whole["points"]) == 10_000
    bad = api.get(f"{url}?max_points=1", headers=team.headers("viewer"))
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"


def test_a_metric_key_with_slashes_reads_back(team: Team, api: TestClient) -> None:
    """Keys such as train/loss are one path segment or several; both reach the metric."""
    h = team.headers("contributor")
    rid = _start(api, team)["id"]
    api.post(
        f"{API}/runs/{rid}/metrics",
        json={"metrics": [{"key": "train/loss", "value": 0.5}]},
        headers=h,
    )
    for path in ("train/loss", "train%2Floss"):
        series = api.get(f"{API}/runs/{rid}/metrics/{path}", headers=h).json()
        assert series["key"] == "train/loss" and series["points"][0]["value"] == 0.5


def test_search_takes_the_runs_list_filter_grammar_and_points_at_a_syntax_error(
    project: Project, team: Team, api: TestClient
) -> None:
    """filter, repeated order_by and limit work as in `runs list`; a filter that does not parse
    is a 422 whose message points at the position; an unknown experiment is a 404."""
    for name, auc in [("a", 0.61), ("b", 0.83), ("c", 0.77)]:
        with project.start_run("credit", name=name) as run:
            run.log_metrics({"auc": auc})
            run.log_params({"model": "gbm" if name != "a" else "logreg"})
    h = team.headers("viewer")
    found = api.get(
        f"{API}/runs",
        params={
            "filter": "metrics.auc > 0.7 and params.model = 'gbm'",
            "order_by": ["metrics.auc DESC"],
        },
        headers=h,
    ).json()
    assert [r["name"] for r in found] == ["b", "c"]
    limited = api.get(f"{API}/runs", params={"limit": 1, "details": False}, headers=h).json()
    assert len(limited) == 1 and "environment" not in limited[0]
    bad = api.get(f"{API}/runs", params={"filter": "metrics.auc >> 1"}, headers=h)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"
    assert "position" in bad.json()["message"] and "position" in bad.json()["details"]
    missing = api.get(f"{API}/runs", params={"experiment": "nosuch"}, headers=h)
    assert missing.status_code == 404 and "nosuch" in missing.json()["message"]
    experiments = api.get(f"{API}/experiments", headers=h).json()
    assert [(e["name"], e["runs"]) for e in experiments] == [("credit", 3)]


def test_compare_delete_and_restore(project: Project, team: Team, api: TestClient) -> None:
    """compare puts runs side by side; a deleted run leaves searches, refuses logging with a
    409 that says how to restore it, and comes back with restore."""
    ids = []
    for c in ("0.1", "1.0"):
        with project.start_run("credit") as run:
            run.log_params({"C": c})
        ids.append(run.id)
    h = team.headers("contributor")
    compared = api.post(f"{API}/runs/compare", json={"runs": ids}, headers=team.headers("viewer"))
    assert compared.json()["params"] == [{"key": "C", "values": ["0.1", "1.0"], "differs": True}]
    one = api.post(f"{API}/runs/compare", json={"runs": ids[:1]}, headers=h)
    assert one.status_code == 422
    deleted = api.delete(f"{API}/runs/{ids[0]}", headers=h)
    assert deleted.status_code == 200 and deleted.json()["lifecycle"] == "deleted"
    assert [r["id"] for r in api.get(f"{API}/runs", headers=h).json()] == [ids[1]]
    refused = api.post(f"{API}/runs/{ids[0]}/tags", json={"tags": {"a": "b"}}, headers=h)
    assert refused.status_code == 409 and "runs restore" in refused.json()["message"]
    assert api.post(f"{API}/runs/{ids[0]}/restore", headers=h).json()["lifecycle"] == "active"


def test_conflicts_and_bad_input_answer_with_the_cli_codes(team: Team, api: TestClient) -> None:
    """A changed parameter is a 409; an unknown run a 404; a step beyond 64 bits, an artifact
    path climbing out of the run and an unknown status are 422s. A NaN metric is recorded,
    as MLflow records it, and read back as "NaN"."""
    h = team.headers("contributor")
    rid = _start(api, team)["id"]
    api.post(f"{API}/runs/{rid}/params", json={"params": {"C": 1}}, headers=h)
    clash = api.post(f"{API}/runs/{rid}/params", json={"params": {"C": 2}}, headers=h)
    assert clash.status_code == 409 and clash.json()["error"] == "conflict"
    assert "'C'" in clash.json()["message"]
    unknown = api.post(f"{API}/runs/abcdef123/params", json={"params": {"C": 1}}, headers=h)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert api.get(f"{API}/runs/nothex!", headers=h).status_code == 404
    nan = api.post(
        f"{API}/runs/{rid}/metrics",
        content=b'{"metrics": [{"key": "x", "value": 1.0}, {"key": "y", "value": NaN}]}',
        headers={**h, "content-type": "application/json"},
    )
    assert nan.status_code == 200, nan.text
    # Answers stay strict JSON: NaN is the string MLflow's server writes, not null.
    assert api.get(f"{API}/runs/{rid}", headers=h).json()["metrics"]["y"] == "NaN"
    huge = {"metrics": [{"key": "x", "value": 1.0, "step": 2**64}]}
    assert api.post(f"{API}/runs/{rid}/metrics", json=huge, headers=h).status_code == 422
    assert api.get(f"{API}/runs", params={"limit": 2**64}, headers=h).status_code == 422
    # The batch with the NaN was stored; the one with the step beyond 64 bits was not.
    assert [
        p["step"] for p in api.get(f"{API}/runs/{rid}/metrics/x", headers=h).json()["points"]
    ] == [0]
    climb = api.put(f"{API}/runs/{rid}/artifacts/..%2F..%2Fetc%2Fpasswd", content=b"x", headers=h)
    assert climb.status_code == 422 and "artifact path" in climb.json()["message"]
    status = api.post(f"{API}/runs/{rid}/end", json={"status": "DONE"}, headers=h)
    assert status.status_code == 422


def test_a_viewer_reads_runs_but_cannot_start_or_log_to_one(
    project: Project, team: Team, api: TestClient
) -> None:
    """The services refuse every write of a viewer with 403 and store nothing."""
    rid = _start(api, team)["id"]
    h = team.headers("viewer")
    refusals = [
        api.post(f"{API}/runs", json={"experiment": "credit"}, headers=h),
        api.post(f"{API}/runs/{rid}/params", json={"params": {"C": 1}}, headers=h),
        api.post(
            f"{API}/runs/{rid}/metrics", json={"metrics": [{"key": "a", "value": 1}]}, headers=h
        ),
        api.post(f"{API}/runs/{rid}/tags", json={"tags": {"a": "b"}}, headers=h),
        api.put(f"{API}/runs/{rid}/artifacts/a.txt", content=b"x", headers=h),
        api.post(f"{API}/runs/{rid}/end", json={}, headers=h),
        api.delete(f"{API}/runs/{rid}", headers=h),
    ]
    assert [r.status_code for r in refusals] == [403] * len(refusals)
    assert all(r.json()["error"] == "permission" for r in refusals)
    run = project.runs.get(rid)
    assert (run.params, run.metrics, run.artifacts, run.status) == ({}, {}, [], "RUNNING")
    assert len(project.runs.list()) == 1


ROUTES = [
    ("get", "/experiments"),
    ("get", "/runs"),
    ("get", "/runs/{rid}"),
    ("get", "/runs/{rid}/metrics/loss"),
    ("post", "/runs/compare"),
    ("post", "/runs"),
    ("post", "/runs/{rid}/params"),
    ("post", "/runs/{rid}/metrics"),
    ("post", "/runs/{rid}/tags"),
    ("post", "/runs/{rid}/inputs"),
    ("put", "/runs/{rid}/artifacts/a.txt"),
    ("post", "/runs/{rid}/models"),
    ("post", "/runs/{rid}/end"),
    ("delete", "/runs/{rid}"),
    ("post", "/runs/{rid}/restore"),
]


def test_every_run_route_needs_a_token(team: Team, api: TestClient) -> None:
    """No token: 401 on every route, and nothing about the run is revealed."""
    rid = _start(api, team)["id"]
    for method, path in ROUTES:
        # A fresh count of failures each time: this is about the 401, not the slow-down.
        api.app.state.throttle = FailureThrottle()  # type: ignore[attr-defined]
        response = api.request(method.upper(), API + path.format(rid=rid), json={})
        assert response.status_code == 401, (method, path, response.text)


def _skops_model(tmp_path: Path) -> Path:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from shipyard.registry.flavors import save_model

    x = pd.DataFrame({"age": [34, 51, 29, 45], "income": [52.0, 61.0, 40.0, 70.0]})
    model = LogisticRegression().fit(x, [0, 1, 0, 1])
    return save_model(model, tmp_path / "model.skops").path


def test_log_model_registers_the_uploaded_skops_file_with_its_signature(
    project: Project, team: Team, api: TestClient, tmp_path: Path
) -> None:
    """A skops file posted to a run becomes a model version made by that run: its bytes
    stored as sent, its signature inferred from the input example, loadable with the trusted
    types. A file that is not skops is refused with 422 and a viewer with 403."""
    path = _skops_model(tmp_path)
    rid = _start(api, team)["id"]
    example = json.dumps([{"age": 34, "income": 52.0}])
    response = api.post(
        f"{API}/runs/{rid}/models",
        files={"file": ("model.skops", path.read_bytes())},
        data={"name": "credit-risk", "input_example": example, "description": "first"},
        headers=team.headers("contributor"),
    )
    assert response.status_code == 201, response.text
    v = response.json()
    assert (v["ref"], v["run_id"], v["created_by"]) == ("credit-risk@1", rid, "carol")
    assert list(v["signature"]["inputs"]["columns"]) == ["age", "income"]
    from shipyard._internal.hashing import digest_file

    assert v["digest"] == digest_file(path)[0]
    predictor = project.models.load("credit-risk@1")
    assert (
        len(predictor.predict(__import__("pandas").DataFrame({"age": [40], "income": [50.0]}))) == 1
    )
    junk = api.post(
        f"{API}/runs/{rid}/models",
        files={"file": ("model.skops", b"not a zip")},
        data={"name": "credit-risk"},
        headers=team.headers("contributor"),
    )
    assert junk.status_code == 422
    assert "the uploaded file" in junk.json()["message"] and ".part" not in junk.json()["message"]
    viewer = api.post(
        f"{API}/runs/{rid}/models",
        files={"file": ("model.skops", path.read_bytes())},
        data={"name": "credit-risk"},
        headers=team.headers("viewer"),
    )
    assert viewer.status_code == 403
    assert [m.version for m in project.models.versions("credit-risk")] == [1]


def test_the_openapi_document_lists_every_run_route_with_examples(api: TestClient) -> None:
    """Each route has a documented success response with an example, and its 401."""
    doc = api.get(f"{API}/openapi.json").json()
    for method, path in ROUTES:
        templated = API + path.replace("{rid}", "{run_id}").replace("metrics/loss", "metrics/{key}")
        templated = templated.replace("artifacts/a.txt", "artifacts/{path}")
        op = doc["paths"][templated][method]
        ok = op["responses"].get("200") or op["responses"]["201"]
        assert all("example" in c for c in ok["content"].values()), templated
        assert "401" in op["responses"], templated


@pytest.mark.parametrize(
    "environment",
    [{"n": 2**70}, {"deep": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}, {"x": "\ud800"}],
)
def test_a_client_document_that_readers_could_not_take_back_is_refused(
    project: Project, team: Team, api: TestClient, environment: dict[str, Any]
) -> None:
    """Integers beyond 64 bits, absurd nesting and text that is not UTF-8 are 422s, and no run
    is made (every later read of the run would fail on them)."""
    response = api.post(
        f"{API}/runs",
        content=json.dumps({"experiment": "credit", "environment": environment}).encode(),
        headers={**team.headers("contributor"), "content-type": "application/json"},
    )
    assert response.status_code == 422 and "environment" in response.json()["message"]
    assert project.runs.list() == []
