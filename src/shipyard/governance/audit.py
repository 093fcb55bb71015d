"""The audit service: read the log, verify its hash chain, sign and check checkpoints."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shipyard.stores.audit import AuditEvent, ChainReport, query_events, verify_chain

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from shipyard.context import ServiceContext
    from shipyard.stores.checkpoints import Checkpoint

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
        since: datetime | None = None,
        actions: Sequence[str] | None = None,
    ) -> list[AuditEvent]:
        """Events, oldest first unless ``newest_first``.

        ``entity`` is ``NAME``, ``NAME@N`` or ``KIND:NAME`` (e.g. ``dataset:credit``);
        ``since`` keeps events from that time on; ``actions`` keeps exactly those actions.
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
                since=since,
                actions=actions,
            )

    def verify(self, *, checkpoint: str | os.PathLike[str] | None = None) -> ChainReport:
        """Recompute the whole chain, and rebuild the governance state from its events to
        compare with the tables; ``ok`` is False at the first edited, missing or reordered
        event, and when any governance row differs from what the events say
        (``report.state`` names each, with its table and key).

        With ``checkpoint`` (a file written by :meth:`checkpoint`), also check that it is
        signed by a trusted key and that the chain still holds its head: a chain rewritten
        and re-hashed since then fails (``report.checkpoint`` says why).

        >>> project.audit.verify(checkpoint="audit-2025-05.json").ok   # doctest: +SKIP

        Raises:
            NotFoundError, ShipyardError: the checkpoint file or the local key cannot be read.
            InvalidInputError: the local key file is inside the project folder.
        """
        from shipyard.governance.audit_state import check_state

        if checkpoint is None:
            with self._ctx.db.snapshot() as conn:
                return verify_chain(conn).with_state(check_state(conn))
        from shipyard.stores.audit_keys import local_key
        from shipyard.stores.checkpoints import check_checkpoint, read_checkpoint

        data = read_checkpoint(checkpoint)
        local = local_key(self._ctx.settings.root)
        with self._ctx.db.snapshot() as conn:
            report = verify_chain(conn).with_state(check_state(conn))
            check = check_checkpoint(
                conn,
                data,
                file=os.fspath(checkpoint),
                chain=report,
                project=self._ctx.settings.name,
                local=local,
            )
        return report.with_checkpoint(check)

    def checkpoint(self, output: str | os.PathLike[str], *, force: bool = False) -> Checkpoint:
        """Sign the head of the chain with your audit key and write it to ``output``.

        The key is ``SHIPYARD_AUDIT_KEY_FILE``, else ``~/.config/shipyard/audit-ed25519.pem``
        (created on first use); the first time it signs for this project its public key is
        recorded in the chain (an ``audit.key`` event). File format:
        :mod:`shipyard.stores.checkpoints`.

        >>> project.audit.checkpoint("audit-2025-05.json").seq          # doctest: +SKIP
        42

        Raises:
            ConflictError: ``output`` exists and ``force`` is false.
            InvalidInputError: the key file is inside the project folder, or not an Ed25519
                PEM key.
            ShipyardError: the key or ``output`` cannot be read or written.
        """
        from shipyard.stores.checkpoints import make_checkpoint

        return make_checkpoint(
            self._ctx.db,
            actor=self._ctx.actor,
            project=self._ctx.settings.name,
            project_root=self._ctx.settings.root,
            output=output,
            force=force,
        )
