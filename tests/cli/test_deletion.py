"""Deleting data with governance: soft delete, restore, purge, tombstones in a model's lineage,
erasure of rows, and `shipyard gc`, as a user sees them on the command line and in the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import update

import shipyard
from shipyard.errors import ConflictError, DeletedError, PermissionDeniedError
from shipyard.project import Project
from shipyard.stores.db.tables import dataset_versions
from tests.cli.conftest import Cli


def _frame(rows: int = 40, offset: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": list(range(offset, offset + rows)),
            "income": [1000.0 + 10 * i for i in range(rows)],
            "default": [i % 2 for i in range(rows)],
        }
    )


def test_delete_hides_a_version_and_restore_brings_it_back(cli: Cli, cli_project: Path) -> None:
    """A deleted version leaves listings and `latest`; naming it says who deleted it, when and
    why; `restore` undoes it; the audit chain still verifies."""
    _frame().write_csv(cli_project / "a.csv")
    _frame(50).write_csv(cli_project / "b.csv")
    assert cli("data", "add", "credit", "a.csv").code == 0
    assert cli("data", "add", "credit", "b.csv").code == 0

    res = cli("data", "delete", "credit@2", "--reason", "wrong export")
    assert res.code == 0, res.stderr
    assert "deleted credit@2 (wrong export)" in res.stdout
    assert cli("data", "list", "--json").json()[0]["latest"] == 1
    assert [v["version"] for v in cli("data", "versions", "credit", "--json").json()] == [1]
    assert cli("data", "show", "credit", "--json").json()["version"] == 1

    shown = cli("data", "show", "credit@2")
    assert shown.code == 1
    assert "dataset 'credit@2' was deleted by alice on" in shown.stderr
    assert "wrong export" in shown.stderr
    tomb = cli("data", "versions", "credit", "--deleted")
    assert "wrong export" in tomb.stdout and "restorable" in tomb.stdout

    again = cli("data", "delete", "credit@2")
    assert again.code == 1 and "already deleted" in again.stderr

    res = cli("data", "restore", "credit@2", "--json")
    assert res.code == 0 and res.json()["versions"] == ["credit@2"]
    assert cli("data", "show", "credit", "--json").json()["version"] == 2
    assert cli("audit", "verify").code == 0

    # A version un-deleted or deleted with SQL, outside shipyard, is caught by verification.
    project = shipyard.open_project(cli_project)
    with project.db.write() as conn:
        conn.execute(
            update(dataset_versions)
            .where(dataset_versions.c.version == 1)
            .values(deleted_at=datetime.now(UTC), deleted_by="mallory")
        )
    project.close()
    tampered = cli("audit", "verify")
    assert tampered.code == 3 and "dataset_versions" in tampered.stdout + tampered.stderr


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[Project]:
    """credit@1, and model risk@1 trained on it by a run (SQLite: the PostgreSQL runs of
    the other tests cover the backend)."""
    from sklearn.linear_model import LogisticRegression

    project = shipyard.init_project(tmp_path / "proj")
    frame = _frame().to_pandas()
    project.datasets.add("credit", frame)
    model = LogisticRegression().fit(frame[["income"]], frame["default"])
    with project.start_run(experiment="risk") as run:
        run.log_input("credit@1", context="train")
        run.log_model(model, "risk", input_example=frame[["income"]].head())
    yield project
    project.close()


@pytest.mark.slow
def test_a_model_s_training_data_needs_force_and_leaves_a_tombstone(
    trained: Project, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data a registered model was trained on is deleted only with --force (admin); the
    model's lineage then shows the tombstone: name, version, digest, who, when, why. Purging
    removes the blob from the artifact store."""
    project = trained
    digest = project.datasets.get("credit@1").digest
    with pytest.raises(ConflictError, match="lineage of model risk@1"):
        project.datasets.delete("credit@1")
    project.users.add("bob", "contributor")
    with pytest.raises(PermissionDeniedError):
        project.as_actor("bob").datasets.delete("credit@1", force=True)

    done = project.datasets.delete("credit@1", reason="consent withdrawn", force=True, purge=True)
    assert done.models == ["risk@1"] and done.purged == ["credit@1"]
    assert done.blobs_removed == 1 and not project.artifacts.exists(digest)

    item = next(i for i in project.models.get("risk@1").lineage if i["kind"] == "dataset")
    assert item["ref"] == "credit@1" and item["digest"] == digest
    assert item["deleted"]["by"] == "alice" and item["deleted"]["reason"] == "consent withdrawn"
    assert item["deleted"]["purged_at"] is not None

    monkeypatch.chdir(project.root)
    shown = cli("models", "show", "risk@1")
    assert "tombstone: deleted and purged by alice" in shown.stdout
    assert "consent withdrawn" in shown.stdout and digest in shown.stdout

    with pytest.raises(DeletedError, match="deleted and purged by alice"):
        project.datasets.get("credit@1")
    with pytest.raises(ConflictError, match="purged"):
        project.datasets.restore("credit@1")
    assert project.audit.verify().ok


