"""Where a client finds its server: ``SHIPYARD_SERVER`` and ``SHIPYARD_TOKEN``, else the login
stored by ``shipyard login URL`` in ``$XDG_CONFIG_HOME/shipyard/login.json`` (mode 0600,
written atomically; ``shipyard logout`` removes it).

>>> remote_target({"SHIPYARD_SERVER": "http://srv:8000", "SHIPYARD_TOKEN": "shp_x"})
RemoteTarget(url='http://srv:8000')
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from shipyard._internal.discovery import LOGIN_FILE
from shipyard._internal.files import write_bytes_atomic
from shipyard.config import user_config_dir
from shipyard.errors import InvalidInputError, UnauthenticatedError

__all__ = [
    "SERVER_ENV",
    "TOKEN_ENV",
    "RemoteTarget",
    "forget_login",
    "login_path",
    "remote_target",
    "store_login",
]

SERVER_ENV = "SHIPYARD_SERVER"
TOKEN_ENV = "SHIPYARD_TOKEN"


@dataclass(frozen=True)
class RemoteTarget:
    """A server and the token to use there (the token never shows in ``repr``)."""

    url: str
    token: str = field(repr=False)
    source: str = field(default="environment", repr=False)  # or the login file's path


def login_path(environ: Mapping[str, str] | None = None) -> Path:
    """The stored login: ``$XDG_CONFIG_HOME/shipyard/login.json``."""
    return user_config_dir(environ) / LOGIN_FILE


def check_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host.

    Raises:
        InvalidInputError: anything else.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(
            f"{url!r} is not a server URL: give http://HOST:PORT or https://HOST (as printed "
            "by `shipyard server`)"
        )
    return url.strip().rstrip("/")


def remote_target(environ: Mapping[str, str] | None = None) -> RemoteTarget | None:
    """The server this process should talk to, or None to use a local project.

    ``SHIPYARD_SERVER`` (with ``SHIPYARD_TOKEN``) wins over the stored login; a token from the
    stored login is only ever sent to the server it was stored for.

    Raises:
        UnauthenticatedError: ``SHIPYARD_SERVER`` is set but there is no token for it.
        InvalidInputError: ``SHIPYARD_SERVER`` is not a URL, or the login file is damaged.
    """
    env = os.environ if environ is None else environ
    stored = _read_login(login_path(env))
    server = env.get(SERVER_ENV, "").strip()
    token = env.get(TOKEN_ENV, "").strip()
    if server:
        url = check_url(server)
        if token:
            return RemoteTarget(url, token)
        if stored is not None and stored.url == url:
            return stored
        raise UnauthenticatedError(
            f"{SERVER_ENV} is {url} but there is no token for it: set {TOKEN_ENV} or run "
            f"`shipyard login {url}`"
        )
    if stored is None:
        return None
    if token:
        return RemoteTarget(stored.url, token)
    return stored


def store_login(url: str, token: str, environ: Mapping[str, str] | None = None) -> Path:
    """Remember ``url`` and ``token`` for this user (mode 0600, replaced atomically)."""
    path = login_path(environ)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    doc = {"server": check_url(url), "token": token}
    write_bytes_atomic(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)
    return path


def forget_login(environ: Mapping[str, str] | None = None) -> Path | None:
    """Remove the stored login; the file it was in, or None when there was none."""
    path = login_path(environ)
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path


def _read_login(path: Path) -> RemoteTarget | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
        return RemoteTarget(check_url(doc["server"]), str(doc["token"]), str(path))
    except (ValueError, KeyError, TypeError):
        raise InvalidInputError(
            f"{path} is not a shipyard login; run `shipyard logout` and `shipyard login URL` again"
        ) from None
