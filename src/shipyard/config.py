"""Settings: defaults < ``shipyard.toml`` < ``SHIPYARD_*`` environment < explicit arguments.

A project is the folder holding ``shipyard.toml``. Commands find it like git does: walking up
from the current directory; ``--project DIR`` or ``SHIPYARD_PROJECT`` override the search.
"""

from __future__ import annotations

import getpass
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInputError, ProjectNotFoundError

__all__ = ["CONFIG_FILE", "STATE_DIR", "Settings", "current_actor", "find_project_root"]

CONFIG_FILE = "shipyard.toml"
STATE_DIR = ".shipyard"
DEFAULT_DB_FILE = "shipyard.db"
DEFAULT_ARTIFACTS_DIR = "artifacts"


def current_actor() -> str:
    """The acting user: ``SHIPYARD_USER``, else the operating-system user."""
    user = os.environ.get("SHIPYARD_USER", "").strip()
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return "unknown"


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Locate the project folder.

    ``start`` (an explicit ``--project``) wins, then ``SHIPYARD_PROJECT``, then the nearest
    folder holding ``shipyard.toml`` at or above the current directory.

    Raises:
        ProjectNotFoundError: no project was found.
    """
    explicit = start if start is not None else os.environ.get("SHIPYARD_PROJECT") or None
    if explicit is not None:
        root = Path(explicit).expanduser().resolve()
        if not (root / CONFIG_FILE).is_file():
            raise ProjectNotFoundError(
                f"{root} is not a shipyard project (no {CONFIG_FILE}); "
                f"create one with `shipyard init {explicit}`"
            )
        return root
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ProjectNotFoundError(
        f"no {CONFIG_FILE} in {here} or any parent folder; run `shipyard init` to create a "
        "project, or pass --project DIR"
    )


@dataclass(frozen=True)
class Settings:
    """Where a project keeps its state, resolved from every source of configuration."""

    root: Path
    name: str
    db_url: str
    artifacts_uri: str
    artifacts_options: dict[str, Any] = field(default_factory=dict)
    redis_url: str | None = None

    @classmethod
    def load(
        cls,
        root: Path,
        *,
        db_url: str | None = None,
        artifacts_uri: str | None = None,
    ) -> Settings:
        """Read ``root/shipyard.toml`` and the environment; explicit arguments win.

        Raises:
            InvalidInputError: the configuration file is not valid TOML.
        """
        root = root.resolve()
        data: dict[str, Any] = {}
        cfg = root / CONFIG_FILE
        if cfg.is_file():
            try:
                data = tomllib.loads(cfg.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise InvalidInputError(f"{cfg} is not valid TOML: {exc}") from exc
        project = data.get("project", {})
        store = data.get("store", {})
        default_db = f"sqlite:///{STATE_DIR}/{DEFAULT_DB_FILE}"
        default_art = f"{STATE_DIR}/{DEFAULT_ARTIFACTS_DIR}"
        url = db_url or os.environ.get("SHIPYARD_DB_URL") or store.get("db_url") or default_db
        art = (
            artifacts_uri
            or os.environ.get("SHIPYARD_ARTIFACTS_URI")
            or store.get("artifacts_uri")
            or default_art
        )
        return cls(
            root=root,
            name=str(project.get("name", root.name)),
            db_url=_absolute_sqlite_url(url, root),
            artifacts_uri=_absolute_local_uri(art, root),
            artifacts_options=dict(store.get("artifacts_options", {})),
            redis_url=os.environ.get("SHIPYARD_REDIS_URL") or store.get("redis_url"),
        )

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR


def _absolute_sqlite_url(url: str, root: Path) -> str:
    """Make a relative ``sqlite:///path`` URL relative to the project root."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rel = url[len(prefix) :]
        if rel and rel != ":memory:" and not Path(rel).is_absolute():
            return prefix + str((root / rel).resolve())
    return url


def _absolute_local_uri(uri: str, root: Path) -> str:
    if "://" in uri:
        if uri.startswith("file://"):
            return str(Path(uri[len("file://") :]).resolve())
        return uri
    path = Path(uri).expanduser()
    return str((path if path.is_absolute() else root / path).resolve())


def render_config(name: str, *, db_url: str | None = None, artifacts_uri: str | None = None) -> str:
    """The ``shipyard.toml`` written by ``shipyard init``; explicit stores are recorded.

    Raises:
        InvalidInputError: ``db_url`` holds a password. ``shipyard.toml`` is meant to be
            committed, so a secret never goes there: set ``SHIPYARD_DB_URL`` instead.
    """
    if db_url and _has_password(db_url):
        raise InvalidInputError(
            f"the database URL {_mask_password(db_url)} holds a password, which would be "
            f"written to {CONFIG_FILE} (a file meant to be committed); pass the URL without "
            "the password, and set the full URL in the SHIPYARD_DB_URL environment variable "
            "(or use a ~/.pgpass file)"
        )
    db = db_url or f"sqlite:///{STATE_DIR}/{DEFAULT_DB_FILE}"
    art = artifacts_uri or f"{STATE_DIR}/{DEFAULT_ARTIFACTS_DIR}"
    return (
        "# shipyard project settings. SHIPYARD_DB_URL and SHIPYARD_ARTIFACTS_URI override these.\n"
        "[project]\n"
        f"name = {json.dumps(name)}\n"
        "\n"
        "[store]\n"
        f"db_url = {json.dumps(db)}\n"
        f"artifacts_uri = {json.dumps(art)}\n"
    )


def _has_password(url: str) -> bool:
    """Whether a database URL carries a password (``user:secret@host`` or ``?password=``)."""
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url)
        return bool(parts.password) or "password" in parse_qs(parts.query)
    except ValueError:  # not a URL at all: the database layer reports it
        return False


def _mask_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password else parts.netloc
    return parts._replace(netloc=netloc, query="").geturl()
