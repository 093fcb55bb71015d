"""The project's annotation policy: with ``annotations`` in the project default policy, a
dataset, contract or model version that lacks the required owner, descriptions or tags is
refused with the list of what is missing, and one that has them is registered."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard
from shipyard.errors import CheckFailedError
from tests.cli.conftest import Cli

POLICY = """
require: [evaluation]
annotations:
  datasets: [owner, description]
  contracts: [description, column_descriptions]
  model_tags: [team]
"""


@pytest.mark.slow
def test_registrations_lacking_annotations_are_refused(cli_project: Path, cli: Cli) -> None:
    (cli_project / "policy.yaml").write_text(POLICY)
    assert cli("policy", "set", "*", "policy.yaml").code == 0, "the project default"
    (cli_project / "loans.csv").write_text("id,age\n1,30\n2,40\n")

    bare = cli("data", "add", "loans", "loans.csv")
    assert bare.code == 3
    assert (
        "dataset 'loans' lacks what the project's annotation policy requires: "
        "tag 'owner', tag 'description'" in bare.stderr
    )
    assert "add --tag owner=VALUE -m TEXT" in bare.stderr
    half = cli("data", "add", "loans", "loans.csv", "--tag", "owner=alice", "--json")
    assert half.code == 3 and half.json()["details"]["missing"] == ["tag 'description'"]
    # The message is the description; a `description` tag would do as well.
    added = cli("data", "add", "loans", "loans.csv", "-t", "owner=alice", "-m", "Applicants")
    assert added.code == 0, added.stderr

    (cli_project / "loans.yaml").write_text(
        "description: Loan applicants\n"
        "columns:\n  id: {type: int, description: Applicant number}\n  age: {type: int}\n"
    )
    refused = cli("contract", "add", "loans", "loans.yaml")
    assert refused.code == 3
    assert (
        "contract 'loans' lacks what the project's annotation policy requires: "
        "columns.age.description" in refused.stderr
    )
    (cli_project / "loans.yaml").write_text(
        "description: Loan applicants\ncolumns:\n"
        "  id: {type: int, description: Applicant number}\n"
        "  age: {type: int, description: Age in years}\n"
    )
    assert cli("contract", "add", "loans", "loans.yaml").code == 0

    # Annotations are the project's: a model's own policy cannot set them.
    (cli_project / "model.yaml").write_text("annotations: {model_tags: [x]}\n")
    own = cli("policy", "set", "credit", "model.yaml")
    assert own.code == 1 and "set them in the project default policy" in own.stderr

    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    project = shipyard.open_project(cli_project)
    try:
        with pytest.raises(CheckFailedError) as err:
            project.models.register_model("credit", model)
        assert err.value.details["missing"] == ["tag 'team'"]
        assert project.models.list() == []
        v = project.models.register_model("credit", model, tags={"team": "risk"})
        assert project.mlflow_registry.get_version("credit", v.version).tags == {"team": "risk"}
    finally:
        project.close()


@pytest.mark.slow  # about 3 s: features apply and two point-in-time joins
def test_point_in_time_training_data_takes_the_tags_the_policy_requires(
    cli_project: Path, cli: Cli
) -> None:
    """`features historical -o` registers a dataset: under a policy requiring an owner it is
    refused with the policy's own message (not as a contract failure), and `--tag` meets it."""
    from tests.features.test_features import DEFINITIONS, payments_frame

    payments_frame().write_parquet(cli_project / "payments.parquet")
    assert cli("data", "add", "payments", "payments.parquet").code == 0
    (cli_project / "apps.csv").write_text("applicant_id,applied_at\n1,2020-01-01T00:00:00\n")
    assert cli("data", "add", "apps", "apps.csv").code == 0
    (cli_project / "features.yaml").write_text(DEFINITIONS, encoding="utf-8")
    assert cli("features", "apply", "features.yaml").code == 0
    (cli_project / "policy.yaml").write_text("annotations: {datasets: [owner]}\n")
    assert cli("policy", "set", "*", "policy.yaml").code == 0

    join = ("features", "historical", "--entities", "apps@1")
    join += ("--features", "payments:late_payments", "-o", "training")
    refused = cli(*join)
    assert refused.code == 3
    assert (
        "refused: dataset 'training' lacks what the project's annotation policy requires: "
        "tag 'owner' (add --tag owner=VALUE;" in refused.stderr
    )
    assert "contract" not in refused.stderr
    assert cli(*join, "--json").json()["details"]["missing"] == ["tag 'owner'"]
    assert [d["name"] for d in cli("data", "list", "--json").json()] == ["apps", "payments"]

    made = cli(*join, "--tag", "owner=risk-team", "--json")
    assert made.code == 0, made.stderr
    assert made.json()["dataset"]["ref"] == "training@1"
    assert cli("data", "show", "training@1", "--json").json()["tags"] == {"owner": "risk-team"}
