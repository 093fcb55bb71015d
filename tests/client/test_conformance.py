"""One conformance suite for the service interface: every test runs against a local project
and against a RemoteProject over a live server on the same project (``mode``), and must see
the same results, read models and errors. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.data.versions import DatasetSummary, DatasetVersion
from shipyard.errors import (
    CheckFailedError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from shipyard.governance.approvals import Approval
from shipyard.registry.versions import ModelVersion
from shipyard.stores.audit import AuditEvent, ChainReport
from shipyard.tracking.runs import RunInfo
from tests.client.conftest import Acting

CONTRACT = """\
columns:
  id: {type: int, nullable: false, unique: true}
  amount: {type: float, nullable: true, min: 0}
  city: {type: string, allowed: [Oslo, Lima, Pune]}
"""


# -- datasets -----------------------------------------------------------------------------------


def test_adding_a_table_gives_a_numbered_version_and_the_same_content_gives_it_back(
    service_project: Any, sample_csv: Callable[..., Path]
) -> None:
    """data add stores version 1 with its message, tags, rows and schema; adding the same
    file again returns version 1 unchanged; list, versions and get agree."""
    path = sample_csv()
    v = service_project.datasets.add("sales", path, message="first", tags={"src": "crm"})
    assert isinstance(v, DatasetVersion)
    assert (v.ref, v.created, v.rows, v.columns) == ("sales@1", True, 4, ["id", "amount", "city"])
    assert (v.message, v.tags, v.created_by) == ("first", {"src": "crm"}, "alice")
    again = service_project.datasets.add("sales", path)
    assert (again.ref, again.created, again.digest) == ("sales@1", False, v.digest)
    [summary] = service_project.datasets.list()
    assert isinstance(summary, DatasetSummary)
    assert (summary.name, summary.latest, summary.versions, summary.rows) == ("sales", 1, 1, 4)
    assert [x.ref for x in service_project.datasets.versions("sales")] == ["sales@1"]
    shown = service_project.datasets.get("sales@latest")
    assert shown.digest == v.digest
    assert shown.profile["columns"]["amount"]["nulls"] == 1


def test_a_version_downloads_as_csv_parquet_and_into_memory_with_the_same_rows(
    service_project: Any, sample_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """data get writes the version's rows as CSV and Parquet, and to_polars reads them: the
    same table each way."""
    v = service_project.datasets.add("sales", sample_csv())
    expected = pl.read_csv(sample_csv())
    as_csv = service_project.datasets.export(v.ref, tmp_path / "out" / "s.csv")
    as_parquet = service_project.datasets.export(v.ref, tmp_path / "out" / "s.parquet")
    assert pl.read_csv(as_csv).equals(expected)
    assert pl.read_parquet(as_parquet).equals(expected)
    assert service_project.datasets.get(v.ref).to_polars().equals(expected)


def test_two_versions_diff_and_lineage(
    service_project: Any, sample_csv: Callable[..., Path]
) -> None:
    """diff names the row-count change between two versions; lineage starts at the version."""
    a = service_project.datasets.add("sales", sample_csv())
    rows = [{"id": i, "amount": 1.0, "city": "Oslo"} for i in range(6)]
    b = service_project.datasets.add("sales", sample_csv("b.csv", rows=rows))
    d = service_project.datasets.diff(a.ref, b.ref)
    assert (d["from"], d["to"], d["identical"]) == ("sales@1", "sales@2", False)
    assert d["rows"]["change"] == 2
    assert service_project.datasets.lineage(b.ref)["ref"] == "sales@2"


def test_data_that_fails_its_contract_is_refused_with_the_report(
    service_project: Any, sample_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """With a contract, a failing file is refused (CheckFailedError, exit 3) with the
    validation report in the details, and nothing is stored; validate reports a pass."""
    contract_file = tmp_path / "c.yaml"
    contract_file.write_text(CONTRACT, encoding="utf-8")
    service_project.contracts.add("sales-contract", contract_file)
    good = service_project.datasets.add("sales", sample_csv(), contract="sales-contract@1")
    assert good.status == "valid"
    bad = sample_csv("bad.csv", rows=[{"id": 1, "amount": -5.0, "city": "Paris"}])
    with pytest.raises(CheckFailedError) as caught:
        service_project.datasets.add("sales", bad, contract="sales-contract@1")
    assert caught.value.exit_code == 3
    assert caught.value.details["report"]["passed"] is False
    assert [v.ref for v in service_project.datasets.versions("sales")] == ["sales@1"]
    report = service_project.datasets.validate("sales@1", contract="sales-contract@1")
    assert (report.passed, report.rows) == (True, 4)


def test_a_missing_dataset_is_the_same_not_found_error(service_project: Any) -> None:
    """Asking for a version that does not exist raises NotFoundError naming it, in both
    modes."""
    with pytest.raises(NotFoundError, match="sales"):
        service_project.datasets.get("sales@3")


# -- runs ---------------------------------------------------------------------------------------


def test_a_run_records_params_metric_series_tags_inputs_and_artifacts(
    service_project: Any, sample_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Everything a training script logs is on the run afterwards: params, every metric point
    by step (batched), tags, the input dataset, artifacts, and FINISHED status."""
    data = service_project.datasets.add("sales", sample_csv())
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    with service_project.start_run("exp", name="first", tags={"team": "risk"}) as run:
        run.log_params({"C": 1.0, "penalty": "l2"})
        for step in range(250):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        run.log_metric("auc", 0.8)
        run.set_tag("stage", "dev")
        run.log_input(data.ref, context="train")
        assert run.log_artifact(notes) == ["notes.txt"]
    info = service_project.runs.get(run.id)
    assert isinstance(info, RunInfo)
    assert (info.name, info.experiment, info.status, info.created_by) == (
        "first",
        "exp",
        "FINISHED",
        "alice",
    )
    assert info.params == {"C": "1.0", "penalty": "l2"}
    assert info.metrics == {"loss": pytest.approx(1 / 250), "auc": 0.8}
    assert info.tags == {"team": "risk", "stage": "dev"}
    assert [(i["dataset"], i["context"]) for i in info.inputs] == [("sales@1", "train")]
    assert [(a["path"], a["size"]) for a in info.artifacts] == [("notes.txt", 5)]
    assert info.environment["python_version"] and "packages" in info.environment
    history = service_project.runs.metric_history(run.id, "loss")
    assert [p["step"] for p in history] == list(range(250))
    assert history[-1]["value"] == pytest.approx(1 / 250)


