"""``/api/v1/datasets``: the dataset registry over HTTP acts like ``shipyard data``: the same
reads, uploads checked against the same contracts, downloads with the bytes of ``data get``
and the read in the access log, and every refusal with the CLI's error code."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import polars as pl
import pytest

from shipyard.project import Project
from tests.server.conftest import Team, TestClient

API = "/api/v1"
CSV = "applicant_id,age,city\n1,34,lyon\n2,51,paris\n3,29,lyon\n"
CONTRACT = "columns:\n  applicant_id: {type: int, nullable: false}\n  age: {type: int, max: 100}\n"


@pytest.fixture
def applicants(project: Project, tmp_path: Path) -> Project:
    """Dataset applicants with two versions (the second derived from the first) and a
    contract 'applicants' bound to it."""
    (tmp_path / "c.yaml").write_text(CONTRACT)
    project.contracts.add("applicants", tmp_path / "c.yaml")
    project.contracts.bind("applicants", "applicants", new=True)
    (tmp_path / "q1.csv").write_text(CSV)
    project.datasets.add("applicants", tmp_path / "q1.csv", message="Q1")
    (tmp_path / "q2.csv").write_text(CSV + "4,45,nice\n")
    project.datasets.add("applicants", tmp_path / "q2.csv", parents=["applicants@1"])
    return project


def _upload(
    api: TestClient, team: Team, role: str, name: str, text: str, **fields: str
) -> httpx.Response:
    return api.post(
        f"{API}/datasets/{name}",
        files={"file": ("batch.csv", text.encode(), "text/csv")},
        data=fields,
        headers=team.headers(role),
    )


READS = [
    "/datasets",
    "/datasets/applicants/versions",
    "/datasets/applicants@2",
    "/datasets/applicants@2/lineage",
    "/datasets/applicants@2/diff?against=applicants@1",
    "/datasets/applicants@1/download",
]


@pytest.mark.parametrize("path", READS)
def test_a_viewer_reads_every_dataset_route_and_no_token_reads_none(
    applicants: Project, team: Team, api: TestClient, path: str
) -> None:
    """Every read works for a viewer and is a 401 without a token."""
    assert api.get(API + path, headers=team.headers("viewer")).status_code == 200
    anonymous = api.get(API + path)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthenticated"


def test_reads_return_what_the_cli_json_shows(
    applicants: Project, team: Team, api: TestClient
) -> None:
    """List, versions, show, lineage and diff are the service's read models as JSON."""
    h = team.headers("viewer")
    listed = api.get(f"{API}/datasets", headers=h).json()
    assert [(d["name"], d["latest"], d["versions"]) for d in listed] == [("applicants", 2, 2)]
    versions = api.get(f"{API}/datasets/applicants/versions", headers=h).json()
    assert [v["ref"] for v in versions] == ["applicants@1", "applicants@2"]
    shown = api.get(f"{API}/datasets/applicants@2", headers=h).json()
    assert shown == applicants.datasets.get("applicants@2").to_dict()
    assert shown["profile"]["columns"]["age"]["max"] == 51 and shown["rows"] == 4
    lineage = api.get(f"{API}/datasets/applicants@2/lineage", headers=h).json()
    assert lineage["upstream"][0]["parent"] == "dataset:applicants@1"
    diff = api.get(f"{API}/datasets/applicants@2/diff?against=applicants@1", headers=h).json()
    assert (diff["from"], diff["to"], diff["rows"]["change"]) == ("applicants@1", "applicants@2", 1)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/datasets/nosuch", 404, "not_found"),
        ("/datasets/nosuch/versions", 404, "not_found"),
        ("/datasets/applicants@9", 404, "not_found"),
        ("/datasets/applicants@9/download", 404, "not_found"),
        ("/datasets/applicants@1/download?format=xlsx", 422, "invalid_input"),
        ("/datasets/applicants@@1", 422, "invalid_ref"),
    ],
)
def test_unknown_datasets_and_bad_requests_answer_with_the_cli_error_codes(
    applicants: Project, team: Team, api: TestClient, path: str, status: int, code: str
) -> None:
    """An unknown dataset or version is a 404 naming it; a bad format or reference a 422."""
    response = api.get(API + path, headers=team.headers("viewer"))
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    if status == 404:
        assert "nosuch" in response.json()["message"] or "9" in response.json()["message"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_download_has_the_bytes_of_data_get_and_is_logged_as_a_read_by_its_user(
    applicants: Project, team: Team, api: TestClient, tmp_path: Path, fmt: str
) -> None:
    """The streamed body equals what `data get -o FILE.fmt` writes, the stored digest is in a
    header, and the read is in the access log under the token's user."""
    response = api.get(
        f"{API}/datasets/applicants@2/download?format={fmt}", headers=team.headers("viewer")
    )
    assert response.status_code == 200, response.text
    expected = applicants.datasets.export("applicants@2", tmp_path / f"out.{fmt}").read_bytes()
    assert response.content == expected
    assert response.headers["x-shipyard-digest"] == applicants.datasets.get("applicants@2").digest
    assert response.headers["content-length"] == str(len(expected))
    reads = applicants.audit.list(entity="dataset:applicants@2", action="dataset.read")
    by_vic = [e for e in reads if e.actor == "vic"]
    assert [e.payload["via"] for e in by_vic] == ["download"]
    assert by_vic[0].token_id == team.tokens["viewer"].split("_")[1]


def test_a_contributor_uploads_a_version_and_the_same_bytes_again_change_nothing(
    applicants: Project, team: Team, api: TestClient
) -> None:
    """An upload is `data add`: a new validated version (201) with its message, tags, parents
    and the client's file name; identical bytes return that version (200, created false)."""
    batch = CSV + "5,61,paris\n"
    first = _upload(
        api,
        team,
        "contributor",
        "applicants",
        batch,
        message="Q3",
        tags=json.dumps({"source": "crm"}),
        parents=json.dumps(["applicants@2"]),
    )
    assert first.status_code == 201, first.text
    v = first.json()
    assert (v["ref"], v["created"], v["status"], v["contract"]) == (
        "applicants@3",
        True,
        "valid",
        "applicants@1",
    )
    assert (v["message"], v["tags"], v["parents"]) == ("Q3", {"source": "crm"}, ["applicants@2"])
    assert v["source"]["path"] == "batch.csv" and v["created_by"] == "carol"
    again = _upload(api, team, "contributor", "applicants", batch)
    assert again.status_code == 200 and again.json()["ref"] == "applicants@3"
    assert again.json()["created"] is False
    stored = applicants.datasets.get("applicants@3").to_polars()
    assert stored["age"].to_list() == [34, 51, 29, 61]


def test_an_upload_that_fails_its_contract_is_a_422_with_the_report_and_stores_nothing(
    applicants: Project, team: Team, api: TestClient
) -> None:
    """In reject mode a failing batch is answered like `data add --json` fails: code
    check_failed, the report in details, and no version is made."""
    bad = CSV + "6,250,lyon\n"
    response = _upload(api, team, "contributor", "applicants", bad)
    assert response.status_code == 422, response.text
    doc = response.json()
    assert doc["error"] == "check_failed" and "nothing was stored" in doc["message"]
    failure = doc["details"]["report"]["failures"][0]
    assert (failure["column"], failure["check"], failure["examples"]) == ("age", "max", [250])
    assert doc["details"]["contract"] == "applicants@1"
    assert [v.version for v in applicants.datasets.versions("applicants")] == [1, 2]


def test_an_upload_in_quarantine_mode_keeps_the_valid_rows(
    applicants: Project, team: Team, api: TestClient
) -> None:
    """on_invalid=quarantine stores the valid rows and names where the failing ones went."""
    response = _upload(
        api,
        team,
        "contributor",
        "applicants",
        CSV + "8,33,nice\n6,250,lyon\n",
        on_invalid="quarantine",
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    assert (doc["ref"], doc["rows"]) == ("applicants@3", 4)
    assert doc["quarantine"]["ref"] == "applicants.quarantine@1"
    assert applicants.datasets.get("applicants.quarantine@1").rows == 1


def test_a_viewer_cannot_upload_and_nothing_is_stored(
    applicants: Project, team: Team, api: TestClient
) -> None:
    """The service refuses the viewer's upload with 403 permission."""
    response = _upload(api, team, "viewer", "applicants", CSV + "7,40,lyon\n")
    assert response.status_code == 403 and response.json()["error"] == "permission"
    assert len(applicants.datasets.versions("applicants")) == 2
    assert _upload(api, team, "viewer", "x", CSV).status_code == 403
    assert api.post(f"{API}/datasets/x", files={"file": ("a.csv", b"a\n1\n")}).status_code == 401


@pytest.mark.parametrize(
    ("filename", "fields", "needle"),
    [
        ("batch.xlsx", {}, "unknown file type '.xlsx'"),
        ("batch.csv", {"tags": "{not json"}, "form field 'tags' is not JSON"),
        ("batch.csv", {"tags": "[1]"}, "form field 'tags' must be a JSON object"),
        ("batch.csv", {"on_invalid": "ignore"}, "on_invalid"),
    ],
)
def test_a_bad_upload_is_a_422_that_says_what_is_wrong(
    applicants: Project,
    team: Team,
    api: TestClient,
    filename: str,
    fields: dict[str, str],
    needle: str,
) -> None:
    """Unknown file types, malformed tags and unknown modes are refused before anything."""
    response = api.post(
        f"{API}/datasets/applicants",
        files={"file": (filename, CSV.encode())},
        data=fields,
        headers=team.headers("contributor"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input" and needle in response.json()["message"]
    assert len(applicants.datasets.versions("applicants")) == 2


def test_an_upload_of_parquet_is_stored_byte_for_byte(
    project: Project, team: Team, api: TestClient
) -> None:
    """Parquet goes in as it is: the version's digest is the digest of the uploaded bytes."""
    buf = io.BytesIO()
    pl.DataFrame({"a": [1, 2, 3]}).write_parquet(buf)
    response = api.post(
        f"{API}/datasets/numbers",
        files={"file": ("n.parquet", buf.getvalue())},
        headers=team.headers("contributor"),
    )
    assert response.status_code == 201, response.text
    down = api.get(f"{API}/datasets/numbers@1/download", headers=team.headers("viewer"))
    assert down.content == buf.getvalue()


def test_validate_reports_failures_with_200_and_a_viewer_may_only_check(
    applicants: Project, team: Team, api: TestClient, tmp_path: Path
) -> None:
    """Validation is a check that ran: 200 with passed false when it fails. Storing the report
    takes a contributor; a viewer may check without storing."""
    (tmp_path / "strict.yaml").write_text("columns:\n  age: {type: int, max: 40}\n")
    applicants.contracts.add("young", tmp_path / "strict.yaml")
    url = f"{API}/datasets/applicants@2/validate"
    failed = api.post(url, json={"contract": "young"}, headers=team.headers("contributor"))
    assert failed.status_code == 200, failed.text
    assert failed.json()["passed"] is False and failed.json()["failures"][0]["column"] == "age"
    assert applicants.datasets.get("applicants@2").status == "invalid"
    refused = api.post(url, json={"contract": "young"}, headers=team.headers("viewer"))
    assert refused.status_code == 403
    checked = api.post(url, json={"store": False}, headers=team.headers("viewer"))
    assert checked.status_code == 200 and checked.json()["passed"] is True
    assert api.post(url).status_code == 401
    unbound = api.post(
        f"{API}/datasets/applicants@2/validate", json={"contract": "nosuch"}, headers=team.headers()
    )
    assert unbound.status_code == 404


def test_the_openapi_document_lists_every_dataset_route_with_examples(api: TestClient) -> None:
    """Each route is documented with its success example and its error responses."""
    doc = api.get(f"{API}/openapi.json").json()
    paths = doc["paths"]
    expected = {
        "/api/v1/datasets": ["get"],
        "/api/v1/datasets/{name}/versions": ["get"],
        "/api/v1/datasets/{ref}": ["get"],
        "/api/v1/datasets/{ref}/lineage": ["get"],
        "/api/v1/datasets/{ref}/diff": ["get"],
        "/api/v1/datasets/{ref}/download": ["get"],
        "/api/v1/datasets/{name}": ["post"],
        "/api/v1/datasets/{ref}/validate": ["post"],
    }
    for path, methods in expected.items():
        for method in methods:
            op = paths[path][method]
            ok = op["responses"].get("200") or op["responses"]["201"]
            assert any("example" in c or "schema" in c for c in ok["content"].values()), path
            assert "401" in op["responses"], path
    upload = paths["/api/v1/datasets/{name}"]["post"]
    assert upload["responses"]["201"]["content"]["application/json"]["example"]["created"]
    assert "check_failed" in json.dumps(upload["responses"]["422"])
    form = upload["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]


@pytest.mark.postgres
@pytest.mark.s3
def test_upload_and_download_on_postgresql_and_s3_through_a_real_server(
    pg_schema_url: str, s3_uri: str, tmp_path: Path
) -> None:
    """In team mode (PostgreSQL metadata, S3 blobs) behind uvicorn, an uploaded batch streams
    back with the bytes `data get` writes, and the read is logged."""
    import threading
    import time

    import uvicorn

    import shipyard
    from shipyard.server.app import create_app
    from tests.server.conftest import _free_port

    project = shipyard.init_project(tmp_path / "team", db_url=pg_schema_url, artifacts_uri=s3_uri)
    try:
        project.users.add("carol", "contributor")
        token = project.tokens.create("carol").token
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(project), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            h = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=h, timeout=30) as client:
                up = client.post(
                    "/api/v1/datasets/applicants", files={"file": ("q1.csv", CSV.encode())}
                )
                assert up.status_code == 201, up.text
                with client.stream("GET", "/api/v1/datasets/applicants@1/download?format=csv") as r:
                    body = b"".join(r.iter_bytes())
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        assert body == project.datasets.export("applicants@1", tmp_path / "q1.csv").read_bytes()
        reads = project.audit.list(entity="dataset:applicants@1", action="dataset.read")
        assert [e.actor for e in reads if e.payload["via"] == "download"] == ["carol"]
    finally:
        project.close()
