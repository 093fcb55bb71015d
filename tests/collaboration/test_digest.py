"""``shipyard digest``: what changed since a time, from the audit log and the services: new
dataset versions and failed validations, the best run per experiment on its primary metric,
models registered, approvals waiting, promotions and rollbacks, with alerts and mentions
marked not available; rendered as Markdown, HTML, JSON and a Slack message."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.collaboration.digest import parse_since, primary_metric
from shipyard.collaboration.digest_render import MAX_ITEMS, render_digest, slack_payload
from shipyard.errors import InvalidInputError
from shipyard.project import Project
from shipyard.tracking.runs import RunInfo
from tests.cli.conftest import Cli
from tests.collaboration.conftest import LOSS_RUNS, MODEL, TUNING, Busy, Receiver
from tests.governance.test_governance_service import clone_credit_project

SECTIONS = [
    "New dataset versions",
    "Failed validations",
    "Runs",
    "Models registered",
    "Approvals waiting",
    "Promotions and rollbacks",
    "Alerts",
    "Mentions",
]


def test_the_week_since_the_activity_began_is_counted_section_by_section(busy: Busy) -> None:
    """Since ``before``: one new dataset version (credit@2), two failed validations (at
    ingestion and later), six runs in two experiments, one model registered, one approval
    waiting, two promotions and one rollback, one comment that mentions bob; alerts are not
    available."""
    d = busy.project.digests.get(busy.before)
    assert d.counts == {
        "dataset_versions": 1,
        "failed_validations": 2,
        "runs": 6,
        "experiments": 2,
        "models_registered": 1,
        "approvals_waiting": 1,
        "promotions": 2,
        "rollbacks": 1,
        "alerts": None,
        "mentions": 1,
    }
    [mention] = d.mentions or []
    assert (mention.entity, mention.author, mention.mentioned) == (
        f"model:{MODEL}@3",
        "alice",
        ["bob"],
    )
    assert mention.excerpt == "Refit on the new batch; @bob can you review?"
    [added] = d.dataset_versions
    assert (added.ref, added.status, added.message, added.rows) == (
        "credit@2",
        "invalid",
        "May batch",
        50,
    )
    assert [(f.ref, f.how, f.contract) for f in d.failed_validations] == [
        ("credit@2", "ingest", "applicants-described@1"),
        ("credit.test@1", "validate", "young-only@1"),
    ]
    assert d.failed_validations[1].failures and d.failed_validations[1].failures >= 1
    assert [m.ref for m in d.models_registered] == [f"{MODEL}@3"]
    assert [p.ref for p in d.approvals_waiting] == [f"{MODEL}@3"]
    assert [(m.kind, m.from_version, m.to_version, m.actor) for m in d.promotions] == [
        ("promote", None, 1, "bob"),
        ("promote", 1, 2, "bob"),
        ("rollback", 2, 1, "bob"),
    ]
    assert d.promotions[-1].comment == "v2 hurts approvals"


def test_the_best_run_of_each_experiment_is_chosen_on_its_primary_metric(busy: Busy) -> None:
    """tuning ranks on roc_auc (a usual metric, maximised); sizing names val_loss in its
    primary_metric tag, minimised because it is a loss."""
    d = busy.project.digests.get(busy.before)
    by_name = {e.experiment: e for e in d.experiments}
    tuning, sizing = by_name["tuning"], by_name["sizing"]
    assert (tuning.runs, tuning.metric, tuning.goal) == (len(TUNING) + 1, "roc_auc", "max")
    assert (tuning.best_run_name, tuning.best_value) == ("c=1", 0.74)
    assert tuning.chosen_by == "first of the usual metrics the runs logged"
    assert (sizing.metric, sizing.goal, sizing.best_run_name) == ("val_loss", "min", "large")
    assert sizing.best_value == min(LOSS_RUNS.values())
    assert sizing.chosen_by == "run tag primary_metric"


def test_the_window_is_honoured(busy: Busy) -> None:
    """A window starting now holds nothing that happened, but still lists the approval that
    waits; a window from before the project holds its first datasets and models too."""
    now = busy.project.digests.get(datetime.now(UTC))
    assert now.counts["dataset_versions"] == 0 and now.experiments == []
    assert now.promotions == [] and now.models_registered == []
    assert now.counts["approvals_waiting"] == 1
    everything = busy.project.digests.get("30d")
    assert everything.counts["dataset_versions"] == 4  # credit@1, its two parts, credit@2
    assert everything.counts["models_registered"] == 3
    assert everything.since < busy.before < everything.until


def test_primary_metric_falls_back_to_the_metric_most_runs_logged() -> None:
    """Without a tag or a usual metric, the metric most runs logged wins (ties by name), and
    an error-like name is minimised."""

    def run(**metrics: float) -> RunInfo:
        return RunInfo("r", "n", "e", "FINISHED", "active", 0, 1, "a", {}, metrics, {})

    assert primary_metric([run(mape_error=1.0, b=2.0), run(mape_error=0.5)]) == (
        "mape_error",
        "min",
        "the metric most runs logged",
    )
    assert primary_metric([run(z=1.0), run(y=1.0)])[:2] == ("y", "max")
    assert primary_metric([run()]) == (None, None, "no metric logged")


def test_since_reads_durations_and_dates_and_refuses_the_rest() -> None:
    """7d, 12h, 30m, 2w, ISO dates (UTC unless stated) and timedeltas; a word or a future
    time is refused with the accepted forms."""
    now = datetime(2026, 5, 8, 12, tzinfo=UTC)
    assert parse_since("7d", now=now) == datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_since("12h", now=now) == datetime(2026, 5, 8, tzinfo=UTC)
    assert parse_since("30m", now=now) == datetime(2026, 5, 8, 11, 30, tzinfo=UTC)
    assert parse_since("2w", now=now) == datetime(2026, 4, 24, 12, tzinfo=UTC)
    assert parse_since("2026-05-01", now=now) == datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_since("2026-05-01T12:00+02:00", now=now) == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_since(timedelta(days=1), now=now) == datetime(2026, 5, 7, 12, tzinfo=UTC)
    with pytest.raises(InvalidInputError, match="30m, 12h, 7d or 2w"):
        parse_since("last week", now=now)
    with pytest.raises(InvalidInputError, match="in the future"):
        parse_since("2027-01-01", now=now)


def test_markdown_shows_every_section_and_escapes_user_text(busy: Busy) -> None:
    """The Markdown has the summary line and every section, the promotion with its comment,
    and Markdown in a user's message is escaped."""
    md = render_digest(busy.project.digests.get(busy.before), "md")
    assert md.startswith("# shipyard digest: proj\n")
    assert "**1 new dataset version · 2 failed validations · 6 runs in 2 experiments" in md
    for title in SECTIONS:
        assert f"\n## {title}\n" in md
    assert "`credit-risk@production`: v2 → v1 (rolled back) by bob" in md
    assert "best `roc_auc` 0.74 (maximised) in run c=1" in md
    assert "Not available yet: this project has no monitoring set up." in md
    assert len(md.splitlines()) < 60


