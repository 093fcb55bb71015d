"""``shipyard users token create/list/revoke``: the secret printed once, then never again."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli


def test_create_prints_the_token_once_and_list_never_shows_it(cli: Cli, cli_project: Path) -> None:
    assert cli("users", "add", "bob", "--role", "contributor").code == 0
    made = cli("users", "token", "create", "bob", "--expires", "90d", "--label", "laptop", "--json")
    assert made.code == 0, made.stderr
    doc = made.json()
    assert doc["token"].startswith(f"shp_{doc['id']}_")
    assert doc["user"] == "bob" and doc["label"] == "laptop" and doc["active"] is True
    assert doc["expires_at"] is not None

    plain = cli("users", "token", "create", "--label", "mine")
    assert plain.code == 0
    assert plain.stdout.strip().startswith("shp_") and "shown only now" in plain.stderr

    listed = cli("users", "token", "list", "--all", "--json")
    assert listed.code == 0
    assert {t["user"] for t in listed.json()} == {"alice", "bob"}
    assert doc["token"] not in listed.stdout and "token" not in listed.json()[0]
    table = cli("users", "token", "list", "bob")
    assert doc["id"] in table.stdout and "laptop" in table.stdout


def test_revoke_and_the_refusals_a_user_sees(cli: Cli, cli_project: Path) -> None:
    cli("users", "add", "bob", "--role", "contributor")
    doc = cli("users", "token", "create", "bob", "--json").json()
    # bob may not see or revoke alice's tokens, nor make one for her
    assert cli("users", "token", "create", "alice", user="bob").code == 1
    refused = cli("users", "token", "list", "--all", "--json", user="bob")
    assert refused.code == 1 and refused.json()["error"] == "permission"
    revoked = cli("users", "token", "revoke", doc["id"], "--json", user="bob")
    assert revoked.code == 0 and revoked.json()["active"] is False
    again = cli("users", "token", "revoke", doc["id"], user="bob")
    assert again.code == 0 and "revoked" in again.stdout
    unknown = cli("users", "token", "revoke", "0123456789abcdef", "--json", user="alice")
    assert unknown.code == 1 and unknown.json()["error"] == "not_found"
    bad = cli("users", "token", "create", "--expires", "soon", user="alice")
    assert bad.code == 1 and "90d" in bad.stderr