def test_purge_keeps_content_another_version_shares(project: Project) -> None:
    """Blobs are content-addressed: purging one version keeps what another still uses, and
    `gc` has nothing to free; adding the same content again makes a new version."""
    a = project.datasets.add("a", _frame())
    project.datasets.add("b", _frame())
    done = project.datasets.delete("a", purge=True)
    assert done.purged == ["a@1"] and done.blobs_removed == 0
    assert [d.name for d in project.datasets.list()] == ["b"]
    assert project.datasets.get("b").to_polars().height == 40
    assert project.gc(grace_seconds=0, dry_run=True).blobs == []
    again = project.datasets.add("a", _frame())
    assert (again.version, again.digest, again.created) == (2, a.digest, True)


def test_erase_removes_matching_rows_from_every_version(cli: Cli, cli_project: Path) -> None:
    """`data erase --where` (admin) writes a version without the rows, purges every version
    that held them (tombstones with digests), and records the filter only as a keyed hash."""
    _frame(40).write_csv(cli_project / "a.csv")
    _frame(60).write_csv(cli_project / "b.csv")
    cli("data", "add", "customers", "a.csv")
    cli("data", "add", "customers", "b.csv")
    cli("users", "add", "bob", "--role", "contributor")
    refused = cli("data", "erase", "customers", "--where", "customer_id = 7", user="bob")
    assert refused.code == 1 and "admin" in refused.stderr

    bad = cli("data", "erase", "customers", "--where", "nosuch = 1", user="alice")
    assert bad.code == 1 and "customer_id" in bad.stderr

    res = cli("data", "erase", "customers", "--where", "customer_id = 7", "--reason", "T-12")
    assert res.code == 0, res.stderr
    assert "erased 2 rows: new version customers@3" in res.stdout
    assert "purged customers@1, customers@2" in res.stdout
    latest = cli("data", "show", "customers@3", "--json").json()
    assert latest["message"] == "erasure of 1 row: T-12"
    assert cli("data", "get", "customers", "-o", "x.csv").code == 0
    kept = pl.read_csv(cli_project / "x.csv")
    assert kept.height == 59 and 7 not in kept["customer_id"].to_list()
    lineage = cli("data", "lineage", "customers@3").stdout
    assert "dataset:customers@2 (deleted and purged by alice on" in lineage
    tombs = cli("data", "versions", "customers", "--deleted", "--json").json()
    assert [t["version"] for t in tombs] == [1, 2]
    assert all(t["deleted"]["purged_at"] and t["digest"] for t in tombs)

    events = shipyard.open_project(cli_project).audit.list(action="dataset.erase")
    assert events[0].payload["where"].startswith("hmac-sha256:")
    assert "customer_id" not in str(events[0].payload)
    assert cli("audit", "verify").code == 0
    assert cli("gc", "--grace", "0", "--dry-run", "--json").json()["blobs"] == []


@pytest.mark.s3
def test_purge_removes_the_object_from_s3(tmp_path: Path, s3_uri: str) -> None:
    """On an S3 artifact store, purging deletes the object from the bucket."""
    project = shipyard.init_project(tmp_path / "p", artifacts_uri=s3_uri)
    v = project.datasets.add("credit", _frame())
    assert project.artifacts.exists(v.digest)
    done = project.datasets.delete("credit@1", purge=True)
    assert done.blobs_removed == 1 and not project.artifacts.exists(v.digest)
    project.close()


