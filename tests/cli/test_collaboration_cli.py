"""`shipyard comments` and `shipyard webhooks` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.collaboration.conftest import Receiver, receiver, webhook_settings

__all__ = ["receiver", "webhook_settings"]  # fixtures of tests/collaboration, used here


@pytest.fixture
def with_dataset(cli_project: Path, cli: Cli) -> Path:
    (cli_project / "sales.csv").write_text("id,amount\n1,2.5\n2,3.0\n", encoding="utf-8")
    assert cli("data", "add", "sales", "sales.csv").code == 0
    assert cli("users", "add", "abe", "--role", "approver").code == 0
    return cli_project


def test_comments_add_list_edit_and_history(with_dataset: Path, cli: Cli) -> None:
    """A comment from --text and one from --file are listed; editing keeps the old text; a
    viewer is refused with exit 1 and a message; giving no text is a usage error."""
    added = cli("comments", "add", "dataset:sales@latest", "--text", "@abe nulls?", "--json")
    assert added.code == 0, added.stderr
    doc = added.json()
    assert (doc["on"], doc["mentions"]) == ("dataset:sales@1", ["abe"])
    (with_dataset / "note.md").write_text("# Review\n- looks fine\n", encoding="utf-8")
    assert cli("comments", "add", "dataset:sales@1", "--file", "note.md").code == 0
    edited = cli("comments", "edit", str(doc["id"]), "--text", "@abe nulls fixed", "--json")
    assert edited.json()["revisions"] == 2
    listed = cli("comments", "list", "dataset:sales@1", "--json").json()
    assert [c["text"] for c in listed] == ["@abe nulls fixed", "# Review\n- looks fine"]
    shown = cli("comments", "list", "dataset:sales@1")
    assert "alice on dataset:sales@1" in shown.stdout and "(mentions @abe)" in shown.stdout
    history = cli("comments", "history", str(doc["id"]), "--json").json()
    assert [h["text"] for h in history] == ["@abe nulls?", "@abe nulls fixed"]
    refused = cli("comments", "add", "dataset:sales@1", "--text", "hi", user="vic")
    assert refused.code == 1 and "viewer" in refused.stderr
    assert cli("comments", "add", "dataset:sales@1").code == 2


def test_webhooks_from_add_to_remove(with_dataset: Path, cli: Cli, receiver: Receiver) -> None:
    """add (the secret from a file), list without the secret, deliver, deliveries, test,
    redeliver and remove, each with one JSON document under --json."""
    secret = cli("webhooks", "new-secret").stdout.strip()
    assert secret.startswith("whsec_")
    (with_dataset / "hook.secret").write_text(secret, encoding="utf-8")
    added = cli(
        "webhooks", "add", receiver.url, "--events", "dataset.created,model.promoted",
        "--secret-file", "hook.secret", "--json",
    )  # fmt: skip
    assert added.code == 0, added.stderr
    hook_id = str(added.json()["id"])
    listed = cli("webhooks", "list")
    assert "hook.secret" in listed.stdout and "enabled" in listed.stdout
    assert secret not in listed.stdout
    (with_dataset / "more.csv").write_text("id,amount\n3,1.0\n", encoding="utf-8")
    assert cli("data", "add", "more", "more.csv").code == 0
    ran = cli("webhooks", "deliver", "--json")
    assert ran.json() == {"queued": 1, "delivered": 1, "retrying": 0, "failed": 0}
    [delivery] = cli("webhooks", "deliveries", hook_id, "--json").json()
    assert delivery["payload"]["data"]["dataset"] == "more@1"
    tested = cli("webhooks", "test", hook_id)
    assert tested.code == 0 and "delivered after 1 attempt(s); last: HTTP 200" in tested.stdout
    again = cli("webhooks", "redeliver", delivery["id"], "--json").json()
    assert (again["redelivery_of"], again["status"]) == (delivery["id"], "delivered")
    assert [r.headers["webhook-id"] for r in receiver.received][-1] == again["id"]
    assert cli("webhooks", "remove", hook_id).code == 0
    assert cli("webhooks", "list", "--json").json() == []
    assert cli("webhooks", "test", hook_id).code == 1
