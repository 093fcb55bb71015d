"""What every service is built with: the stores it works on and who is acting.

``project.py`` makes one per project (and one per :meth:`Project.as_actor`) and hands it to
each service together with the other services that service calls, named in its constructor:

>>> Promotions(ctx, models=models, policies=policies, approvals=approvals)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from shipyard.config import Settings
    from shipyard.stores.artifacts import ArtifactStore
    from shipyard.stores.audit import AuditedTransaction
    from shipyard.stores.db.engine import Database

__all__ = ["ServiceContext"]


@dataclass(frozen=True)
class ServiceContext:
    """The metadata database, the artifact store, the project's settings, and the actor
    (with the API token it acts through on the team server, recorded with each change)."""

    db: Database
    artifacts: ArtifactStore
    settings: Settings
    actor: str
    token_id: str | None = None

    def audited(self) -> AbstractContextManager[AuditedTransaction]:
        """A write transaction whose audit events name this context's actor and token."""
        from shipyard.stores.audit import audited

        return audited(self.db, self.actor, self.token_id)
