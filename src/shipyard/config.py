"""Settings: defaults < ``shipyard.toml`` < ``SHIPYARD_*`` environment < explicit arguments.

A project is the folder holding ``shipyard.toml``. Commands find it like git does: walking up
from the current directory; ``--project DIR`` or ``SHIPYARD_PROJECT`` override the search.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard._internal import discovery
from shipyard._internal.discovery import CONFIG_FILE, STATE_DIR
from shipyard.errors import InvalidInputError, ProjectNotFoundError

__all__ = [
    "CONFIG_FILE",
    "STATE_DIR",
    "Settings",
    "current_actor",
    "find_project_root",
    "kpi_name_problem",
    "user_config_dir",
]

DEFAULT_DB_FILE = "shipyard.db"
DEFAULT_ARTIFACTS_DIR = "artifacts"

# A KPI name becomes a Prometheus label value and a key of `deployments metrics`: ASCII
# letters, digits and underscores only, so it never carries a newline, a quote or a brace.
_KPI_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,63}")
KPI_NAME_RULE = "1 to 64 ASCII letters, digits or underscores, not starting with a digit"


def kpi_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a KPI, or None when it can (the one rule, for declared names
    and for events alike).

    >>> kpi_name_problem("revenue") is None
    True
    >>> kpi_name_problem("net revenue")[:33]
    "'net revenue' is not a KPI name: "
    """
    if isinstance(name, str) and _KPI_NAME.fullmatch(name):
        return None
    shown = repr(name[:80]) if isinstance(name, str) else f"a {type(name).__name__}"
    return f"{shown} is not a KPI name: use {KPI_NAME_RULE}"


def current_actor() -> str:
    """The acting user: ``SHIPYARD_USER``, else the operating-system user."""
    return discovery.acting_user()


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's shipyard folder, outside every project: ``$XDG_CONFIG_HOME/shipyard``
    (default ``~/.config/shipyard``); it holds the audit signing key and the stored login.

    >>> user_config_dir({"XDG_CONFIG_HOME": "/home/ann/.cfg"})
    PosixPath('/home/ann/.cfg/shipyard')
    """
    return Path(discovery.config_dir(environ))


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Locate the project folder.

    ``start`` (an explicit ``--project``) wins, then ``SHIPYARD_PROJECT``, then the nearest
    folder holding ``shipyard.toml`` at or above the current directory.

    Raises:
        ProjectNotFoundError: no project was found.
    """
    found = discovery.project_root(start)
    if found is not None:
        return Path(found)
    explicit = discovery.explicit_root(start)
    if explicit is not None:
        raise ProjectNotFoundError(
            f"{discovery.resolve(explicit)} is not a shipyard project (no {CONFIG_FILE}); "
            f"create one with `shipyard init {explicit}`"
        )
    here = Path.cwd().resolve()
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
    # The KPI names deployments accept (``[serving] kpis``, ``SHIPYARD_KPIS``); None: any
    # valid name, up to a limit per deployment.
    kpis: tuple[str, ...] | None = None
    # Webhooks (``[webhooks]``): the private addresses they may still reach (``allow``, IPs,
    # networks or host names; ``SHIPYARD_WEBHOOKS_ALLOW``), and the HTTP timeout in seconds.
    webhooks_allow: tuple[str, ...] = ()
    webhooks_timeout: float = 10.0
    # Folders a webhook's secret file may be in (``[webhooks] secret_dirs``,
    # ``SHIPYARD_WEBHOOKS_SECRET_DIRS``), besides ``.shipyard/webhook-secrets``.
    webhooks_secret_dirs: tuple[str, ...] = ()

    @property
    def webhook_secret_dirs(self) -> tuple[Path, ...]:
        """Where a webhook's secret file may be: ``.shipyard/webhook-secrets`` and the
        configured folders (relative ones from the project root), resolved."""
        dirs = [self.root / STATE_DIR / "webhook-secrets"]
        dirs += [self.root / Path(d).expanduser() for d in self.webhooks_secret_dirs]
        return tuple(d.resolve() for d in dirs)

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
            InvalidInputError: the configuration file is not valid TOML, or a declared KPI
                name is not a valid name.
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
            kpis=_declared_kpis(data.get("serving", {}), cfg),
            **_webhook_settings(data.get("webhooks", {}), cfg),
        )

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR


def _declared_kpis(serving: Any, cfg: Path) -> tuple[str, ...] | None:
    """The KPI names from ``SHIPYARD_KPIS`` (comma-separated), else from ``[serving] kpis``
    in ``shipyard.toml``; None when neither declares any.

    Raises:
        InvalidInputError: a declared name is not a valid KPI name, or ``kpis`` is not a
            list of names.
    """
    env = os.environ.get("SHIPYARD_KPIS", "").strip()
    if env:
        where = "SHIPYARD_KPIS"
        names: Any = [n.strip() for n in env.split(",") if n.strip()]
    else:
        where = f"{cfg} [serving] kpis"
        names = serving.get("kpis") if isinstance(serving, dict) else None
        if names is None:
            return None
        if not isinstance(names, list):
            raise InvalidInputError(
                f'{where} must be a list of names, e.g. kpis = ["revenue", "churned"]'
            )
    for name in names:
        problem = kpi_name_problem(name)
        if problem is not None:
            raise InvalidInputError(f"{where}: {problem}")
    return tuple(dict.fromkeys(names)) or None


def _webhook_settings(section: Any, cfg: Path) -> dict[str, Any]:
    """``webhooks_allow``, ``webhooks_secret_dirs`` and ``webhooks_timeout`` from
    ``SHIPYARD_WEBHOOKS_ALLOW`` (comma-separated), ``SHIPYARD_WEBHOOKS_SECRET_DIRS`` (separated
    like PATH) and ``SHIPYARD_WEBHOOKS_TIMEOUT``, else ``[webhooks] allow``, ``secret_dirs``
    and ``timeout``.

    Raises:
        InvalidInputError: ``allow`` is not a list of strings, or ``timeout`` not a positive
            number of seconds.
    """
    section = section if isinstance(section, dict) else {}
    out: dict[str, Any] = {}
    env = os.environ.get("SHIPYARD_WEBHOOKS_ALLOW", "").strip()
    allow: Any = [a.strip() for a in env.split(",") if a.strip()] if env else section.get("allow")
    if allow is not None:
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise InvalidInputError(
                f'{cfg} [webhooks] allow must be a list of addresses, e.g. allow = ["10.0.0.5"]'
            )
        out["webhooks_allow"] = tuple(allow)
    env = os.environ.get("SHIPYARD_WEBHOOKS_SECRET_DIRS", "").strip()
    dirs: Any = (
        [d.strip() for d in env.split(os.pathsep) if d.strip()]
        if env
        else section.get("secret_dirs")
    )
    if dirs is not None:
        if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
            raise InvalidInputError(
                f"{cfg} [webhooks] secret_dirs must be a list of folders, e.g. secret_dirs = "
                '["/etc/shipyard/webhooks"]'
            )
        out["webhooks_secret_dirs"] = tuple(dirs)
    raw = os.environ.get("SHIPYARD_WEBHOOKS_TIMEOUT", "").strip() or section.get("timeout")
    if raw is not None:
        try:
            timeout = float(raw)
        except (TypeError, ValueError):
            timeout = -1.0
        if not 0 < timeout <= 300:
            raise InvalidInputError(
                f"the webhook timeout {raw!r} (SHIPYARD_WEBHOOKS_TIMEOUT or {cfg} [webhooks] "
                "timeout) must be a number of seconds above 0 and at most 300"
            )
        out["webhooks_timeout"] = timeout
    return out


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
