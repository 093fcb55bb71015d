"""A small served project the drift service and ``shipyard monitor drift`` tests share, built
once per test process and backend (SQLite, then PostgreSQL): tests only read it, or add data under
names of their own.

- ``train@1``: 400 rows of x1, x2 (numbers), c (three letters) and y (the label);
  ``small@1``: its first 50 rows; ``shifted@1``: train@1 with x1 moved by 3.
- ``m@1``: a logistic regression on x1 and x2 from a run that logged train@1 as its training
  data, evaluated on train@1 (x1 carries nearly all the permutation importance), approved by
  bob, promoted to production and served by deployment ``m-live``, which answered 250 rows
  with x1 moved by 3 a minute ago. ``m@staging`` (the same version) is served by two
  deployments, ``s1`` and ``s2``.
- ``bare@1``: a model registered without a run (no lineage); a dataset ``bare@1`` too.

Monitors and alerts: KPI events at chosen times (so a test knows what each window holds),
the webhook settings and receiver of the collaboration tests, and the CLI.

Time is controlled by passing ``now`` to the monitors: windows here are 10 minutes long, one
ending every 10 minutes, so ``at(k)`` (a moment just after the end of window ``k``) measures
window ``k``: ``[T0 + (k-1)·10 min, T0 + k·10 min)``.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy import insert, text

import shipyard
from shipyard.project import Project
from shipyard.stores.db.tables import kpi_events
from tests.cli.conftest import cli  # noqa: F401  (the fixture)
from tests.collaboration.conftest import receiver, webhook_settings  # noqa: F401

WINDOW_ROWS = 250


def training_frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    x1 = rng.normal(0, 1, n)
    return pl.DataFrame(
        {
            "x1": x1,
            "x2": rng.normal(5, 2, n),
            "c": rng.choice(["a", "b", "c"], n),
            "y": (x1 + rng.normal(0, 0.5, n) > 0).astype(np.int64),
        }
    )


def log_window(project: Project, deployment: str, model: str, rows: list[dict[str, Any]]) -> None:
    """Store ``rows`` as inputs ``deployment`` answered with ``model`` a minute ago."""
    from shipyard.serving.logwriter import Columns, write_segment

    batch = Columns()
    when = int((time.time() - 60) * 1000)
    for i, row in enumerate(rows):
        batch.add([f"{i:032x}"], when, model, False, {"records": [row]}, "/predict", [0], 1.0)
    write_segment(project, deployment, batch)


def populate(project: Project) -> None:
    from sklearn.linear_model import LogisticRegression

    project.users.add("bob", "approver")
    frame = training_frame()
    train = project.datasets.add("train", frame)
    project.datasets.add("small", frame.head(50))
    project.datasets.add("shifted", frame.with_columns(pl.col("x1") + 3))
    project.datasets.add("bare", frame.head(10))
    x = frame.select("x1", "x2").to_pandas()
    fitted = LogisticRegression().fit(x, frame["y"].to_numpy())
    with project.start_run("m") as run:
        run.log_input(train.ref, context="train")
        run.log_model(fitted, "m", input_example=x.head(5))
    project.models.register_model("bare", fitted, input_example=x.head(5))
    project.evaluations.evaluate("m@1", train.ref, label="y", bootstrap=0)
    bob = project.as_actor("bob")
    bob.approvals.approve("m@1")
    bob.promotions.promote("m@1")
    bob.deployments.set("m-live", {"production": 100}, model="m")
    project.models.set_alias("m@1", "staging")
    for name in ("s1", "s2"):
        bob.deployments.set(name, {"staging": 100}, model="m")
    shifted = frame.head(WINDOW_ROWS).with_columns(pl.col("x1") + 3)
    log_window(project, "m-live", "m@1", shifted.select("x1", "x2").to_dicts())


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """The served project above, on SQLite then on a private PostgreSQL schema."""
    root = tmp_path_factory.mktemp("served")
    admin = None
    schema = f"t_{uuid.uuid4().hex}"
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'metadata.db'}"
    else:
        admin = request.getfixturevalue("_pg_admin_engine")
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
        url = str(url.render_as_string(hide_password=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPYARD_USER", "alice")
        project = shipyard.init_project(root / "proj", db_url=url, actor="alice")
        populate(project)
    try:
        yield project
    finally:
        project.close()
        if admin is not None:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


# -- monitors and alerts -----------------------------------------------------------------------

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
