"""Artifacts addressed by path, as the MLflow artifact service sees them: a tree of files.

>>> tree.put("1/3f9a…/artifacts/plots/roc.png", stream)     # doctest: +SKIP
>>> [f.path for f in tree.list("1/3f9a…/artifacts")]       # doctest: +SKIP
['plots']

A path ``<experiment id>/<run id>/artifacts/<file>`` is a file of that run: stored exactly as
:meth:`ActiveRun.log_artifact` stores it (a ``run_artifacts`` row, the blob owned by the run),
so ``shipyard runs show`` lists it. Any other path (MLflow 3 keeps logged models under
``<experiment id>/models/<model id>/artifacts/``) is a free-standing file: the blob is owned by
its path (a ``blob_refs`` row of kind ``artifact_path``), which keeps it from garbage
collection. Either way the bytes go to the project's content-addressed artifact store, local
or S3.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.stores.db.tables import blob_refs, run_artifacts, runs
from shipyard.tracking.active import contributor_tx, own_blob

if TYPE_CHECKING:
    from shipyard.context import ServiceContext

__all__ = ["ArtifactFile", "ArtifactTree", "run_artifact_path"]

PATH_KIND = "artifact_path"
MAX_PATH = 300  # blob_refs.owner
_RUN_PATH = re.compile(r"^(?P<exp>[^/]+)/(?P<run>[0-9a-f]{32})/artifacts(?:/(?P<rel>.*))?$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactFile(ReadModel):
    """One entry of a folder listing, or one stored file (``digest`` set for files)."""

    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None


def run_artifact_path(experiment_id: int, run_id: str, rel: str = "") -> str:
    """The tree path of a run's artifact (``rel`` empty: the run's artifact root)."""
    root = f"{experiment_id}/{run_id}/artifacts"
    return f"{root}/{rel}" if rel else root


def _clean(path: str) -> str:
    """``path`` without leading or trailing slashes; refuses ``..``, ``.``, empty parts and
    backslashes, so no path escapes its folder."""
    p = path.strip("/")
    parts = p.split("/") if p else []
    if any(part in ("", ".", "..") for part in parts) or "\\" in p or "\x00" in p:
        raise InvalidInputError(
            f"invalid artifact path {path!r}: use relative '/'-separated names without '.' "
            "or '..' parts"
        )
    return p


class ArtifactTree:
    """Service for path-addressed artifacts: ``put``, ``get``, ``list``, ``read``."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def put(self, path: str, stream: BinaryIO) -> ArtifactFile:
        """Store the bytes of ``stream`` at ``path`` (replacing what was there).

        Raises:
            PermissionDeniedError: the actor is not a contributor.
            NotFoundError: the path names a run that does not exist.
            InvalidInputError: the path is not a file path or is too long.
        """
        p = _clean(path)
        run_id, rel = self._split(p)
        if not (rel if run_id else p):
            raise InvalidInputError(f"artifact path {path!r} names a folder; give a file name")
        if run_id is None and len(p) > MAX_PATH:
            raise InvalidInputError(
                f"artifact path {p[:40]!r}… is {len(p)} characters; the limit is {MAX_PATH}"
            )
        # Check the role before taking the upload, so a viewer cannot fill the store.
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "store artifacts")
            if run_id is not None:
                _require_run(conn, run_id)
        blob, _ = self._ctx.artifacts.put_stream(stream)
        with contributor_tx(self._ctx, "store artifacts") as tx:
            if run_id is not None:
                tx.conn.execute(
                    run_artifacts.delete()
                    .where(run_artifacts.c.run_id == run_id)
                    .where(run_artifacts.c.path == rel)
                )
                tx.conn.execute(
                    run_artifacts.insert().values(
                        run_id=run_id, path=rel, digest=blob.digest, size=blob.size
                    )
                )
                own_blob(tx.conn, blob.digest, run_id, rel)
                tx.record("run.artifacts", "run", run_id, {"paths": [rel]})
            else:
                tx.conn.execute(
                    blob_refs.delete()
                    .where(blob_refs.c.owner_kind == PATH_KIND)
                    .where(blob_refs.c.owner == p)
                )
                tx.conn.execute(
                    blob_refs.insert().values(
                        digest=blob.digest, owner_kind=PATH_KIND, owner=p, role="artifact"
                    )
                )
                tx.record("artifact.put", PATH_KIND, p, {"digest": blob.digest})
        return ArtifactFile(p, False, blob.size, blob.digest)

    def get(self, path: str) -> ArtifactFile:
        """The stored file at ``path``.

        Raises:
            NotFoundError: no file there.
        """
        p = _clean(path)
        run_id, rel = self._split(p)
        with self._ctx.db.read() as conn:
            files = self._files(conn, p, run_id, rel, exact=True)
        if not files:
            raise NotFoundError(f"no artifact at {p!r}; list the folder to see what is there")
        digest, size = files[0][1], files[0][2]
        if size is None:
            size = self._ctx.artifacts.size(digest)
        return ArtifactFile(p, False, size, digest)

    def read(self, file: ArtifactFile) -> Iterator[bytes]:
        """The bytes of a file from :meth:`get`, in chunks, verified against its digest."""
        assert file.digest is not None
        with (
            self._ctx.artifacts.local_copy(file.digest, owner=file.path) as local,
            open(local, "rb") as f,
        ):
            while chunk := f.read(CHUNK):
                yield chunk

    def list(self, path: str = "") -> builtins.list[ArtifactFile]:
        """The files and folders directly under ``path`` (names relative to it), sorted; an
        empty list for a file or a folder with nothing in it."""
        p = _clean(path)
        run_id, rel = self._split(p)
        with self._ctx.db.read() as conn:
            files = self._files(conn, p, run_id, rel, exact=False)
        base = rel if run_id is not None else p
        prefix = f"{base}/" if base else ""
        entries: dict[str, ArtifactFile] = {}
        for full, digest, size in files:
            if not full.startswith(prefix):
                continue
            name, sep, _ = full[len(prefix) :].partition("/")
            if sep:
                entries.setdefault(name, ArtifactFile(name, True))
            else:
                entries[name] = ArtifactFile(name, False, size, digest)
        out = []
        for k in sorted(entries):
            e = entries[k]
            if not e.is_dir and e.size is None and e.digest is not None:
                e = ArtifactFile(e.path, False, self._ctx.artifacts.size(e.digest), e.digest)
            out.append(e)
        return out

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _split(p: str) -> tuple[str | None, str]:
        m = _RUN_PATH.match(p)
        if m is None:
            return None, p
        return m.group("run"), m.group("rel") or ""

    @staticmethod
    def _files(
        conn: Connection, p: str, run_id: str | None, rel: str, *, exact: bool
    ) -> builtins.list[tuple[str, str, int | None]]:
        """(path, digest, size) of the files at (exact) or under ``p``."""
        if run_id is not None:
            stmt = select(run_artifacts.c.path, run_artifacts.c.digest, run_artifacts.c.size).where(
                run_artifacts.c.run_id == run_id
            )
            if exact:
                stmt = stmt.where(run_artifacts.c.path == rel)
            elif rel:
                stmt = stmt.where(run_artifacts.c.path.startswith(f"{rel}/", autoescape=True))
            return [(r.path, r.digest, int(r.size)) for r in conn.execute(stmt)]
        owner = blob_refs.c.owner
        stmt2 = select(owner, blob_refs.c.digest).where(blob_refs.c.owner_kind == PATH_KIND)
        if exact:
            stmt2 = stmt2.where(owner == p)
        elif p:
            stmt2 = stmt2.where(owner.startswith(f"{p}/", autoescape=True))
        return [(r.owner, r.digest, None) for r in conn.execute(stmt2)]


def _require_run(conn: Connection, run_id: str) -> None:
    row = conn.execute(select(runs.c.lifecycle).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run {run_id!r} for this artifact path; see `shipyard runs list`")
