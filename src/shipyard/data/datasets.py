"""The dataset registry: immutable, content-addressed, numbered versions of tables and file trees.

>>> project = open_project(".")                                      # doctest: +SKIP
>>> v = project.datasets.add("credit", "applicants.csv", message="May batch")  # doctest: +SKIP
>>> project.datasets.get("credit@1").to_polars().shape                # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from shipyard._internal.hashing import canonical_json, digest_file
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.data import ingest
from shipyard.data.profiles import diff_profiles, dtype_name, profile_parquet
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.governance.access import require_role
from shipyard.refs import Ref, parse_ref, validate_name
from shipyard.stores.audit import AuditedTransaction, audited
from shipyard.stores.db.tables import blob_refs, dataset_versions, datasets, lineage_edges

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from shipyard.project import Project

__all__ = ["DatasetSummary", "DatasetVersion", "Datasets"]

KIND = "dataset"


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset.

    ``created`` is True when the call that returned it made a new version.
    """

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
    created: bool = False
    _service: Datasets | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """The exact reference of this version, ``name@N``."""
        return f"{self.name}@{self.version}"

    def to_polars(self) -> pl.DataFrame:
        """The table as a polars DataFrame (digest verified, read logged)."""
        if self._service is None:
            raise InvalidInputError("this DatasetVersion is detached from its project")
        return self._service.read_polars(self)

    def to_pandas(self) -> pd.DataFrame:
        """The table as a pandas DataFrame (digest verified, read logged)."""
        return self.to_polars().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "kind": self.kind,
            "rows": self.rows,
            "columns": self.columns,
            "schema": self.schema,
            "profile": self.profile,
            "size_bytes": self.size_bytes,
            "message": self.message,
            "tags": self.tags,
            "source": self.source,
            "parents": self.parents,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "created": self.created,
        }


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset and its latest version, as listed by ``data list``."""

    name: str
    versions: int
    latest: int
    kind: str
    rows: int | None
    columns: int
    updated_at: datetime
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "latest": self.latest,
            "kind": self.kind,
            "rows": self.rows,
            "columns": self.columns,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


DataInput = str | os.PathLike[str] | Any  # a path, or a pandas / polars DataFrame


class Datasets:
    """Service for datasets: ``add``, ``get``, ``list``, ``versions``, ``export``, ``diff``,
    ``tag``, ``lineage``."""

    def __init__(self, project: Project) -> None:
        self._p = project

    # -- writes -------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        data: DataInput,
        *,
        message: str = "",
        tags: Mapping[str, str] | None = None,
        parents: Iterable[str] = (),
        progress: Progress = NO_PROGRESS,
    ) -> DatasetVersion:
        """Add a version of dataset ``name`` from a file, a folder or a DataFrame.

        Identical content returns the existing version with ``created=False``.

        Raises:
            InvalidInputError: bad name, tags or input file (nothing is written).
            PermissionDeniedError: the actor is not a contributor.
            NotFoundError: a parent reference does not exist.
        """
        validate_name(name, "dataset name")
        tag_map = _check_tags(tags or {})
        parent_refs = [parse_ref(p) for p in parents]
        with self._p.db.read() as conn:
            require_role(conn, self._p.actor, "contributor", "add data")
            for pref in parent_refs:
                self._resolve(conn, pref)
        staged = _Staged()
        try:
            if isinstance(data, str | os.PathLike):
                path = Path(data).expanduser()
                fmt = ingest.detect_format(path)
                if fmt == "tree":
                    return self._add_tree(name, path, message, tag_map, parent_refs, progress)
                existing = self._by_source(name, path, fmt, progress, staged)
                if existing is not None:
                    return existing
                if fmt == "parquet":
                    # Parquet is stored byte for byte, once its schema has been checked.
                    ingest.check_parquet(path)
                    return self._add_table(
                        name, path, message, tag_map, parent_refs, progress, staged, move=False
                    )
                out = self._p.artifacts.new_staging_path(".parquet")
                staged.files.append(out)
                progress.stage(f"converting {path.name} to Parquet")
                ingest.to_parquet(path, fmt, out)
            else:
                out = self._p.artifacts.new_staging_path(".parquet")
                staged.files.append(out)
                _write_frame(data, out)
                staged.source = {"format": "dataframe"}
            return self._add_table(name, out, message, tag_map, parent_refs, progress, staged)
        finally:
            for f in staged.files:
                f.unlink(missing_ok=True)

    def _by_source(
        self, name: str, path: Path, fmt: str, progress: Progress, staged: _Staged
    ) -> DatasetVersion | None:
        """Hash the input file; if this dataset already holds a version made from identical
        bytes, return it without converting again."""
        size = path.stat().st_size
        progress.stage(f"hashing {path.name}", total=size)
        from shipyard._internal.hashing import CHUNK_SIZE, Hasher

        h = Hasher()
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK_SIZE):
                h.update(chunk)
                progress.advance(len(chunk))
        staged.source = {
            "path": str(path.resolve()),
            "format": fmt,
            "size": size,
            "digest": h.hexdigest(),
        }
        with self._p.db.read() as conn:
            row = conn.execute(
                _select_versions()
                .where(datasets.c.name == name)
                .where(dataset_versions.c.source_digest == h.hexdigest())
                .order_by(dataset_versions.c.version)
                .limit(1)
            ).first()
            if row is None:
                return None
            return self._to_version(conn, row)

    def _add_table(
        self,
        name: str,
        parquet: Path,
        message: str,
        tags: dict[str, str],
        parents: list[Ref],
        progress: Progress,
        staged: _Staged,
        *,
        move: bool = True,
    ) -> DatasetVersion:
        import polars as pl

        where = staged.source.get("path", "the data")
        try:
            schema = {
                c: dtype_name(t) for c, t in pl.scan_parquet(parquet).collect_schema().items()
            }
            if not schema:
                raise InvalidInputError(f"{where}: the data has no columns")
            progress.stage("profiling columns", total=len(schema))
            profile = profile_parquet(parquet, on_column=lambda _c: progress.advance(1))
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InvalidInputError(f"{where}: cannot read the data: {exc}") from None
        progress.stage("storing")
        digest, size = digest_file(parquet)
        record = _NewVersion(
            kind="table",
            digest=digest,
            rows=int(profile["rows"]),
            size=size,
            columns=list(schema),
            schema=schema,
            profile=profile,
            source=staged.source,
            blobs=[(digest, "data")],
        )
        return self._commit(name, record, parquet, message, tags, parents, move=move)

    def _add_tree(
        self,
        name: str,
        root: Path,
        message: str,
        tags: dict[str, str],
        parents: list[Ref],
        progress: Progress,
    ) -> DatasetVersion:
        entries = list(ingest.walk_tree(root))
        total = sum(e.size for e in entries)
        progress.stage(f"storing {len(entries)} files", total=total)
        created_blobs: list[str] = []
        try:
            files: builtins.list[dict[str, Any]] = []
            for e in entries:
                with open(e.absolute, "rb") as f:
                    blob, new = self._p.artifacts.put_stream(f, progress=progress.advance)
                if new:
                    created_blobs.append(blob.digest)
                files.append(
                    {"path": e.path, "digest": blob.digest, "size": blob.size, "exec": e.executable}
                )
            manifest = {"format": "shipyard.filetree/1", "files": files}
            staging = self._p.artifacts.new_staging_path(".json")
            staging.write_bytes(canonical_json(manifest))
            digest, _ = digest_file(staging)
            record = _NewVersion(
                kind="files",
                digest=digest,
                rows=None,
                size=total,
                columns=[],
                schema={},
                profile={"files": len(files), "bytes": total},
                source={"path": str(root.resolve()), "format": "tree", "files": len(files)},
                blobs=[(digest, "manifest")] + [(str(f["digest"]), "file") for f in files],
            )
            try:
                return self._commit(name, record, staging, message, tags, parents)
            finally:
                staging.unlink(missing_ok=True)
        except BaseException:
            self._discard_unreferenced(created_blobs)
            raise

    def _commit(
        self,
        name: str,
        rec: _NewVersion,
        payload_file: Path,
        message: str,
        tags: dict[str, str],
        parents: list[Ref],
        *,
        move: bool = True,
    ) -> DatasetVersion:
        """Store the payload blob, then write the version, its blob owners, lineage and audit
        event in one transaction. A blob this call created is removed if the commit fails."""
        with self._p.db.read() as conn:
            dup = self._find_digest(conn, name, rec.digest)
            if dup is not None:
                return dup
        _, new_blob = self._p.artifacts.put_file(payload_file, move=move, digest=rec.digest)
        try:
            now = datetime.now(UTC)
            with audited(self._p.db, self._p.actor) as tx:
                conn = tx.conn
                require_role(conn, self._p.actor, "contributor", "add data")
                dup = self._find_digest(conn, name, rec.digest)
                if dup is not None:
                    return dup
                ds_id = self._ensure_dataset(tx, name, now)
                version = 1 + int(
                    conn.execute(
                        select(func.coalesce(func.max(dataset_versions.c.version), 0)).where(
                            dataset_versions.c.dataset_id == ds_id
                        )
                    ).scalar_one()
                )
                ref = f"{name}@{version}"
                conn.execute(
                    dataset_versions.insert().values(
                        dataset_id=ds_id,
                        version=version,
                        digest=rec.digest,
                        kind=rec.kind,
                        rows=rec.rows,
                        size_bytes=rec.size,
                        columns=rec.columns,
                        schema=rec.schema,
                        profile=rec.profile,
                        source=rec.source,
                        source_digest=rec.source.get("digest"),
                        message=message,
                        tags=tags,
                        created_at=now,
                        created_by=self._p.actor,
                    )
                )
                owned: dict[str, str] = {}
                for digest, role in rec.blobs:
                    owned.setdefault(digest, role)
                for digest, role in owned.items():
                    conn.execute(
                        blob_refs.insert().values(
                            digest=digest, owner_kind=KIND, owner=ref, role=role
                        )
                    )
                parent_strs = []
                for pref in parents:
                    prow = self._resolve(conn, pref)
                    pstr = f"{prow.name}@{prow.version}"
                    parent_strs.append(pstr)
                    conn.execute(
                        lineage_edges.insert().values(
                            parent_kind=KIND,
                            parent=pstr,
                            child_kind=KIND,
                            child=ref,
                            relation="derived_from",
                            created_at=now,
                        )
                    )
                tx.record(
                    "dataset.add",
                    KIND,
                    ref,
                    {
                        "digest": rec.digest,
                        "kind": rec.kind,
                        "rows": rec.rows,
                        "message": message,
                        "tags": tags,
                        "parents": parent_strs,
                        "source": rec.source,
                    },
                )
                row = conn.execute(
                    _select_versions()
                    .where(datasets.c.id == ds_id)
                    .where(dataset_versions.c.version == version)
                ).one()
                result = replace(self._to_version(conn, row), created=True)
            return result
        except BaseException:
            if new_blob:
                self._discard_unreferenced([rec.digest])
            raise

    def _discard_unreferenced(self, digests: list[str]) -> None:
        """Delete blobs this process created that no committed row refers to."""
        if not digests:
            return
        with self._p.db.read() as conn:
            used = {
                r.digest
                for r in conn.execute(
                    select(blob_refs.c.digest).where(blob_refs.c.digest.in_(digests))
                )
            }
        for d in digests:
            if d not in used:
                self._p.artifacts.delete(d)

    def _ensure_dataset(self, tx: AuditedTransaction, name: str, now: datetime) -> int:
        row = tx.conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first()
        if row is not None:
            return int(row.id)
        res = tx.conn.execute(
            datasets.insert().values(name=name, created_at=now, created_by=self._p.actor)
        )
        tx.record("dataset.create", KIND, name, {})
        return int(res.inserted_primary_key[0])  # type: ignore[index]

    def tag(
        self, ref: str, set_tags: Mapping[str, str] | None = None, remove: Iterable[str] = ()
    ) -> DatasetVersion:
        """Set and remove tags on a version (contributor).

        Raises:
            NotFoundError: no such version or tag to remove.
        """
        new_tags = _check_tags(set_tags or {})
        remove = list(remove)
        with audited(self._p.db, self._p.actor) as tx:
            require_role(tx.conn, self._p.actor, "contributor", "tag data")
            row = self._resolve(tx.conn, parse_ref(ref))
            tags = dict(row.tags or {})
            for key in remove:
                if key not in tags:
                    raise NotFoundError(
                        f"dataset '{row.name}@{row.version}' has no tag {key!r}; "
                        f"its tags are: {', '.join(sorted(tags)) or 'none'}"
                    )
                del tags[key]
            tags.update(new_tags)
            tx.conn.execute(
                update(dataset_versions).where(dataset_versions.c.id == row.id).values(tags=tags)
            )
            tx.record(
                "dataset.tag",
                KIND,
                f"{row.name}@{row.version}",
                {"set": new_tags, "removed": remove, "tags": tags},
            )
        return self.get(f"{row.name}@{row.version}")

    # -- reads --------------------------------------------------------------------------------

    def get(self, ref: str) -> DatasetVersion:
        """The version a reference points at (metadata only; no access event).

        Raises:
            InvalidReferenceError, NotFoundError.
        """
        with self._p.db.read() as conn:
            row = self._resolve(conn, parse_ref(ref))
            return self._to_version(conn, row)

    def list(self) -> list[DatasetSummary]:
        """Every dataset with its latest version."""
        latest = (
            select(
                dataset_versions.c.dataset_id,
                func.max(dataset_versions.c.version).label("latest"),
                func.count().label("n"),
            )
            .group_by(dataset_versions.c.dataset_id)
            .subquery()
        )
        stmt = (
            select(
                datasets.c.name,
                latest.c.latest,
                latest.c.n,
                dataset_versions.c.kind,
                dataset_versions.c.rows,
                dataset_versions.c.columns,
                dataset_versions.c.created_at,
                dataset_versions.c.created_by,
            )
            .join(latest, latest.c.dataset_id == datasets.c.id)
            .join(
                dataset_versions,
                (dataset_versions.c.dataset_id == datasets.c.id)
                & (dataset_versions.c.version == latest.c.latest),
            )
            .order_by(datasets.c.name)
        )
        with self._p.db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            DatasetSummary(
                r.name,
                int(r.n),
                int(r.latest),
                r.kind,
                r.rows,
                len(r.columns or []),
                r.created_at,
                r.created_by,
            )
            for r in rows
        ]

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every version of ``name``, oldest first.

        Raises:
            NotFoundError: no such dataset.
        """
        with self._p.db.read() as conn:
            self._dataset_id(conn, name)
            rows = conn.execute(
                _select_versions()
                .where(datasets.c.name == name)
                .order_by(dataset_versions.c.version)
            ).all()
            return [self._to_version(conn, r) for r in rows]

    def diff(self, ref_a: str, ref_b: str) -> dict[str, Any]:
        """Schema, row-count and per-column statistic changes from ``ref_a`` to ``ref_b``."""
        a, b = self.get(ref_a), self.get(ref_b)
        out = diff_profiles(a.schema, b.schema, a.profile, b.profile)
        out["from"], out["to"] = a.ref, b.ref
        out["identical"] = a.digest == b.digest
        return out

    def lineage(self, ref: str) -> dict[str, Any]:
        """Upstream (parents, recursively) and downstream (children, recursively) of a version."""
        v = self.get(ref)
        with self._p.db.read() as conn:
            up = _walk(conn, KIND, v.ref, upstream=True)
            down = _walk(conn, KIND, v.ref, upstream=False)
        return {"ref": v.ref, "digest": v.digest, "upstream": up, "downstream": down}

    def export(self, ref: str, dest: str | Path, *, progress: Progress = NO_PROGRESS) -> Path:
        """Write a version to ``dest``: CSV, Parquet or JSON Lines by extension for tables, a
        folder for file trees (restored byte-identical). Logged as an access event.

        Raises:
            InvalidInputError: unsupported extension, or the destination exists.
            IntegrityError: a stored blob does not match its digest.
        """
        v = self.get(ref)
        dest = Path(dest).expanduser()
        owner = f"dataset '{v.ref}'"
        if v.kind == "files":
            self._export_tree(v, dest, owner, progress)
        else:
            fmt = ingest.TABLE_FORMATS.get(dest.suffix.lower())
            if fmt is None or fmt == "tsv":
                raise InvalidInputError(
                    f"{dest}: choose an output ending in .csv, .parquet or .jsonl"
                )
            if dest.is_dir():
                raise InvalidInputError(f"{dest} is a folder; give a file name")
            dest.parent.mkdir(parents=True, exist_ok=True)
            progress.stage(f"writing {dest.name}", total=v.size_bytes)
            if fmt == "parquet":
                self._p.artifacts.copy_to(v.digest, dest, owner=owner, progress=progress.advance)
            else:
                import polars as pl

                tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
                try:
                    with self._p.artifacts.local_copy(v.digest, owner=owner) as src:
                        lf = pl.scan_parquet(src)
                        if fmt == "csv":
                            lf.sink_csv(tmp)
                        else:
                            lf.sink_ndjson(tmp)
                    os.replace(tmp, dest)
                finally:
                    tmp.unlink(missing_ok=True)
        self._log_read(v, {"via": "export", "dest": str(dest)})
        return dest

    def _export_tree(self, v: DatasetVersion, dest: Path, owner: str, progress: Progress) -> None:
        import json

        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InvalidInputError(f"{dest} exists and is not an empty folder")
        manifest = json.loads(self._p.artifacts.read_bytes(v.digest, owner=owner))
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        progress.stage(f"restoring {len(manifest['files'])} files", total=v.size_bytes)
        try:
            for f in manifest["files"]:
                target = tmp / f["path"]
                if ".." in Path(f["path"]).parts:
                    raise InvalidInputError(f"unsafe path in manifest of {owner}: {f['path']}")
                target.parent.mkdir(parents=True, exist_ok=True)
                self._p.artifacts.copy_to(
                    f["digest"],
                    target,
                    owner=f"{owner} (file {f['path']})",
                    progress=progress.advance,
                )
                if f.get("exec"):
                    target.chmod(target.stat().st_mode | 0o111)
            if dest.exists():
                dest.rmdir()
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def read_polars(self, v: DatasetVersion) -> pl.DataFrame:
        """Load a table version into memory (digest verified, read logged)."""
        import polars as pl

        if v.kind != "table":
            raise InvalidInputError(
                f"dataset '{v.ref}' is a file tree; use `shipyard data get {v.ref} -o DIR`"
            )
        with self._p.artifacts.local_copy(v.digest, owner=f"dataset '{v.ref}'") as path:
            df = pl.read_parquet(path)
        self._log_read(v, {"via": "api"})
        return df

    def _log_read(self, v: DatasetVersion, payload: dict[str, Any]) -> None:
        with audited(self._p.db, self._p.actor) as tx:
            tx.record("dataset.read", KIND, v.ref, {"digest": v.digest, **payload})

    # -- resolution ---------------------------------------------------------------------------

    def _dataset_id(self, conn: Connection, name: str) -> int:
        row = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no dataset '{name}'; see `shipyard data list`")
        return int(row.id)

    def _resolve(self, conn: Connection, ref: Ref) -> Any:
        ds_id = self._dataset_id(conn, ref.name)
        base = _select_versions().where(dataset_versions.c.dataset_id == ds_id)
        sel = ref.selector
        if sel.kind == "latest":
            row = conn.execute(base.order_by(dataset_versions.c.version.desc()).limit(1)).first()
        elif sel.kind == "version":
            row = conn.execute(base.where(dataset_versions.c.version == int(sel.value))).first()
            if row is None:
                latest = conn.execute(
                    select(func.max(dataset_versions.c.version)).where(
                        dataset_versions.c.dataset_id == ds_id
                    )
                ).scalar()
                raise NotFoundError(
                    f"dataset '{ref.name}' has no version {sel.value} (latest is {latest}); "
                    f"see `shipyard data versions {ref.name}`"
                )
        elif sel.kind == "digest":
            rows = conn.execute(
                base.where(dataset_versions.c.digest.startswith("blake3:" + sel.value))
            ).all()
            if len(rows) > 1:
                raise InvalidInputError(
                    f"digest prefix {sel.value!r} matches {len(rows)} versions of dataset "
                    f"'{ref.name}'; give more digits"
                )
            row = rows[0] if rows else None
            if row is None:
                raise NotFoundError(
                    f"dataset '{ref.name}' has no version with digest {sel.value}…; "
                    f"see `shipyard data versions {ref.name}`"
                )
        else:
            raise NotFoundError(
                f"dataset '{ref.name}' has no alias {sel.value!r}: dataset references take a "
                "version number, 'latest' or a digest prefix"
            )
        if row is None:
            raise NotFoundError(f"dataset '{ref.name}' has no versions")
        return row

    def _find_digest(self, conn: Connection, name: str, digest: str) -> DatasetVersion | None:
        row = conn.execute(
            _select_versions()
            .where(datasets.c.name == name)
            .where(dataset_versions.c.digest == digest)
            .order_by(dataset_versions.c.version)
            .limit(1)
        ).first()
        return None if row is None else self._to_version(conn, row)

    def _to_version(self, conn: Connection, row: Any) -> DatasetVersion:
        ref = f"{row.name}@{row.version}"
        parents = [
            p.parent
            for p in conn.execute(
                select(lineage_edges.c.parent)
                .where(lineage_edges.c.child_kind == KIND)
                .where(lineage_edges.c.child == ref)
                .order_by(lineage_edges.c.id)
            )
        ]
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
            parents=parents,
            _service=self,
        )


