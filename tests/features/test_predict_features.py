"""Batch scoring with features: ``models predict`` on a version trained on ``features
historical`` output fills its feature columns, point in time as of the file's date column
(the values the version would have been given then) or, without one (or with ``--online``),
the latest values in the online store, as the model server does. And a feature view whose
source lives in an S3 artifact store (moto): historical retrieval and materialization."""

# The tests take the command-line fixture ``cli`` imported from tests/cli by name.
# ruff: noqa: F811

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import shipyard
from tests.cli.conftest import Cli, cli  # noqa: F401 - the fixture, used by name

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
MODEL = "scorer"
FEATURES = "payments:late_payments,payments:amount"
DEFINITIONS = """\
entities:
  - {name: applicant, join_keys: [applicant_id], owner: risk-team}
feature_views:
  - name: payments
    source: payments
    entity: applicant
    timestamp: paid_at
    ttl: 60d
    owner: risk-team
    features:
      - {name: late_payments, type: int, description: Payments over 30 days late.}
      - {name: amount, type: float, description: Amount paid.}
"""
APPLICANTS = range(1, 41)


def payments() -> pl.DataFrame:
    """Every applicant paid 20 days ago and again yesterday, with other values each time."""
    ids = [*APPLICANTS, *APPLICANTS]
    older = [True] * len(APPLICANTS) + [False] * len(APPLICANTS)
    return pl.DataFrame(
        {
            "applicant_id": ids,
            "paid_at": [NOW - timedelta(days=20 if o else 1) for o in older],
            "late_payments": [i % 4 if o else (i + 1) % 4 for i, o in zip(ids, older, strict=True)],
            "amount": [
                float(i * 10 % 70) + (0 if o else 5) for i, o in zip(ids, older, strict=True)
            ],
        }
    )


def build(root: Path, artifacts_uri: str | None = None) -> None:
    """The project: the payments, the view, training data joined as of 10 days ago."""
    with shipyard.init_project(root, actor="alice", artifacts_uri=artifacts_uri) as project:
        project.datasets.add("payments", payments())
        (root / "features.yaml").write_text(DEFINITIONS, encoding="utf-8")
        project.features.apply(root / "features.yaml")
        project.datasets.add(
            "applications",
            pl.DataFrame(
                {
                    "applicant_id": list(APPLICANTS),
                    "applied_on": [TODAY - timedelta(days=10)] * len(APPLICANTS),
                    "income": [float(i % 9) for i in APPLICANTS],
                    "default": [int(i % 4 >= 2) for i in APPLICANTS],
                }
            ),
        )
        project.features.historical("applications@1", FEATURES, output="training")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, with a version trained on the training data (an imputer first: it takes
    a missing feature) and the online store materialized."""
    root = tmp_path_factory.mktemp("fpredict") / "proj"
    build(root)
    with shipyard.open_project(root, actor="alice") as project:
        frame = project.datasets.get("training@1").to_pandas()
        x = frame[["income", "late_payments", "amount"]]
        with project.start_run(MODEL) as run:
            run.log_input("training@1", "train")
            model = Pipeline([("impute", SimpleImputer()), ("model", LogisticRegression())])
            run.log_model(model.fit(x, frame["default"]), MODEL, input_example=x.head(5))
        project.features.materialize()
    return root


def expected(root: Path, rows: pl.DataFrame, timestamp: str | None) -> pl.DataFrame:
    """``rows`` with the features as ``features historical`` (at ``timestamp``) or the online
    store gives them, and the version's probability of class 1 on them."""
    with shipyard.open_project(root, actor="alice") as project:
        if timestamp is not None:
            full = project.features.historical(rows, FEATURES, timestamp=timestamp).frame
        else:
            got = project.features.online(rows.select("applicant_id").to_dicts(), FEATURES)
            full = rows.with_columns(
                pl.Series("late_payments", [r.values["late_payments"] for r in got.rows]),
                pl.Series("amount", [r.values["amount"] for r in got.rows]),
            )
        predictor = project.models.load(f"{MODEL}@1")
        x = full.select("income", "late_payments", "amount").to_pandas()
        proba = predictor.predict_proba(x)[:, 1]
    return full.with_columns(pl.Series("proba_1", proba))


def scored(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)