def test_runs_are_searched_compared_deleted_and_restored(service_project: Any) -> None:
    """runs list takes the filter grammar and order; compare marks differing keys; a deleted
    run leaves searches until restored."""
    ids = []
    for c, auc in ((0.1, 0.7), (1.0, 0.9)):
        with service_project.start_run("exp") as run:
            run.log_params({"C": c})
            run.log_metrics({"auc": auc})
        ids.append(run.id)
    found = service_project.runs.list(filter="metrics.auc > 0.8", order_by="metrics.auc DESC")
    assert [r.id for r in found] == [ids[1]]
    ordered = service_project.runs.list(experiment="exp", order_by=["metrics.auc ASC"])
    assert [r.id for r in ordered] == ids
    doc = service_project.runs.compare(ids)
    assert [row["key"] for row in doc["params"] if row["differs"]] == ["C"]
    assert service_project.runs.delete(ids[0]).lifecycle == "deleted"
    assert [r.id for r in service_project.runs.list(experiment="exp")] == [ids[1]]
    service_project.runs.restore(ids[0])
    assert len(service_project.runs.list(experiment="exp")) == 2
    [exp] = service_project.runs.experiments()
    assert (exp.name, exp.runs) == ("exp", 2)


def test_a_parameter_logged_twice_with_another_value_is_a_conflict(service_project: Any) -> None:
    """Parameters are immutable: a different value is a ConflictError; the run ends FAILED
    with the error recorded."""
    with (
        pytest.raises(ConflictError, match="parameters are immutable"),
        service_project.start_run("exp") as run,
    ):
        run.log_params({"C": 1})
        run.log_params({"C": 2})
    info = service_project.runs.get(run.id)
    assert info.status == "FAILED"
    assert info.error and "ConflictError" in info.error


def test_a_bad_metric_fails_the_call_that_logs_it(service_project: Any) -> None:
    """A value that is not a number is refused at once, and nothing of that call is
    stored."""
    with (
        service_project.start_run("exp") as run,
        pytest.raises(InvalidInputError, match="must be a number"),
    ):
        run.log_metrics({"ok": 1.0, "bad": "high"})
    assert service_project.runs.get(run.id).metrics == {}


def test_a_viewer_cannot_start_a_run(acting: Acting) -> None:
    """Roles are the server's services' own: a viewer starting a run is refused (403)."""
    with pytest.raises(PermissionDeniedError, match="vic"):
        acting("viewer").start_run("exp")


