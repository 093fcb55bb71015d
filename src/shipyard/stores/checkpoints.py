"""Signed checkpoints of the audit chain: proof that today's chain extends a head seen earlier.

The hash chain (:mod:`shipyard.stores.audit`) exposes an edit to any event, but whoever can
write the database can also rewrite an event and re-hash every later one, and the chain then
verifies again. A checkpoint is the head of the chain (its ``seq`` and ``hash``) signed with an
Ed25519 key that lives outside the project's folder and database. If the chain is rewritten
at or before that ``seq``, the event there no longer has that hash, and verifying against the
checkpoint fails; the signature makes the checkpoint file itself tamper-evident.

The checkpoint file is UTF-8 JSON::

    {
      "signed": {
        "format": "shipyard-audit-checkpoint/1",
        "project": "credit",                       # the project's name
        "seq": 42,                                 # the head: the newest event when signed
        "hash": "blake3:<64 hex>",                 # the hash of event 42
        "time": "2025-05-03T09:12:00.123456+00:00",  # when the checkpoint was made (UTC)
        "actor": "alice",                          # who made it
        "public_key": "<64 hex>",                  # the raw 32-byte Ed25519 public key
        "key_fingerprint": "blake3:<64 hex>"       # BLAKE3 of those 32 bytes
      },
      "signature": "<128 hex>"                     # Ed25519 over the canonical "signed"
    }

"Canonical" is :func:`shipyard._internal.hashing.canonical_json`: keys sorted, no spaces,
UTF-8. Every field is required and no other is allowed; ``format`` is signed too, so a
signature cannot be replayed under another meaning.

The key (:mod:`shipyard.stores.audit_keys`) is ``SHIPYARD_AUDIT_KEY_FILE``, else
``~/.config/shipyard/audit-ed25519.pem``; never inside the project folder. The first time a
key signs a checkpoint, an ``audit.key`` event records its public key in the chain, before the
head is read, so the checkpoint covers the record of its own key.

Trust: a checkpoint counts only when its signature is valid and its key is either the local
key (the file above, when present) or a key recorded by an ``audit.key`` event at or before the
checkpoint's ``seq``. The local key is the stronger anchor: a key recorded in the project is
only as trustworthy as the database, which is what the checkpoint is meant to check.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard._internal.files import require_folder, write_bytes_atomic
from shipyard._internal.hashing import canonical_json, is_digest
from shipyard.errors import ConflictError, NotFoundError, ShipyardError
from shipyard.stores.audit import audited
from shipyard.stores.audit_keys import (
    KEY_FILE_ENV,
    LocalKey,
    key_fingerprint,
    key_path,
    load_or_create_key,
    public_key_hex,
    record_key,
    recorded_key_event,
)
from shipyard.stores.db.tables import audit_events, audit_head

if TYPE_CHECKING:
    from shipyard.stores.audit import ChainReport
    from shipyard.stores.db.engine import Database

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointCheck",
    "check_checkpoint",
    "make_checkpoint",
    "read_checkpoint",
]

FORMAT = "shipyard-audit-checkpoint/1"
MAX_CHECKPOINT_BYTES = 64 * 1024

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_SIGNED_FIELDS = (
    "format",
    "project",
    "seq",
    "hash",
    "time",
    "actor",
    "public_key",
    "key_fingerprint",
)

# Why a checkpoint failed, as a machine-readable code next to the sentence.
Problem = Literal[
    "malformed", "signature", "untrusted", "project", "missing_event", "rewritten", "chain"
]


# -- making a checkpoint ----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint(ReadModel):
    """A checkpoint as written: the signed head, where it went and which key signed it."""

    file: Path
    project: str
    seq: int
    hash: str
    time: str
    actor: str
    public_key: str
    key_fingerprint: str
    key_file: Path
    key_created: bool
    key_recorded: bool


def make_checkpoint(
    db: Database,
    *,
    actor: str,
    project: str,
    project_root: Path,
    output: str | os.PathLike[str],
    force: bool = False,
) -> Checkpoint:
    """Sign the current head of the chain with the local key and write it to ``output``.

    The key is created on first use and recorded in the chain the first time it signs for
    this database, before the head is read, so the checkpoint covers its own key record.

    Raises:
        ConflictError: ``output`` exists and ``force`` is false.
        InvalidInputError: the folder of ``output`` does not exist (it is never created).
        InvalidInputError, ShipyardError: the key cannot be used (see
            :func:`load_or_create_key`), or ``output`` cannot be written.
    """
    dest = Path(os.path.abspath(Path(output).expanduser()))
    # Refused before the key and the event, so a refusal changes nothing.
    require_folder(dest)
    if not force and (dest.exists() or dest.is_symlink()):
        raise _exists(dest)
    path = key_path()
    key, created = load_or_create_key(path, project_root=project_root)
    public = public_key_hex(key)
    with audited(db, actor) as tx:
        recorded = record_key(tx, project, public)
        head = tx.conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    signed: dict[str, Any] = {
        "format": FORMAT,
        "project": project,
        "seq": int(head.seq),
        "hash": str(head.hash),
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "public_key": public,
        "key_fingerprint": key_fingerprint(public),
    }
    doc = {"signed": signed, "signature": key.sign(canonical_json(signed)).hex()}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    try:
        write_bytes_atomic(dest, text.encode("utf-8"), overwrite=force, parents=False)
    except FileExistsError:
        raise _exists(dest) from None  # created meanwhile by someone else
    except OSError as exc:
        raise ShipyardError(f"cannot write the checkpoint {dest}: {exc}") from None
    return Checkpoint(
        dest,
        project,
        signed["seq"],
        signed["hash"],
        signed["time"],
        actor,
        public,
        signed["key_fingerprint"],
        path,
        created,
        recorded,
    )


def _exists(dest: Path) -> ConflictError:
    return ConflictError(
        f"{dest} already exists; pass --force to overwrite it (force=True in Python), "
        "or choose another file"
    )


# -- verifying a checkpoint -------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointCheck(ReadModel):
    """The outcome of checking the chain against a checkpoint file.

    ``ok`` when the file is well formed, its signature is valid, its key is trusted
    (``trusted_by`` is ``"local_key"`` or ``"project"``, ``trust_detail`` says which file or
    event), the chain holds the checkpoint's hash at its ``seq``, and the whole chain verifies.
    Otherwise ``problem`` is one of ``malformed``, ``signature``, ``untrusted``, ``project``,
    ``missing_event``, ``rewritten``, ``chain`` and ``reason`` says what was found.
    """

    ok: bool
    file: str
    problem: Problem | None = None
    reason: str | None = None
    project: str | None = None
    seq: int | None = None
    hash: str | None = None
    time: str | None = None
    actor: str | None = None
    key_fingerprint: str | None = None
    trusted_by: Literal["local_key", "project"] | None = None
    trust_detail: str | None = None


def read_checkpoint(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a checkpoint file.

    Raises:
        NotFoundError: there is no such file.
        ShipyardError: it cannot be read.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return f.read(MAX_CHECKPOINT_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no checkpoint file {p}") from None
    except OSError as exc:
        raise ShipyardError(f"cannot read the checkpoint {p}: {exc.strerror or exc}") from None


class _Refused(Exception):
    def __init__(self, problem: Problem, reason: str) -> None:
        super().__init__(reason)
        self.problem: Problem = problem
        self.reason = reason


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def _parse(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The signed fields and the signature, or ``_Refused('malformed', …)`` naming every
    problem."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise _Refused("malformed", f"it is larger than {MAX_CHECKPOINT_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise _Refused("malformed", f"it is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("signed"), dict):
        raise _Refused("malformed", 'it is not a JSON object with a "signed" object')
    signed: dict[str, Any] = doc["signed"]
    problems = [f"unknown field {k!r}" for k in sorted(set(doc) - {"signed", "signature"})]
    problems += [f"unknown field signed.{k}" for k in sorted(set(signed) - set(_SIGNED_FIELDS))]
    problems += [f"signed.{k} is missing" for k in _SIGNED_FIELDS if k not in signed]
    sig = doc.get("signature")
    if not (isinstance(sig, str) and _HEX128.fullmatch(sig)):
        problems.append("signature is not 128 hex digits")
    if "format" in signed and signed["format"] != FORMAT:
        problems.append(f"signed.format is {signed['format']!r}, not {FORMAT!r}")
    seq = signed.get("seq")
    if "seq" in signed and (type(seq) is not int or seq < 1):
        problems.append(f"signed.seq is {seq!r}, not a whole number >= 1")
    if "hash" in signed and not is_digest(signed["hash"]):
        problems.append(f"signed.hash is {signed['hash']!r}, not blake3:<64 hex digits>")
    for name in ("project", "actor", "time"):
        if name in signed and not (isinstance(signed[name], str) and signed[name]):
            problems.append(f"signed.{name} is not a non-empty string")
    if isinstance(signed.get("time"), str) and not _is_aware_time(signed["time"]):
        problems.append(f"signed.time is {signed['time']!r}, not an ISO 8601 time with zone")
    public = signed.get("public_key")
    if "public_key" in signed and not (isinstance(public, str) and _HEX64.fullmatch(public)):
        problems.append("signed.public_key is not 64 hex digits")
    elif isinstance(public, str) and signed.get("key_fingerprint") != key_fingerprint(public):
        problems.append("signed.key_fingerprint does not match signed.public_key")
    if problems:
        n = len(problems)
        raise _Refused("malformed", f"{n} problem{'s' * (n != 1)}: " + "; ".join(problems))
    return signed, bytes.fromhex(str(sig))


def _is_aware_time(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).utcoffset() is not None
    except ValueError:
        return False


def _verify_signature(signed: dict[str, Any], signature: bytes) -> None:
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(signed["public_key"]))
    try:
        public.verify(signature, canonical_json(signed))
    except InvalidSignature:
        raise _Refused(
            "signature",
            "its signature does not match its content: the file was changed after it was "
            "signed (or signed by another key than the one it names)",
        ) from None


def _trust(conn: Connection, signed: dict[str, Any], local: LocalKey | None) -> tuple[str, str]:
    public = signed["public_key"]
    if local is not None and local.public_key == public:
        return "local_key", f"your key {local.path}"
    event = recorded_key_event(conn, public, up_to=signed["seq"])
    if event is not None:
        return "project", f"a key recorded in the project at event {event.seq} by {event.actor}"
    mine = (
        f"your key ({local.path})" if local is not None else f"your key (no file at {key_path()})"
    )
    raise _Refused(
        "untrusted",
        f"it is signed by key {signed['key_fingerprint']}, which is neither {mine} nor a key "
        f"recorded in the project at or before event {signed['seq']}, so nothing vouches "
        f"for it; verify where the signer's key is ({KEY_FILE_ENV}), or do not rely on it",
    )


def _extends(conn: Connection, signed: dict[str, Any], chain: ChainReport) -> None:
    seq, expected = signed["seq"], signed["hash"]
    stored = conn.execute(select(audit_events.c.hash).where(audit_events.c.seq == seq)).first()
    if stored is None:
        raise _Refused(
            "missing_event",
            f"the chain has no event {seq} (it holds {chain.events} verified events): events "
            "were deleted since the checkpoint, or it belongs to another database",
        )
    if stored.hash != expected:
        raise _Refused(
            "rewritten",
            f"event {seq} has hash {stored.hash} but the checkpoint recorded {expected}: the "
            "chain was rewritten since the checkpoint",
        )
    if not chain.chain_ok:
        raise _Refused(
            "chain",
            f"the chain does not verify (broken at event {chain.first_bad_seq}), so it cannot "
            "be shown to extend the checkpoint",
        )


def check_checkpoint(
    conn: Connection,
    data: bytes,
    *,
    file: str,
    chain: ChainReport,
    project: str,
    local: LocalKey | None,
) -> CheckpointCheck:
    """Check the checkpoint ``data`` (read from ``file``) against the chain in ``conn``, whose
    verification is ``chain``; every failure is a result, never an exception."""
    signed: dict[str, Any] = {}
    trusted_by: Any = None
    detail: str | None = None
    try:
        signed, signature = _parse(data)
        _verify_signature(signed, signature)
        trusted_by, detail = _trust(conn, signed, local)
        if signed["project"] != project:
            raise _Refused(
                "project",
                f"it is a checkpoint of project {signed['project']!r}, not of {project!r}",
            )
        _extends(conn, signed, chain)
    except _Refused as refused:
        return CheckpointCheck(
            False,
            file,
            refused.problem,
            f"checkpoint {file}: {refused.reason}",
            **_claimed(signed),
            trusted_by=trusted_by,
            trust_detail=detail,
        )
    return CheckpointCheck(
        True, file, **_claimed(signed), trusted_by=trusted_by, trust_detail=detail
    )


def _claimed(signed: dict[str, Any]) -> dict[str, Any]:
    names = ("project", "seq", "hash", "time", "actor", "key_fingerprint")
    return {name: signed.get(name) for name in names}
