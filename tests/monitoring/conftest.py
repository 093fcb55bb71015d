"""A small served project the drift service and ``shipyard monitor drift`` tests share, built
once per module and backend (SQLite, then PostgreSQL): tests only read it, or add data under
names of their own.

- ``train@1``: 400 rows of x1, x2 (numbers), c (three letters) and y (the label);
  ``small@1``: its first 50 rows; ``shifted@1``: train@1 with x1 moved by 3.
- ``m@1``: a logistic regression on x1 and x2 from a run that logged train@1 as its training
  data, evaluated on train@1 (x1 carries nearly all the permutation importance), approved by
  bob, promoted to production and served by deployment ``m-live``, which answered 250 rows
  with x1 moved by 3 a minute ago. ``m@staging`` (the same version) is served by two
  deployments, ``s1`` and ``s2``.
- ``bare@1``: a model registered without a run (no lineage); a dataset ``bare@1`` too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import shipyard
from shipyard.project import Project

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
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
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


@pytest.fixture
def served_root(served: Project) -> Path:
    return served.root
