"""``/api/v1/models`` as a team uses it: every registry read gives the same JSON as the CLI's
``--json`` (the same read models), errors name the missing thing with the CLI's codes, and a
downloaded model file is the verified stored one, loadable with the trusted-type rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from shipyard._internal.hashing import digest_bytes
from shipyard.project import Project
from shipyard.registry.flavors import load_model
from shipyard.stores.artifacts import ArtifactStore
from tests.server.conftest import Team, TestClient
from tests.server.credit_team import MODEL, TEST, V1, V2, call, credit, project, token_id

__all__ = ["credit", "project"]  # the fixtures, imported for this module's tests


def test_every_registry_read_is_the_services_read_model(
    credit: Project, team: Team, api: TestClient
) -> None:
    """A viewer reads the model list, versions, one version (by number, alias and digest
    prefix), aliases, alias history and evaluations exactly as the services return them."""
    credit.as_actor("abe").approvals.approve(V1)
    credit.as_actor("abe").promotions.promote(V1)

    def get(path: str) -> object:
        response = call(api, team, "viewer", "GET", path)
        assert response.status_code == 200, response.text
        return response.json()

    assert get("/models") == [m.to_dict() for m in credit.models.list()]
    assert get(f"/models/{MODEL}/versions") == [v.to_dict() for v in credit.models.versions(MODEL)]
    v1 = credit.models.get(V1)
    for ref in (V1, f"{MODEL}@production", f"{MODEL}@{v1.digest.split(':')[1][:10]}"):
        assert get(f"/models/{quote(ref)}") == v1.to_dict()
    assert get(f"/models/{MODEL}")["ref"] == V2  # a bare name is the latest
    assert get(f"/models/{MODEL}/aliases") == {"production": 1}
    history = get(f"/models/{MODEL}/aliases/history?alias=production")
    assert history == [e.to_dict() for e in credit.models.alias_history(MODEL, "production")]
    assert [(e["to_version"], e["actor"], e["reason"]) for e in history] == [(1, "abe", "promote")]
    assert get(f"/models/{MODEL}/aliases/history?alias=staging") == []
    evaluations = get(f"/models/{V1}/evaluations")
    assert evaluations == [e.to_dict() for e in credit.evaluations.list(V1)]
    assert evaluations[0]["dataset"] == TEST and "roc_auc" in evaluations[0]["metrics"]


def test_missing_models_are_404_and_bad_references_422(
    credit: Project, team: Team, api: TestClient
) -> None:
    """Unknown models, versions and aliases answer 404 ``not_found`` with the CLI's message;
    a reference that cannot be parsed answers 422 ``invalid_ref``."""
    del credit
    for path, says in (
        ("/models/churn/versions", "no model 'churn'"),
        ("/models/churn/aliases", "no model 'churn'"),
        (f"/models/{MODEL}@9", f"model '{MODEL}' has no version 9"),
        (f"/models/{MODEL}@staging/evaluations", "staging"),
        (f"/models/{MODEL}@9/download", "version 9"),
        (f"/models/{MODEL}@9/card", "version 9"),
    ):
        response = call(api, team, "viewer", "GET", path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "not_found"
        assert says in response.json()["message"], (path, response.json())
    response = call(api, team, "viewer", "GET", f"/models/{quote(MODEL + '@@1')}")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_ref"


def test_a_downloaded_model_is_the_stored_file_and_loads_with_trusted_types(
    credit: Project, team: Team, api: TestClient, tmp_path: Path
) -> None:
    """The download's bytes hash to the version's digest, its headers name the digest and
    flavor, the file loads with the trusted-type rules and predicts as the registry's own
    load does, and the load is in the audit log with the viewer's token."""
    v = credit.models.get(V1)
    response = call(api, team, "viewer", "GET", f"/models/{quote(f'{MODEL}@latest')}/download")
    assert response.status_code == 200, response.text
    assert response.headers["x-shipyard-ref"] == V2
    response = call(api, team, "viewer", "GET", f"/models/{V1}/download")
    assert response.status_code == 200
    assert digest_bytes(response.content) == v.digest == response.headers["x-shipyard-digest"]
    assert response.headers["x-shipyard-flavor"] == "sklearn"
    assert int(response.headers["content-length"]) == len(response.content)
    path = tmp_path / "model.skops"
    path.write_bytes(response.content)
    rows = credit.datasets.get(TEST).to_pandas().drop(columns=["default"]).head(5)
    expected = credit.models.load(V1).predict(rows)
    assert list(load_model(path).predict(rows)) == list(expected)
    [event] = credit.audit.list(action="model.load", actor="vic", entity=V1)
    assert event.payload["via"] == "download"
    assert event.token_id == token_id(team, "viewer")


