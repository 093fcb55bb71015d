"""Signed checkpoints: a head of the audit chain signed with a key outside the project, which
exposes a chain that was rewritten and fully re-hashed since. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, select, update

import shipyard
from shipyard._internal.hashing import canonical_json
from shipyard.project import Project
from shipyard.stores.audit_keys import key_fingerprint, public_key_hex
from shipyard.stores.db.tables import audit_events, audit_head

Rewrite = Callable[[Project, int, str], None]


def _grow(project: Project, n: int = 3) -> None:
    """Append ``n`` events (user role changes)."""
    for i in range(n):
        project.users.add("bob", ("contributor", "approver")[i % 2])


def _head(project: Project) -> tuple[int, str]:
    with project.db.read() as conn:
        row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    return int(row.seq), str(row.hash)


def _event_hash(project: Project, seq: int) -> str:
    with project.db.read() as conn:
        return str(
            conn.execute(select(audit_events.c.hash).where(audit_events.c.seq == seq)).scalar_one()
        )


def _edit(path: Path, **signed: Any) -> None:
    """Change fields of a checkpoint file without signing it again."""
    doc = json.loads(path.read_text())
    doc["signed"].update(signed)
    path.write_text(json.dumps(doc))


def _forge(path: Path, key: Ed25519PrivateKey, **signed: Any) -> Path:
    """Write a well-formed checkpoint signed by ``key``."""
    public = public_key_hex(key)
    body = {
        "format": "shipyard-audit-checkpoint/1",
        "project": "proj",
        "time": "2025-05-03T09:12:00+00:00",
        "actor": "mallory",
        "public_key": public,
        "key_fingerprint": key_fingerprint(public),
        **signed,
    }
    doc = {"signed": body, "signature": key.sign(canonical_json(body)).hex()}
    path.write_text(json.dumps(doc))
    return path


def test_checkpoint_then_verify(project: Project, tmp_path: Path, audit_key_home: Path) -> None:
    """A fresh checkpoint holds the current head, signed by the local key, and verifies."""
    _grow(project)
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    assert (cp.seq, cp.hash) == _head(project)
    assert (cp.project, cp.actor) == ("proj", "alice")
    assert cp.key_file == audit_key_home / "shipyard" / "audit-ed25519.pem"
    assert cp.key_created and cp.key_recorded

    report = project.audit.verify(checkpoint=tmp_path / "cp.json")
    assert report.ok, report.checkpoint
    check = report.checkpoint
    assert check is not None
    assert (check.ok, check.seq, check.hash) == (True, cp.seq, cp.hash)
    assert check.trusted_by == "local_key"
    assert str(cp.key_file) in (check.trust_detail or "")
    assert report.to_dict()["checkpoint"]["trusted_by"] == "local_key"
    assert report.to_dict()["ok"] is True


def test_checkpoint_file_format(project: Project, tmp_path: Path) -> None:
    """The file is JSON: the signed head and a hex Ed25519 signature over its canonical form."""
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    doc = json.loads((tmp_path / "cp.json").read_text())
    assert set(doc) == {"signed", "signature"}
    assert doc["signed"] == {
        "format": "shipyard-audit-checkpoint/1",
        "project": "proj",
        "seq": cp.seq,
        "hash": cp.hash,
        "time": cp.time,
        "actor": "alice",
        "public_key": cp.public_key,
        "key_fingerprint": cp.key_fingerprint,
    }
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp.public_key))
    public.verify(bytes.fromhex(doc["signature"]), canonical_json(doc["signed"]))  # no raise


def test_key_is_recorded_once_per_key(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first checkpoint with a key records its public key in the chain, before the head it
    signs; the same key is not recorded again, a different key is."""
    first = project.audit.checkpoint(tmp_path / "1.json")
    (event,) = project.audit.list(action="audit.key")
    assert (event.entity_kind, event.entity, event.seq) == ("project", "proj", first.seq)
    assert event.payload == {
        "algorithm": "ed25519",
        "public_key": first.public_key,
        "fingerprint": first.key_fingerprint,
    }
    again = project.audit.checkpoint(tmp_path / "2.json")
    assert not again.key_recorded and again.seq == first.seq
    monkeypatch.setenv("SHIPYARD_AUDIT_KEY_FILE", str(tmp_path / "keys" / "other.pem"))
    other = project.audit.checkpoint(tmp_path / "3.json")
    assert other.key_created and other.key_recorded
    keys = [e.payload["public_key"] for e in project.audit.list(action="audit.key")]
    assert keys == [first.public_key, other.public_key]
    assert project.audit.verify().ok


