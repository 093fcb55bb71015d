"""The CI templates in ``deploy/ci/``: their structure (triggers, steps, the shipyard commands)
and their shell steps, run here by bash on a small project as each CI service would run them.

What only the CI service can do is stood in for by small programs on PATH: ``pip`` installs
nothing (shipyard is this checkout), ``gh`` and ``curl`` record what they were asked to post.
The repository's ``pipeline.py`` trains a real candidate (a few hundred rows) and registers
its evaluation on the holdout, as a user's training pipeline does; the templates run it with
``shipyard pipeline run`` and gate the version it registered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import shipyard
from tests.governance.pr_project import (
    BUREAU_COLUMNS,
    CHAMPION,
    HOLDOUT,
    MODEL,
    POLICY,
    credit_pr_project,
)

# The credit project is built once per worker: both modules that use it share one.
pytestmark = pytest.mark.xdist_group("credit-pr-project")
ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "deploy" / "ci" / "github-actions.yml"
GITLAB = ROOT / "deploy" / "ci" / "gitlab-ci.yml"
SHIMS = {
    # `python -m pip install ...` installs nothing; any other python is the test's own.
    "python": '#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = pip ]; then echo "pip $*" >> "$CALLS"; '
    'exit 0; fi\nexec "$REAL_PYTHON" "$@"\n',
    "shipyard": '#!/bin/sh\nexec "$REAL_PYTHON" -m shipyard "$@"\n',
    "gh": '#!/bin/sh\necho "gh $*" >> "$CALLS"\n',
    "curl": '#!/bin/sh\necho "curl $*" >> "$CALLS"\n',
}


def _commands(text: str) -> str:
    """The shell of a template with its comments removed."""
    return "\n".join(line.split(" #")[0] for line in text.splitlines())


@pytest.fixture
def workspace(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The checked-out repository: the credit project with data pinned in shipyard.lock and a
    train.py, plus the programs that stand in for the CI service's."""
    root = credit_pr_project(tmp_path / "repo", tmp_path_factory.getbasetemp())
    with shipyard.open_project(root) as project:
        project.locks.lock(["credit.train@1"])
        project.users.add("ci", "contributor")  # SHIPYARD_USER in the templates
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in SHIMS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.touch()
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REAL_PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT / "src"),
        "CALLS": str(calls),
        "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"],
    }
    return {"root": root, "env": env, "calls": calls}


# The repository's training pipeline (PIPELINE in the templates): fit on a training set
# without the columns DROP, then register the model's evaluation on the holdout.
PIPELINE = """
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from shipyard import pipeline, step
from shipyard.data.inference import infer_contract, spec_from_contract
from shipyard.pipelines import current, dataset

DROP = {drop!r}


@step(model={model!r})
def fit(train):
    table = train.to_polars().drop(DROP)
    prep = spec_from_contract(infer_contract(table), target="default").to_column_transformer()
    frame = table.to_pandas()
    model = Pipeline([("prep", prep), ("model", LogisticRegression())])
    return model.fit(frame.drop(columns=["default"]), frame["default"])


@step
def evaluate(model, holdout) -> dict:
    stored = current().project.evaluations.evaluate(
        model.ref, holdout.ref, label="default", sensitive=["gender"], bootstrap=20
    )
    return {{"model": model.ref, "roc_auc": stored.metric("roc_auc")}}


@pipeline
def train(data=dataset({train!r}), holdout=dataset({holdout!r})):
    evaluate(fit(data), holdout)
"""


def _pipeline(root: Path, train: str, drop: tuple[str, ...] = ()) -> None:
    """pipeline.py:train, training on ``train`` without the columns ``drop``."""
    text = PIPELINE.format(drop=list(drop), model=MODEL, train=train, holdout=HOLDOUT)
    (root / "pipeline.py").write_text(text)


# -- GitHub Actions ---------------------------------------------------------------------------

_EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def _github_job(workflow: dict[str, Any], ws: dict[str, Any], event: dict[str, str]) -> Any:
    """Run the job's steps as the GitHub runner would: `run` steps through bash -eo pipefail,
    `${{ }}` expressions from ``event`` and step outputs, `$GITHUB_ENV` and `$GITHUB_OUTPUT`
    carried to later steps, stopping at the first failing step. Returns (failed step name or
    None, its exit code, the job summary)."""
    root: Path = ws["root"]
    files = {
        k: root.parent / k.lower() for k in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
    }
    for f in files.values():
        f.write_text("")
    outputs: dict[str, dict[str, str]] = {}

    def expr(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            if key.startswith("secrets."):
                return ""  # the project's own stores: shipyard.toml's defaults
            if key.startswith("steps."):
                _, step, _, name = key.split(".")
                return outputs.get(step, {}).get(name, "")
            return event[key]

        return _EXPR.sub(one, text)

    def condition(text: str) -> bool:
        m = re.fullmatch(r"([\w.]+) == '([^']*)'", text.strip())
        assert m, f"the test does not evaluate the condition {text!r}"
        return event[m.group(1)] == m.group(2)

    env = {**ws["env"], **{k: expr(str(v)) for k, v in workflow["env"].items()}}
    env.update({k: str(v) for k, v in files.items()})
    (job,) = workflow["jobs"].values()
    for step in job["steps"]:
        if "uses" in step or ("if" in step and not condition(step["if"])):
            continue
        step_env = {**env, **{k: expr(str(v)) for k, v in step.get("env", {}).items()}}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", expr(step["run"])],
            cwd=root,
            env=step_env,
            capture_output=True,
            text=True,
        )
        for line in files["GITHUB_ENV"].read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        if "id" in step:
            outputs[step["id"]] = dict(
                line.split("=", 1) for line in files["GITHUB_OUTPUT"].read_text().splitlines()
            )
        files["GITHUB_OUTPUT"].write_text("")
        if done.returncode != 0:
            return step["name"], done.returncode, files["GITHUB_STEP_SUMMARY"].read_text()
    return None, 0, files["GITHUB_STEP_SUMMARY"].read_text()


def test_github_workflow_structure() -> None:
    """Pull requests trigger it; it may comment; its steps install shipyard, restore the pinned
    data, train, run `shipyard check` and the report, publish it and fail on a failed gate."""
    text = GITHUB.read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers
    assert workflow["permissions"]["pull-requests"] == "write"
    (job,) = workflow["jobs"].values()
    runs = [s.get("run", "") for s in job["steps"]]
    shell = _commands("\n".join(runs))
    for command in (
        'pip install "$SHIPYARD_INSTALL"',
        "shipyard checkout",
        'shipyard pipeline run "$PIPELINE" $PIPELINE_ARGS --json > shipyard-pipeline.json',
        'shipyard check "$CANDIDATE" --for "$AGAINST"',
        'shipyard report pr --candidate "$CANDIDATE"',
        '>> "$GITHUB_STEP_SUMMARY"',
        "gh pr comment",
    ):
        assert command in shell, command
    assert workflow["env"]["PIPELINE"] and "MODEL" in workflow["env"]
    assert next(s for s in job["steps"] if "uses" in s)["uses"].startswith("actions/checkout@")


