"""The fingerprint of an up-to-date pipeline run: written after a run that the same command
line, run again with nothing changed, would only repeat as cache hits (the format and the
check are in :mod:`shipyard._internal.fingerprints`).

A run stands for the next identical one when every step succeeded, none is volatile or has a
TTL (those decide by the clock), none reads a module-level constant that its file does not
write as a literal (``SCALE = int(os.environ["SCALE"])``: its value is in the step's key, but
nothing on disk shows when it changes), the project is local (SQLite and a local artifact store),
no team server is configured, and the run left the store so that the next run would compute
the same keys and find them: each input not read from ``shipyard.lock`` still resolves to
the version the run read (a step may register a new version of what another reads as
``@latest``), and every step's outputs are still there. Anything else writes no fingerprint,
and the next run takes the normal path.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal import fingerprints
from shipyard._internal.discovery import CONFIG_FILE, acting_user
from shipyard._internal.fingerprints import Invocation, file_digest
from shipyard.data.lock import LOCK_FILE
from shipyard.errors import ShipyardError
from shipyard.pipelines import records
from shipyard.pipelines.values import output_exists

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.pipelines.cache import CodeScanner
    from shipyard.pipelines.dag import Dag
    from shipyard.pipelines.records import PipelineRun
    from shipyard.pipelines.runner import StepServices
    from shipyard.pipelines.sources import PipelineSource

__all__ = ["forget", "read_pipeline_modules", "record", "snapshot"]


def forget(ctx: ServiceContext, inv: Invocation) -> None:
    """Remove the fingerprint of ``inv``: a run of it is starting, and may fail."""
    fingerprints.remove(str(ctx.settings.root), inv)


def snapshot(ctx: ServiceContext, inv: Invocation) -> dict[str, str | None]:
    """The digests of the files a run reads before its steps are keyed (the pipeline file,
    the params file, ``shipyard.toml``), taken before it reads them: an edit during the run
    means the run does not stand for the files as they are after it."""
    paths = [inv.file, str(ctx.settings.root / CONFIG_FILE)]
    if inv.params_file is not None:
        paths.append(inv.params_file)
    return {p: file_digest(p) for p in paths}


def read_pipeline_modules(scanner: CodeScanner, source: PipelineSource) -> None:
    """Have ``scanner`` read a Python pipeline's file and the local modules it imports (which
    the ``@pipeline`` function may build its graph from) now that the graph is built, so
    that an edit during the run is seen as one."""
    if source.kind == "python":
        for module in scanner.module_closure(source.path, set()):
            scanner.file_digest(module)


def record(
    ctx: ServiceContext,
    services: StepServices,
    inv: Invocation,
    source: PipelineSource,
    dag: Dag,
    run: PipelineRun,
    scanner: CodeScanner,
    before: dict[str, str | None],
) -> str | None:
    """Write the fingerprint of ``inv`` for ``run`` when the run stands for the next
    identical one (see the module's docstring); its path, or None when none was written."""
    database = _local_database(ctx)
    if (
        database is None
        or not ctx.artifacts.is_local
        or run.status != "succeeded"
        or any(s.status != "succeeded" for s in run.steps)
        or any(n.step.volatile or n.step.ttl is not None for n in dag.nodes.values())
        or scanner.computed_constants()  # their values may change with nothing on disk
        or str(source.path) != inv.file
        or ctx.actor != acting_user()
        or fingerprints.server_configured(os.environ)
    ):
        return None
    try:
        files = _files(ctx, inv, run, scanner, before)
        packages = _packages(scanner.packages())
        if files is None or packages is None:
            return None
        places = [inv.cwd, str(ctx.settings.root), os.path.dirname(inv.file)]
        places += [os.path.dirname(p) for p in files]
        folders = {f: fingerprints.folder_digest(f) for f in fingerprints.import_folders(places)}
        head = fingerprints.audit_head(database)
        if head is None or not _stands(ctx, services, run):
            return None
        blobs = _blobs(ctx, run)
        if fingerprints.audit_head(database) != head:  # the store changed meanwhile
            return None
        return fingerprints.write(
            str(ctx.settings.root),
            inv,
            actor=ctx.actor,
            files=files,
            folders=folders,
            packages=packages,
            database=database,
            audit=head,
            blobs=blobs,
            run=run.to_dict(),
        )
    except (OSError, ValueError, TypeError, sqlite3.Error, ShipyardError):
        # No fingerprint only costs the next run its shortcut; the run itself succeeded.
        fingerprints.remove(str(ctx.settings.root), inv)
        return None


def _local_database(ctx: ServiceContext) -> str | None:
    """The SQLite file of a local project's metadata database, else None."""
    url = ctx.settings.db_url
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix) :]
    return path if os.path.isabs(path) and os.path.isfile(path) else None


