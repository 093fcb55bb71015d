"""Personal data: the project's secret key and the keyed hash that stands for a personal value
wherever shipyard would otherwise keep it (the prediction log, an erasure's record).

The key is HMAC-SHA256's: ``SHIPYARD_PII_KEY`` (hex or any text) when set, else a random
32-byte key kept in ``.shipyard/pii.key`` (mode 0600), made on first use. It is never stored in
the metadata database, so a copy of the database alone cannot test guesses against the hashes.
The same value always hashes the same under one key, so hashed inputs can still be joined,
grouped and counted.

>>> pii_hash(b"k" * 32, 42).startswith("hmac-sha256:")
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import STATE_DIR, Settings

if TYPE_CHECKING:
    from shipyard.data.contracts import Contract

__all__ = ["KEY_ENV", "KEY_FILE", "pii_columns", "pii_hash", "pii_key", "pii_redactor"]

KEY_ENV = "SHIPYARD_PII_KEY"
KEY_FILE = "pii.key"
PREFIX = "hmac-sha256:"


def pii_key(settings: Settings) -> bytes:
    """The project's key for hashing personal values (made and stored on first use)."""
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        try:
            return bytes.fromhex(env)
        except ValueError:
            return env.encode()
    path = Path(settings.root, STATE_DIR, KEY_FILE)
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    try:
        os.link(tmp, path)  # the first writer wins; a concurrent one reads its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def pii_hash(key: bytes, value: Any) -> str | None:
    """The keyed hash of one value (None stays None, so a missing value stays visible).

    >>> pii_hash(b"key", 42) == pii_hash(b"key", "42")
    True
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return PREFIX + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def pii_columns(contracts: Iterable[Contract]) -> list[str]:
    """The columns any of ``contracts`` marks ``pii: true``, each once, in contract order."""
    out: dict[str, None] = {}
    for contract in contracts:
        out.update(dict.fromkeys(contract.pii_columns))
    return list(out)


def pii_redactor(
    settings: Settings, columns_of: Callable[[str], list[str]]
) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """A function ``(model_ref, row) -> row`` with the personal-data values of ``row``
    replaced by their keyed hash; ``columns_of(model_ref)`` names them (asked once per
    model). The key is read only when a row holds personal data."""
    cache: dict[str, frozenset[str]] = {}
    keys: list[bytes] = []

    def redact(model: str, row: dict[str, Any]) -> dict[str, Any]:
        cols = cache.get(model)
        if cols is None:
            cols = cache[model] = frozenset(columns_of(model))
        if not cols or cols.isdisjoint(row):
            return row
        if not keys:
            keys.append(pii_key(settings))
        return {k: pii_hash(keys[0], v) if k in cols else v for k, v in row.items()}

    return redact