@pytest.mark.slow
def test_github_workflow_runs_and_fails_on_a_failed_gate(workspace: dict[str, Any]) -> None:
    """On a pull request whose pipeline trains a regressing candidate (newer, drifted data,
    without the credit-bureau columns): the pinned data is restored, the pipeline registers
    credit-risk@3 and its evaluation, the report on it becomes the job summary and a PR
    comment, and the job fails with the gate's exit code."""
    root: Path = workspace["root"]
    _pipeline(root, "credit.train@2", BUREAU_COLUMNS)
    candidate = f"{MODEL}@3"
    event = {
        "github.event_name": "pull_request",
        "github.token": "token-0",
        "github.event.pull_request.number": "17",
    }
    failed, code, summary = _github_job(yaml.safe_load(GITHUB.read_text()), workspace, event)
    assert (failed, code) == ("Fail when the gate fails", 3)
    report = (root / "shipyard-report.md").read_text()
    assert report.startswith(f"## shipyard: `{candidate}` against production (`{CHAMPION}`)")
    assert "**Gate: ❌ failed**" in report
    failed_checks = [line for line in report.splitlines() if "❌" in line and "|" in line]
    assert any("no_regression" in line for line in failed_checks), report
    assert not any("require evaluation" in line for line in failed_checks), report
    run = json.loads((root / "shipyard-pipeline.json").read_text())
    assert run["status"] == "succeeded" and run["pipeline"] == "train"
    assert summary == report
    assert (root / "data" / "credit.train.parquet").exists()  # `shipyard checkout` ran
    calls = workspace["calls"].read_text().splitlines()
    assert "gh pr comment 17 --body-file shipyard-report.md --edit-last" in calls


# -- GitLab CI --------------------------------------------------------------------------------


def test_gitlab_job_structure() -> None:
    """Merge requests trigger it; its script has the same commands, posts a note and keeps the
    report as an artifact."""
    text = GITLAB.read_text()
    doc = yaml.safe_load(text)
    job = doc["shipyard-gate"]
    assert job["stage"] in doc["stages"]
    assert {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'} in job["rules"]
    shell = _commands("\n".join([*job["before_script"], *job["script"]]))
    for command in (
        'pip install "$SHIPYARD_INSTALL"',
        "shipyard checkout",
        'shipyard pipeline run "$PIPELINE" $PIPELINE_ARGS --json > shipyard-pipeline.json',
        'shipyard check "$CANDIDATE" --for "$AGAINST"',
        'shipyard report pr --candidate "$CANDIDATE"',
        "merge_requests/$CI_MERGE_REQUEST_IID/notes",
    ):
        assert command in shell, command
    assert job["artifacts"]["paths"] == ["shipyard-report.md", "shipyard-pipeline.json"]
    assert job["artifacts"]["when"] == "always"
    assert job["variables"]["PIPELINE"] and "shipyard-pipeline.json" in job["artifacts"]["paths"]


@pytest.mark.slow
def test_gitlab_job_runs_and_passes_a_passing_candidate(workspace: dict[str, Any]) -> None:
    """In a merge request whose pipeline retrains on the champion's data (under a policy that
    asks no approval, which a fresh candidate cannot have), the script (one shell, as the
    GitLab runner runs it) gates the version the pipeline registered, writes the report,
    posts it as a note and succeeds."""
    root: Path = workspace["root"]
    _pipeline(root, "credit.train@1")
    with shipyard.open_project(root) as project:
        project.policies.set(MODEL, {k: v for k, v in POLICY.items() if k != "approvals"})
    job = yaml.safe_load(GITLAB.read_text())["shipyard-gate"]
    env = {
        **workspace["env"],
        **{k: str(v) for k, v in job["variables"].items()},
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "5",
        "CI_PROJECT_ID": "42",
        "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
        "GITLAB_TOKEN": "token-0",
    }
    script = "\n".join([*job["before_script"], *job["script"]])
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "candidate: credit-risk@3" in done.stdout
    report = (root / "shipyard-report.md").read_text()
    assert report.startswith(f"## shipyard: `{MODEL}@3` against production (`{CHAMPION}`)")
    assert "**Gate: ✅ passed**" in report
    (call,) = [c for c in workspace["calls"].read_text().splitlines() if c.startswith("curl")]
    assert "--data-urlencode body@shipyard-report.md" in call
    assert call.endswith("https://gitlab.example.com/api/v4/projects/42/merge_requests/5/notes")