def test_a_corrupted_model_file_is_never_sent(
    credit: Project,
    team: Team,
    api: TestClient,
    corrupt_blob: Callable[[ArtifactStore, str], Path],
) -> None:
    """When the stored file no longer matches its digest the download is refused with the
    ``integrity`` error naming the model, and no byte of the file is sent."""
    v = credit.models.get(V1)
    corrupt_blob(credit.artifacts, v.digest)
    response = call(api, team, "viewer", "GET", f"/models/{V1}/download")
    assert response.status_code == 500
    doc = response.json()
    assert doc["error"] == "integrity" and f"model '{V1}'" in doc["message"]
    assert "x-shipyard-digest" not in response.headers


def test_the_card_as_json_markdown_and_html(credit: Project, team: Team, api: TestClient) -> None:
    """The card is JSON with the written sections and the Markdown by default, the Markdown
    itself with ?format=markdown and a page with ?format=html; an unknown format is 422."""
    credit.as_actor("carol").cards.describe(V1, "intended_use", "Ranking applications.")
    response = call(api, team, "viewer", "GET", f"/models/{V1}/card")
    assert response.status_code == 200
    doc = response.json()
    assert doc["model"] == V1
    assert doc["sections"]["intended_use"]["text"] == "Ranking applications."
    assert doc["sections"]["intended_use"]["author"] == "carol"
    markdown = credit.cards.render(V1, "markdown")
    assert doc["markdown"] == markdown
    response = call(api, team, "viewer", "GET", f"/models/{V1}/card?format=markdown")
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text == markdown
    response = call(api, team, "viewer", "GET", f"/models/{V1}/card?format=html")
    assert response.headers["content-type"].startswith("text/html")
    assert "Ranking applications." in response.text
    response = call(api, team, "viewer", "GET", f"/models/{V1}/card?format=pdf")
    assert response.status_code == 422 and response.json()["error"] == "invalid_input"


def test_every_model_read_is_open_to_a_viewer_and_closed_without_a_token(
    credit: Project, team: Team, api: TestClient
) -> None:
    """Reading the registry needs a token and no more than the viewer role."""
    del credit
    for path in (
        "/models",
        f"/models/{MODEL}/versions",
        f"/models/{MODEL}/aliases",
        f"/models/{MODEL}/aliases/history",
        f"/models/{V1}",
        f"/models/{V1}/evaluations",
        f"/models/{V1}/card",
        f"/models/{V1}/download",
    ):
        assert call(api, team, None, "GET", path).status_code == 401, path
        assert call(api, team, "viewer", "GET", path).status_code == 200, path


def test_a_real_server_streams_the_model_file(
    credit: Project, team: Team, live_server: str
) -> None:
    """Through uvicorn, the streamed download arrives whole: its bytes hash to the digest
    the header names."""
    with httpx.stream(
        "GET", f"{live_server}/api/v1/models/{V1}/download", headers=team.headers("viewer")
    ) as response:
        assert response.status_code == 200
        data = b"".join(response.iter_bytes())
        assert digest_bytes(data) == response.headers["x-shipyard-digest"]
    assert digest_bytes(data) == credit.models.get(V1).digest
