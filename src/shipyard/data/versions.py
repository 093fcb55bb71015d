"""Dataset versions in the metadata store: the read models, how references resolve, and the
one write path every new version goes through.

Writing is two-phase. A :class:`PendingVersion` is prepared outside any transaction (the data
converted, profiled and hashed in a staging file). :func:`commit_versions` then stores the
blobs (temporary name, then rename) and writes every pending version, its blob owners, lineage
and audit events in one database transaction, so that a split into train/valid/test, or a
batch and its quarantine, appear together or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import canonical_json, digest_file
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.authz import require_role
from shipyard.data import ingest
from shipyard.data.profiles import dtype_name, profile_with_reference, reference_parquet
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.refs import Ref, parse_ref
from shipyard.stores.audit import AuditedTransaction
from shipyard.stores.db.tables import (
    audit_events,
    audit_head,
    blob_refs,
    dataset_versions,
    datasets,
    drift_references,
)
from shipyard.stores.lineage import add_edge, parents_of
from shipyard.stores.versioning import next_version, pick_version

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from shipyard.context import ServiceContext
    from shipyard.monitoring.reference import ReferenceProfile

__all__ = [
    "KIND",
    "DatasetSummary",
    "DatasetVersion",
    "PendingVersion",
    "commit_versions",
    "log_read",
    "reference_of",
    "resolve",
    "stage_table",
    "stage_tree",
    "store_reference",
    "tombstone_of",
    "tombstones",
    "tree_manifest",
]

KIND = "dataset"


@dataclass(frozen=True)
class DatasetVersion(ReadModel):
    """One immutable version of a dataset.

    ``created`` is True when the call that returned it made a new version. ``status`` is
    ``unvalidated``, ``valid`` or ``invalid``; ``validation`` holds the latest contract report.
    """

    json_properties = ("ref",)

    name: str
    version: int
    digest: str
    kind: str  # "table" or "files"
    rows: int | None
    columns: list[str]
    schema: dict[str, str]
    profile: dict[str, Any]
    size_bytes: int
    message: str
    tags: dict[str, str]
    source: dict[str, Any]
    created_at: datetime
    created_by: str
    parents: list[str] = field(default_factory=list)
    status: str = "unvalidated"
    validation: dict[str, Any] | None = None
    contract: str | None = None
    created: bool = False
    # Set by an add with on_invalid="quarantine": where the failing rows went (this call only).
    quarantine: dict[str, Any] | None = None
    # A deleted version (a tombstone): by, at, reason and purged (when its blobs were removed).
    deleted: dict[str, Any] | None = None
    _service: Any = field(default=None, repr=False, compare=False, metadata={"json": "omit"})

    @property
    def ref(self) -> str:
        """The exact reference of this version, ``name@N``."""
        return f"{self.name}@{self.version}"

    def to_polars(self) -> pl.DataFrame:
        """The table as a polars DataFrame (digest verified, read logged)."""
        if self._service is None:
            raise InvalidInputError("this DatasetVersion is detached from its project")
        return self._service.read_polars(self)  # type: ignore[no-any-return]

    def to_pandas(self) -> pd.DataFrame:
        """The table as a pandas DataFrame (digest verified, read logged), which carries
        this version's reference in ``attrs`` so autolog records it as a run's input."""
        from shipyard.registry.autolog import DATASET_ATTR

        frame = self.to_polars().to_pandas()
        frame.attrs[DATASET_ATTR] = self.ref
        return frame


@dataclass(frozen=True)
class DatasetSummary(ReadModel):
    """A dataset and its latest version, as listed by ``data list``."""

    name: str
    versions: int
    latest: int
    kind: str
    rows: int | None
    columns: int
    status: str
    contract: str | None
    updated_at: datetime
    updated_by: str


# -- queries ----------------------------------------------------------------------------------


def select_versions() -> Any:
    return select(dataset_versions, datasets.c.name).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def dataset_id(conn: Connection, name: str) -> int:
    row = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no dataset '{name}'; see `shipyard data list`")
    return int(row.id)


def resolve(conn: Connection, ref: Ref, *, include_deleted: bool = False) -> Any:
    """The row of the version ``ref`` points at (``latest``: the latest not deleted).

    Raises:
        NotFoundError: no such dataset or version (the message names the latest version).
        DeletedError: the version was deleted (unless ``include_deleted``).
        InvalidInputError: an ambiguous digest prefix.
    """
    ds_id = dataset_id(conn, ref.name)
    base = select_versions().where(dataset_versions.c.dataset_id == ds_id)
    return pick_version(
        conn,
        base,
        dataset_versions,
        ref,
        what="dataset",
        versions_command="data versions",
        include_deleted=include_deleted,
    )


def tombstone_of(row: Any) -> dict[str, Any] | None:
    """Who deleted the version of ``row``, when and why, or None when it is not deleted."""
    if row.deleted_at is None:
        return None
    return {
        "by": row.deleted_by,
        "at": row.deleted_at,
        "reason": row.deleted_reason or "",
        "purged_at": row.purged_at,
    }


def tombstones(conn: Connection, refs: list[str]) -> dict[str, dict[str, Any]]:
    """The deleted versions among the dataset references ``refs`` (``name@N``), each with
    its digest and who deleted it, when and why: what a lineage shows in their place."""
    out: dict[str, dict[str, Any]] = {}
    wanted: dict[str, set[int]] = {}
    for ref in refs:
        name, _, version = ref.rpartition("@")
        if name and version.isdigit():
            wanted.setdefault(name, set()).add(int(version))
    if not wanted:
        return out
    rows = conn.execute(
        select_versions()
        .where(datasets.c.name.in_(list(wanted)))
        .where(dataset_versions.c.deleted_at.is_not(None))
    )
    for r in rows:
        if int(r.version) in wanted[r.name]:
            out[f"{r.name}@{r.version}"] = {"digest": r.digest, **(tombstone_of(r) or {})}
    return out


def find_digest(conn: Connection, name: str, digest: str) -> Any:
    """The first version of ``name`` with exactly this content that is not deleted, or None
    (content added again after its version was deleted makes a new version)."""
    return conn.execute(
        select_versions()
        .where(datasets.c.name == name)
        .where(dataset_versions.c.deleted_at.is_(None))
        .where(dataset_versions.c.digest == digest)
        .order_by(dataset_versions.c.version)
        .limit(1)
    ).first()


def to_version(conn: Connection, row: Any, service: Any) -> DatasetVersion:
    ref = f"{row.name}@{row.version}"
    return DatasetVersion(
        name=row.name,
        version=int(row.version),
        digest=row.digest,
        kind=row.kind,
        rows=None if row.rows is None else int(row.rows),
        columns=list(row.columns or []),
        schema=dict(row.schema or {}),
        profile=dict(row.profile or {}),
        size_bytes=int(row.size_bytes),
        message=row.message or "",
        tags=dict(row.tags or {}),
        source=dict(row.source or {}),
        created_at=row.created_at,
        created_by=row.created_by,
        parents=[p["ref"] for p in parents_of(conn, KIND, ref) if p["kind"] == KIND],
        status=row.status,
        validation=row.validation,
        contract=row.contract,
        deleted=tombstone_of(row),
        _service=service,
    )


def log_read(ctx: ServiceContext, v: DatasetVersion, payload: dict[str, Any]) -> None:
    """Record that the actor read version ``v`` (the access log): ``payload`` says how."""
    with ctx.audited() as tx:
        tx.record("dataset.read", KIND, v.ref, {"digest": v.digest, **payload})


def reference_of(ctx: ServiceContext, v: DatasetVersion) -> ReferenceProfile:
    """The drift reference stored with the table version ``v``.

    A version added before references were stored gets one now, built from its bytes (digest
    verified) as an add builds it, and stored; when two processes do this at once, one
    reference is stored and both return it. Not logged: the caller logs the read.

    Raises:
        InvalidInputError: ``v`` is a file tree.
        IntegrityError: its stored bytes do not match their digest.
    """
    from shipyard.monitoring.reference import ReferenceProfile

    if v.kind != "table":
        raise InvalidInputError(
            f"dataset '{v.ref}' is a file tree; drift references are made for tables only"
        )
    doc = _stored_reference(ctx, v)
    if doc is None:
        with ctx.artifacts.local_copy(v.digest, owner=f"dataset '{v.ref}'") as path:
            built = reference_parquet(path).to_json() | {"source": v.ref}
        with ctx.db.write() as conn:
            version_id = int(resolve(conn, parse_ref(v.ref)).id)
            store_reference(conn, version_id, built, datetime.now(UTC), if_absent=True)
        doc = _stored_reference(ctx, v)
        assert doc is not None
    return ReferenceProfile.from_json(doc)


def _stored_reference(ctx: ServiceContext, v: DatasetVersion) -> dict[str, Any] | None:
    with ctx.db.read() as conn:
        row = conn.execute(
            select(drift_references.c.reference)
            .join(dataset_versions, dataset_versions.c.id == drift_references.c.dataset_version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(datasets.c.name == v.name)
            .where(dataset_versions.c.version == v.version)
        ).first()
    return None if row is None else dict(orjson.loads(row.reference))


# -- the write path ---------------------------------------------------------------------------


@dataclass
class PendingVersion:
    """A version prepared in a staging file, not yet committed.

    ``parents`` holds resolved references (``name@N``) or integers: the index of an earlier
    pending version of the same commit.
    """

    name: str
    kind: str
    digest: str
    rows: int | None
    size: int
    columns: list[str]
    schema: dict[str, str]
    profile: dict[str, Any]
    source: dict[str, Any]
    payload: Path
    blobs: list[tuple[str, str]]
    move: bool = True
    message: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    parents: list[str | int] = field(default_factory=list)
    relation: str = "derived_from"
    status: str = "unvalidated"
    validation: dict[str, Any] | None = None
    contract: str | None = None
    # A file tree's files: (source file, its digest, its staging copy or None when the blob
    # was already stored).
    tree_files: list[tuple[str, str, Path | None]] = field(default_factory=list)
    # A table's drift reference (ReferenceProfile.to_json()), stored with the version.
    reference: dict[str, Any] | None = None
    # Other entities it was made from, (kind, ref): feature view versions of a training set.
    inputs: list[tuple[str, str]] = field(default_factory=list)
    # The table in memory when it was just parsed (validation reads it instead of the file).
    frame: pl.DataFrame | None = field(default=None, repr=False)


def stage_table(
    parquet: Path,
    name: str,
    source: dict[str, Any],
    progress: Progress = NO_PROGRESS,
    *,
    move: bool = True,
    frame: pl.DataFrame | None = None,
    frame_written: bool = False,
) -> PendingVersion:
    """Profile and hash a Parquet file into a pending version. With ``frame``, the table
    already in memory, the data is not read again: the frame is profiled, and unless
    ``frame_written`` says the file was just written from it, the file is written from it on
    a thread meanwhile; the pending version keeps the frame for validation.

    Raises:
        InvalidInputError: the file cannot be read, or has no columns.
    """
    import polars as pl

    where = source.get("path", "the data")
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="shipyard-parquet") as pool:
            written = (
                None
                if frame is None or frame_written
                else pool.submit(ingest.write_parquet, frame, parquet)
            )
            types = pl.scan_parquet(parquet).collect_schema() if frame is None else frame.schema
            schema = {c: dtype_name(t) for c, t in types.items()}
            if schema:
                progress.stage("profiling columns", total=len(schema))
                profile, reference = profile_with_reference(
                    parquet if frame is None else frame,
                    on_column=lambda _c: progress.advance(1),
                )
            if written is not None:
                written.result()
        if not schema:
            raise InvalidInputError(f"{where}: the data has no columns")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InvalidInputError(f"{where}: cannot read the data: {exc}") from None
    progress.stage("hashing the Parquet file")
    digest, size = digest_file(parquet)
    return PendingVersion(
        name=name,
        kind="table",
        digest=digest,
        rows=int(profile["rows"]),
        size=size,
        columns=list(schema),
        schema=schema,
        profile=profile,
        source=source,
        payload=parquet,
        blobs=[(digest, "data")],
        move=move,
        reference=reference.to_json(),
        frame=frame,
    )


def tree_manifest(files: list[dict[str, Any]]) -> bytes:
    """The stored manifest of a file tree (its bytes give the version's digest): ``files``
    holds ``{"path", "digest", "size", "exec"}`` per file, sorted by path."""
    return canonical_json({"format": "shipyard.filetree/1", "files": files})


# Files are hashed and copied in batches on a thread pool: BLAKE3 and file I/O release the GIL.
TREE_THREADS = min(16, 4 * (os.cpu_count() or 1))
TREE_BATCH = 64
#: Below this average file size a folder going to a local store is staged and stored by one
#: thread: the work per file is then mostly Python holding the GIL, and 8 threads on 2 cores
#: spent about half their CPU handing it over (87 futex calls a file) for no gain in time.
SMALL_FILES = 64 * 1024

T = TypeVar("T")
R = TypeVar("R")


def _batched(items: list[T]) -> list[list[T]]:
    return [items[i : i + TREE_BATCH] for i in range(0, len(items), TREE_BATCH)]


def _tree_threads(local: bool, files: int, size: int) -> int:
    """Threads to hash, copy and store ``files`` files of ``size`` bytes in all: one for many
    small files on a local store, the pool otherwise (large files hash without holding the
    GIL, and each upload to an object store waits on the network)."""
    return 1 if local and size < SMALL_FILES * max(files, 1) else TREE_THREADS


def _in_threads(
    work: Callable[[list[T]], list[R]],
    items: list[T],
    discard: Callable[[list[R]], None] = lambda _: None,
    threads: int = TREE_THREADS,
) -> Generator[list[R], None, None]:
    """``work`` on batches of ``items`` on a pool of ``threads`` threads (in this thread when
    one); each batch's results in order. When a batch fails (or the caller stops early), the
    batches not started are cancelled, those that finish anyway are given to ``discard``, and
    the error is raised (a failing batch cleans up after itself)."""
    if threads <= 1:
        for batch in _batched(items):
            yield work(batch)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="shipyard-tree") as pool:
        futures = [pool.submit(work, batch) for batch in _batched(items)]
        taken = 0
        try:
            for future in futures:
                result = future.result()
                taken += 1
                yield result
        except BaseException:
            for future in futures[taken:]:
                future.cancel()
            for future in futures[taken:]:
                if not future.cancelled() and future.exception() is None:
                    discard(future.result())
            raise


def stage_tree(ctx: ServiceContext, root: Path, name: str, progress: Progress) -> PendingVersion:
    """Hash every file of a folder and copy those not yet stored to staging files, reading
    each file once (in parallel, or by one thread for many small files: see
    :func:`_tree_threads`); stage its manifest. The staging files are stored at
    commit. An unreadable file is reported before anything is stored (and no staging file
    is left behind).
    """
    entries = list(ingest.walk_tree(root))
    total = sum(e.size for e in entries)
    progress.stage(f"hashing {len(entries)} files", total=total)
    store = ctx.artifacts

    def stage(batch: list[ingest.FileEntry]) -> list[tuple[str, int, Path | None]]:
        done: list[tuple[str, int, Path | None]] = []
        try:
            for e in batch:
                try:
                    blob, staged = store.stage_file(e.absolute)
                except OSError as exc:
                    raise InvalidInputError(f"{e.absolute}: cannot read: {exc.strerror}") from None
                done.append((blob.digest, blob.size, staged))
        except BaseException:
            _unlink([s for _, _, s in done])
            raise
        return done

    files: list[dict[str, Any]] = []
    tree_files: list[tuple[str, str, Path | None]] = []
    threads = _tree_threads(store.is_local, len(entries), total)
    batches = _in_threads(stage, entries, lambda done: _unlink([s for _, _, s in done]), threads)
    try:
        for batch, results in zip(_batched(entries), batches, strict=True):
            for e, (digest, size, staged) in zip(batch, results, strict=True):
                files.append({"path": e.path, "digest": digest, "size": size, "exec": e.executable})
                tree_files.append((e.absolute, digest, staged))
            progress.advance(sum(size for _, size, _ in results))
        staging = ctx.artifacts.new_staging_path(".json")
        staging.write_bytes(tree_manifest(files))
    except BaseException:
        batches.close()
        _unlink([s for _, _, s in tree_files])
        raise
    digest, _ = digest_file(staging)
    return PendingVersion(
        name=name,
        kind="files",
        digest=digest,
        rows=None,
        size=total,
        columns=[],
        schema={},
        profile={"files": len(files), "bytes": total},
        source={"path": str(root.resolve()), "format": "tree", "files": len(files)},
        payload=staging,
        blobs=[(digest, "manifest")] + [(str(f["digest"]), "file") for f in files],
        tree_files=tree_files,
    )


def _unlink(paths: Iterable[Path | None]) -> None:
    for path in paths:
        if path is not None:
            path.unlink(missing_ok=True)


def _store_tree_files(
    ctx: ServiceContext, files: list[tuple[str, str, Path | None]], size: int
) -> list[str]:
    """Store the staged files of a file tree (a rename each on a local store), in parallel
    unless they are many small files on a local store (:func:`_tree_threads`); the digests
    of the blobs that were already stored (re-used, not written).
    A file whose blob was present when it was staged is only refreshed; should the blob have
    gone since, the file is read again and must still have the same content."""
    store = ctx.artifacts

    def put(batch: list[tuple[str, str, Path | None]]) -> list[str]:
        reused: list[str] = []
        for i, (source, expected, staged) in enumerate(batch):
            try:
                if staged is not None:
                    store.put_staged(staged, expected)
                elif store.refresh(expected):
                    reused.append(expected)
                else:
                    blob, staged = store.stage_file(source)
                    if staged is not None:
                        store.put_staged(staged, blob.digest)
                    if blob.digest != expected:
                        raise InvalidInputError(
                            f"{source} changed while it was being added; add the folder again"
                        )
            except BaseException:
                _unlink([s for _, _, s in batch[i:]])
                raise
        return reused

    threads = _tree_threads(store.is_local, len(files), size)
    return [d for batch in _in_threads(put, files, threads=threads) for d in batch]


#: The audit action recorded when a purge removes blobs from the artifact store, in the
#: transaction that removes them (see :func:`shipyard.data.deletion.remove_unreferenced`).
BLOBS_REMOVED = "artifacts.remove"


def _reused_blobs_gone(
    ctx: ServiceContext, tx: AuditedTransaction, since: int, reused: list[str]
) -> list[str]:
    """The blobs of ``reused`` that a purge removed after audit event ``since``: a write
    that found its content stored may have found it just before a purge removed it.

    A purge removes blobs holding the audit chain's lock, as this write's transaction does,
    and records so; the store is asked only when such a record follows ``since``."""
    if not reused:
        return []
    purged = tx.conn.execute(
        select(audit_events.c.seq)
        .where(audit_events.c.seq > since)
        .where(audit_events.c.action == BLOBS_REMOVED)
        .limit(1)
    ).first()
    if purged is None:
        return []
    return [d for d in dict.fromkeys(reused) if not ctx.artifacts.exists(d)]


def commit_versions(
    ctx: ServiceContext, pending: list[PendingVersion], service: Any
) -> list[DatasetVersion]:
    """Store the payloads and write every pending version in one transaction.

    A pending version whose content already exists under its name yields that version with
    ``created=False``. If the transaction fails, blobs stored here stay behind unreferenced
    (another writer may be about to refer to the same content); ``shipyard gc`` removes them.
    """
    with ctx.db.read() as conn:
        since = int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())
    reused: list[str] = []
    for p in pending:
        if p.tree_files:
            reused += _store_tree_files(ctx, p.tree_files, p.size or 0)
        _, new = ctx.artifacts.put_file(p.payload, move=p.move, digest=p.digest)
        if not new:
            reused.append(p.digest)
    with ctx.audited() as tx:
        require_role(tx.conn, ctx.actor, "contributor", "add data")
        gone = _reused_blobs_gone(ctx, tx, since, reused)
        if gone:
            raise ConflictError(
                f"a purge removed content this write re-uses ({len(gone)} blob"
                f"{'' if len(gone) == 1 else 's'}, e.g. {gone[0][:19]}…) while it was being "
                "stored; nothing was added: run the command again"
            )
        results: list[DatasetVersion] = []
        for p in pending:
            results.append(_insert(tx, p, results, service))
    return results


def _insert(
    tx: AuditedTransaction, p: PendingVersion, earlier: list[DatasetVersion], service: Any
) -> DatasetVersion:
    conn = tx.conn
    dup = find_digest(conn, p.name, p.digest)
    if dup is not None:
        return to_version(conn, dup, service)
    now = datetime.now(UTC)
    ds_id = _ensure_dataset(tx, p.name, now)
    version = next_version(conn, dataset_versions, dataset_versions.c.dataset_id == ds_id)
    ref = f"{p.name}@{version}"
    inserted = conn.execute(
        dataset_versions.insert().values(
            dataset_id=ds_id,
            version=version,
            digest=p.digest,
            kind=p.kind,
            rows=p.rows,
            size_bytes=p.size,
            columns=p.columns,
            schema=p.schema,
            profile=p.profile,
            source=p.source,
            source_digest=p.source.get("digest"),
            message=p.message,
            tags=p.tags,
            created_at=now,
            created_by=tx.actor,
            status=p.status,
            validation=p.validation,
            contract=p.contract,
        )
    )
    if p.reference is not None:
        store_reference(
            conn,
            int(inserted.inserted_primary_key[0]),  # type: ignore[index]
            p.reference | {"source": ref},
            now,
        )
    owned: dict[str, str] = {}
    for digest, role in p.blobs:
        owned.setdefault(digest, role)
    conn.execute(  # one statement for all of a file tree's blobs
        blob_refs.insert(),
        [
            {"digest": digest, "owner_kind": KIND, "owner": ref, "role": role}
            for digest, role in owned.items()
        ],
    )
    parent_refs = [earlier[x].ref if isinstance(x, int) else x for x in p.parents]
    for parent in parent_refs:
        add_edge(conn, (KIND, parent), (KIND, ref), p.relation)
    for kind, parent in p.inputs:
        add_edge(conn, (kind, parent), (KIND, ref), "input_of")
    tx.record(
        "dataset.add",
        KIND,
        ref,
        {
            "digest": p.digest,
            "kind": p.kind,
            "rows": p.rows,
            "message": p.message,
            "tags": p.tags,
            "parents": parent_refs,
            "relation": p.relation if parent_refs else None,
            **({"inputs": [f"{k}:{r}" for k, r in p.inputs]} if p.inputs else {}),
            "status": p.status,
            "contract": p.contract,
            "source": p.source,
        },
    )
    row = conn.execute(
        select_versions().where(datasets.c.id == ds_id).where(dataset_versions.c.version == version)
    ).one()
    return replace(to_version(conn, row, service), created=True)


def store_reference(
    conn: Connection,
    version_id: int,
    reference: dict[str, Any],
    now: datetime,
    *,
    if_absent: bool = False,
) -> None:
    """Store the drift reference of the version with row id ``version_id`` (``if_absent``:
    unless one is stored already, e.g. by a concurrent first use)."""
    stmt: Any = drift_references.insert()
    if if_absent:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(drift_references).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(drift_references).on_conflict_do_nothing()
    text = orjson.dumps(reference).decode()
    conn.execute(stmt.values(dataset_version_id=version_id, reference=text, created_at=now))


def _ensure_dataset(tx: AuditedTransaction, name: str, now: datetime) -> int:
    row = tx.conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first()
    if row is not None:
        return int(row.id)
    res = tx.conn.execute(datasets.insert().values(name=name, created_at=now, created_by=tx.actor))
    tx.record("dataset.create", KIND, name, {})
    return int(res.inserted_primary_key[0])  # type: ignore[index]
