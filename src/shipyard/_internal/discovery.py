"""Where a command's project, user and user configuration are, with the standard library only.

:mod:`shipyard.config` builds its settings on these, and the command line's up-to-date check
(:mod:`shipyard.cli.uptodate`) uses them before anything else is imported, so both find the
same project and the same user by one rule. Paths are plain strings here: ``pathlib`` and
the rest of ``shipyard.config`` cost more to import than the whole up-to-date check.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing's, without importing typing (see shipyard/__init__.py)
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CONFIG_FILE",
    "LOGIN_FILE",
    "STATE_DIR",
    "acting_user",
    "config_dir",
    "explicit_root",
    "project_root",
    "search_root",
]

CONFIG_FILE = "shipyard.toml"
STATE_DIR = ".shipyard"
#: The stored login of ``shipyard login URL``, in :func:`config_dir`.
LOGIN_FILE = "login.json"


def explicit_root(start: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """The project folder given explicitly: ``start`` (``--project``), else
    ``SHIPYARD_PROJECT``; None when neither is given."""
    return start if start is not None else os.environ.get("SHIPYARD_PROJECT") or None


def project_root(start: str | os.PathLike[str] | None = None) -> str | None:
    """The project folder (resolved) of a command: ``start`` (``--project``), else
    ``SHIPYARD_PROJECT``, else the nearest folder holding ``shipyard.toml`` at or above the
    current directory; None when the one given holds no ``shipyard.toml`` or none is found
    (:func:`shipyard.config.find_project_root` says which)."""
    explicit = explicit_root(start)
    if explicit is None:
        return search_root()
    root = resolve(explicit)
    return root if os.path.isfile(os.path.join(root, CONFIG_FILE)) else None


def resolve(folder: str | os.PathLike[str]) -> str:
    """``folder`` with ``~`` expanded, absolute, symbolic links resolved."""
    return os.path.realpath(os.path.expanduser(os.fspath(folder)))


def search_root(cwd: str | None = None) -> str | None:
    """The nearest folder holding ``shipyard.toml`` at or above ``cwd`` (default: the
    current directory), resolved; None when there is none."""
    folder = os.path.realpath(cwd if cwd is not None else os.getcwd())
    while True:
        if os.path.isfile(os.path.join(folder, CONFIG_FILE)):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def config_dir(environ: Mapping[str, str] | None = None) -> str:
    """The user's shipyard folder: ``$XDG_CONFIG_HOME/shipyard``, else
    ``~/.config/shipyard`` (a relative ``XDG_CONFIG_HOME`` is invalid by the XDG spec and
    ignored)."""
    env = os.environ if environ is None else environ
    config = env.get("XDG_CONFIG_HOME", "").strip()
    if config and os.path.isabs(config):
        return os.path.join(config, "shipyard")
    return os.path.join(os.path.expanduser("~"), ".config", "shipyard")


def acting_user(environ: Mapping[str, str] | None = None) -> str:
    """The acting user: ``SHIPYARD_USER``, else the operating-system user."""
    env = os.environ if environ is None else environ
    user = env.get("SHIPYARD_USER", "").strip()
    if user:
        return user
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return "unknown"