def test_a_file_with_a_date_column_is_scored_with_the_features_of_that_date(
    root: Path, cli: Cli, tmp_path: Path
) -> None:
    """Applicant 1 applied 10 days ago (the payment of 20 days ago counts, not yesterday's)
    and today (yesterday's counts); applicant 2 long ago (no payment yet: null, imputed);
    applicant 99 never paid. The output holds the values scored, as ``features historical``
    joins them, and the version's answers on them; the command says how it joined."""
    rows = pl.DataFrame(
        {
            "applicant_id": [1, 1, 2, 99],
            "applied_on": [TODAY - timedelta(days=10), TODAY, date(2020, 1, 1), TODAY],
            "income": [3.0, 3.0, 4.0, 5.0],
        }
    )
    source = tmp_path / "applications.csv"
    rows.write_csv(source)
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", source, "-o",
              tmp_path / "out.parquet", "--json")  # fmt: skip
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["features"] == {
        "refs": ["payments@1:late_payments", "payments@1:amount"],
        "mode": "point_in_time",
        "timestamp": "applied_on",
    }
    out = scored(tmp_path / "out.parquet")
    want = expected(root, rows, "applied_on")
    assert out["late_payments"].to_list() == want["late_payments"].to_list()
    assert out["late_payments"].to_list()[:2] == [1 % 4, (1 + 1) % 4]
    assert out["late_payments"].to_list()[2:] == [None, None]
    assert out["proba_1"].to_list() == pytest.approx(want["proba_1"].to_list())
    # In chunks of one row: the same values; the source read once, one access-log event.
    with shipyard.open_project(root) as project:
        before = len(project.audit.list(action="feature_view.read"))
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", source, "-o",
              tmp_path / "out.csv", "--chunk-size", "1")  # fmt: skip
    assert res.code == 0, res.stderr
    assert "joined as of each row's applied_on (point in time)" in res.stdout
    chunked = pl.read_csv(tmp_path / "out.csv")
    assert chunked["late_payments"].to_list() == want["late_payments"].to_list()
    with shipyard.open_project(root) as project:
        events = project.audit.list(action="feature_view.read")
    assert len(events) == before + 1
    assert events[-1].payload["entities"] == str(source) and events[-1].entity == "payments@1"


def test_without_a_date_column_or_with_online_the_latest_values_are_scored(
    root: Path, cli: Cli, tmp_path: Path
) -> None:
    """A file of ids and incomes (or ``--online`` on one with a date) gets the online
    store's values, yesterday's payment for applicant 1, as the model server would; a
    feature column the file holds is replaced by the stored value."""
    rows = pl.DataFrame({"applicant_id": [1, 7, 99], "income": [3.0, 1.0, 2.0]})
    source = tmp_path / "ids.parquet"
    rows.with_columns(late_payments=pl.lit(100)).write_parquet(source)
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", source, "-o",
              tmp_path / "out.parquet", "--json")  # fmt: skip
    assert res.code == 0, res.stderr
    assert res.json()["features"]["mode"] == "online"
    out = scored(tmp_path / "out.parquet")
    want = expected(root, rows, None)
    assert out["late_payments"].to_list() == [(1 + 1) % 4, (7 + 1) % 4, None]
    assert out["amount"].to_list() == want["amount"].to_list()
    assert out["proba_1"].to_list() == pytest.approx(want["proba_1"].to_list())

    dated = tmp_path / "dated.csv"
    rows.with_columns(applied_on=pl.lit(TODAY - timedelta(days=10))).write_csv(dated)
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", dated, "-o",
              tmp_path / "online.parquet", "--online", "--json")  # fmt: skip
    assert res.code == 0, res.stderr
    assert scored(tmp_path / "online.parquet")["late_payments"].to_list()[0] == (1 + 1) % 4


def test_bad_feature_inputs_are_refused_naming_what_to_do(
    root: Path, cli: Cli, tmp_path: Path
) -> None:
    """No join key, an unknown --timestamp, two dates to choose from, both options."""
    out = tmp_path / "out.parquet"
    no_key = tmp_path / "no-key.csv"
    pl.DataFrame({"income": [1.0]}).write_csv(no_key)
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", no_key, "-o", out)
    assert res.code == 1
    assert "lacks applicant_id" in res.stderr and "looked up by applicant_id" in res.stderr
    two = tmp_path / "two.csv"
    pl.DataFrame(
        {"applicant_id": [1], "applied_on": [TODAY], "decided_on": [TODAY], "income": [1.0]}
    ).write_csv(two)
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", two, "-o", out)
    assert res.code == 1 and "several time columns (applied_on, decided_on)" in res.stderr
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", two, "-o", out,
              "--timestamp", "paid")  # fmt: skip
    assert res.code == 1 and "no column 'paid'" in res.stderr
    res = cli("--project", root, "models", "predict", f"{MODEL}@1", two, "-o", out,
              "--timestamp", "decided_on", "--online")  # fmt: skip
    assert res.code == 2
    assert not out.exists()


@pytest.mark.s3
def test_a_view_whose_source_lives_in_s3_joins_and_materializes(
    s3_uri: str, s3_client: Any, tmp_path: Path
) -> None:
    """The project's artifacts (the payments' Parquet among them) in an S3 bucket (moto):
    point-in-time training data and the online store read the source from there."""
    root = tmp_path / "proj"
    build(root, artifacts_uri=s3_uri)
    bucket = s3_uri.removeprefix("s3://").split("/")[0]
    assert s3_client.list_objects_v2(Bucket=bucket)["KeyCount"] > 0
    with shipyard.open_project(root, actor="alice") as project:
        assert project.settings.artifacts_uri == s3_uri
        training = project.datasets.get("training@1").to_polars().sort("applicant_id")
        assert training["late_payments"].to_list() == [i % 4 for i in APPLICANTS]
        assert training["amount"].to_list() == [float(i * 10 % 70) for i in APPLICANTS]
        (done,) = project.features.materialize()
        assert done.rows == len(APPLICANTS) and done.source == "payments@1"
        got = project.features.online([{"applicant_id": 3}, {"applicant_id": 99}], FEATURES)
        assert got.rows[0].values == {"late_payments": (3 + 1) % 4, "amount": 35.0}
        assert got.rows[0].status == {"late_payments": "present", "amount": "present"}
        assert got.rows[1].status == {"late_payments": "missing", "amount": "missing"}