# -- models -------------------------------------------------------------------------------------


def _fitted() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    y = [0, 0, 0, 1, 1, 1]
    return LogisticRegression().fit(x, y), x


def test_a_logged_model_is_a_version_that_loads_and_predicts_the_same(
    service_project: Any,
) -> None:
    """log_model registers version 1 with lineage to its run and a signature; models load
    returns a predictor (digest checked, trusted types only) that predicts as the model."""
    model, x = _fitted()
    with service_project.start_run("exp") as run:
        run.log_metrics({"auc": 0.9})
        mv = run.log_model(model, "clf", input_example=x.head(3), description="first")
    assert isinstance(mv, ModelVersion)
    assert (mv.ref, mv.run_id, mv.status, mv.description) == ("clf@1", run.id, "candidate", "first")
    assert mv.signature is not None
    assert sorted(mv.signature["inputs"]["columns"]) == ["a", "b"]
    assert [v.ref for v in service_project.models.versions("clf")] == ["clf@1"]
    [summary] = service_project.models.list()
    assert (summary.name, summary.latest) == ("clf", 1)
    assert service_project.models.get("clf").metrics == {"auc": 0.9}
    predictor = service_project.models.load("clf@1")
    assert list(predictor.predict(x)) == list(model.predict(x))


def test_a_lightgbm_model_travels_in_its_own_format(service_project: Any) -> None:
    """A model of another flavor is logged and loaded the same way, locally or through the
    team server: the archive goes up as it is, and the version names its flavor."""
    lightgbm = pytest.importorskip("lightgbm")
    _, x = _fitted()
    model = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=1, verbose=-1)
    model.fit(x, ["no", "no", "no", "yes", "yes", "yes"])
    with service_project.start_run("exp") as run:
        mv = run.log_model(model, "booster", input_example=x.head(3))
    assert mv.flavor == "lightgbm"
    assert mv.signature["outputs"]["classes"] == ["no", "yes"]
    predictor = service_project.models.load("booster@1")
    assert list(predictor.predict(x)) == list(model.predict(x))


LOANS_CONTRACT = """\
columns:
  a: {type: float, nullable: true, min: 0, max: 10}
  b: {type: float, nullable: true}
  y: {type: int, nullable: false}
"""