def test_chain_that_grew_still_extends_the_checkpoint(project: Project, tmp_path: Path) -> None:
    """Events added after the checkpoint do not invalidate it."""
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    _grow(project, 5)
    report = project.audit.verify(checkpoint=tmp_path / "cp.json")
    assert report.ok
    assert report.events == cp.seq + 5


def test_rewritten_and_rehashed_chain_fails(
    project: Project, tmp_path: Path, rewrite_audit_chain: Rewrite
) -> None:
    """An event edited before the checkpoint, with every later hash and the head recomputed,
    passes plain verification but not verification against the checkpoint."""
    _grow(project)
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    _grow(project)
    rewrite_audit_chain(project, 3, '{"forged":true}')
    assert project.audit.verify().ok  # the chain alone cannot tell
    assert _event_hash(project, cp.seq) != cp.hash

    report = project.audit.verify(checkpoint=tmp_path / "cp.json")
    assert not report.ok
    assert report.chain_ok
    check = report.checkpoint
    assert check is not None and check.problem == "rewritten"
    assert f"event {cp.seq} has hash" in (check.reason or "")
    assert "rewritten" in (check.reason or "")
    doc = report.to_dict()
    assert (doc["ok"], doc["checkpoint"]["ok"], doc["checkpoint"]["problem"]) == (
        False,
        False,
        "rewritten",
    )


def test_rewrite_after_the_checkpoint_is_not_its_business(
    project: Project, tmp_path: Path, rewrite_audit_chain: Rewrite
) -> None:
    """A checkpoint vouches for the events up to its seq: a re-hashed edit of a later event
    still verifies (a later checkpoint would catch it)."""
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    _grow(project)
    rewrite_audit_chain(project, cp.seq + 1, '{"forged":true}')
    assert project.audit.verify(checkpoint=tmp_path / "cp.json").ok


def test_truncated_chain_fails(project: Project, tmp_path: Path) -> None:
    """Deleting the checkpointed event and everything after it (head moved back) fails."""
    _grow(project)
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    with project.db.write() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq >= cp.seq))
        prev = conn.execute(
            select(audit_events.c.hash).where(audit_events.c.seq == cp.seq - 1)
        ).scalar_one()
        conn.execute(update(audit_head).values(seq=cp.seq - 1, hash=prev))
    assert project.audit.verify().ok
    check = project.audit.verify(checkpoint=tmp_path / "cp.json").checkpoint
    assert check is not None and check.problem == "missing_event"
    assert f"no event {cp.seq}" in (check.reason or "")


def test_broken_chain_fails_the_checkpoint_too(project: Project, tmp_path: Path) -> None:
    """A chain that does not verify cannot be shown to extend any checkpoint."""
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    _grow(project)
    with project.db.write() as conn:
        conn.execute(
            update(audit_events).where(audit_events.c.seq == cp.seq + 1).values(actor="eve")
        )
    report = project.audit.verify(checkpoint=tmp_path / "cp.json")
    assert (report.ok, report.chain_ok, report.first_bad_seq) == (False, False, cp.seq + 1)
    assert report.checkpoint is not None and report.checkpoint.problem == "chain"


