"""Deleting dataset versions with governance: soft delete, restore, purge and erasure.

A deleted version is hidden from listings and from ``latest``; a reference to it says who
deleted it, when and why. Its row stays (name, version, digest, who, when, why): the tombstone
that the lineage of a model trained on it keeps showing. Purging (admin) also removes its
blobs from the artifact store, unless a version that is not purged (or any other owner) still
refers to the same content: blobs are content-addressed, so two versions, or a dataset and a
run artifact, may share one. A version in the lineage of a registered model is deleted only
with ``force`` (admin).

Erasure (the right to erasure) writes a new version without the rows a filter matches and
purges every version that held such rows. The filter is a SQL boolean expression evaluated by
polars (``pl.sql_expr``): ``customer_id = 42``, ``email IN ('a@x.org', 'b@x.org')``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard._internal.words import count
from shipyard.authz import require_role
from shipyard.data.versions import BLOBS_REMOVED, KIND, dataset_id, resolve, select_versions
from shipyard.errors import ConflictError, InvalidArgumentError, InvalidInputError, NotFoundError
from shipyard.refs import parse_ref
from shipyard.stores.db.tables import blob_refs, dataset_versions, datasets, drift_references
from shipyard.stores.lineage import walk

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets

__all__ = ["DeletionResult", "delete_versions", "erase_rows", "models_using", "restore_versions"]


@dataclass(frozen=True)
class DeletionResult(ReadModel):
    """What a delete, restore or erase did: the versions it changed, the versions whose
    content it purged, what that freed in the artifact store, and the model versions whose
    lineage now shows a tombstone."""

    action: str
    versions: list[str]
    purged: list[str] = field(default_factory=list)
    blobs_removed: int = 0
    bytes_removed: int = 0
    models: list[str] = field(default_factory=list)
    reason: str = ""
    created: str | None = None  # erase: the new version without the matching rows
    rows_removed: int = 0


def models_using(conn: Connection, refs: list[str]) -> dict[str, list[str]]:
    """For each dataset version in ``refs``, the model versions whose lineage it is in
    (trained or evaluated on it, or on data derived from it)."""
    out: dict[str, list[str]] = {}
    for ref in refs:
        found = sorted(
            {
                e["child"].split(":", 1)[1]
                for e in walk(conn, KIND, ref, upstream=False)
                if e["child"].startswith("model:")
            }
        )
        if found:
            out[ref] = found
    return out


def delete_versions(
    ctx: ServiceContext, target: str, *, reason: str = "", force: bool = False, purge: bool = False
) -> DeletionResult:
    """Soft-delete ``NAME@V`` (or every version of ``NAME``), and with ``purge`` remove
    their content from the artifact store. See the module docstring.

    Raises:
        PermissionDeniedError: not a contributor; or ``purge``/``force`` without admin.
        ConflictError: in a model's lineage without ``force``, or already deleted.
        NotFoundError: no such dataset or version.
    """
    now = datetime.now(UTC)
    with ctx.audited() as tx:
        require_role(tx.conn, ctx.actor, "admin" if purge else "contributor", _doing(purge))
        rows = _targets(tx.conn, target)
        to_delete = [r for r in rows if r.deleted_at is None]
        to_purge = [r for r in rows if r.purged_at is None] if purge else []
        if not to_delete and not to_purge:
            state = "deleted and purged" if purge else "deleted"
            raise ConflictError(
                f"dataset '{target}' is already {state}"
                + ("" if purge else "; `--purge` (admin) removes its content")
            )
        affected = [_ref(r) for r in {id(r): r for r in to_delete + to_purge}.values()]
        models = _check_models(tx.conn, ctx.actor, affected, force)
        for r in to_delete:
            _mark_deleted(tx.conn, r, ctx.actor, now, reason)
            tx.record(
                "dataset.delete",
                KIND,
                _ref(r),
                {"digest": r.digest, "reason": reason, "models": models.get(_ref(r), [])},
            )
        released = _purge(tx, to_purge, now)
    removed, size = _remove_unreferenced(ctx, released)
    return DeletionResult(
        "delete",
        [_ref(r) for r in to_delete],
        [_ref(r) for r in to_purge],
        removed,
        size,
        sorted({m for ms in models.values() for m in ms}),
        reason,
    )


def restore_versions(ctx: ServiceContext, target: str) -> DeletionResult:
    """Bring back ``NAME@V`` (or every deleted version of ``NAME``) that was deleted and not
    purged.

    Raises:
        ConflictError: nothing to restore, or the content was purged.
        PermissionDeniedError: not a contributor.
    """
    with ctx.audited() as tx:
        require_role(tx.conn, ctx.actor, "contributor", "restore data")
        rows = [r for r in _targets(tx.conn, target) if r.deleted_at is not None]
        purged = [_ref(r) for r in rows if r.purged_at is not None]
        if purged and "@" in target:
            raise ConflictError(
                f"dataset '{purged[0]}' cannot be restored: its content was purged; "
                "add the data again to make a new version"
            )
        rows = [r for r in rows if r.purged_at is None]
        if not rows:
            raise ConflictError(f"dataset '{target}' has no deleted version to restore")
        for r in rows:
            tx.conn.execute(
                update(dataset_versions)
                .where(dataset_versions.c.id == r.id)
                .values(deleted_at=None, deleted_by=None, deleted_reason=None)
            )
            tx.record("dataset.restore", KIND, _ref(r), {"digest": r.digest})
    return DeletionResult("restore", [_ref(r) for r in rows])


def erase_rows(
    ctx: ServiceContext,
    service: Datasets,
    name: str,
    where: str,
    *,
    reason: str = "",
    force: bool = False,
) -> DeletionResult:
    """Remove the rows ``where`` matches from dataset ``name`` (admin): a new version without
    them (when the latest version that is not deleted holds any, with its tags), then every
    version holding them, deleted or not, is deleted and purged, and stays as a tombstone
    with its digest. The filter text itself is recorded only as a keyed hash (it usually
    names the person).

    Raises:
        InvalidArgumentError: the filter does not parse (a usage error, exit 2; the message
            lists the dataset's columns).
        InvalidInputError: the filter names an unknown column.
        NotFoundError: no version of ``name`` holds a matching row.
        ConflictError: a version to purge is in a model's lineage and ``force`` is not given.
    """
    import polars as pl

    from shipyard.data.pii import pii_hash, pii_key

    with ctx.db.read() as conn:
        require_role(conn, ctx.actor, "admin", "erase personal data")
        dataset_id(conn, name)
        # Every version whose content is still stored, deleted ones included: a deleted
        # version can be restored, and must not bring the rows back.
        rows = conn.execute(
            select_versions()
            .where(datasets.c.name == name)
            .where(dataset_versions.c.purged_at.is_(None))
            .where(dataset_versions.c.kind == "table")
            .order_by(dataset_versions.c.version)
        ).all()
    # The new version is made from the latest version that is not deleted (if any).
    latest = next((r for r in reversed(rows) if r.deleted_at is None), None)
    try:
        match = pl.sql_expr(where).fill_null(False)
    except pl.exceptions.PolarsError as exc:
        columns = list(dict.fromkeys(c for r in rows for c in r.columns or []))
        raise InvalidArgumentError(
            f"cannot read the filter {where!r}: {exc}; write a SQL condition such as "
            f"\"customer_id = 42\" on the columns of dataset '{name}': "
            f"{', '.join(columns) or 'none'}",
            details={"columns": columns},
        ) from None
    holding: dict[str, int] = {}
    latest_kept: pl.DataFrame | None = None
    for r in rows:
        with ctx.artifacts.local_copy(r.digest, owner=f"dataset '{_ref(r)}'") as path:
            frame = pl.read_parquet(path)
        try:
            hits = frame.select(match.alias("m"))["m"]
        except pl.exceptions.PolarsError as exc:
            raise InvalidInputError(
                f"cannot apply the filter {where!r} to dataset '{_ref(r)}': {exc}; "
                f"its columns are: {', '.join(frame.columns)}"
            ) from None
        n = int(hits.sum())
        if n:
            holding[_ref(r)] = n
            if r is latest:
                latest_kept = frame.filter(~hits)
    if not holding:
        raise NotFoundError(
            f"no row of dataset '{name}' matches {where!r}; nothing was erased",
            details={"dataset": name},
        )
    with ctx.db.read() as conn:
        _check_models(conn, ctx.actor, list(holding), force)
    digest = pii_hash(pii_key(ctx.settings), where)
    created = None
    if latest_kept is not None and latest is not None:
        # The new version stands for the one it was made from: it keeps its tags (an owner,
        # a description). Like split parts, it is not held to the annotation policy, which
        # must never stand in the way of an erasure.
        new = service._add(
            name,
            latest_kept,
            message=f"erasure of {count(holding[_ref(latest)], 'row')}"
            + (f": {reason}" if reason else ""),
            tags=dict(latest.tags or {}),
            parents=[_ref(latest)],
            on_invalid="allow",
            annotated=False,
        )
        created = new.ref
    now = datetime.now(UTC)
    why = f"erasure: {reason}" if reason else "erasure"
    with ctx.audited() as tx:
        require_role(tx.conn, ctx.actor, "admin", "erase personal data")
        targets = [resolve(tx.conn, parse_ref(ref), include_deleted=True) for ref in holding]
        models = models_using(tx.conn, list(holding))
        newly_deleted = [_ref(r) for r in targets if r.deleted_at is None]
        for r in targets:
            if r.deleted_at is None:
                _mark_deleted(tx.conn, r, ctx.actor, now, why)
                tx.record(
                    "dataset.delete",
                    KIND,
                    _ref(r),
                    {"digest": r.digest, "reason": why, "models": models.get(_ref(r), [])},
                )
        released = _purge(tx, [r for r in targets if r.purged_at is None], now)
        tx.record(
            "dataset.erase",
            KIND,
            name,
            {
                "where": digest,
                "reason": reason,
                "rows": holding,
                "version": created,
                "purged": list(holding),
                "models": sorted({m for ms in models.values() for m in ms}),
            },
        )
    removed, size = _remove_unreferenced(ctx, released)
    return DeletionResult(
        "erase",
        newly_deleted,
        list(holding),
        removed,
        size,
        sorted({m for ms in models.values() for m in ms}),
        reason,
        created,
        sum(holding.values()),
    )


# -- helpers ------------------------------------------------------------------------------------


def _doing(purge: bool) -> str:
    return "purge data" if purge else "delete data"


def _ref(row: Any) -> str:
    return f"{row.name}@{row.version}"


def _targets(conn: Connection, target: str) -> list[Any]:
    """The rows ``NAME@V`` (one) or ``NAME`` (every version) means, deleted ones included."""
    ref = parse_ref(target)
    if "@" in target:
        return [resolve(conn, ref, include_deleted=True)]
    ds_id = dataset_id(conn, ref.name)
    return list(
        conn.execute(
            select_versions()
            .where(dataset_versions.c.dataset_id == ds_id)
            .order_by(dataset_versions.c.version)
        ).all()
    )


def _check_models(
    conn: Connection, actor: str, refs: list[str], force: bool
) -> dict[str, list[str]]:
    models = models_using(conn, refs)
    if not models:
        return models
    ref, users = next(iter(models.items()))
    if not force:
        raise ConflictError(
            f"dataset '{ref}' is in the lineage of model {', '.join(users)}; deleting it "
            "needs --force (admin), and the model's lineage then keeps a tombstone "
            "(name, version, digest, who, when, why)",
            details={"models": models},
        )
    require_role(conn, actor, "admin", "delete data that a registered model's lineage uses")
    return models


def _mark_deleted(conn: Connection, row: Any, actor: str, now: datetime, reason: str) -> None:
    conn.execute(
        update(dataset_versions)
        .where(dataset_versions.c.id == row.id)
        .values(deleted_at=now, deleted_by=actor, deleted_reason=reason)
    )


def _purge(tx: Any, rows: list[Any], now: datetime) -> list[str]:
    """Drop the blob owners of ``rows`` and what was derived from their values (profile,
    drift reference, validation examples), keeping the tombstone; the digests released."""
    released: list[str] = []
    for r in rows:
        ref = _ref(r)
        digests = [
            d
            for (d,) in tx.conn.execute(
                select(blob_refs.c.digest)
                .where(blob_refs.c.owner_kind == KIND)
                .where(blob_refs.c.owner == ref)
            )
        ]
        tx.conn.execute(
            delete(blob_refs).where(blob_refs.c.owner_kind == KIND).where(blob_refs.c.owner == ref)
        )
        tx.conn.execute(
            delete(drift_references).where(drift_references.c.dataset_version_id == r.id)
        )
        tx.conn.execute(
            update(dataset_versions)
            .where(dataset_versions.c.id == r.id)
            .values(purged_at=now, profile={}, validation=_without_examples(r.validation))
        )
        tx.record("dataset.purge", KIND, ref, {"digest": r.digest, "blobs": len(digests)})
        released += digests
    return released


def _without_examples(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if not report:
        return report
    failures = [{k: v for k, v in f.items() if k != "examples"} for f in report.get("failures", [])]
    return {**report, "failures": failures}


def _remove_unreferenced(ctx: ServiceContext, digests: list[str]) -> tuple[int, int]:
    """Delete each released blob that nothing refers to any more; (count, bytes) removed.

    A blob still owned by another version (or a run artifact, a model…) stays. The check and
    the deletion happen holding the audit chain's lock, which every write takes to commit,
    and the removal is recorded (``BLOBS_REMOVED``) in that transaction: a dataset write
    (:func:`~shipyard.data.versions.commit_versions`) that found one of these blobs stored
    either committed its reference first (the blob stays), or sees the record when it
    commits and is refused, nothing written. Other writers (a run artifact or a model whose
    bytes equal a purged version's) do not look for the record; ``shipyard verify`` reports
    a blob such a race lost."""
    if not digests:
        return 0, 0
    removed = size = 0
    with ctx.audited() as tx:
        for digest in dict.fromkeys(digests):
            owned = tx.conn.execute(
                select(blob_refs.c.digest).where(blob_refs.c.digest == digest).limit(1)
            ).first()
            if owned is not None:
                continue
            try:
                n = ctx.artifacts.size(digest)
            except FileNotFoundError:
                continue
            ctx.artifacts.delete(digest)
            removed, size = removed + 1, size + n
        if removed:
            tx.record(BLOBS_REMOVED, "store", "artifacts", {"blobs": removed, "bytes": size})
    return removed, size
