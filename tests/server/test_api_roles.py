"""Every ``/api/v1`` route in the OpenAPI document answers 401 without a token, so a route
added later without authentication fails here; and the routes of models, governance,
deployments and audit are documented: a summary, the 401 response, and examples."""

from __future__ import annotations

import re
from typing import Any

from shipyard.server.auth import FailureThrottle
from tests.server.conftest import TestClient

METHODS = ("get", "post", "put", "patch", "delete")


def api_routes(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) for every /api/v1 operation of an OpenAPI
    document."""
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, op in item.items()
        if method in METHODS
    ]


def concrete(path: str) -> str:
    """A path template with each parameter filled (``{ref}`` → ``x@1``, ``{p:path}`` → a/b)."""
    path = re.sub(r"\{[^}]*:path\}", "a/b.txt", path)
    return re.sub(r"\{(\w+)\}", lambda m: "x@1" if m[1] == "ref" else "x", path)


def test_every_api_route_answers_401_without_a_token(api: TestClient) -> None:
    """Without a token, or with a malformed one, every /api/v1 operation is refused with
    401 ``unauthenticated`` before it reads anything."""
    routes = api_routes(api.get("/api/v1/openapi.json").json())
    assert len(routes) >= 20  # the document is really there
    wrong = []
    for method, template, _ in routes:
        path = concrete(template)
        for headers in ({}, {"Authorization": "Bearer shp_0123456789abcdef_nope"}):
            # Failures are slowed per address (tests/server/test_auth.py pins that); here each
            # request starts from a clean count, so none waits and none is answered 429.
            api.app.state.throttle = FailureThrottle()  # type: ignore[attr-defined]
            response = api.request(method, path, headers=headers)
            if response.status_code != 401 or response.json().get("error") != "unauthenticated":
                wrong.append((method, template, bool(headers), response.status_code))
    assert wrong == []


DOCUMENTED_TAGS = {"models", "governance", "deployments", "audit"}
#: Every route of those areas, so one that goes missing from the document is noticed.
GOVERNANCE_ROUTES = {
    "GET /api/v1/models",
    "GET /api/v1/models/{name}/versions",
    "GET /api/v1/models/{ref}",
    "GET /api/v1/models/{name}/aliases",
    "GET /api/v1/models/{name}/aliases/history",
    "GET /api/v1/models/{ref}/evaluations",
    "GET /api/v1/models/{ref}/card",
    "GET /api/v1/models/{ref}/download",
    "GET /api/v1/models/{ref}/row-checks",
    "GET /api/v1/policies",
    "GET /api/v1/policies/{model}",
    "PUT /api/v1/policies/{model}",
    "POST /api/v1/check",
    "POST /api/v1/models/{ref}/approve",
    "POST /api/v1/models/{ref}/reject",
    "GET /api/v1/models/{ref}/approvals",
    "POST /api/v1/models/{name}/promote",
    "POST /api/v1/models/{name}/rollback",
    "GET /api/v1/deployments",
    "GET /api/v1/deployments/{name}",
    "PUT /api/v1/deployments/{name}",
    "GET /api/v1/deployments/{name}/history",
    "GET /api/v1/audit",
    "GET /api/v1/audit/verify",
}


def test_the_governance_routes_document_their_answers(api: TestClient) -> None:
    """Every route of models, governance, deployments and audit is in the document, with a
    summary and a documented 401; a JSON 200 answer has a schema and an example; a JSON
    request body has an example."""
    document = api.get("/api/v1/openapi.json").json()
    components = document.get("components", {})
    routes = [r for r in api_routes(document) if DOCUMENTED_TAGS & set(r[2].get("tags", ()))]
    assert {f"{m} {t}" for m, t, _ in routes} >= GOVERNANCE_ROUTES
    problems = []
    for method, template, op in routes:
        where = f"{method} {template}"
        if not op.get("summary"):
            problems.append(f"{where}: no summary")
        responses = op.get("responses", {})
        if "401" not in responses:
            problems.append(f"{where}: 401 not documented")
        ok = responses.get("200") or responses.get("201") or {}
        content = ok.get("content", {})
        if "application/json" in content:
            if not content["application/json"].get("schema"):
                problems.append(f"{where}: no schema for its answer")
            if "example" not in content["application/json"]:
                problems.append(f"{where}: no example of its answer")
        body = op.get("requestBody", {}).get("content", {})
        for media, spec in body.items():
            if media == "application/json" and not _has_examples(spec, components):
                problems.append(f"{where}: no example of its {media} body")
    assert problems == []


def _has_examples(spec: dict[str, Any], components: dict[str, Any]) -> bool:
    """Whether a body has an example, or its schema (a pydantic model's, referenced from the
    document's components) gives examples of at least one field."""
    if "example" in spec or "examples" in spec:
        return True
    schema = spec.get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = components.get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    props = schema.get("properties", {}).values()
    return "examples" in schema or any("examples" in p for p in props)
