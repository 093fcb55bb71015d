"""Fingerprints of up-to-date pipeline runs, written and checked with the standard library,
blake3 and sqlite3 only.

After ``shipyard pipeline run`` succeeds on a local project, the pipelines service writes
``.shipyard/pipelines/up-to-date/<invocation digest>.json``: everything the steps' cache keys
and the run's input versions depended on, in a form :func:`check` can compare with the
present without importing the pipeline, Typer or SQLAlchemy. The next identical command
line (an :class:`Invocation`) that finds every item unchanged answers "up to date" at once
(see :mod:`shipyard.cli.uptodate`); any difference, or any doubt, sends it through the
normal path, which writes a new fingerprint.

A fingerprint (``FORMAT`` 2)::

    invocation   the command line it answers (see Invocation)
    files        {absolute path: "blake3:<hex>", or null for a file that is absent}: the
                 pipeline file and the local modules it imports, each step's file, local
                 modules and notebook, the params file, shipyard.toml and shipyard.lock
    folders      {absolute path: digest of the names of what Python could import there}:
                 the folders imports are looked up in outside the interpreter's own (the
                 pipeline's, the current one, the project's, PYTHONPATH's) and those of the
                 local modules, so that a new module shadowing one the steps use is seen
    packages     {distribution: [its metadata file, version]}: what the steps import
    interpreter  Python's version, executable and prefix, the variables that change where
                 it imports from, and shipyard's version
    environment  the digest of every SHIPYARD_* variable (they choose the store, the user,
                 the server), and the acting user
    database     the SQLite file, and its audit head [seq, hash]: every change to the store
                 is an audit event, so an unchanged head means no dataset, model, run,
                 deletion, purge or alias changed since
    blobs        the stored files of the steps' plain-value outputs
    run          the pipeline run's JSON document (``pipeline run --json``)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import blake3

from shipyard import __version__
from shipyard._internal.discovery import LOGIN_FILE, STATE_DIR, acting_user, config_dir

TYPE_CHECKING = False  # typing's, without importing typing (see shipyard/__init__.py)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = [
    "FORMAT",
    "Invocation",
    "audit_head",
    "check",
    "file_digest",
    "folder_digest",
    "import_folders",
    "invocation",
    "locate",
    "metadata_version",
    "remove",
    "server_configured",
    "write",
]

FORMAT = 2
FOLDER = os.path.join(STATE_DIR, "pipelines", "up-to-date")
#: Variables that change where Python imports from, so which code and packages a step gets.
_IMPORT_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONNOUSERSITE")


class Invocation:
    """A ``shipyard pipeline run`` command line, as far as it decides the run: the pipeline
    file (absolute, resolved), the pipeline's name as given (empty: the file's only one), the
    ``--param`` strings in the order given (a later one wins over an earlier one of the same
    key, so order matters), the params file (absolute), ``--no-lock`` and the current
    folder (where ``python -m`` finds modules first)."""

    __slots__ = ("cwd", "file", "name", "no_lock", "params", "params_file")

    def __init__(
        self,
        file: str,
        name: str,
        params: Sequence[str],
        params_file: str | None,
        no_lock: bool,
        cwd: str,
    ) -> None:
        self.file = file
        self.name = name
        self.params = list(params)
        self.params_file = params_file
        self.no_lock = no_lock
        self.cwd = cwd

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "name": self.name,
            "params": self.params,
            "params_file": self.params_file,
            "no_lock": self.no_lock,
            "cwd": self.cwd,
        }

    @property
    def digest(self) -> str:
        """The hex digest that names this invocation's fingerprint file."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return blake3.blake3(text.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"Invocation({self.to_dict()!r})"


def locate(root: str, file: str) -> str:
    """Where a pipeline file named on the command line is: relative to the current directory
    or, when there is no such file there, to the project root (runs record it so)."""
    if not os.path.isabs(file) and not os.path.exists(file):
        rooted = os.path.join(root, file)
        if os.path.exists(rooted):
            return rooted
    return file


def invocation(
    root: str,
    target: str,
    params: Sequence[str],
    params_file: str | os.PathLike[str] | None,
    no_lock: bool,
) -> Invocation | None:
    """The invocation ``pipeline run TARGET [--param K=V]... [--params-file F] [--no-lock]``
    in the project at ``root``; None for a target it does not resolve plainly (a colon in the
    file's path, an empty file name): those always take the normal path.

    >>> invocation("/p", "/p/chain.py:chain", ["n=3"], None, False).to_dict()["name"]
    'chain'
    """
    file, _, name = target.rpartition(":") if ":" in target else (target, "", "")
    if not file or ":" in file:
        return None
    where = os.path.realpath(os.path.expanduser(locate(root, file)))
    given = None if params_file is None else os.path.realpath(os.fspath(params_file))
    return Invocation(where, name, params, given, no_lock, os.path.realpath(os.getcwd()))


def fingerprint_path(root: str, inv: Invocation) -> str:
    return os.path.join(root, FOLDER, inv.digest + ".json")