def test_batch_scoring_checks_rows_against_the_training_contract(
    project: Any, service_project: Any, tmp_path: Path
) -> None:
    """models predict refuses what the local command refuses: a value outside the contract
    of the training data (a=50 > 10) and a missing value the pipeline has no imputer for
    (b); with skip, the other rows are scored as the model scores them and the refused ones
    are written with their reasons. Without --force an existing output is a conflict."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shipyard.data.contracts import Contract

    train = pd.DataFrame(
        {"a": [float(i % 10) for i in range(40)], "b": [float(i % 3) for i in range(40)]}
    )
    train["y"] = (train["a"] > 4).astype(int)
    project.contracts.add("loans", Contract.from_yaml(LOANS_CONTRACT))
    project.contracts.bind("loans", "loans", new=True)
    project.datasets.add("loans", train)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[["a", "b"]], train.y)
    with project.start_run("exp") as run:
        run.log_input("loans@1", context="train")
        run.log_model(model, "clf", input_example=train[["a", "b"]].head(3))

    batch = pd.DataFrame({"a": [1.0, 50.0, 3.0, 7.0], "b": [0.0, 1.0, None, 2.0]})
    source = tmp_path / "batch.csv"
    batch.to_csv(source, index=False)
    dest = tmp_path / "scored.csv"
    with pytest.raises(InvalidInputError, match="nothing was written"):
        service_project.models.predict_file("clf@1", source, dest)
    assert not dest.exists()
    doc = service_project.models.predict_file("clf@1", source, dest, on_invalid="skip")
    assert (doc["rows"], doc["scored"], doc["refused"]) == (4, 2, 2)
    scored = pd.read_csv(dest)
    assert scored["prediction"].tolist() == model.predict(batch.iloc[[0, 3]]).tolist()
    rejected = pd.read_csv(doc["rejected"])
    assert rejected["source_row"].tolist() == [2, 3]
    assert "a" in rejected["reason"][0] and "imputer" in rejected["reason"][1]
    with pytest.raises(ConflictError):
        service_project.models.predict_file("clf@1", source, dest, on_invalid="skip")


# -- governance and audit -----------------------------------------------------------------------


@pytest.fixture
def credit_team(mode: str, project: Any, acting: Acting) -> Acting:
    """The evaluated credit project of the governance tests (alice registered both versions),
    opened in ``mode``."""
    from tests.governance.test_governance_service import populate

    populate(project, evaluate=True)
    return acting


def test_governance_through_the_interface(credit_team: Acting) -> None:
    """The author cannot approve; an approver can; promotion moves production (alias history
    says so); shipyard check passes for the promoted version; rolling back with no earlier
    holder is refused as not found."""
    from tests.governance.test_governance_service import MODEL, V1

    alice, abe = credit_team("admin"), credit_team("approver")
    with pytest.raises(PermissionDeniedError):
        alice.approvals.approve(V1, comment="mine")
    a = abe.approvals.approve(V1, comment="reviewed")
    assert isinstance(a, Approval)
    assert (a.model, a.approver, a.decision, a.comment) == (V1, "abe", "approve", "reviewed")
    assert [x.approver for x in alice.approvals.list(V1)] == ["abe"]
    doc = abe.promotions.promote(V1, to="production", comment="go")
    assert (doc["model"], doc["alias"], doc["promoted"]) == (V1, "production", True)
    assert alice.models.get(f"{MODEL}@production").version == 1
    [event] = alice.models.alias_history(MODEL, "production")
    assert (event.to_version, event.actor, event.reason) == (1, "abe", "promote")
    gate = alice.promotions.gate(f"{MODEL}@production")
    assert gate["passed"] is True
    with pytest.raises(NotFoundError):
        abe.promotions.rollback(MODEL, alias="production")


def test_the_audit_log_lists_events_and_verifies(
    service_project: Any, sample_csv: Callable[..., Path]
) -> None:
    """audit log filters by entity and action; audit verify finds the chain intact and the
    tables matching it."""
    service_project.datasets.add("sales", sample_csv())
    events = service_project.audit.list(entity="dataset:sales", action="dataset.add")
    assert [type(e) for e in events] == [AuditEvent]
    assert (events[0].actor, events[0].entity) == ("alice", "sales@1")
    newest = service_project.audit.list(limit=1, newest_first=True)
    assert len(newest) == 1
    report = service_project.audit.verify()
    assert isinstance(report, ChainReport)
    assert (report.ok, report.chain_ok, report.state) == (True, True, ())


def test_users_and_tokens(acting: Acting) -> None:
    """whoami is the token's user; an admin lists users; a user makes, lists and revokes a
    token of their own."""
    carol = acting("contributor")
    assert (carol.users.whoami().name, carol.users.whoami().role) == ("carol", "contributor")
    names = {u.name for u in acting("admin").users.list()}
    assert {"alice", "abe", "carol", "vic"} <= names
    new = carol.tokens.create(label="ci", expires="1d")
    assert new.token.startswith("shp_")
    assert new.info.label == "ci"
    assert new.info.id in {t.id for t in carol.tokens.list()}
    assert carol.tokens.revoke(new.info.id).active is False


def test_nan_and_infinite_metrics_read_back_as_such_locally_and_through_the_server(
    service_project: Any,
) -> None:
    """A NaN loss does not fail the run in either mode; NaN, inf and -inf come back as those
    floats (not None, not 0) from get, list, compare and the history, and a NaN parameter is
    the same text in both modes."""
    nan, inf = float("nan"), float("inf")
    with service_project.start_run("exp") as run:
        run.log_params({"alpha": nan})
        run.log_metrics({"ok": 1.0, "loss": nan, "up": inf, "down": -inf})
    with service_project.start_run("exp") as other:
        other.log_metrics({"ok": 2.0, "loss": 0.5, "up": 1.0, "down": -1.0})

    def exact(metrics: dict[str, float]) -> None:
        assert math.isnan(metrics["loss"])
        assert (metrics["ok"], metrics["up"], metrics["down"]) == (1.0, inf, -inf)

    info = service_project.runs.get(run.id)
    assert info.status == "FINISHED" and info.params == {"alpha": "nan"}
    exact(info.metrics)
    listed = {r.id: r for r in service_project.runs.list(experiment="exp")}
    exact(listed[run.id].metrics)
    history = service_project.runs.metric_history(run.id, "up")
    assert [p["value"] for p in history] == [inf]
    doc = service_project.runs.compare([run.id, other.id])
    values = {row["key"]: row["values"] for row in doc["metrics"]}
    assert values["up"] == [inf, 1.0] and values["down"] == [-inf, -1.0]
    assert math.isnan(values["loss"][0])
