"""`shipyard audit checkpoint` and `shipyard audit verify --checkpoint` as a user runs them."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import shipyard
from shipyard._internal.hashing import canonical_json
from shipyard.project import Project
from shipyard.stores.audit_keys import key_fingerprint, public_key_hex
from tests.cli.conftest import Cli


def _grow(root: Path) -> None:
    with shipyard.open_project(root) as project:
        project.users.add("bob", "contributor")
        project.users.add("bob", "approver")


def test_checkpoint_then_verify(
    cli: Cli, cli_project: Path, tmp_path: Path, audit_key_home: Path
) -> None:
    """checkpoint creates the key (0600) and the file; verify --checkpoint --json is ok and says
    which key vouched; more events later still verify."""
    out = tmp_path / "cp.json"
    made = cli("audit", "checkpoint", "-o", out)
    assert made.code == 0, made.stderr
    key_file = audit_key_home / "shipyard" / "audit-ed25519.pem"
    assert f"created a new audit key: {key_file}" in made.stdout
    assert f"checkpoint written to {out}" in made.stdout
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    _grow(cli_project)
    res = cli("audit", "verify", "--checkpoint", out, "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert (doc["ok"], doc["events"]) == (True, 5)
    assert doc["checkpoint"]["ok"] is True
    assert doc["checkpoint"]["seq"] == 3
    assert doc["checkpoint"]["trusted_by"] == "local_key"
    text = cli("audit", "verify", "--checkpoint", out)
    assert text.code == 0
    assert "checkpoint ok: event 3" in text.stdout and str(key_file) in text.stdout


def test_checkpoint_json(cli: Cli, cli_project: Path, tmp_path: Path) -> None:
    """checkpoint --json prints one document describing the checkpoint and the key."""
    res = cli("audit", "checkpoint", "-o", tmp_path / "cp.json", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    signed = json.loads((tmp_path / "cp.json").read_text())["signed"]
    assert (doc["seq"], doc["hash"], doc["public_key"]) == (
        signed["seq"],
        signed["hash"],
        signed["public_key"],
    )
    assert (doc["key_created"], doc["key_recorded"]) == (True, True)


def test_rewritten_chain_fails_against_the_checkpoint(
    cli: Cli,
    cli_project: Path,
    tmp_path: Path,
    rewrite_audit_chain: Callable[[Project, int, str], None],
) -> None:
    """After an edit re-hashed to the head, plain verify exits 0 but verify --checkpoint exits 3
    and names the event whose hash changed."""
    _grow(cli_project)
    out = tmp_path / "cp.json"
    assert cli("audit", "checkpoint", "-o", out).code == 0
    with shipyard.open_project(cli_project) as project:
        rewrite_audit_chain(project, 2, '{"root":"/elsewhere"}')
    assert cli("audit", "verify").code == 0
    res = cli("audit", "verify", "--checkpoint", out)
    assert res.code == 3
    assert "checkpoint FAILED" in res.stderr
    assert "event 5 has hash" in res.stderr and "rewritten" in res.stderr
    doc = cli("audit", "verify", "--checkpoint", out, "--json").json()
    assert (doc["ok"], doc["checkpoint"]["problem"]) == (False, "rewritten")


def test_edited_checkpoint_exits_3(cli: Cli, cli_project: Path, tmp_path: Path) -> None:
    """A checkpoint whose seq or hash was edited without signing again fails with exit 3."""
    out = tmp_path / "cp.json"
    assert cli("audit", "checkpoint", "-o", out).code == 0
    for field, value in (("seq", 1), ("hash", "blake3:" + "0" * 64)):
        doc = json.loads(out.read_text())
        doc["signed"][field] = value
        edited = tmp_path / f"edited-{field}.json"
        edited.write_text(json.dumps(doc))
        res = cli("audit", "verify", "--checkpoint", edited, "--json")
        assert res.code == 3
        assert res.json()["checkpoint"]["problem"] == "signature"
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{")
    res = cli("audit", "verify", "--checkpoint", garbage)
    assert res.code == 3 and "not valid JSON" in res.stderr


def test_untrusted_key_exits_3(cli: Cli, cli_project: Path, tmp_path: Path) -> None:
    """A checkpoint signed by a key that is neither yours nor recorded in the project fails."""
    head = cli("audit", "verify", "--json").json()
    key = Ed25519PrivateKey.generate()
    public = public_key_hex(key)
    signed = {
        "format": "shipyard-audit-checkpoint/1",
        "project": "proj",
        "seq": head["events"],
        "hash": head["head_hash"],
        "time": "2025-05-03T09:12:00+00:00",
        "actor": "mallory",
        "public_key": public,
        "key_fingerprint": key_fingerprint(public),
    }
    forged = tmp_path / "forged.json"
    forged.write_text(
        json.dumps({"signed": signed, "signature": key.sign(canonical_json(signed)).hex()})
    )
    res = cli("audit", "verify", "--checkpoint", forged)
    assert res.code == 3
    assert "neither your key" in res.stderr and key_fingerprint(public) in res.stderr


def test_existing_file_needs_force(cli: Cli, cli_project: Path, tmp_path: Path) -> None:
    """checkpoint refuses to overwrite a file (exit 1) unless --force is given."""
    out = tmp_path / "cp.json"
    out.write_text("precious")
    res = cli("audit", "checkpoint", "-o", out)
    assert res.code == 1
    assert f"{out} already exists; pass --force" in res.stderr
    assert out.read_text() == "precious"
    assert cli("audit", "checkpoint", "-o", out, "--force").code == 0
    assert json.loads(out.read_text())["signed"]["project"] == "proj"


def test_key_inside_the_project_is_refused(
    cli: Cli, cli_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key file in the project folder is refused with exit 1, naming the file and the fix."""
    inside = cli_project / "audit.pem"
    monkeypatch.setenv("SHIPYARD_AUDIT_KEY_FILE", str(inside))
    res = cli("audit", "checkpoint", "-o", tmp_path / "cp.json")
    assert res.code == 1
    assert str(inside) in res.stderr and "inside the project folder" in res.stderr
    assert "SHIPYARD_AUDIT_KEY_FILE at a file outside" in res.stderr
    assert not inside.exists() and not (tmp_path / "cp.json").exists()


def test_unreadable_checkpoint_is_an_error(cli: Cli, cli_project: Path, tmp_path: Path) -> None:
    """A checkpoint file that does not exist is an error (exit 1), not a failed check."""
    res = cli("audit", "verify", "--checkpoint", tmp_path / "nope.json", "--json")
    assert res.code == 1
    assert res.json()["error"] == "not_found"
    assert "no checkpoint file" in res.stderr
