"""The governance commands as a user runs them: `models evaluate/approve/reject/promote/
rollback/describe/card`, `policy set/show/check` and `shipyard check`, with their JSON
documents, messages and exit codes (0 ok, 1 error, 2 usage, 3 a check that did not pass).

Each test works in its own copy of the SQLite credit project of the governance service tests
(alice admin and registrant of credit-risk@1 and @2, both evaluated on credit.test@1; bob
approver), as the current directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.project import Project
from tests.cli.conftest import Cli
from tests.governance.test_governance_service import (
    MODEL,
    TEST,
    TRAIN,
    V1,
    V2,
    clone_credit_project,
)


@pytest.fixture
def credit_dir(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the evaluated credit project, as the current directory."""
    root = tmp_path / "proj"
    clone_credit_project(tmp_path_factory, root, evaluated=True).close()
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def opened(credit_dir: Path) -> Iterator[Project]:
    """The same project through the Python API, to look at what the commands did."""
    with shipyard.open_project(credit_dir, actor="alice") as project:
        yield project


def write_policy(folder: Path, text: str, name: str = "policy.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def failing(checks: list[dict[str, object]]) -> list[object]:
    return [c["name"] for c in checks if not c["passed"]]


# -- evaluate, approve, reject --------------------------------------------------------------------


def test_models_evaluate_prints_the_stored_report(cli: Cli, opened: Project) -> None:
    """`models evaluate NAME@REF --data DS@REF --sensitive gender --json` prints the stored
    report: dataset version and digest, the guessed label, metrics with intervals, gender
    fairness and importance."""
    res = cli(
        "models", "evaluate", V1, "--data", TEST, "--sensitive", "gender", "--bootstrap", "20",
        "--json", user="alice",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    doc = res.json()
    assert (doc["model"], doc["dataset"], doc["label"]) == (V1, TEST, "default")
    assert doc["dataset_digest"] == opened.datasets.get(TEST).digest
    assert doc["rows"] == 180 and doc["settings"]["bootstrap"] == 20
    for m in doc["metrics"].values():
        assert m["ci_low"] <= m["value"] <= m["ci_high"]
    fairness = doc["groups"]["gender"]["fairness"]
    assert {"demographic_parity_difference", "equalized_odds_difference"} <= set(fairness)
    assert doc["importance"][0]["feature"] in {"credit_score", "debt_to_income", "prior_defaults"}
    stored = opened.evaluations.latest(V1)
    assert stored is not None and stored.id == doc["id"]


@pytest.mark.usefixtures("credit_dir")
def test_models_evaluate_shows_a_table(cli: Cli) -> None:
    """Without --json the command prints the metrics, the fairness measures and the top
    features for a person to read."""
    res = cli(
        "models", "evaluate", V2, "--data", TEST, "--sensitive", "gender", "--bootstrap", "20",
        user="alice",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert f"{V2} on {TEST} (180 rows, label default)" in res.stdout
    assert "roc_auc" in res.stdout and "95% CI" in res.stdout
    assert "gender: demographic_parity_difference=" in res.stdout
    assert "top features: " in res.stdout


@pytest.mark.usefixtures("credit_dir")
def test_models_evaluate_without_the_label_exits_1(cli: Cli, tmp_path: Path) -> None:
    """Evaluating on a dataset that lacks the label column exits 1 with the reason."""
    data = tmp_path / "unlabelled.csv"
    data.write_text("age,income\n30,1000\n", encoding="utf-8")
    assert cli("data", "add", "unlabelled", data, user="alice").code == 0
    res = cli("models", "evaluate", V1, "--data", "unlabelled@1", user="alice")
    assert res.code == 1
    assert "which column of unlabelled@1 is the label" in res.stderr
    assert "Traceback" not in res.stderr


def test_the_registrant_approving_exits_1_with_separation_of_duties(
    cli: Cli, opened: Project
) -> None:
    """Alice approving her own version exits 1 naming separation of duties; with --json the
    error is one document on stdout."""
    res = cli("models", "approve", V1, user="alice")
    assert res.code == 1
    assert "separation of duties" in res.stderr
    assert res.stdout == "" and "Traceback" not in res.stderr
    res = cli("models", "approve", V1, "--json", user="alice")
    assert res.code == 1
    doc = res.json()
    assert doc["error"] == "permission" and "separation of duties" in doc["message"]
    assert opened.approvals.list(V1) == []


def test_another_approver_approves_and_rejects(cli: Cli, opened: Project) -> None:
    """With SHIPYARD_USER=bob, `models approve` and `models reject` record bob's decisions."""
    res = cli("models", "approve", V1, "--comment", "looks good", "--json", user="bob")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert (doc["model"], doc["approver"], doc["decision"], doc["comment"]) == (
        V1,
        "bob",
        "approve",
        "looks good",
    )
    assert opened.models.get(V1).status == "approved"
    res = cli("models", "reject", V2, "--comment", "too weak", user="bob")
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == f"bob rejected {V2}"
    assert opened.models.get(V2).status == "rejected"


# -- policies -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("credit_dir")
def test_policy_set_and_show(cli: Cli, tmp_path: Path) -> None:
    """An admin stores a policy file; bob is refused; `policy show --json` gives the stored
    version and the effective policy."""
    path = write_policy(tmp_path, "metrics:\n  roc_auc: {min: 0.7}\napprovals: {min: 1}\n")
    res = cli("policy", "set", MODEL, path, user="bob")
    assert res.code == 1
    assert "user 'bob' is an approver and cannot set policies" in res.stderr
    res = cli("policy", "set", MODEL, path, user="alice")
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == f"policy {MODEL} is now version 1"
    res = cli("policy", "show", MODEL, "--json", user="alice")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["name"] == MODEL
    assert (doc["stored"]["version"], doc["stored"]["created_by"]) == (1, "alice")
    assert doc["effective"] == {"metrics": {"roc_auc": {"min": 0.7}}, "approvals": {"min": 1}}


@pytest.mark.usefixtures("credit_dir")
def test_policy_show_without_a_policy_gives_the_built_in_default(cli: Cli) -> None:
    """With no policy stored, `policy show` says so and shows the built-in default."""
    res = cli("policy", "show", MODEL, "--json", user="alice")
    assert res.code == 0, res.stderr
    assert res.json() == {
        "name": MODEL,
        "stored": None,
        "effective": {"require": ["evaluation"], "approvals": {"min": 1}},
    }
    res = cli("policy", "show", MODEL, user="alice")
    assert res.stdout.startswith(f"no policy stored for {MODEL}; the effective policy is:")


@pytest.mark.usefixtures("credit_dir")
def test_policy_show_of_the_project_default_gives_what_promotion_applies(
    cli: Cli, tmp_path: Path
) -> None:
    """`policy show '*'` with nothing stored shows the built-in default that promotion
    applies (not null); once a project default is stored, that one."""
    res = cli("policy", "show", "*", "--json", user="alice")
    assert res.code == 0, res.stderr
    assert res.json() == {
        "name": "*",
        "stored": None,
        "effective": {"require": ["evaluation"], "approvals": {"min": 1}},
    }
    res = cli("policy", "show", "*", user="alice")
    assert res.stdout == (
        "no policy stored for *; the effective policy is:\n"
        "require:\n- evaluation\napprovals:\n  min: 1\n"
    )
    path = write_policy(tmp_path, "approvals: {min: 2}\n")
    assert cli("policy", "set", "*", path, user="alice").code == 0
    doc = cli("policy", "show", "*", "--json", user="alice").json()
    assert doc["effective"] == {"approvals": {"min": 2}} == doc["stored"]["spec"]
    res = cli("policy", "show", "*", user="alice")
    assert res.stdout == "policy * version 1 by alice; effective:\napprovals:\n  min: 2\n"


@pytest.mark.usefixtures("credit_dir")
def test_models_risk_refuses_a_tier_the_policy_lacks_and_clears(cli: Cli, tmp_path: Path) -> None:
    """`models risk NAME hgih` exits 1 naming the policy's tiers; a known tier is set;
    `--clear` removes it; neither or both is a usage error."""
    path = write_policy(tmp_path, "risk_tiers:\n  high: {approvals: {min: 2}}\n  low: {}\n")
    assert cli("policy", "set", MODEL, path, user="alice").code == 0
    res = cli("models", "risk", MODEL, "hgih", user="alice")
    assert res.code == 1
    assert "risk tier 'hgih' is not one of the tiers" in res.stderr
    assert "did you mean 'high'?" in res.stderr
    res = cli("models", "risk", MODEL, "high", "--json", user="alice")
    assert res.code == 0, res.stderr
    assert res.json() == {"model": MODEL, "risk_tier": "high"}
    res = cli("models", "risk", MODEL, "--clear", "--json", user="alice")
    assert res.code == 0, res.stderr
    assert res.json() == {"model": MODEL, "risk_tier": None}
    res = cli("models", "risk", MODEL, "--clear", user="alice")
    assert res.stdout.strip() == f"{MODEL} has no risk tier now"
    assert cli("models", "risk", MODEL, user="alice").code == 2
    assert cli("models", "risk", MODEL, "high", "--clear", user="alice").code == 2


@pytest.mark.usefixtures("credit_dir")
def test_a_policy_file_with_problems_exits_1_listing_them(cli: Cli, tmp_path: Path) -> None:
    """A policy file with two problems exits 1 with the file name and both problems."""
    path = write_policy(tmp_path, "metrics:\n  roc_acu: {min: 0.7}\napprovals: {min: -1}\n")
    res = cli("policy", "set", MODEL, path, user="alice")
    assert res.code == 1
    assert f"{path}: 2 problems in policy" in res.stderr
    assert "did you mean 'roc_auc'?" in res.stderr and "approvals.min" in res.stderr
    assert cli("policy", "show", MODEL, "--json", user="alice").json()["stored"] is None


@pytest.mark.usefixtures("credit_dir")
def test_policy_check_prints_every_check_and_exits_3_when_one_fails(
    cli: Cli, tmp_path: Path
) -> None:
    """`policy check --json` prints exactly {passed, checks: [{name, passed, detail}]}; it
    exits 3 while a check fails and 0 once all pass."""
    path = write_policy(tmp_path, "metrics:\n  roc_auc: {min: 0.99}\napprovals: {min: 1}\n")
    assert cli("policy", "set", MODEL, path, user="alice").code == 0
    res = cli("policy", "check", V1, "--json", user="alice")
    assert res.code == 3, res.stderr
    doc = res.json()
    assert set(doc) == {"passed", "checks"} and doc["passed"] is False
    assert all(set(c) == {"name", "passed", "detail"} for c in doc["checks"])
    assert failing(doc["checks"]) == ["metric roc_auc >= 0.99", "approvals >= 1"]

    res = cli("policy", "check", V1, user="alice")
    assert res.code == 3
    assert "FAILED" in res.stdout and "FAIL metric roc_auc >= 0.99: roc_auc " in res.stdout

    write_policy(tmp_path, "metrics:\n  roc_auc: {min: 0.6}\napprovals: {min: 1}\n")
    assert cli("policy", "set", MODEL, path, user="alice").code == 0
    assert cli("models", "approve", V1, user="bob").code == 0
    res = cli("policy", "check", V1, "--json", user="alice")
    assert res.code == 0, res.stdout
    doc = res.json()
    assert doc["passed"] is True and [c["name"] for c in doc["checks"]] == [
        "metric roc_auc >= 0.6",
        "approvals >= 1",
    ]


# -- promote and rollback -------------------------------------------------------------------------


def test_promote_exits_3_with_every_unmet_check_then_0_once_met(
    cli: Cli, tmp_path: Path, opened: Project
) -> None:
    """`models promote --json` exits 3 with every unmet check and production unmoved; after
    an approval and the card section, it exits 0 and production is the version."""
    policy = "metrics:\n  roc_auc: {min: 0.6}\napprovals: {min: 1}\ncard_sections: [intended_use]\n"
    assert cli("policy", "set", MODEL, write_policy(tmp_path, policy), user="alice").code == 0
    res = cli("models", "promote", V1, "--to", "production", "--json", user="bob")
    assert res.code == 3
    doc = res.json()
    assert doc["error"] == "check_failed"
    assert failing(doc["details"]["checks"]) == ["servable", "approvals >= 1", "card sections"]
    assert [c["name"] for c in doc["details"]["checks"]] == [
        "servable",
        "metric roc_auc >= 0.6",
        "approvals >= 1",
        "card sections",
    ]
    assert "refused: 3 of 4 checks failed" in res.stderr
    assert opened.models.alias_history(MODEL, "production") == []

    res = cli("models", "promote", V1, "--to", "production", user="bob")
    assert res.code == 3
    assert "FAIL approvals >= 1: 0 approvals, 1 required" in res.stdout

    assert cli("models", "approve", V1, user="bob").code == 0
    text = "Ranks loan applications for manual review."
    res = cli("models", "describe", V1, "--section", "intended_use", "--text", text, user="alice")
    assert res.code == 0, res.stderr
    res = cli("models", "promote", V1, "--to", "production", "--json", user="bob")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert (doc["model"], doc["alias"], doc["passed"], doc["promoted"]) == (
        V1,
        "production",
        True,
        True,
    )
    assert opened.models.get(f"{MODEL}@production").ref == V1
    [move] = opened.models.alias_history(MODEL, "production")
    assert (move.actor, move.reason) == ("bob", "promote")


def test_promote_by_a_contributor_exits_1(cli: Cli, opened: Project) -> None:
    """A contributor cannot promote: exit 1 naming the role needed."""
    res = cli("models", "promote", V1, "--to", "production", user="carol")
    assert res.code == 1
    assert "user 'carol' is a contributor and cannot promote models" in res.stderr
    assert opened.models.alias_history(MODEL) == []


def test_rollback_moves_production_back(cli: Cli, opened: Project) -> None:
    """Rolling back a production alias that never moved exits 1; after two promotions,
    `models rollback --json` moves production back to the earlier version; a contributor is
    refused."""
    res = cli("models", "rollback", MODEL, "--json", user="bob")
    assert res.code == 1
    assert res.json()["error"] == "not_found"
    for ref in (V1, V2):
        assert cli("models", "approve", ref, user="bob").code == 0
        assert cli("models", "promote", ref, user="bob").code == 0
    res = cli("models", "rollback", MODEL, "--comment", "v2 misbehaves", "--json", user="bob")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert (doc["model"], doc["alias"], doc["from"], doc["to"]) == (MODEL, "production", 2, 1)
    assert doc["passed"] is True
    assert opened.models.get(f"{MODEL}@production").ref == V1
    last = opened.models.alias_history(MODEL, "production")[-1]
    assert (last.reason, last.actor, last.comment) == ("rollback", "bob", "v2 misbehaves")
    res = cli("models", "rollback", MODEL, user="carol")
    assert res.code == 1
    assert "is a contributor" in res.stderr and "needs the approver role" in res.stderr


# -- model cards ----------------------------------------------------------------------------------


def test_models_describe_writes_a_section(cli: Cli, tmp_path: Path, opened: Project) -> None:
    """`models describe --section S --text T` (or --file) writes a card section; an unknown
    section exits 1 and giving neither text nor file is a usage error."""
    res = cli(
        "models", "describe", V1, "--section", "intended_use", "--text", "Manual review only.",
        "--json", user="alice",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert res.json() == {"model": V1, "section": "intended_use"}
    notes = tmp_path / "caveats.md"
    notes.write_text("Synthetic data only.\n", encoding="utf-8")
    res = cli("models", "describe", V1, "--section", "caveats", "--file", notes, user="alice")
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == f"wrote section caveats of {V1}"
    sections = opened.cards.sections(V1)
    assert {k: v["text"] for k, v in sections.items()} == {
        "intended_use": "Manual review only.",
        "caveats": "Synthetic data only.",
    }
    res = cli("models", "describe", V1, "--section", "usage", "--text", "x", user="alice")
    assert res.code == 1
    assert "unknown card section 'usage'" in res.stderr
    assert cli("models", "describe", V1, "--section", "caveats", user="alice").code == 2


@pytest.mark.usefixtures("credit_dir")
def test_models_describe_with_a_missing_file_names_it(cli: Cli, tmp_path: Path) -> None:
    """`models describe --file` with a file that does not exist is a usage error (exit 2)
    naming the file, not an unexpected error."""
    res = cli(
        "models", "describe", V1, "--section", "caveats", "--file", "no-such-notes.md",
        user="alice",
    )  # fmt: skip
    assert res.code == 2
    assert "no-such-notes.md" in res.stderr and "does not exist" in res.stderr
    assert "unexpected" not in res.stderr and "Traceback" not in res.stderr


def test_models_card_writes_markdown_and_html_files(cli: Cli, credit_dir: Path) -> None:
    """`models card -o card.md` writes the Markdown card and `-o card.html` a standalone page,
    both with the written section and the dataset digests."""
    text = "Ranks loan applications for manual review."
    res = cli("models", "describe", V1, "--section", "intended_use", "--text", text, user="alice")
    assert res.code == 0, res.stderr
    res = cli("models", "card", V1, "-o", "card.md", user="alice")
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == f"wrote the model card of {V1} to card.md"
    markdown = (credit_dir / "card.md").read_text(encoding="utf-8")
    res = cli("models", "card", V1, "-o", "card.html", "--json", user="alice")
    assert res.code == 0, res.stderr
    assert res.json() == {"model": V1, "format": "html", "output": "card.html", "card": None}
    page = (credit_dir / "card.html").read_text(encoding="utf-8")
    assert markdown.startswith(f"# Model card: {V1}")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "## Intended use" in markdown and "<h2>Intended use</h2>" in page
    with shipyard.open_project(credit_dir) as project:
        digests = [project.datasets.get(ref).digest for ref in (TEST, TRAIN)]
    for content in (markdown, page):
        assert text in content
        assert all(d in content for d in digests)
    res = cli("models", "card", V1, "--json", user="alice")
    assert res.json()["card"] == markdown


# -- shipyard check -------------------------------------------------------------------------------


def test_check_runs_contract_and_policy_checks(cli: Cli, opened: Project) -> None:
    """`shipyard check --json` validates the training data against its bound contract and
    checks the policy: exit 3 while the approval is missing, 0 once it is given."""
    assert cli("contract", "bind", "--new", "credit.train", "applicants", user="alice").code == 0
    res = cli("check", V1, "--json", user="alice")
    assert res.code == 3, res.stderr
    doc = res.json()
    assert (doc["model"], doc["alias"], doc["passed"]) == (V1, "production", False)
    contract, *policy = doc["checks"]
    assert contract == {
        "name": f"contract on training data {TRAIN}",
        "passed": True,
        "detail": "passed applicants@1",
    }
    assert [(c["name"], c["passed"]) for c in policy] == [
        ("require evaluation", True),
        ("approvals >= 1", False),
    ]
    # The check reads; it stores no report, so a viewer in CI may run it.
    assert opened.datasets.get(TRAIN).status == "unvalidated"
    assert cli("models", "approve", V1, user="bob").code == 0
    res = cli("check", V1, "--json", user="alice")
    assert res.code == 0, res.stdout
    assert res.json()["passed"] is True


def test_check_and_require_contract_agree_on_unvalidated_bound_data(
    cli: Cli, tmp_path: Path, opened: Project
) -> None:
    """With a contract bound to the training data, no report stored and `require:
    [contract]`, `shipyard check` does not say both "passed" and "no contract validation is
    recorded": the two checks read one answer and pass."""
    assert cli("contract", "bind", "--new", "credit.train", "applicants", user="alice").code == 0
    path = write_policy(tmp_path, "require: [contract]\napprovals: {min: 0}\n")
    assert cli("policy", "set", MODEL, path, user="alice").code == 0
    res = cli("check", V1, user="alice")
    assert res.code == 0, res.stdout
    assert f"ok   contract on training data {TRAIN}: passed applicants@1" in res.stdout
    assert (
        f"ok   require contract: the training data passed its contract: {TRAIN} passed "
        "applicants@1" in res.stdout
    )
    assert "no contract validation is recorded" not in res.stdout
    assert opened.datasets.get(TRAIN).status == "unvalidated"


def test_check_fails_when_the_training_data_breaks_its_contract(
    cli: Cli, tmp_path: Path, opened: Project
) -> None:
    """A training dataset that fails its bound contract fails `shipyard check` with exit 3
    even when the policy passes."""
    strict = tmp_path / "young.yaml"
    strict.write_text("columns:\n  age: {type: int, max: 30}\n", encoding="utf-8")
    assert cli("contract", "add", "young", strict, user="alice").code == 0
    assert cli("contract", "bind", "--new", "credit.train", "young", user="alice").code == 0
    assert cli("models", "approve", V1, user="bob").code == 0
    res = cli("check", V1, user="alice")
    assert res.code == 3
    assert f"FAIL contract on training data {TRAIN}: fails young@1" in res.stdout
    doc = cli("check", V1, "--json", user="alice").json()
    assert failing(doc["checks"]) == [f"contract on training data {TRAIN}"]
    assert opened.datasets.get(TRAIN).status == "unvalidated"