@pytest.mark.parametrize(
    "edit",
    [{"seq": 1}, {"hash": "blake3:" + "ab" * 32}, {"actor": "mallory"}, {"project": "other"}],
    ids=["seq", "hash", "actor", "project"],
)
def test_edited_checkpoint_fails(project: Project, tmp_path: Path, edit: dict[str, Any]) -> None:
    """Changing any signed field of the file without signing again breaks the signature."""
    project.audit.checkpoint(tmp_path / "cp.json")
    _edit(tmp_path / "cp.json", **edit)
    check = project.audit.verify(checkpoint=tmp_path / "cp.json").checkpoint
    assert check is not None and (check.ok, check.problem) == (False, "signature")
    assert "changed after it was signed" in (check.reason or "")
    assert str(tmp_path / "cp.json") in (check.reason or "")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json", "not valid JSON"),
        ("[]", 'a "signed" object'),
        ('{"signed": {}, "signature": "00"}', "signed.seq is missing"),
        ("SEQ", "signed.seq is 'three'"),
        ("FINGERPRINT", "key_fingerprint does not match"),
        ("EXTRA", "unknown field signed.note"),
        ("DUPLICATE", "appears twice"),
    ],
)
def test_malformed_checkpoint_fails(
    project: Project, tmp_path: Path, content: str, says: str
) -> None:
    """A file that is not a well-formed checkpoint fails (not an error) and names the problem."""
    project.audit.checkpoint(tmp_path / "cp.json")
    path = tmp_path / "cp.json"
    doc = json.loads(path.read_text())
    if content == "SEQ":
        doc["signed"]["seq"] = "three"
    elif content == "FINGERPRINT":
        doc["signed"]["key_fingerprint"] = "blake3:" + "0" * 64
    elif content == "EXTRA":
        doc["signed"]["note"] = "hi"
    text = json.dumps(doc) if content.isupper() else content
    if content == "DUPLICATE":
        text = text.replace('"signed": {', '"signed": {"seq": 1, ', 1)
    path.write_text(text)
    check = project.audit.verify(checkpoint=path).checkpoint
    assert check is not None and (check.ok, check.problem) == (False, "malformed")
    assert says in (check.reason or "")


def test_untrusted_key_fails(project: Project, tmp_path: Path) -> None:
    """A correctly signed checkpoint of the true head is refused when its key is neither the
    local key nor one recorded in the project."""
    project.audit.checkpoint(tmp_path / "mine.json")  # creates and records the local key
    seq, head = _head(project)
    stranger = Ed25519PrivateKey.generate()
    forged = _forge(tmp_path / "forged.json", stranger, seq=seq, hash=head)
    check = project.audit.verify(checkpoint=forged).checkpoint
    assert check is not None and (check.ok, check.problem) == (False, "untrusted")
    assert key_fingerprint(public_key_hex(stranger)) in (check.reason or "")