def test_contracts_experiments_and_users_delete_and_restore(cli: Cli, cli_project: Path) -> None:
    """`contract delete`, `experiments delete` and `users remove` hide what they name, keep its
    history, and `restore` brings it back; the audit chain verifies after each."""
    project = shipyard.open_project(cli_project)
    project.contracts.add("ids", {"columns": {"id": {"type": "int"}}})
    project.contracts.bind("credit", "ids", new=True)
    with project.start_run(experiment="sweep") as run:
        run.log_param("C", 1)
    project.users.add("bob", "approver")
    project.tokens.create("bob")
    project.close()

    refused = cli("contract", "delete", "ids")
    assert refused.code == 1 and "contract unbind credit" in refused.stderr
    cli("contract", "unbind", "credit")
    assert cli("contract", "delete", "ids", "--reason", "unused").code == 0
    assert cli("contract", "list", "--json").json() == []
    assert "deleted by alice" in cli("contract", "show", "ids@1").stderr
    assert cli("contract", "restore", "ids").code == 0

    res = cli("experiments", "delete", "sweep", "--json")
    assert res.code == 0 and res.json()["runs"] == [run.id]
    assert cli("runs", "list", "--json").json() == []
    assert cli("experiments", "restore", "sweep").code == 0
    assert [r["id"] for r in cli("runs", "list", "--json").json()] == [run.id]

    res = cli("users", "remove", "bob", "--reason", "left the team")
    assert res.code == 0 and "tokens are revoked" in res.stdout
    assert [u["name"] for u in cli("users", "list", "--json").json()] == ["alice"]
    assert cli("users", "remove", "alice").code == 1  # the last admin stays
    assert cli("audit", "verify").code == 0
    assert cli("users", "restore", "bob", "--json").json()["role"] == "approver"
    project = shipyard.open_project(cli_project)
    assert project.contracts.get("ids").version == 1
    assert [e.name for e in project.runs.experiments()] == ["sweep"]
    assert not any(t.active for t in project.tokens.list("bob"))
    assert project.audit.verify().ok
    project.close()


PII_CONTRACT = """
columns:
  customer_id: {type: int, pii: true}
  email: {type: string, pii: true}
  income: {type: float}
  default: {type: int}
"""


