"""``/api/v1/contracts``: contracts posted as YAML text are versioned like `contract add`,
every problem in one 422, and bound to datasets so that uploads are checked against them."""

from __future__ import annotations

import httpx
import pytest

from shipyard.project import Project
from tests.server.conftest import Team, TestClient

API = "/api/v1"
YAML = "description: applicants\ncolumns:\n  age: {type: int, min: 18, max: 100}\n"
YAML_V2 = YAML + "  city: {type: category, allowed: [lyon, paris]}\n"


def _post(
    api: TestClient, team: Team, role: str, name: str, text: str, **kw: str
) -> httpx.Response:
    return api.post(
        f"{API}/contracts/{name}",
        content=text.encode(),
        params=kw,
        headers={**team.headers(role), "content-type": "text/yaml"},
    )


def test_a_contributor_adds_versions_as_yaml_or_json_and_identical_text_changes_nothing(
    project: Project, team: Team, api: TestClient
) -> None:
    """YAML and JSON bodies both make versions (201); the same contract again is the existing
    version (200, created false); list, versions and show read them back."""
    first = _post(api, team, "contributor", "applicants", YAML, message="first cut")
    assert first.status_code == 201, first.text
    doc = first.json()
    assert (doc["ref"], doc["message"], doc["created_by"]) == ("applicants@1", "first cut", "carol")
    assert doc["spec"]["columns"]["age"]["max"] == 100
    second = api.post(
        f"{API}/contracts/applicants",
        json={"text": YAML_V2, "message": "city added"},
        headers=team.headers("contributor"),
    )
    assert second.status_code == 201 and second.json()["ref"] == "applicants@2"
    same = _post(api, team, "contributor", "applicants", YAML_V2)
    assert same.status_code == 200 and same.json()["created"] is False
    h = team.headers("viewer")
    assert [c["latest"] for c in api.get(f"{API}/contracts", headers=h).json()] == [2]
    versions = api.get(f"{API}/contracts/applicants/versions", headers=h).json()
    assert [v["message"] for v in versions] == ["first cut", "city added"]
    shown = api.get(f"{API}/contracts/applicants@1", headers=h).json()
    assert shown == project.contracts.get("applicants@1").to_dict()


def test_a_bad_contract_is_one_422_listing_every_problem(
    project: Project, team: Team, api: TestClient
) -> None:
    """Problems in the contract are listed together, and nothing is stored."""
    bad = "columns:\n  age: {type: integer, min: 5, max: 1}\n  id: {type: int, colour: red}\n"
    response = _post(api, team, "contributor", "applicants", bad)
    assert response.status_code == 422
    doc = response.json()
    assert doc["error"] == "invalid_input" and len(doc["details"]["problems"]) >= 2
    not_yaml = _post(api, team, "contributor", "applicants", "columns: [unclosed")
    assert not_yaml.status_code == 422
    wrong_json = api.post(
        f"{API}/contracts/applicants", json={"txt": YAML}, headers=team.headers("contributor")
    )
    assert wrong_json.status_code == 422 and wrong_json.json()["error"] == "invalid_input"
    assert project.contracts.list() == []


def test_roles_and_unknown_contracts(project: Project, team: Team, api: TestClient) -> None:
    """A viewer reads but cannot add or bind (403); no token is a 401; an unknown contract
    is a 404 naming it."""
    assert _post(api, team, "viewer", "applicants", YAML).status_code == 403
    assert api.post(f"{API}/contracts/applicants", content=YAML.encode()).status_code == 401
    for path in ("/contracts", "/contracts/applicants", "/contracts/applicants/versions"):
        assert api.get(API + path).status_code == 401
    missing = api.get(f"{API}/contracts/nosuch", headers=team.headers("viewer"))
    assert missing.status_code == 404 and "nosuch" in missing.json()["message"]
    _post(api, team, "contributor", "applicants", YAML)
    bind = api.put(
        f"{API}/datasets/applicants/contract",
        json={"contract": "applicants"},
        headers=team.headers("viewer"),
    )
    assert bind.status_code == 403
    assert api.put(f"{API}/datasets/applicants/contract", json={"contract": "x"}).status_code == 401
    assert project.contracts.binding("applicants") is None


def test_a_bound_contract_checks_later_uploads_until_unbound(
    project: Project, team: Team, api: TestClient
) -> None:
    """Bind over HTTP, and an upload that breaks the contract is rejected; unbind, and it is
    accepted."""
    h = team.headers("contributor")
    _post(api, team, "contributor", "applicants", YAML)
    bound = api.put(
        f"{API}/datasets/applicants/contract",
        json={"contract": "applicants", "new": True},
        headers=h,
    )
    assert bound.json() == {"dataset": "applicants", "contract": "applicants"}
    batch = {"file": ("b.csv", b"age\n12\n")}
    assert api.post(f"{API}/datasets/applicants", files=batch, headers=h).status_code == 422
    unbound = api.delete(f"{API}/datasets/applicants/contract", headers=h)
    assert unbound.json() == {"dataset": "applicants", "contract": None}
    assert api.post(f"{API}/datasets/applicants", files=batch, headers=h).status_code == 201
    again = api.delete(f"{API}/datasets/applicants/contract", headers=h)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/contracts"),
        ("get", "/api/v1/contracts/{name}/versions"),
        ("get", "/api/v1/contracts/{ref}"),
        ("post", "/api/v1/contracts/{name}"),
        ("put", "/api/v1/datasets/{dataset}/contract"),
        ("delete", "/api/v1/datasets/{dataset}/contract"),
    ],
)
def test_the_openapi_document_lists_every_contract_route_with_examples(
    api: TestClient, method: str, path: str
) -> None:
    """Each route documents its success response with an example, and its 401."""
    op = api.get(f"{API}/openapi.json").json()["paths"][path][method]
    ok = op["responses"].get("200") or op["responses"]["201"]
    assert all("example" in c for c in ok["content"].values())
    assert "401" in op["responses"]
    if method == "post":
        assert set(op["requestBody"]["content"]) == {"text/yaml", "application/json"}