def test_key_recorded_in_the_project_is_trusted(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A teammate's checkpoint verifies on a machine with another key, because the teammate's
    key is recorded in the project; the result says so."""
    monkeypatch.setenv("SHIPYARD_AUDIT_KEY_FILE", str(tmp_path / "bob" / "key.pem"))
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    monkeypatch.setenv("SHIPYARD_AUDIT_KEY_FILE", str(tmp_path / "carol" / "key.pem"))
    check = project.audit.verify(checkpoint=tmp_path / "cp.json").checkpoint
    assert check is not None and check.ok
    assert check.trusted_by == "project"
    assert check.trust_detail == f"a key recorded in the project at event {cp.seq} by alice"
    assert not (tmp_path / "carol").exists()  # verifying never creates a key


def test_key_recorded_after_the_checkpoint_does_not_vouch(project: Project, tmp_path: Path) -> None:
    """A recorded key vouches only for checkpoints at or after the event that recorded it."""
    seq, head = _head(project)
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "keys" / "late.pem"
    key_file.parent.mkdir()
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPYARD_AUDIT_KEY_FILE", str(key_file))
        later = project.audit.checkpoint(tmp_path / "later.json")  # records the key
    assert later.key_recorded and later.seq == seq + 1
    early = _forge(tmp_path / "early.json", key, seq=seq, hash=head)
    check = project.audit.verify(checkpoint=early).checkpoint
    assert check is not None and check.problem == "untrusted"
    assert project.audit.verify(checkpoint=tmp_path / "later.json").ok


def test_checkpoint_of_another_project_fails(project: Project, tmp_path: Path) -> None:
    """A checkpoint names its project; one made for another project is refused, even when it
    is signed by a trusted key and its head matches."""
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    key = serialization.load_pem_private_key(cp.key_file.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    other = _forge(tmp_path / "other.json", key, project="billing", seq=cp.seq, hash=cp.hash)
    check = project.audit.verify(checkpoint=other).checkpoint
    assert check is not None and (check.problem, check.trusted_by) == ("project", "local_key")
    assert "checkpoint of project 'billing', not of 'proj'" in (check.reason or "")


def test_key_file_is_private(project: Project, tmp_path: Path, audit_key_home: Path) -> None:
    """The key is created as an Ed25519 PKCS8 PEM file only its owner can read, in a folder
    only its owner can enter."""
    cp = project.audit.checkpoint(tmp_path / "cp.json")
    assert stat.S_IMODE(cp.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cp.key_file.parent.stat().st_mode) == 0o700
    pem = cp.key_file.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert public_key_hex(key) == cp.public_key
    assert not [p for p in cp.key_file.parent.iterdir() if p != cp.key_file]  # no leftovers


def test_existing_key_is_reused(project: Project, tmp_path: Path) -> None:
    """Later checkpoints sign with the same key."""
    first = project.audit.checkpoint(tmp_path / "1.json")
    second = project.audit.checkpoint(tmp_path / "2.json")
    assert not second.key_created
    assert second.public_key == first.public_key


def test_key_readable_by_others_is_refused(project: Project, tmp_path: Path) -> None:
    """A key file that other users can read is refused, with the chmod that fixes it."""
    cp = project.audit.checkpoint(tmp_path / "1.json")
    cp.key_file.chmod(0o644)
    with pytest.raises(shipyard.ShipyardError, match="chmod 600"):
        project.audit.checkpoint(tmp_path / "2.json")
    with pytest.raises(shipyard.ShipyardError, match="can be read by other users"):
        project.audit.verify(checkpoint=tmp_path / "1.json")


def test_key_inside_the_project_is_refused(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key file in the project folder is refused before anything is written."""
    inside = project.root / "keys" / "audit.pem"
    monkeypatch.setenv("SHIPYARD_AUDIT_KEY_FILE", str(inside))
    before = project.audit.list()
    with pytest.raises(shipyard.InvalidInputError) as info:
        project.audit.checkpoint(tmp_path / "cp.json")
    assert str(inside) in info.value.message
    assert "SHIPYARD_AUDIT_KEY_FILE" in info.value.message
    assert not inside.exists() and not (tmp_path / "cp.json").exists()
    assert project.audit.list() == before


def test_existing_checkpoint_is_not_overwritten(project: Project, tmp_path: Path) -> None:
    """Writing over an existing file needs force=True; a refusal leaves file and chain alone."""
    path = tmp_path / "cp.json"
    path.write_text("keep me")
    before = project.audit.list()
    with pytest.raises(shipyard.ConflictError, match="already exists"):
        project.audit.checkpoint(path)
    assert path.read_text() == "keep me"
    assert project.audit.list() == before
    cp = project.audit.checkpoint(path, force=True)
    assert json.loads(path.read_text())["signed"]["hash"] == cp.hash
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]


def test_missing_checkpoint_file_is_an_error(project: Project, tmp_path: Path) -> None:
    """A checkpoint file that cannot be read is an error (exit 1), not a failed check."""
    with pytest.raises(shipyard.NotFoundError, match="no checkpoint file"):
        project.audit.verify(checkpoint=tmp_path / "missing.json")
