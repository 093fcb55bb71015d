"""The audit service: read the log and verify its hash chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.stores.audit import AuditEvent, ChainReport, query_events, verify_chain

if TYPE_CHECKING:
    from shipyard.context import ServiceContext

__all__ = ["AuditLog"]


class AuditLog:
    """Read access to the tamper-evident history of every change and data read."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def list(
        self,
        *,
        entity: str | None = None,
        entity_kind: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        """Events, oldest first unless ``newest_first``.

        ``entity`` is ``NAME``, ``NAME@N`` or ``KIND:NAME`` (e.g. ``dataset:credit``).
        """
        if entity and ":" in entity and entity_kind is None:
            entity_kind, _, entity = entity.partition(":")
        with self._ctx.db.read() as conn:
            return query_events(
                conn,
                entity=entity,
                entity_kind=entity_kind,
                action=action,
                actor=actor,
                limit=limit,
                newest_first=newest_first,
            )

    def verify(self) -> ChainReport:
        """Recompute the whole chain; ``ok`` is False at the first edited, missing or
        reordered event."""
        with self._ctx.db.read() as conn:
            return verify_chain(conn)