def test_long_sections_are_cut_to_a_minutes_read(busy: Busy) -> None:
    """A section lists at most MAX_ITEMS items and says how many more there are."""
    from dataclasses import replace

    d = busy.project.digests.get(busy.before)
    many = replace(d, models_registered=d.models_registered * (MAX_ITEMS + 3))
    md = render_digest(many, "md")
    section = md.split("## Models registered\n")[1].split("\n## ")[0]
    assert section.count("\n- `credit-risk@3`") == MAX_ITEMS
    assert "- … and 3 more" in section


def test_html_is_a_standalone_page_with_user_text_escaped(busy: Busy) -> None:
    """The HTML page has every section; a comment holding markup comes out escaped."""
    from dataclasses import replace

    d = busy.project.digests.get(busy.before)
    tampered = replace(d, promotions=[replace(d.promotions[0], comment="<script>x</script>")])
    page = render_digest(tampered, "html")
    assert page.startswith("<!doctype html>")
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    with pytest.raises(InvalidInputError, match="md, html"):
        render_digest(d, "pdf")


def test_the_slack_message_has_a_summary_and_a_block_per_section(busy: Busy) -> None:
    """{"text", "blocks"}: the summary as fallback text, a header, the window, then one
    mrkdwn section per part, each within Slack's limits and with <, > and & escaped."""
    from dataclasses import replace

    d = busy.project.digests.get(busy.before)
    d = replace(d, promotions=[replace(d.promotions[0], comment="a <b> & c")])
    msg = slack_payload(d)
    assert set(msg) == {"text", "blocks"}
    assert "1 new dataset version" in msg["text"]
    header, context, *sections = msg["blocks"]
    assert header["type"] == "header" and context["type"] == "context"
    assert [s["text"]["text"].split("\n")[0] for s in sections] == [f"*{t}*" for t in SECTIONS]
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert "a &lt;b&gt; &amp; c" in json.dumps(msg)


