"""What every service is built with: the stores it works on and who is acting.

``project.py`` makes one per project (and one per :meth:`Project.as_actor`) and hands it to
each service together with the other services that service calls, named in its constructor:

>>> Promotions(ctx, models=models, policies=policies, approvals=approvals)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.stores.artifacts import ArtifactStore
    from shipyard.stores.db.engine import Database

__all__ = ["ServiceContext"]


@dataclass(frozen=True)
class ServiceContext:
    """The metadata database, the artifact store, the project's settings, and the actor."""

    db: Database
    artifacts: ArtifactStore
    settings: Settings
    actor: str