@dataclass
class _Staged:
    files: list[Path] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _NewVersion:
    kind: str
    digest: str
    rows: int | None
    size: int
    columns: list[str]
    schema: dict[str, str]
    profile: dict[str, Any]
    source: dict[str, Any]
    blobs: list[tuple[str, str]]


def _select_versions() -> Any:
    return select(dataset_versions, datasets.c.name).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def _check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not k.strip() or len(k) > 128:
            raise InvalidInputError(f"invalid tag key {k!r}: use 1 to 128 characters")
        out[k.strip()] = str(v)
    return out


def _write_frame(data: Any, out: Path) -> None:
    import polars as pl

    if isinstance(data, pl.DataFrame):
        frame = data
    elif isinstance(data, pl.LazyFrame):
        frame = data.collect()
    else:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a dependency
            pd = None  # type: ignore[assignment]
        if pd is None or not isinstance(data, pd.DataFrame):
            raise InvalidInputError(
                f"cannot add {type(data).__name__}: give a file path, a folder, or a pandas or "
                "polars DataFrame"
            )
        cols = [str(c) for c in data.columns]
        if len(set(cols)) != len(cols):
            raise InvalidInputError("the DataFrame has duplicate column names")
        frame = pl.from_pandas(data)
    if frame.width == 0:
        raise InvalidInputError("the DataFrame has no columns")
    frame.write_parquet(out, compression=ingest.PARQUET_COMPRESSION)


def _walk(conn: Connection, kind: str, ref: str, *, upstream: bool) -> list[dict[str, Any]]:
    """Edges reachable from ``ref`` in one direction, breadth first, each once."""
    seen = {(kind, ref)}
    frontier = [(kind, ref)]
    out: list[dict[str, Any]] = []
    while frontier:
        nxt = []
        for k, r in frontier:
            if upstream:
                stmt = select(lineage_edges).where(
                    (lineage_edges.c.child_kind == k) & (lineage_edges.c.child == r)
                )
            else:
                stmt = select(lineage_edges).where(
                    (lineage_edges.c.parent_kind == k) & (lineage_edges.c.parent == r)
                )
            for e in conn.execute(stmt.order_by(lineage_edges.c.id)):
                node = (e.parent_kind, e.parent) if upstream else (e.child_kind, e.child)
                out.append(
                    {
                        "parent": f"{e.parent_kind}:{e.parent}",
                        "child": f"{e.child_kind}:{e.child}",
                        "relation": e.relation,
                    }
                )
                if node not in seen:
                    seen.add(node)
                    nxt.append(node)
        frontier = nxt
    return out
