"""Fixtures of the monitoring tests: KPI events at chosen times (so a test knows what each
window holds), the webhook settings and receiver of the collaboration tests, and the CLI.

Time is controlled by passing ``now`` to the monitors: windows here are 10 minutes long, one
ending every 10 minutes, so ``at(k)`` (a moment just after the end of window ``k``) measures
window ``k``: ``[T0 + (k-1)·10 min, T0 + k·10 min)``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text

import shipyard
from shipyard.project import Project
from shipyard.stores.db.tables import kpi_events
from tests.cli.conftest import cli  # noqa: F401  (the fixture)
from tests.collaboration.conftest import receiver, webhook_settings  # noqa: F401

DEPLOYMENT = "checkout"
_names = itertools.count(1)
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
WINDOW = 600


def at(k: int) -> datetime:
    """A moment 5 s after window ``k`` ends."""
    return T0 + timedelta(seconds=k * WINDOW + 5)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """One project per test module and backend (a SQLite file, then a private PostgreSQL
    schema), acting as alice, its admin; tests keep apart by their own deployment names
    (:func:`fresh`)."""
    root = tmp_path_factory.mktemp("monitoring") / "proj"
    if request.param == "sqlite":
        url, drop = f"sqlite:///{root.parent / 'metadata.db'}", None
    else:
        engine: Any = request.getfixturevalue("_pg_admin_engine")
        schema = f"t_{uuid.uuid4().hex}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
        url, drop = url.render_as_string(hide_password=False), schema
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPYARD_USER", "alice")
        project = shipyard.init_project(root, db_url=url)
    try:
        yield project
    finally:
        project.close()
        if drop is not None:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{drop}" CASCADE'))


def fresh(prefix: str = "d") -> str:
    """A deployment (or monitor) name no other test of the module uses."""
    return f"{prefix}-{next(_names)}"


def kpi_in_window(
    project: Project, k: int, value: float, name: str = "revenue", deployment: str = DEPLOYMENT
) -> None:
    """Record a KPI event of ``DEPLOYMENT`` in the middle of window ``k``. The rows are
    written as ``Predictions.record_kpis`` writes them, but at a chosen time (the service
    stamps the current time)."""
    when = T0 + timedelta(seconds=(k - 1) * WINDOW + WINDOW // 2)
    with project.db.write() as conn:
        conn.execute(
            insert(kpi_events).values(
                deployment=deployment,
                name=name,
                value=value,
                request_id=None,
                time=int(when.timestamp() * 1000),
            )
        )
