"""``shipyard report pr``: the pull-request report of a candidate against the production
holder, on a project where the candidate regresses and was trained on drifted data."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard
from tests.cli.conftest import Cli
from tests.governance.pr_project import CANDIDATE, CHAMPION, HOLDOUT, credit_pr_project

# The credit project is built once per worker: both modules that use it share one.
pytestmark = pytest.mark.xdist_group("credit-pr-project")


@pytest.fixture
def project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the credit project: credit-risk@1 in production, @2 regressing."""
    return credit_pr_project(tmp_path / "proj", tmp_path_factory.getbasetemp())


@pytest.mark.slow
def test_report_of_a_regressing_candidate(project: Path, cli: Cli) -> None:
    """The report shows each metric of both versions on the same holdout with its interval
    and the change, fairness deltas, every check of the gate (exit 3 as `shipyard check`),
    the training data's contract and its drift against the champion's training data."""
    out = project / "report.md"
    res = cli("--project", project, "report", "pr", "--candidate", CANDIDATE, "-o", out)
    assert res.code == 3, res.stderr
    text = out.read_text()
    assert text.startswith(f"## shipyard: `{CANDIDATE}` against production (`{CHAMPION}`)")
    assert "**Gate: ❌ failed**" in text and "`no_regression roc_auc vs production`" in text

    res = cli("--project", project, "report", "pr", "--candidate", CANDIDATE, "--json")
    assert res.code == 3
    doc = res.json()
    with shipyard.open_project(project) as p:
        cand = p.evaluations.latest(CANDIDATE, dataset=HOLDOUT)
        champ = p.evaluations.latest(CHAMPION, dataset=HOLDOUT)
        assert cand is not None and champ is not None
        assert doc["gate"] == p.promotions.gate(CANDIDATE, for_alias="production")
    auc = next(m for m in doc["metrics"] if m["metric"] == "roc_auc")
    assert auc["candidate"] == cand.metric("roc_auc")
    assert auc["champion"] == champ.metric("roc_auc")
    assert auc["delta"] == pytest.approx(auc["candidate"] - auc["champion"])
    assert auc["better"] is False
    low, high = (
        champ.report["metrics"]["roc_auc"]["ci_low"],
        champ.report["metrics"]["roc_auc"]["ci_high"],
    )
    assert f"{auc['champion']:.4f} ({low:.4f}–{high:.4f})" in text
    assert doc["dataset"] == HOLDOUT
    assert {(f["column"], f["measure"]) for f in doc["fairness"]} >= {
        ("gender", "demographic_parity_difference")
    }
    assert "| gender | demographic_parity_difference |" in text
    assert doc["training"] == ["credit.train@2"] and doc["champion_training"] == ["credit.train@1"]
    assert "contract of `credit.train@2`: ✅ passed applicants@1" in text
    drift = doc["drift"]
    assert (drift["reference"], drift["current"]) == ("credit.train@1", "credit.train@2")
    assert "`credit.train@2`" in text and "against `credit.train@1`" in text
    assert drift["drifted_columns"], "the second batch was generated with drift"

    res = cli("--project", project, "report", "pr", "--candidate", CANDIDATE, "-o", out)
    assert res.code == 1 and "--force" in res.stderr

    res = cli("--project", project, "report", "pr", "--candidate", CHAMPION, "-o", out, "--force")
    assert res.code == 0, res.stderr
    assert "**Gate: ✅ passed**" in out.read_text()