def _files(
    ctx: ServiceContext,
    inv: Invocation,
    run: PipelineRun,
    scanner: CodeScanner,
    before: dict[str, str | None],
) -> dict[str, str | None] | None:
    """Every file the keys and the graph depended on, with its digest, provided none changed
    while the run read it; and ``shipyard.lock`` as the run left it. None when one changed."""
    read = {str(p): d for p, d in scanner.files().items()}
    for path, digest in read.items():
        if before.get(path, digest) != digest:
            return None
    files: dict[str, str | None] = {**before, **read}
    for path, recorded in files.items():
        if file_digest(path) != recorded:
            return None
    lock = str(ctx.settings.root / LOCK_FILE)
    now = file_digest(lock)
    if run.lock is not None:
        expected: str | None = run.lock.digest  # the lock as the run wrote it
    elif not inv.no_lock:
        expected = None  # there was none; one written since would pin other versions
    else:
        expected = now  # not read: its content does not matter, its presence is recorded
    if now != expected:
        return None
    files[lock] = now
    return files


def _packages(versions: dict[str, str]) -> dict[str, tuple[str, str]] | None:
    """Each distribution with its metadata file, so that its version can be read back with
    one file read; None when one's metadata cannot be found or says another version."""
    out: dict[str, tuple[str, str]] = {}
    for name, version in versions.items():
        meta = _metadata_file(name)
        if meta is None or fingerprints.metadata_version(meta) != version:
            return None
        out[name] = (meta, version)
    return out


def _metadata_file(name: str) -> str | None:
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    # A distribution found on sys.path (PathDistribution) knows its .dist-info/.egg-info
    # folder only as a private attribute; any other kind gets no fingerprint.
    where = getattr(dist, "_path", None)
    if where is None:
        return None
    path = Path(where)
    candidates = [path / "METADATA", path / "PKG-INFO"] if path.is_dir() else [path]
    return next((str(c) for c in candidates if c.is_file()), None)


def _stands(ctx: ServiceContext, services: StepServices, run: PipelineRun) -> bool:
    """Whether the next run would read the same inputs and find every step's outputs."""
    with ctx.db.read() as conn:
        pins = records.pinned_inputs(conn, run.id)
    locked: set[str] = set()
    if run.lock is not None:
        locked = {*run.lock.read, *run.lock.added, *run.lock.replaced}
    for label, pin in pins.items():
        if label in locked:  # read from shipyard.lock, whose digest is recorded
            continue
        kind, _, ref = label.partition(":")
        found = services.datasets.get(ref) if kind == "dataset" else services.models.get(ref)
        if found.digest != pin["digest"]:
            return False
    return all(s.outputs is None or output_exists(services, s.outputs) for s in run.steps)


def _blobs(ctx: ServiceContext, run: PipelineRun) -> list[str]:
    """The stored files of the steps' plain-value outputs (datasets and models are checked
    through the audit head)."""
    out: list[str] = []
    for s in run.steps:
        rec: dict[str, Any] = s.outputs or {}
        if rec and rec.get("kind") not in ("dataset", "model"):
            path = ctx.artifacts.local_path(rec["digest"])
            if path is not None:
                out.append(str(path))
    return out
