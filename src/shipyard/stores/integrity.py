"""``shipyard verify``: re-hash every blob and name the owners of any that are damaged."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.stores.artifacts import ArtifactStore
from shipyard.stores.db.engine import Database
from shipyard.stores.db.tables import blob_refs

__all__ = ["StoreReport", "verify_store"]


@dataclass(frozen=True)
class StoreReport:
    """The outcome of checking every blob."""

    checked: int
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    unreferenced: int = 0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "corrupt": self.corrupt,
            "missing": self.missing,
            "unreferenced": self.unreferenced,
        }


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
