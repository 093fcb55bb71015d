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
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from sqlalchemy import func, select, update

from shipyard._internal.encode import ReadModel, encode
from shipyard._internal.hashing import CHUNK_SIZE, Hasher
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.authz import require_role
from shipyard.data import ingest
from shipyard.data.derived import (
    add_checked,
    check_derived_name,
    finish_pending,
    split_version,
    validate_version,
)
from shipyard.data.profiles import diff_profiles
from shipyard.data.transfer import (
    DatasetDownload,
    convert_table,
    open_download,
    staged_upload,
    write_frame,
)
from shipyard.data.versions import (
    KIND,
    DatasetSummary,
    DatasetVersion,
    PendingVersion,
    commit_versions,
    dataset_id,
    log_read,
    resolve,
    select_versions,
    stage_table,
    stage_tree,
    to_version,
    tombstones,
)
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.governance.annotations import check_dataset
from shipyard.refs import parse_ref, validate_name
from shipyard.stores.db.tables import dataset_versions, datasets
from shipyard.stores.lineage import walk

if TYPE_CHECKING:
    import polars as pl

    from shipyard.context import ServiceContext
    from shipyard.data.contract_registry import Contracts
    from shipyard.data.deletion import DeletionResult
    from shipyard.data.splits import SplitSpec
    from shipyard.data.validation import ValidationReport

__all__ = [
    "DatasetDownload",
    "DatasetSummary",
    "DatasetVersion",
    "Datasets",
    "GoverningContract",
    "OnInvalid",
]

OnInvalid = Literal["reject", "quarantine", "allow"]
DataInput = str | os.PathLike[str] | Any  # a path, or a pandas / polars DataFrame


@dataclass(frozen=True)
class GoverningContract(ReadModel):
    """A contract that governs a table version, found on ``checked``: the version itself
    or an ancestor ``depth`` generations up. ``passed`` and ``failures`` are the validation
    stored on ``checked`` with that contract; ``passed`` is None when it was not validated
    with it (it is bound to the dataset)."""

    checked: str
    contract: str
    depth: int = 0
    passed: bool | None = None
    failures: int = 0


