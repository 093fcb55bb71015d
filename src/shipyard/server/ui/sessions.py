"""Web UI sessions and CSRF tokens, signed with a secret the server keeps.

Logging in checks an API token once (its secret against the stored hash); the session cookie
then holds only the token's *id*, an expiry and a random nonce, signed with HMAC-SHA256 under
a secret kept in ``.shipyard/ui-secret`` (mode 0600, made on first use). The token itself
never reaches the cookie, and every request re-checks the token id against the token table
(:func:`shipyard.governance.tokens.still_valid`), so revoking or expiring the token ends its
sessions at once.

A CSRF token is an HMAC of the session cookie (or, before login, of a random login nonce kept
in a cookie of its own), so a page of another site can neither read nor forge it.

>>> signer = SessionSigner(b"k" * 32)
>>> cookie = signer.issue("0123456789abcdef", lifetime_seconds=60)
>>> signer.read(cookie).token_id
'0123456789abcdef'
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "Session",
    "SessionSigner",
    "load_secret",
]

SESSION_COOKIE = "shipyard_session"
LOGIN_COOKIE = "shipyard_login"
#: The longest a session lasts (less when its token expires sooner).
SESSION_SECONDS = 12 * 3600
SECRET_FILE = "ui-secret"
_COOKIE = re.compile(r"^([0-9a-f]{16})\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Session:
    """A verified session cookie: the API token it was opened with, and when it ends."""

    token_id: str
    expires: int  # seconds since the epoch
    cookie: str


def load_secret(state_dir: Path) -> bytes:
    """The server's signing secret from ``state_dir/ui-secret``, made (32 random bytes, mode
    0600) the first time. Several worker processes may start at once: the file is written
    under a temporary name and linked into place, so all of them read the same secret."""
    path = state_dir / SECRET_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32).hex().encode())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SessionSigner:
    """Issues and checks session cookies and CSRF tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}|{value}".encode(), hashlib.sha256).digest())

    def issue(self, token_id: str, *, lifetime_seconds: int) -> str:
        """A cookie value for a session of the token ``token_id``."""
        body = f"{token_id}.{int(time.time()) + lifetime_seconds}.{_b64(secrets.token_bytes(16))}"
        return f"{body}.{self._mac('session', body)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie stands for; None if it is missing, forged or expired."""
        m = _COOKIE.match(cookie or "")
        if m is None:
            return None
        body = cookie[: m.start(4) - 1]  # type: ignore[index]
        if not hmac.compare_digest(self._mac("session", body), m.group(4)):
            return None
        expires = int(m.group(2))
        if expires <= time.time():
            return None
        return Session(m.group(1), expires, cookie)  # type: ignore[arg-type]

    def csrf(self, binding: str) -> str:
        """The CSRF token of a session cookie (or of a login nonce, or of the local UI)."""
        return self._mac("csrf", binding)

    def csrf_ok(self, binding: str, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf(binding), sent or "")
