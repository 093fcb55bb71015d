"""``shipyard verify``: re-hash every blob and name the owners of any that are damaged."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.stores.artifacts import ArtifactStore
from shipyard.stores.db.engine import Database
from shipyard.stores.db.tables import blob_refs

__all__ = ["GarbageReport", "StoreReport", "collect_garbage", "verify_store"]


@dataclass(frozen=True)
class StoreReport(ReadModel):
    """The outcome of checking every blob."""

    json_properties = ("ok",)

    checked: int
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    unreferenced: int = 0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


def verify_store(
    db: Database, artifacts: ArtifactStore, progress: Progress = NO_PROGRESS
) -> StoreReport:
    """Re-hash every blob in the store and every blob the metadata refers to.

    Unreferenced blobs (left by an interrupted write) are counted, not errors.
    """
    owners: dict[str, list[str]] = defaultdict(list)
    with db.read() as conn:
        for r in conn.execute(select(blob_refs).order_by(blob_refs.c.owner)):
            owners[r.digest].append(f"{r.owner_kind} '{r.owner}' ({r.role})")
    present = list(artifacts.iter_digests())
    digests = sorted(set(present) | set(owners))
    progress.stage("verifying blobs", total=len(digests))
    corrupt: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for digest in digests:
        result = artifacts.check(digest)
        entry = {"digest": digest, "owners": owners.get(digest, [])}
        if result.status == "corrupt":
            corrupt.append({**entry, "actual": result.actual})
        elif result.status == "missing":
            missing.append(entry)
        progress.advance(1)
    unreferenced = sum(1 for d in present if d not in owners)
    return StoreReport(len(digests), corrupt, missing, unreferenced)


@dataclass(frozen=True)
class GarbageReport(ReadModel):
    """What ``shipyard gc`` removed (or would remove, with ``dry_run``)."""

    blobs: list[str]
    bytes: int
    staging_files: int
    dry_run: bool


def collect_garbage(
    db: Database, artifacts: ArtifactStore, *, grace_seconds: float = 3600.0, dry_run: bool = False
) -> GarbageReport:
    """Remove blobs no metadata refers to (left by interrupted writes) and stale staging files.

    Only blobs older than ``grace_seconds`` go: a write in progress stores its blob (or, when
    the content is already stored, refreshes the blob's age) shortly before committing the
    row that refers to it. Right before deleting a blob its age and references are checked
    again, so a write that re-used it while the store was being listed keeps it.
    """
    with db.read() as conn:
        referenced = {r.digest for r in conn.execute(select(blob_refs.c.digest))}
    sizes: dict[str, int] = {}
    for digest in artifacts.iter_digests():
        if digest in referenced or not _old(artifacts, digest, grace_seconds):
            continue
        sizes[digest] = artifacts.size(digest)
    staged = 0
    if not dry_run:
        for digest in list(sizes):
            if not _old(artifacts, digest, grace_seconds) or _referenced(db, digest):
                del sizes[digest]  # re-used by a write since the listing: keep it
                continue
            artifacts.delete(digest)
        staged = artifacts.clean_staging(grace_seconds)
    return GarbageReport(list(sizes), sum(sizes.values()), staged, dry_run)


def _old(artifacts: ArtifactStore, digest: str, grace_seconds: float) -> bool:
    """Whether the blob is still present and older than the grace period."""
    try:
        return artifacts.age_seconds(digest) >= grace_seconds
    except FileNotFoundError:
        return False


def _referenced(db: Database, digest: str) -> bool:
    with db.read() as conn:
        row = conn.execute(select(blob_refs.c.digest).where(blob_refs.c.digest == digest)).first()
    return row is not None
