"""The audit signing key: where it lives, how it is created, and its record in the chain.

``SHIPYARD_AUDIT_KEY_FILE`` names the key file, else it is ``audit-ed25519.pem`` in
``$XDG_CONFIG_HOME/shipyard/`` (default ``~/.config/shipyard/``): outside the project, so that
whoever can change the project's files or database cannot swap it. It is an unencrypted PKCS8
PEM Ed25519 private key, created on first use with mode 0600 (never readable by others, not
even for a moment) in a folder created with mode 0700; a key file inside the project folder,
or one other users can read, is refused.

A public key is recorded in the chain by an ``audit.key`` event (entity ``project:NAME``,
payload ``{"algorithm": "ed25519", "public_key": <64 hex>, "fingerprint": "blake3:…"}``), once
per key. Checkpoints (:mod:`shipyard.stores.checkpoints`) are signed with this key.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection

from shipyard._internal.files import write_bytes_atomic
from shipyard._internal.hashing import digest_bytes
from shipyard.config import user_config_dir
from shipyard.errors import InvalidInputError, ShipyardError
from shipyard.stores.audit import AuditedTransaction, AuditEvent, query_events

__all__ = [
    "KEY_ACTION",
    "KEY_FILE_ENV",
    "LocalKey",
    "key_fingerprint",
    "key_path",
    "load_key",
    "load_or_create_key",
    "local_key",
    "public_key_hex",
    "record_key",
    "recorded_key_event",
    "require_outside",
]

KEY_ACTION = "audit.key"
KEY_FILE_ENV = "SHIPYARD_AUDIT_KEY_FILE"
KEY_FILE_NAME = "audit-ed25519.pem"


def key_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the signing key lives: ``SHIPYARD_AUDIT_KEY_FILE``, else ``audit-ed25519.pem`` in
    ``$XDG_CONFIG_HOME/shipyard`` (default ``~/.config/shipyard``).

    >>> key_path({"SHIPYARD_AUDIT_KEY_FILE": "/keys/audit.pem"})
    PosixPath('/keys/audit.pem')
    """
    env = os.environ if environ is None else environ
    explicit = env.get(KEY_FILE_ENV, "").strip()
    if explicit:
        return Path(os.path.abspath(Path(explicit).expanduser()))
    return user_config_dir(env) / KEY_FILE_NAME


def key_fingerprint(public_key_hex: str) -> str:
    """``blake3:<hex>`` of the raw 32-byte public key (given as 64 hex digits)."""
    return digest_bytes(bytes.fromhex(public_key_hex))


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def require_outside(path: Path, project_root: Path) -> None:
    """Refuse a key file inside the project folder.

    Raises:
        InvalidInputError: ``path`` is ``project_root`` or inside it (links resolved).
    """
    resolved, root = path.resolve(), project_root.resolve()
    if resolved.is_relative_to(root):
        fix = (
            f"point {KEY_FILE_ENV} at a file outside {root}, or unset it to use the key in "
            "your config folder"
            if os.environ.get(KEY_FILE_ENV, "").strip()
            else f"set {KEY_FILE_ENV} to a file outside {root}"
        )
        raise InvalidInputError(
            f"the audit key file {path} is inside the project folder {root}, where anyone who "
            f"can change the project could replace it; {fix}"
        )


def load_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``.

    Raises:
        ShipyardError: it cannot be read, or other users can read it.
        InvalidInputError: it is encrypted, or not an Ed25519 PEM private key.
    """
    try:
        info = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise ShipyardError(f"cannot read the audit key file {path}: {exc.strerror}") from None
    if os.name == "posix" and info.st_mode & 0o077:
        raise ShipyardError(
            f"the audit key file {path} can be read by other users "
            f"(mode {stat.filemode(info.st_mode)}); make it private: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInputError(
            f"the audit key file {path} is encrypted; shipyard needs an unencrypted PKCS8 PEM "
            "key (kept private by its mode 0600)"
        ) from None
    except ValueError as exc:
        raise InvalidInputError(
            f"the audit key file {path} is not a PEM private key ({exc}); move it away and a "
            "new key is created on the next checkpoint"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(
            f"the audit key file {path} holds a {type(key).__name__.removeprefix('_')}, "
            "not an Ed25519 key"
        )
    return key


def load_or_create_key(path: Path, *, project_root: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The private key at ``path``, created (mode 0600, folder 0700) when missing; returns
    ``(key, created)``.

    Raises:
        InvalidInputError: the file is inside ``project_root``, or is not an unencrypted
            Ed25519 PEM key.
        ShipyardError: the file cannot be read or written, or other users can read it.
    """
    require_outside(path, project_root)
    if path.exists():
        return load_key(path), False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_bytes_atomic(path, pem, overwrite=False, mode=0o600)
    except FileExistsError:
        return load_key(path), False  # another process created it first: use theirs
    except OSError as exc:
        raise ShipyardError(f"cannot create the audit key file {path}: {exc}") from None
    return key, True


@dataclass(frozen=True)
class LocalKey:
    """The public half of this machine's key, as a verifier trusts it."""

    path: Path
    public_key: str


def local_key(project_root: Path) -> LocalKey | None:
    """The local key, or None when its file does not exist (verifying never creates one).

    Raises:
        InvalidInputError, ShipyardError: as :func:`load_or_create_key`.
    """
    path = key_path()
    if not path.exists():
        return None
    require_outside(path, project_root)
    return LocalKey(path, public_key_hex(load_key(path)))


def record_key(tx: AuditedTransaction, project: str, public_key: str) -> bool:
    """Record ``public_key`` in the chain (an ``audit.key`` event) unless it already is;
    returns whether an event was written."""
    if recorded_key_event(tx.conn, public_key) is not None:
        return False
    tx.record(
        KEY_ACTION,
        "project",
        project,
        {
            "algorithm": "ed25519",
            "public_key": public_key,
            "fingerprint": key_fingerprint(public_key),
        },
    )
    return True


def recorded_key_event(
    conn: Connection, public_key: str, *, up_to: int | None = None
) -> AuditEvent | None:
    """The first ``audit.key`` event that records ``public_key`` (at or before event
    ``up_to``), or None."""
    for event in query_events(conn, action=KEY_ACTION):
        if up_to is not None and event.seq > up_to:
            break
        if event.action == KEY_ACTION and event.payload.get("public_key") == public_key:
            return event
    return None
