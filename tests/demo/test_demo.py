"""`shipyard demo` tells the whole story on a small synthetic table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from shipyard.demo.data import credit_applicants


def test_credit_applicants_are_reproducible_and_realistic() -> None:
    """The synthetic table is the same for a seed and has a learnable, imbalanced label."""
    a = credit_applicants(5000, seed=3)
    b = credit_applicants(5000, seed=3)
    assert a.equals(b)
    assert {"gender", "age_band", "default"} <= set(a.columns)
    assert 0.1 < a["default"].mean() < 0.5  # type: ignore[operator]
    # Riskier credit scores default more often: there is signal to learn.
    low = a.filter(a["credit_score"] < 600)["default"].mean()
    high = a.filter(a["credit_score"] > 750)["default"].mean()
    assert low > high  # type: ignore[operator]


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo registers versions, rejects then quarantines a bad batch, splits, serves,
    catches a drifted batch with a monitor whose alert reaches a webhook receiver, retrains
    through a cached pipeline that the scheduler starts on that alert, and ends with the
    command that opens its web UI."""
    from shipyard.demo.scenario import run_demo, ui_command
    from shipyard.project import open_project

    root = run_demo(tmp_path / "demo", rows=20_000)
    out = capsys.readouterr().out
    assert "rejected (exit 3)" in out and "identical digests: True" in out
    assert out.rstrip().endswith(ui_command(root))  # the last thing it says: open the UI
    project = open_project(root)
    # The narration names the user each step acts as: the author's own approval is refused
    # naming the same user, then bob (an approver) approves.
    author = project.actor
    assert f"(as {author}, who registered it)\n  -> refused: user '{author}' cannot approve" in out
    assert "$ SHIPYARD_USER=bob shipyard models approve credit-risk@" in out
    assert "e+0" not in out  # numbers as people write them: 51,800, not 5.18e+04
    names = {d.name: d for d in project.datasets.list()}
    assert names["credit"].latest == 3
    assert names["credit.quarantine"].rows and names["credit.quarantine"].rows > 0
    assert {"credit.train", "credit.valid", "credit.test"} <= set(names)
    assert project.verify().ok and project.audit.verify().ok
    # Its contract marks the applicant's id personal data: the README's `data get --drop-pii`
    # leaves it out, and the prediction log keeps only its keyed hash (the model does not
    # read it, so the card lists no personal-data input).
    assert project.datasets.pii_columns("credit@3") == ["applicant_id"]
    shareable = project.datasets.export("credit@3", tmp_path / "shareable.csv", drop_pii=True)
    header = shareable.read_text().split("\n", 1)[0].split(",")
    assert "applicant_id" not in header and "income" in header
    logged = project.predictions.list("credit-risk")["inputs"]
    assert len(logged) > 0
    assert all(str(row["applicant_id"]).startswith("hmac-sha256:") for row in logged)
    assert project.cards.pii_inputs("credit-risk@1") == []
    # The shifted batch opened the drift monitor's alert, the local receiver accepted its
    # signed delivery, and the HTML report was written where the demo said.
    assert "against credit.train@1: no drift (weighted share" in out  # before the shift
    (alert,) = project.alerts.list(open_only=True)
    assert alert.monitor == "credit-drift" and alert.kind == "drift"
    assert "signature verified; alert.opened for monitor 'credit-drift'" in out
    report = root / "reports" / "drift-credit-risk.html"
    assert f"report: {report}" in out and "credit_score" in report.read_text()
    # The pipeline trained credit-risk, ran again all from the cache; the scheduler answered
    # the alert with a retraining run whose candidate was gated and reported on.
    assert "2 of 2 steps from the cache" in out
    [drift] = [p for p in project.pipelines.list() if p.params.get("C") == 0.3]
    assert project.runs.get(drift.id).tags["shipyard.trigger"] == "alert"
    assert "production did not move" in out
    pr_report = (root / "pr-report.md").read_text()
    assert "**Gate: ❌ failed**" in pr_report
    # It retrained on new data: the training data's next version holds the new channel's
    # labelled applicants, and the report compares it with the champion's.
    train1, train2 = (project.datasets.get(f"credit.train@{n}") for n in (1, 2))
    assert train2.parents == [train1.ref] and train2.rows > train1.rows
    candidate = project.models.get(str(drift.step("fit").outputs["ref"]))
    assert candidate.training_data == [train2.ref]
    assert f"`{train2.ref}` ({train2.rows:,} rows) against `{train1.ref}`" in pr_report
    assert "did not change" not in pr_report
    assert f"its training data {train2.ref} against the champion's {train1.ref}: " in out
    if importlib.util.find_spec("lightgbm") is not None:
        # The LightGBM candidate went through the same gate, its verdict narrated.
        lightgbm = next(
            mv for mv in project.models.versions("credit-risk") if "lightgbm" in mv.description
        )
        assert f"$ shipyard check {lightgbm.ref}\n  " in out
        assert "checks passed" in out.split(f"$ shipyard check {lightgbm.ref}")[1].split("\n")[1]
    # The feature store: the definitions file the demo wrote, training data joined point in
    # time and traced to the view, a model trained through it, served by applicant id (the
    # server read the online store) and a file scored as of each application date.
    assert "feature_views:" in (root / "features" / "credit.yaml").read_text()
    mv = project.models.get("credit-risk-features@production")
    assert mv.training_data == ["credit.features.train@1"]
    upstream = project.datasets.lineage("credit.features.train@1")["upstream"]
    assert {"feature_view:payments@1", "dataset:credit.train@1"} <= {e["parent"] for e in upstream}
    # One narrated lookup and two served requests (one a new customer), one applicant each.
    assert sum(r.rows for r in project.features.online_reads("payments")) == 3
    assert "-> prediction " in out and "scored with the payment history as of each row's" in out
    scored = pl.read_parquet(root / "scored-features.parquet")
    assert scored.height == names["credit.test"].rows
    assert 0 < scored["late_payments_90d"].null_count() < scored.height / 4
    project.close()
    # `shipyard demo --json` ends with this summary of what the demo made.
    from shipyard.cli.main import _demo_summary

    summary = _demo_summary(root)
    assert summary["outcome"] == "completed" and summary["project"] == str(root.resolve())
    assert {m["name"] for m in summary["models"]} == {"credit-risk", "credit-risk-features"}
    assert {"credit", "credit.train"} <= {d["name"] for d in summary["datasets"]}


def test_demo_refuses_too_few_applicants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the size at which its story holds, the demo stops before doing anything: a usage
    error on the command line, a clear error from the API."""
    import sys

    from shipyard.cli.main import run
    from shipyard.demo.scenario import MIN_ROWS, run_demo
    from shipyard.errors import InvalidInputError

    monkeypatch.setattr(
        sys, "argv", ["shipyard", "demo", "--dir", str(tmp_path / "cli"), "--rows", "2000"]
    )
    with pytest.raises(SystemExit) as exc:
        run()
    assert exc.value.code == 2
    assert f"{MIN_ROWS}" in capsys.readouterr().err.replace(",", "")
    with pytest.raises(InvalidInputError, match=f"at least {MIN_ROWS:,} applicants"):
        run_demo(tmp_path / "api", rows=MIN_ROWS - 1)
    assert not (tmp_path / "cli").exists() and not (tmp_path / "api").exists()