def test_digest_on_the_command_line(
    busy: Busy, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shipyard digest` prints Markdown, writes HTML with -o, prints one JSON document with
    --json, refuses a bad --since (exit 1), a bad --format and a --post that is not a webhook
    id (exit 2)."""
    monkeypatch.chdir(busy.root)
    res = cli("digest", "--since", "30d")
    assert res.code == 0, res.stderr
    assert res.stdout.startswith("# shipyard digest: proj") and "## Approvals waiting" in res.stdout
    out = tmp_path / "digest.html"
    res = cli("digest", "--format", "html", "-o", out)
    assert res.code == 0 and out.read_text().startswith("<!doctype html>")
    res = cli("digest", "--since", busy.before.isoformat(), "--json")
    doc = res.json()
    assert doc["counts"]["rollbacks"] == 1 and doc["alerts"] is None
    assert doc["experiments"][0]["experiment"] == "sizing"
    assert cli("digest", "--since", "soon").code == 1
    assert cli("digest", "--format", "pdf").code == 2
    res = cli("digest", "--post", "wh_1")
    assert res.code == 2 and "webhook id is a number" in res.stderr


def test_the_digest_is_posted_to_slack_through_the_delivery_queue(
    cli: Cli,
    receiver: Receiver,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`shipyard digest --post ID` sends the digest's own Slack message (header, window,
    sections) to a Slack webhook as one delivery of the queue; an unknown webhook is exit 1
    and nothing is sent."""
    project = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=False)
    hook = project.webhooks.add(receiver.url, ["dataset.created"], format="slack")
    project.close()
    monkeypatch.chdir(tmp_path / "proj")
    res = cli("digest", "--since", "1d", "--post", str(hook.id), "--json")
    assert res.code == 0, res.stderr
    delivery = res.json()["delivery"]
    assert (delivery["event"], delivery["status"]) == ("digest", "delivered")
    [sent] = receiver.received
    body = sent.json()
    assert body["blocks"][0]["type"] == "header"
    assert body["blocks"][0]["text"]["text"].startswith("shipyard digest")
    assert "models registered" in json.dumps(body)
    assert cli("digest", "--post", "999").code == 1
    assert len(receiver.received) == 1


def test_the_digest_reads_its_window_from_the_audit_log_on_every_backend(
    project: Project, sample_csv: Callable[..., Path]
) -> None:
    """On SQLite and PostgreSQL, the audit log's ``since`` and ``actions`` filters keep only
    the chosen actions from that time on, so the digest counts only the later version."""
    project.datasets.add("sales", sample_csv())
    time.sleep(0.01)
    start = datetime.now(UTC)
    project.datasets.add("sales", sample_csv("b.csv", text="id,amount\n1,2\n"))
    events = project.audit.list(since=start, actions=["dataset.add", "model.register"])
    assert [(e.action, e.entity) for e in events] == [("dataset.add", "sales@2")]
    d = project.digests.get(start)
    assert [x.ref for x in d.dataset_versions] == ["sales@2"]
    assert d.counts["approvals_waiting"] == 0 and d.experiments == []


def test_deleted_and_purged_dataset_versions_are_marked(project: Project) -> None:
    """A version added in the window and deleted since is still listed (the team should know
    it came and went) but marked, so that nobody takes it for data to use."""
    import polars as pl

    for n in (10, 20, 30):
        project.datasets.add("credit", pl.DataFrame({"id": list(range(n))}))
    project.datasets.delete("credit@2", reason="wrong export")
    project.datasets.delete("credit@3", purge=True)

    digest = project.digests.get("1d")
    assert {d.ref: d.deleted for d in digest.dataset_versions} == {
        "credit@1": None,
        "credit@2": "deleted",
        "credit@3": "purged",
    }
    md = render_digest(digest, "md")
    assert "`credit@1`: 10 rows" in md
    assert "`credit@2` (deleted since): 20 rows" in md
    assert "`credit@3` (purged since): 30 rows" in md
    assert digest.to_dict()["dataset_versions"][2]["deleted"] == "purged"
