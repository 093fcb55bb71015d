"""The MLflow artifact proxy over HTTP: a run's files and free-standing files (MLflow 3 keeps
logged models outside runs), on local disk and on S3, with paths that cannot escape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.project import Project
from shipyard.server.app import create_app
from tests.server.conftest import Team, TestClient

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _put(api: TestClient, path: str, data: bytes, headers: dict[str, str]) -> None:
    r = api.put(f"{ARTIFACTS}/{path}", content=data, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {}


def test_run_files_round_trip_and_are_the_runs_artifacts(
    api: TestClient, team: Team, project: Project
) -> None:
    """A file PUT under a run's artifact root is listed by the proxy and by shipyard as the
    run's artifact, and GET returns its bytes."""
    with project.start_run("proxy") as run:
        pass
    exp_id = project.runs.experiment(name="proxy").id
    root = f"{exp_id}/{run.id}/artifacts"
    carol = team.headers("contributor")
    _put(api, f"{root}/model/weights.bin", b"\x00\x01" * 5000, carol)
    _put(api, f"{root}/notes.txt", b"hello", carol)
    _put(api, f"{root}/notes.txt", b"hello again", carol)  # replaced, not duplicated

    vic = team.headers("viewer")
    listing = api.get(ARTIFACTS, params={"path": root}, headers=vic).json()
    assert listing == {
        "files": [
            {"path": "model", "is_dir": True},
            {"path": "notes.txt", "is_dir": False, "file_size": 11},
        ]
    }
    inner = api.get(ARTIFACTS, params={"path": f"{root}/model"}, headers=vic).json()
    assert inner["files"] == [{"path": "weights.bin", "is_dir": False, "file_size": 10000}]
    got = api.get(f"{ARTIFACTS}/{root}/model/weights.bin", headers=vic)
    assert got.status_code == 200 and got.content == b"\x00\x01" * 5000
    assert api.get(f"{ARTIFACTS}/{root}/notes.txt", headers=vic).content == b"hello again"

    stored = {a["path"]: a["size"] for a in project.runs.get(run.id).artifacts}
    assert stored == {"model/weights.bin": 10000, "notes.txt": 11}
    assert project.audit.verify().ok


def test_free_standing_files_are_kept_by_path(api: TestClient, team: Team) -> None:
    """Files outside any run's root (where MLflow 3 puts logged models) are stored and
    listed by their path."""
    carol = team.headers("contributor")
    _put(api, "1/models/m-abc/artifacts/MLmodel", b"flavors: {}\n", carol)
    _put(api, "1/models/m-abc/artifacts/model.skops", b"SKOPS", carol)
    listing = api.get(ARTIFACTS, params={"path": "1/models/m-abc"}, headers=carol).json()
    assert listing == {"files": [{"path": "artifacts", "is_dir": True}]}
    files = api.get(ARTIFACTS, params={"path": "1/models/m-abc/artifacts"}, headers=carol)
    assert [(f["path"], f["file_size"]) for f in files.json()["files"]] == [
        ("MLmodel", 12),
        ("model.skops", 5),
    ]
    got = api.get(f"{ARTIFACTS}/1/models/m-abc/artifacts/model.skops", headers=carol)
    assert got.content == b"SKOPS"


def test_missing_files_unknown_runs_and_escaping_paths_are_refused(
    api: TestClient, team: Team
) -> None:
    """A missing file is RESOURCE_DOES_NOT_EXIST, a run that does not exist cannot receive
    files, and '..' never leaves the tree."""
    carol = team.headers("contributor")
    missing = api.get(f"{ARTIFACTS}/1/nothing/here.txt", headers=carol)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    ghost = "0" * 32
    r = api.put(f"{ARTIFACTS}/1/{ghost}/artifacts/x.txt", content=b"x", headers=carol)
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    for bad in ("1/a/%2E%2E/%2E%2E/etc/passwd", "1/a/%2E/b"):
        r = api.put(f"{ARTIFACTS}/{bad}", content=b"x", headers=carol)
        assert r.status_code == 400, bad
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = api.get(ARTIFACTS, params={"path": "1/../.."}, headers=carol)
    assert r.status_code == 400


@pytest.fixture
def s3_project(tmp_path: Path, backend: str, s3_uri: str) -> Iterator[Project]:
    """A project on ``backend`` whose artifacts live in a fresh S3 bucket (moto)."""
    proj = shipyard.init_project(tmp_path / "s3proj", db_url=backend, artifacts_uri=s3_uri)
    try:
        yield proj
    finally:
        proj.close()


@pytest.mark.s3
def test_the_proxy_works_on_s3(s3_project: Project) -> None:
    """On PostgreSQL (or SQLite) with S3 artifacts, files go up and come back the same."""
    token = s3_project.tokens.create(s3_project.actor).token
    headers = {"Authorization": f"Bearer {token}"}
    with s3_project.start_run("s3") as run:
        pass
    root = f"{s3_project.runs.experiment(name='s3').id}/{run.id}/artifacts"
    data = bytes(range(256)) * 4096  # 1 MiB
    with TestClient(create_app(s3_project), raise_server_exceptions=False) as api:
        _put(api, f"{root}/blob.bin", data, headers)
        listing = api.get(ARTIFACTS, params={"path": root}, headers=headers).json()
        assert listing["files"] == [{"path": "blob.bin", "is_dir": False, "file_size": len(data)}]
        assert api.get(f"{ARTIFACTS}/{root}/blob.bin", headers=headers).content == data
    assert [a["path"] for a in s3_project.runs.get(run.id).artifacts] == ["blob.bin"]