def file_digest(path: str) -> str | None:
    """``blake3:<hex>`` of a file's bytes (as :func:`shipyard._internal.hashing.digest_bytes`
    writes it), or None when there is no such file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return "blake3:" + blake3.blake3(data).hexdigest()


#: What Python may import from a folder: modules, compiled modules, and packages (folders).
_IMPORTABLE = (".py", ".pyc", ".so", ".pyd")


def folder_digest(path: str) -> str | None:
    """The digest of the sorted names of what Python could import from a folder (its
    modules and subfolders), or None when there is no such folder: a new module that would
    shadow another changes it; a data file written there does not."""
    try:
        with os.scandir(path) as found:
            names = sorted(
                e.name + ("/" if e.is_dir() else "")
                for e in found
                if e.name.endswith(_IMPORTABLE) or e.is_dir()
            )
    except (FileNotFoundError, NotADirectoryError):
        return None
    return "blake3:" + blake3.blake3("\n".join(names).encode("utf-8")).hexdigest()


def import_folders(extra: Sequence[str] = ()) -> list[str]:
    """The folders on ``sys.path`` outside the interpreter's own (the standard library and
    its site-packages), with ``extra``: where a local module could be found first."""
    own = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    out = {os.path.realpath(p) for p in extra}
    for entry in sys.path:
        where = os.path.realpath(entry or os.getcwd())
        # A folder that does not exist yet is kept too (as None): one created later could
        # hold a module; a file on the path (a zip archive) is the interpreter's business.
        if not os.path.isfile(where) and not any(
            where == o or where.startswith(o + os.sep) for o in own
        ):
            out.add(where)
    return sorted(out)


def metadata_version(path: str) -> str | None:
    """The ``Version`` of an installed distribution's metadata file (``METADATA`` or
    ``PKG-INFO``), read as plain text: ``importlib.metadata`` takes ~20 ms to import."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():  # the headers end at the first blank line
                break
            if line.startswith("Version:"):
                return line[len("Version:") :].strip()
    return None


def interpreter() -> list[str]:
    """What decides the Python code a step runs with, besides its files and packages."""
    return [
        sys.version,
        sys.executable,
        sys.prefix,
        __version__,
        *(os.environ.get(name, "") for name in _IMPORT_VARIABLES),
    ]


def environment_digest(environ: Mapping[str, str]) -> str:
    """The digest of every ``SHIPYARD_*`` variable (their values are never written down)."""
    items = sorted((k, v) for k, v in environ.items() if k.startswith("SHIPYARD_"))
    return "blake3:" + blake3.blake3(json.dumps(items).encode("utf-8")).hexdigest()


def server_configured(environ: Mapping[str, str]) -> bool:
    """Whether a team server is configured (``SHIPYARD_SERVER`` or a stored login)."""
    if environ.get("SHIPYARD_SERVER", "").strip():
        return True
    return os.path.exists(os.path.join(config_dir(environ), LOGIN_FILE))


def audit_head(database: str) -> list[Any] | None:
    """The ``[seq, hash]`` of the newest audit event of a SQLite metadata database, read
    through a read-only connection; None when the file cannot be named in a URI plainly.

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    import sqlite3

    if any(c in database for c in "?#%"):
        return None
    # A reader of a WAL database is rarely kept waiting; when it is, the normal path (which
    # waits its turn) is the better answer than waiting here.
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1)
    try:
        row = connection.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    finally:
        connection.close()
    return None if row is None else [int(row[0]), str(row[1])]


def write(
    root: str,
    inv: Invocation,
    *,
    actor: str,
    files: Mapping[str, str | None],
    folders: Mapping[str, str | None],
    packages: Mapping[str, tuple[str, str]],
    database: str,
    audit: list[Any],
    blobs: Sequence[str],
    run: Mapping[str, Any],
) -> str:
    """Write the fingerprint of ``inv`` (atomically) and return its path.

    Raises:
        OSError: it cannot be written.
        ValueError, TypeError: ``run`` holds a value JSON cannot carry (NaN, infinity, an
            object).
    """
    from shipyard._internal.files import write_bytes_atomic

    doc = {
        "format": FORMAT,
        "invocation": inv.to_dict(),
        "files": dict(sorted(files.items())),
        "folders": dict(sorted(folders.items())),
        "packages": {k: list(v) for k, v in sorted(packages.items())},
        "interpreter": interpreter(),
        "environment": environment_digest(os.environ),
        "actor": actor,
        "database": database,
        "audit": list(audit),
        "blobs": sorted(blobs),
        "run": run,
    }
    text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
    path = str(write_bytes_atomic(fingerprint_path(root, inv), text.encode("utf-8")))
    # The run that wrote this moved the audit head, so every other fingerprint can no longer
    # match: remove them rather than let them pile up.
    folder = os.path.dirname(path)
    for name in os.listdir(folder):
        if name.endswith(".json") and os.path.join(folder, name) != path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))
    return path


def remove(root: str, inv: Invocation) -> None:
    """Remove the fingerprint of ``inv``, if there is one."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(fingerprint_path(root, inv))


def check(root: str, inv: Invocation, environ: Mapping[str, str] | None = None) -> Any:
    """The run document of the fingerprint of ``inv`` when every item it records is as it
    was, else None: no fingerprint, an unreadable or damaged one, or anything changed. It
    never raises (any doubt means "not up to date"), and reads the database last."""
    env = os.environ if environ is None else environ
    try:
        with open(fingerprint_path(root, inv), "rb") as f:
            doc = json.loads(f.read())
        if not (
            isinstance(doc, dict)
            and doc.get("format") == FORMAT
            and doc.get("invocation") == inv.to_dict()
            and doc.get("interpreter") == interpreter()
            and doc.get("environment") == environment_digest(env)
            and doc.get("actor") == acting_user(env)
            and not server_configured(env)
            and isinstance(doc.get("run"), dict)
        ):
            return None
        for path, digest in doc["files"].items():
            if file_digest(path) != digest:
                return None
        for path, digest in doc["folders"].items():
            if folder_digest(path) != digest:
                return None
        for meta, version in doc["packages"].values():
            if metadata_version(meta) != version:
                return None
        if not all(os.path.isfile(blob) for blob in doc["blobs"]):
            return None
        head = doc["audit"]
        if not head or audit_head(doc["database"]) != head:
            return None
    except Exception:  # a damaged fingerprint, an unreadable file or database: not up to date
        return None
    return doc["run"]