@pytest.mark.slow
def test_personal_data_is_hashed_dropped_listed_and_logged(
    cli: Cli, cli_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns marked `pii: true`: the prediction log stores their keyed hash, the model card
    lists them, a read names them in the access log, and `data get --drop-pii` leaves them
    out."""
    from sklearn.linear_model import LogisticRegression

    from shipyard.serving.logwriter import Columns, _redactor

    (cli_project / "c.yaml").write_text(PII_CONTRACT, encoding="utf-8")
    frame = _frame().with_columns(email=pl.format("c{}@example.org", "customer_id"))
    frame.select("customer_id", "email", "income", "default").write_csv(cli_project / "a.csv")
    cli("contract", "add", "customers", "c.yaml")
    cli("contract", "bind", "--new", "customers", "customers")
    assert cli("data", "add", "customers", "a.csv").code == 0

    project = shipyard.open_project(cli_project)
    x = frame.select("customer_id", "income").to_pandas()
    model = LogisticRegression().fit(x, frame["default"].to_numpy())
    with project.start_run(experiment="risk") as run:
        run.log_input("customers@1", context="train")
        run.log_model(model, "risk", input_example=x.head())

    assert project.cards.pii_inputs("risk@1") == ["customer_id"]
    assert "Personal-data inputs (`pii: true` in its contracts): `customer_id`" in (
        project.cards.render("risk@1")
    )

    entry = [["r1"], 0, "risk@1", False, {"records": [{"customer_id": 7, "income": 5.0}]}]
    entry += ["/predict", [1], 1.0]
    batch = next(Columns.batches([entry], 10, lambda n, why: None, None, _redactor(project)))
    logged = batch[4][0]
    assert '"customer_id":"hmac-sha256:' in logged and '"income":5.0' in logged
    assert (cli_project / ".shipyard" / "pii.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("SHIPYARD_PII_KEY", "00" * 32)
    again = next(Columns.batches([entry], 10, lambda n, why: None, None, _redactor(project)))
    assert again[4][0] != logged  # the key decides the hash

    project.datasets.get("customers@1").to_polars()
    read = project.audit.list(action="dataset.read")[-1]
    assert read.payload["pii_columns"] == ["customer_id", "email"]

    res = cli("data", "get", "customers", "-o", "out.csv", "--drop-pii")
    assert res.code == 0 and "left out customer_id, email" in res.stdout
    assert pl.read_csv(cli_project / "out.csv").columns == ["income", "default"]
    read = project.audit.list(action="dataset.read")[-1]
    assert read.payload["dropped_pii"] == ["customer_id", "email"]
    assert "pii_columns" not in read.payload
    project.close()


def test_erase_purges_deleted_versions_so_they_cannot_bring_the_rows_back(
    cli: Cli, cli_project: Path
) -> None:
    """A version deleted but not purged still holds the rows: erasure purges it too (keeping
    who deleted it and why), so `restore` cannot bring the person's rows back. The new
    version is made from the latest version that is not deleted."""
    for i, n in enumerate((40, 50, 60)):
        _frame(n).write_csv(cli_project / f"{i}.csv")
        assert cli("data", "add", "cust", f"{i}.csv").code == 0
    assert cli("data", "delete", "cust@1", "--reason", "old").code == 0
    assert cli("data", "delete", "cust@3", "--reason", "wrong export").code == 0

    res = cli("data", "erase", "cust", "--where", "customer_id = 7", "--json")
    assert res.code == 0, res.stderr
    done = res.json()
    assert done["purged"] == ["cust@1", "cust@2", "cust@3"]
    assert done["versions"] == ["cust@2"]  # the others were already deleted
    assert done["created"] == "cust@4" and done["rows_removed"] == 3
    latest = cli("data", "show", "cust", "--json").json()
    assert (latest["version"], latest["rows"], latest["parents"]) == (4, 49, ["cust@2"])

    for ref in ("cust@1", "cust@3"):
        back = cli("data", "restore", ref)
        assert back.code == 1 and "purged" in back.stderr
    tombs = {t["version"]: t for t in cli("data", "versions", "cust", "--deleted", "--json").json()}
    assert tombs[1]["deleted"]["reason"] == "old" and tombs[1]["deleted"]["purged_at"]
    assert cli("audit", "verify").code == 0


ANNOTATIONS = "annotations:\n  datasets: [owner, description]\n"


def test_erase_is_not_held_to_the_annotation_policy_and_keeps_the_tags(
    cli: Cli, cli_project: Path
) -> None:
    """Under an annotation policy, the erasure's new version keeps the owner and description
    of the version it was made from; data registered before the policy is erased too."""
    _frame(40).write_csv(cli_project / "a.csv")
    assert cli("data", "add", "legacy", "a.csv").code == 0  # before the policy: no owner
    (cli_project / "policy.yaml").write_text(ANNOTATIONS)
    assert cli("policy", "set", "*", "policy.yaml").code == 0
    _frame(60).write_csv(cli_project / "b.csv")
    added = cli("data", "add", "cust", "b.csv", "-t", "owner=carol", "-t", "description=Customers")
    assert added.code == 0, added.stderr

    res = cli("data", "erase", "cust", "--where", "customer_id = 7")
    assert res.code == 0, res.stderr
    shown = cli("data", "show", "cust@2", "--json").json()
    assert shown["tags"] == {"owner": "carol", "description": "Customers"}

    res = cli("data", "erase", "legacy", "--where", "customer_id = 7")
    assert res.code == 0, res.stderr
    assert cli("data", "show", "legacy", "--json").json()["version"] == 2


def test_a_filter_that_does_not_parse_is_a_usage_error_listing_the_columns(
    cli: Cli, cli_project: Path
) -> None:
    """`data erase --where` with a filter that does not parse exits 2 (as `runs list
    --filter` does) and names the dataset's columns; nothing is erased."""
    _frame(40).write_csv(cli_project / "a.csv")
    cli("data", "add", "cust", "a.csv")
    res = cli("data", "erase", "cust", "--where", "customer_id = = 44")
    assert res.code == 2
    assert "cannot read the filter" in res.stderr
    assert "customer_id, income, default" in res.stderr
    doc = cli("data", "erase", "cust", "--where", "customer_id = = 44", "--json")
    assert doc.code == 2 and doc.json()["details"]["columns"] == [
        "customer_id",
        "income",
        "default",
    ]
    assert cli("data", "show", "cust", "--json").json()["version"] == 1


def test_contract_and_experiment_deletes_made_with_sql_fail_verification(
    cli: Cli, cli_project: Path
) -> None:
    """`audit verify` replays contract and experiment deletes and restores: a contract
    version brought back, or an experiment deleted, with SQL is reported (exit 3) with the
    table and key named."""
    from shipyard.stores.db.tables import contract_versions, experiments

    project = shipyard.open_project(cli_project)
    project.contracts.add("ids", {"columns": {"id": {"type": "int"}}})
    with project.start_run(experiment="sweep") as run:
        run.log_param("C", 1)
    project.close()
    assert cli("contract", "delete", "ids@1", "--reason", "unused").code == 0
    assert cli("audit", "verify").code == 0

    project = shipyard.open_project(cli_project)
    with project.db.write() as conn:
        conn.execute(update(contract_versions).values(deleted_at=None, deleted_by=None))
    project.close()
    res = cli("audit", "verify", "--json")
    assert res.code == 3
    assert [(m["table"], m["key"]) for m in res.json()["state"]] == [("contract_versions", "ids@1")]

    assert cli("contract", "delete", "ids@1").code == 0  # as it was
    project = shipyard.open_project(cli_project)
    with project.db.write() as conn:
        conn.execute(
            update(experiments)
            .where(experiments.c.name == "sweep")
            .values(deleted_at=datetime.now(UTC))
        )
    project.close()
    res = cli("audit", "verify")
    assert res.code == 3 and "TABLE experiments sweep: not in the audit log" in res.stderr
