"""The example of docs/pipelines.md as its commands run it: docs/examples/pipeline.py trains a
model and registers its evaluation, so under docs/examples/pipeline-policy.yaml the candidate
of a triggered run (docs/examples/schedule.yaml) takes `challenger` by itself, and nothing
else moves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import shipyard
from shipyard.data.splits import SplitSpec
from shipyard.demo.data import credit_applicants
from tests.cli.conftest import Cli

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.mark.slow
def test_the_documented_pipeline_and_policy_promote_a_triggered_candidate_to_challenger(
    cli: Cli, cli_project: Path
) -> None:
    with shipyard.open_project(cli_project) as project:
        credit = project.datasets.add("credit", credit_applicants(2000, seed=3))
        parts = project.datasets.split(credit.ref, SplitSpec({"train": 0.7, "test": 0.3}, seed=1))
        newer = parts["train"].to_polars().head(1200)
    for name in ("pipeline.py", "schedule.yaml"):
        shutil.copy(EXAMPLES / name, cli_project / name)

    first = cli("pipeline", "run", "pipeline.py:train_credit", "--param", "C=0.5", "--json")
    assert first.code == 0, first.stderr
    policy = cli("policy", "set", "credit-pipeline", EXAMPLES / "pipeline-policy.yaml")
    assert policy.code == 0, policy.stderr
    recorded = cli("scheduler", "--once")  # the first pass records where things stand
    assert recorded.code == 0 and "credit-data (dataset): first pass" in recorded.stdout

    with shipyard.open_project(cli_project) as project:
        project.datasets.add("credit.train", newer)
    res = cli("scheduler", "--once", "--json")
    assert res.code == 0, res.stderr
    [firing] = [f for f in res.json()["firings"] if f["fired"]]
    assert firing["trigger"] == "credit-data" and firing["status"] == "succeeded"
    assert firing["models"] == ["credit-pipeline@2"]
    [promoted] = firing["promoted"]
    assert promoted["alias"] == "challenger" and promoted["promoted"], promoted
    with shipyard.open_project(cli_project) as project:
        assert project.models.get("credit-pipeline@challenger").version == 2
        evaluation = project.evaluations.latest("credit-pipeline@2")
        assert evaluation is not None and evaluation.dataset == parts["test"].ref
        with pytest.raises(shipyard.NotFoundError):
            project.models.get("credit-pipeline@production")
