"""Schemathesis over ``/api/v1/openapi.json`` with a valid admin token: whatever the generated
requests hold, the server answers with no 5xx (and the document itself is valid OpenAPI)."""

from __future__ import annotations

import warnings
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from shipyard.project import Project
from shipyard.server.app import create_app
from tests.server.conftest import Team

EXAMPLES_PER_ROUTE = 6


def test_no_generated_request_makes_the_server_fail(project: Project, team: Team) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(project))
    headers = {"Authorization": f"Bearer {team.tokens['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            call()
        except Exception as exc:  # every route is tried; all failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