class Datasets:
    """Service for datasets: ``add``, ``get``, ``list``, ``versions``, plus ``export``,
    ``upload``, ``download``, ``diff``, ``tag``, ``lineage``, ``validate`` and ``split``."""

    def __init__(self, ctx: ServiceContext, *, contracts: Contracts) -> None:
        self._ctx = ctx
        self._contracts = contracts

    # -- adding -------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        data: DataInput,
        *,
        message: str = "",
        tags: Mapping[str, str] | None = None,
        parents: Iterable[str] = (),
        contract: str | None = None,
        on_invalid: OnInvalid = "reject",
        progress: Progress = NO_PROGRESS,
        source_name: str | None = None,
        inputs: Iterable[tuple[str, str]] = (),
        allow_ragged: bool = False,
    ) -> DatasetVersion:
        """Add a version of dataset ``name`` from a file, a folder or a DataFrame.

        Identical content returns the existing version with ``created=False``. Tables are
        validated against ``contract`` (a contract reference) or the contract bound to the
        dataset; data that fails is rejected, or with ``on_invalid="quarantine"`` its failing
        rows go to ``NAME.quarantine``, or with ``on_invalid="allow"`` it is stored marked
        invalid. ``source_name`` is recorded as the input's path instead of the file's own
        (an upload's staging file means nothing to its reader; the client's file name does).
        ``inputs`` names other entities the data was made from, as ``(kind, ref)`` pairs
        (the feature view versions of a point-in-time join), recorded in its lineage.
        A CSV line with fewer fields than its header is refused unless ``allow_ragged``: then
        its missing fields are null and ``source["ragged"]`` says which lines were short.

        Raises:
            InvalidInputError: bad name, tags or input file (nothing is written).
            PermissionDeniedError: the actor is not a contributor.
            NotFoundError: a parent or contract reference does not exist.
            CheckFailedError: the data fails its contract (``details["report"]``).
        """
        validate_name(name, "dataset name")
        if on_invalid == "quarantine":
            check_derived_name(name, "quarantine")
        if on_invalid not in ("reject", "quarantine", "allow"):
            raise InvalidInputError(
                f"on_invalid must be reject, quarantine or allow, not {on_invalid!r}"
            )
        return self._add(
            name,
            data,
            message=message,
            tags=tags,
            parents=parents,
            contract=contract,
            on_invalid=on_invalid,
            progress=progress,
            source_name=source_name,
            inputs=inputs,
            allow_ragged=allow_ragged,
        )

    def _add(
        self,
        name: str,
        data: DataInput,
        *,
        message: str = "",
        tags: Mapping[str, str] | None = None,
        parents: Iterable[str] = (),
        contract: str | None = None,
        on_invalid: OnInvalid = "reject",
        progress: Progress = NO_PROGRESS,
        source_name: str | None = None,
        inputs: Iterable[tuple[str, str]] = (),
        allow_ragged: bool = False,
        annotated: bool = True,
    ) -> DatasetVersion:
        """:meth:`add`; with ``annotated=False`` the project's annotation policy is not
        checked, for a version shipyard derives itself (an erasure: see
        :func:`~shipyard.data.deletion.erase_rows`)."""
        tag_map = _check_tags(tags or {})
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "add data")
            if annotated:
                check_dataset(conn, name, message, tag_map)
            parent_refs: list[str | int] = []
            for p in parents:
                row = resolve(conn, parse_ref(p))
                parent_refs.append(f"{row.name}@{row.version}")
        contract_ref = contract or self._contracts.binding(name)
        cleanup: list[Path] = []
        frame = None
        frame_written = False  # a DataFrame's Parquet is written before it is staged
        try:
            if isinstance(data, str | os.PathLike):
                path = Path(data).expanduser()
                fmt = ingest.detect_format(path)
                if fmt == "tree":
                    if contract:
                        raise InvalidInputError(
                            f"{path} is a folder: contracts apply to tables, not file trees"
                        )
                    pending = stage_tree(self._ctx, path, name, progress)
                    cleanup.append(pending.payload)
                    cleanup.extend(s for _, _, s in pending.tree_files if s is not None)
                    return self._commit([finish_pending(pending, message, tag_map, parent_refs)])[0]
                frame = None
                if fmt != "parquet" and path.stat().st_size <= ingest.IN_MEMORY_BYTES:
                    # One pass: the file is hashed on a thread while polars parses it.
                    with ThreadPoolExecutor(1, thread_name_prefix="shipyard-hash") as pool:
                        hashed = pool.submit(self._hash_source, path, fmt, NO_PROGRESS)
                        progress.stage(f"reading {path.name}")
                        frame, ragged = ingest.read_frame(path, fmt, allow_ragged=allow_ragged)
                        source = hashed.result()
                    if ragged is not None:
                        source["ragged"] = ragged.to_dict()
                else:
                    source = self._hash_source(path, fmt, progress)
                if source_name is not None:
                    source["path"] = source_name
                existing = self._by_source(name, source["digest"])
                if existing is not None and self._still_checked(existing, contract_ref):
                    return existing
                if frame is not None:
                    parquet, move = self._ctx.artifacts.new_staging_path(".parquet"), True
                    cleanup.append(parquet)
                elif fmt == "parquet":
                    # Parquet is stored byte for byte, once its schema has been checked.
                    ingest.check_parquet(path)
                    parquet, move = path, False
                else:
                    parquet, move = self._ctx.artifacts.new_staging_path(".parquet"), True
                    cleanup.append(parquet)
                    progress.stage(f"converting {path.name} to Parquet")
                    ragged = ingest.to_parquet(path, fmt, parquet, allow_ragged=allow_ragged)
                    if ragged is not None:
                        source["ragged"] = ragged.to_dict()
            else:
                parquet, move = self._ctx.artifacts.new_staging_path(".parquet"), True
                cleanup.append(parquet)
                progress.stage("writing the DataFrame as Parquet")
                frame, frame_written = write_frame(data, parquet), True
                source = {"format": "dataframe"}
            pending = stage_table(
                parquet,
                name,
                source,
                progress,
                move=move,
                frame=frame,
                frame_written=frame_written,
            )
            progress.stage(f"storing {name}")
            finish_pending(pending, message, tag_map, parent_refs)
            pending.inputs = [(str(k), str(r)) for k, r in inputs]
            if contract_ref is None:
                return self._commit([pending])[0]
            progress.stage(f"validating against {contract_ref}")
            return add_checked(
                self._ctx,
                self._contracts,
                self,
                pending,
                contract_ref,
                on_invalid,
                cleanup,
                progress,
            )
        finally:
            for f in cleanup:
                f.unlink(missing_ok=True)

    def _commit(self, pending: builtins.list[PendingVersion]) -> builtins.list[DatasetVersion]:
        return commit_versions(self._ctx, pending, self)

    def _hash_source(self, path: Path, fmt: str, progress: Progress) -> dict[str, Any]:
        size = path.stat().st_size
        progress.stage(f"hashing {path.name}", total=size)
        h = Hasher()
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK_SIZE):
                h.update(chunk)
                progress.advance(len(chunk))
        return {"path": str(path.resolve()), "format": fmt, "size": size, "digest": h.hexdigest()}

    def _still_checked(self, existing: DatasetVersion, contract_ref: str | None) -> bool:
        """Whether ``existing`` may stand for a new add of the same bytes: no contract
        applies, or it passed the very contract version that applies now. Otherwise the data
        is checked again, so a batch once stored as invalid is still refused."""
        if contract_ref is None:
            return True
        return existing.status == "valid" and existing.contract == (
            self._contracts.get(contract_ref).ref
        )

    def _by_source(self, name: str, source_digest: str) -> DatasetVersion | None:
        """The version of ``name`` made from identical input bytes, if any (skips the work)."""
        with self._ctx.db.read() as conn:
            row = conn.execute(
                select_versions()
                .where(datasets.c.name == name)
                .where(dataset_versions.c.source_digest == source_digest)
                .where(dataset_versions.c.deleted_at.is_(None))
                .order_by(dataset_versions.c.version)
                .limit(1)
            ).first()
            return None if row is None else to_version(conn, row, self)

    # -- other changes ------------------------------------------------------------------------

    def tag(
        self, ref: str, set_tags: Mapping[str, str] | None = None, remove: Iterable[str] = ()
    ) -> DatasetVersion:
        """Set and remove tags on a version (contributor).

        Raises:
            NotFoundError: no such version or tag to remove.
        """
        new_tags = _check_tags(set_tags or {})
        remove = list(remove)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "tag data")
            row = resolve(tx.conn, parse_ref(ref))
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

    def validate(
        self, ref: str, *, contract: str | None = None, store: bool = True
    ) -> ValidationReport:
        """Check a table version against ``contract`` (or the dataset's bound contract); the
        report is stored with the version and shown by ``data show`` (contributor). With
        ``store=False`` only the read is recorded, and a viewer may check.

        Raises:
            InvalidInputError: no contract given or bound, or the version is a file tree.
        """
        return validate_version(self._ctx, self._contracts, self, ref, contract, store)

    def split(
        self, ref: str, spec: SplitSpec, *, progress: Progress = NO_PROGRESS
    ) -> dict[str, DatasetVersion]:
        """Split a table version into child datasets ``NAME.<part>`` (one transaction), with
        lineage to the parent and the spec recorded so that the split can be replayed.

        The same spec on the same data gives identical digests, in any project.
        """
        return split_version(self._ctx, self, ref, spec, progress)

    def replay_split(
        self, child_ref: str, *, progress: Progress = NO_PROGRESS
    ) -> dict[str, DatasetVersion]:
        """Re-create a split from the spec recorded in a child's lineage.

        Raises:
            InvalidInputError: the version was not made by a split.
        """
        from shipyard.data.splits import SplitSpec

        child = self.get(child_ref)
        recorded = child.source.get("split")
        if child.source.get("format") != "split" or not recorded:
            raise InvalidInputError(
                f"dataset '{child.ref}' was not made by `shipyard data split`; nothing to replay"
            )
        return self.split(child.source["parent"], SplitSpec.from_dict(recorded), progress=progress)

    # -- deletion -----------------------------------------------------------------------------

    def delete(
        self, target: str, *, reason: str = "", force: bool = False, purge: bool = False
    ) -> DeletionResult:
        """Soft-delete ``NAME@V`` (or every version of ``NAME``): hidden from listings and
        ``latest``, restorable. ``purge`` (admin) also removes the content from the artifact
        store where no other version shares it. A version in a registered model's lineage
        needs ``force`` (admin); the lineage then shows its tombstone.

        >>> project.datasets.delete("credit@2", reason="wrong export")  # doctest: +SKIP

        Raises:
            ConflictError: in a model's lineage without ``force``, or already deleted.
            PermissionDeniedError: the actor's role is too low.
        """
        from shipyard.data.deletion import delete_versions

        return delete_versions(self._ctx, target, reason=reason, force=force, purge=purge)

    def restore(self, target: str) -> DeletionResult:
        """Undo :meth:`delete` for ``NAME@V`` (or every deleted version of ``NAME``) when the
        content was not purged.

        Raises:
            ConflictError: nothing deleted, or the content was purged.
        """
        from shipyard.data.deletion import restore_versions

        return restore_versions(self._ctx, target)

    def erase(
        self, name: str, where: str, *, reason: str = "", force: bool = False
    ) -> DeletionResult:
        """Erase the rows a SQL filter matches (``customer_id = 42``) from every version of
        ``name`` (admin): a new version without them, the old versions purged to tombstones.
        See :mod:`shipyard.data.deletion`.

        Raises:
            InvalidArgumentError: the filter does not parse (the message lists the columns).
            InvalidInputError: the filter names an unknown column.
            NotFoundError: no row matches.
        """
        from shipyard.data.deletion import erase_rows

        return erase_rows(self._ctx, self, name, where, reason=reason, force=force)

    # -- reads --------------------------------------------------------------------------------

    def get(self, ref: str) -> DatasetVersion:
        """The version a reference points at (metadata only; no access event); ``NAME`` and
        ``NAME@latest`` mean the latest version that is not deleted.

        Raises:
            InvalidReferenceError, NotFoundError.
            DeletedError: the version was deleted (the message says by whom, when and why).
        """
        with self._ctx.db.read() as conn:
            return to_version(conn, resolve(conn, parse_ref(ref)), self)

    def _get_any(self, ref: str) -> DatasetVersion:
        with self._ctx.db.read() as conn:
            return to_version(conn, resolve(conn, parse_ref(ref), include_deleted=True), self)

    def pii_columns(self, ref: str) -> builtins.list[str]:
        """The columns of a table version that the contracts governing it (see
        :meth:`governing_contracts`) mark ``pii: true``, in the version's column order.

        >>> project.datasets.pii_columns("customers@3")  # doctest: +SKIP
        ['email', 'customer_id']
        """
        v = self.get(ref)
        marked: set[str] = set()
        for g in self.governing_contracts(v.ref):
            contract = self._contracts.get(g.contract, include_deleted=True).contract
            marked.update(contract.pii_columns)
        return [c for c in v.columns if c in marked]

    def governing_contracts(self, ref: str) -> builtins.list[GoverningContract]:
        """The contracts that govern a table version: its own (the contract it was validated
        with, else the one bound to its dataset) or, without one, those of its nearest
        ancestors up the lineage (a split or a quarantined part is governed by its parent's
        contract). Empty when no contract applies. This one rule answers "which contract
        applies to this data" for promotion checks, serving and batch scoring.

        >>> project.datasets.governing_contracts("credit.train@1")[0].contract  # doctest: +SKIP
        'applicants@1'
        """
        found: builtins.list[GoverningContract] = []
        seen: set[str] = set()
        frontier = [(ref, 0)]
        while frontier:
            at, depth = frontier.pop(0)
            v = self._get_any(at)  # a deleted parent still tells which contract applied
            if v.ref in seen:
                continue
            seen.add(v.ref)
            if v.contract and v.status in ("valid", "invalid"):
                failures = len((v.validation or {}).get("failures", []))
                passed = v.status == "valid"
                found.append(GoverningContract(v.ref, v.contract, depth, passed, failures))
                continue
            bound = v.contract or self._contracts.binding(v.name)
            if bound and v.kind == "table":
                found.append(GoverningContract(v.ref, self._contracts.get(bound).ref, depth))
                continue
            frontier.extend((parent, depth + 1) for parent in v.parents)
        return found

    def list(self) -> builtins.list[DatasetSummary]:
        """Every dataset with its latest version."""
        latest = (
            select(
                dataset_versions.c.dataset_id,
                func.max(dataset_versions.c.version).label("latest"),
                func.count().label("n"),
            )
            .where(dataset_versions.c.deleted_at.is_(None))
            .group_by(dataset_versions.c.dataset_id)
            .subquery()
        )
        stmt = (
            select(
                datasets.c.name,
                datasets.c.contract.label("binding"),
                latest.c.latest,
                latest.c.n,
                dataset_versions.c.kind,
                dataset_versions.c.rows,
                dataset_versions.c.columns,
                dataset_versions.c.status,
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
        with self._ctx.db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            DatasetSummary(
                r.name,
                int(r.n),
                int(r.latest),
                r.kind,
                r.rows,
                len(r.columns or []),
                r.status,
                r.binding,
                r.created_at,
                r.created_by,
            )
            for r in rows
        ]

    def versions(self, name: str, *, deleted: bool = False) -> builtins.list[DatasetVersion]:
        """Every version of ``name``, oldest first: those not deleted, or with ``deleted``
        the deleted ones (tombstones).

        Raises:
            NotFoundError: no such dataset.
        """
        gone = dataset_versions.c.deleted_at
        with self._ctx.db.read() as conn:
            dataset_id(conn, name)
            rows = conn.execute(
                select_versions()
                .where(datasets.c.name == name)
                .where(gone.is_not(None) if deleted else gone.is_(None))
                .order_by(dataset_versions.c.version)
            ).all()
            return [to_version(conn, r, self) for r in rows]

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
        with self._ctx.db.read() as conn:
            up = walk(conn, KIND, v.ref, upstream=True)
            down = walk(conn, KIND, v.ref, upstream=False)
            nodes = {n for e in up + down for n in (e["parent"], e["child"])}
            gone = tombstones(conn, [n.split(":", 1)[1] for n in nodes if n.startswith("dataset:")])
        return {
            "ref": v.ref,
            "digest": v.digest,
            "upstream": up,
            "downstream": down,
            "tombstones": encode(gone),  # the deleted dataset versions among them
        }

    def export(
        self,
        ref: str,
        dest: str | Path,
        *,
        progress: Progress = NO_PROGRESS,
        drop_pii: bool = False,
    ) -> Path:
        """Write a version to ``dest``: CSV, Parquet or JSON Lines by extension for tables (an
        existing file is replaced atomically), a new or empty folder for file trees (restored
        byte-identical; the folder that holds it must exist). Logged as an access event,
        naming the personal-data columns read; ``drop_pii`` leaves those columns out (see
        :meth:`pii_columns`).

        Raises:
            InvalidInputError: unsupported extension, a non-empty destination folder, or a
                file tree's destination in a folder that does not exist.
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
            dropped = self.pii_columns(v.ref) if drop_pii else []
            if fmt == "parquet" and not dropped:
                self._ctx.artifacts.copy_to(v.digest, dest, owner=owner, progress=progress.advance)
            else:
                tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
                try:
                    with self._ctx.artifacts.local_copy(v.digest, owner=owner) as src:
                        convert_table(src, fmt, tmp, drop=dropped)
                    os.replace(tmp, dest)
                finally:
                    tmp.unlink(missing_ok=True)
        payload: dict[str, Any] = {"via": "export", "dest": str(dest)}
        if drop_pii:
            payload["dropped_pii"] = dropped
        self._log_read(v, payload)
        return dest

    def download(self, ref: str, format: str = "parquet") -> DatasetDownload:
        """A table version's bytes, verified and open for streaming, as ``parquet`` (the stored
        bytes), ``csv`` or ``jsonl`` (the same bytes ``export`` writes). Logged as an access
        event like ``export``.

        >>> with closing(project.datasets.download("credit@1", "csv")) as d:  # doctest: +SKIP
        ...     body = b"".join(d.chunks())

        Raises:
            InvalidInputError: an unknown format, or a file tree.
            IntegrityError: the stored blob does not match its digest.
        """
        v = self.get(ref)
        opened = open_download(self._ctx, v, format)
        try:
            self._log_read(v, {"via": "download", "format": format})
        except BaseException:
            opened.close()
            raise
        return opened

    def upload(
        self,
        name: str,
        stream: BinaryIO,
        *,
        filename: str,
        message: str = "",
        tags: Mapping[str, str] | None = None,
        parents: Iterable[str] = (),
        contract: str | None = None,
        on_invalid: OnInvalid = "reject",
        allow_ragged: bool = False,
    ) -> DatasetVersion:
        """:meth:`add` for a table read from ``stream``: ``filename``'s extension gives its
        format (.csv, .tsv, .parquet, .jsonl) and the name is recorded as its source.

        Raises:
            InvalidInputError: no table extension, or what :meth:`add` raises.
        """
        with staged_upload(self._ctx, stream, filename) as path:
            return self.add(
                name,
                path,
                message=message,
                tags=tags,
                parents=parents,
                contract=contract,
                on_invalid=on_invalid,
                source_name=filename,
                allow_ragged=allow_ragged,
            )

    def _export_tree(self, v: DatasetVersion, dest: Path, owner: str, progress: Progress) -> None:
        import json

        from shipyard._internal.files import require_folder

        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InvalidInputError(f"{dest} exists and is not an empty folder")
        require_folder(dest)
        manifest = json.loads(self._ctx.artifacts.read_bytes(v.digest, owner=owner))
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        progress.stage(f"restoring {len(manifest['files'])} files", total=v.size_bytes)
        try:
            for f in manifest["files"]:
                if ".." in Path(f["path"]).parts or Path(f["path"]).is_absolute():
                    raise InvalidInputError(f"unsafe path in manifest of {owner}: {f['path']}")
                target = tmp / f["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                self._ctx.artifacts.copy_to(
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

    def read_polars(
        self, v: DatasetVersion, *, via: str = "api", columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Load a table version into memory (digest verified, read logged); only ``columns``
        when given (the others are not decoded).

        Raises:
            InvalidInputError: a file tree, or a column the version does not have.
        """
        import polars as pl

        if v.kind != "table":
            raise InvalidInputError(
                f"dataset '{v.ref}' is a file tree; use `shipyard data get {v.ref} -o DIR`"
            )
        wanted = None if columns is None else list(dict.fromkeys(columns))
        if wanted is not None:
            unknown = [c for c in wanted if c not in v.columns]
            if unknown:
                raise InvalidInputError(
                    f"dataset '{v.ref}' has no column {', '.join(map(repr, unknown))}; its "
                    f"columns are {', '.join(v.columns)}"
                )
        with self._ctx.artifacts.local_copy(v.digest, owner=f"dataset '{v.ref}'") as path:
            df = pl.read_parquet(path, columns=wanted)
        self._log_read(v, {"via": via} if wanted is None else {"via": via, "columns": wanted})
        return df

    def _log_read(self, v: DatasetVersion, payload: dict[str, Any]) -> None:
        """The access-log event of a read; one of a table with personal data names the
        personal-data columns read (``pii_columns``; of ``columns`` when only those were)."""
        if v.kind == "table":
            dropped = set(payload.get("dropped_pii", []))
            read = payload.get("columns")
            pii = [
                c
                for c in self.pii_columns(v.ref)
                if c not in dropped and (read is None or c in read)
            ]
            if pii:
                payload = {**payload, "pii_columns": pii}
        log_read(self._ctx, v, payload)


def _check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not k.strip() or len(k) > 128:
            raise InvalidInputError(f"invalid tag key {k!r}: use 1 to 128 characters")
        out[k.strip()] = str(v)
    return out
