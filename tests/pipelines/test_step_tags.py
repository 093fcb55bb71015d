"""What a pipeline step registers takes tags from ``@step(tags=...)``, which is how a pipeline
meets the project's annotation policy; a step without them fails with the policy's refusal,
which names that way of giving them (not a command-line option a step cannot pass)."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard
from shipyard.errors import InvalidInputError
from shipyard.pipelines import step
from tests.cli.conftest import Cli
from tests.pipelines.test_step_signatures import applicants

PIPELINE = """
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step
from shipyard.pipelines import dataset


@step(dataset="clean"CLEAN_TAGS)
def clean(raw):
    return raw.to_polars().drop_nulls()


@step(model="credit"MODEL_TAGS)
def fit(raw):
    frame = raw.to_pandas()
    return LogisticRegression().fit(frame[["age", "income"]], frame["default"])


@pipeline
def train_credit(raw=dataset("applicants")):
    clean(raw)
    fit(raw)
"""


def _write(root: Path, clean: str = "", model: str = "") -> None:
    text = PIPELINE.replace("CLEAN_TAGS", clean).replace("MODEL_TAGS", model)
    (root / "pipeline.py").write_text(text)


@pytest.mark.slow  # about 5 s: two pipeline runs
def test_a_step_gives_tags_to_what_it_registers(cli_project: Path, cli: Cli) -> None:
    with shipyard.open_project(cli_project) as project:
        project.datasets.add("applicants", applicants())
        project.policies.set("*", {"annotations": {"datasets": ["owner"], "model_tags": ["team"]}})

    _write(cli_project)
    bare = cli("pipeline", "run", "pipeline.py:train_credit")
    assert bare.code != 0
    assert (
        "dataset 'clean' lacks what the project's annotation policy requires: tag 'owner' "
        "(give the step its tags: @step(dataset='clean', tags={'owner': ...});"
    ) in bare.stderr
    assert (
        "model 'credit' lacks what the project's annotation policy requires: tag 'team' "
        "(give the step its tags: @step(model='credit', tags={'team': ...});"
    ) in bare.stderr
    assert "--tag" not in bare.stderr

    _write(cli_project, clean=', tags={"owner": "risk-team"}', model=', tags={"team": "risk"}')
    done = cli("pipeline", "run", "pipeline.py:train_credit")
    assert done.code == 0, done.stderr
    with shipyard.open_project(cli_project) as project:
        assert project.datasets.get("clean@1").tags == {"owner": "risk-team"}
        assert project.mlflow_registry.get_version("credit", 1).tags == {"team": "risk"}


def test_step_tags_are_checked_when_the_step_is_declared() -> None:
    """Tags go with dataset= or model=, and map names to text."""
    with pytest.raises(InvalidInputError, match="give dataset=NAME or model=NAME too"):
        step(tags={"team": "risk"})(lambda: 1)
    with pytest.raises(InvalidInputError, match="tags map names to text"):
        step(model="m", tags={"team": 3})(lambda: 1)  # type: ignore[dict-item]
