"""A project on a team server: the services a local :class:`~shipyard.project.Project` offers,
with the same method signatures and read models, each call one request to ``/api/v1``.

>>> project = RemoteProject("http://shipyard.internal:8000", token)   # doctest: +SKIP
>>> project.models.get("credit-risk@production").version             # doctest: +SKIP
3
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import httpx

from shipyard.client.connection import ServerConnection
from shipyard.client.data import RemoteContracts, RemoteDatasets
from shipyard.client.features import RemoteFeatures
from shipyard.client.governance import (
    RemoteApprovals,
    RemoteAudit,
    RemoteDeployments,
    RemotePolicies,
    RemotePromotions,
    RemoteTokens,
    RemoteUsers,
)
from shipyard.client.models import RemoteModels
from shipyard.client.monitoring import RemoteDrift
from shipyard.client.runs import RemoteRun, RemoteRuns

__all__ = ["RemoteProject"]


class RemoteProject:
    """The services of the project behind a shipyard server, acting as the token's user.

    ``transport`` replaces the network (for tests: an ``httpx.MockTransport``)."""

    def __init__(
        self, url: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.connection = ServerConnection(url, token, transport=transport)

    def __repr__(self) -> str:
        return f"RemoteProject({self.url!r})"

    @property
    def url(self) -> str:
        return self.connection.url

    @cached_property
    def actor(self) -> str:
        """The token's user (asked of the server once)."""
        return self.users.whoami().name

    @cached_property
    def datasets(self) -> RemoteDatasets:
        return RemoteDatasets(self.connection)

    @cached_property
    def contracts(self) -> RemoteContracts:
        return RemoteContracts(self.connection)

    @cached_property
    def features(self) -> RemoteFeatures:
        return RemoteFeatures(self.connection)

    @cached_property
    def models(self) -> RemoteModels:
        return RemoteModels(self.connection)

    @cached_property
    def runs(self) -> RemoteRuns:
        return RemoteRuns(self.connection, models=self.models)

    @cached_property
    def approvals(self) -> RemoteApprovals:
        return RemoteApprovals(self.connection)

    @cached_property
    def promotions(self) -> RemotePromotions:
        return RemotePromotions(self.connection)

    @cached_property
    def policies(self) -> RemotePolicies:
        return RemotePolicies(self.connection)

    @cached_property
    def deployments(self) -> RemoteDeployments:
        return RemoteDeployments(self.connection)

    @cached_property
    def drift(self) -> RemoteDrift:
        return RemoteDrift(self.connection)

    @cached_property
    def audit(self) -> RemoteAudit:
        return RemoteAudit(self.connection)

    @cached_property
    def users(self) -> RemoteUsers:
        return RemoteUsers(self.connection)

    @cached_property
    def tokens(self) -> RemoteTokens:
        return RemoteTokens(self.connection)

    def start_run(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        system_metrics: bool | float = False,
        autolog: bool = False,
    ) -> RemoteRun:
        """Start a tracked run on the server; use it as a context manager (``autolog``: see
        :meth:`shipyard.Project.start_run`)."""
        from shipyard.registry.autolog import activate

        run = self.runs.start(experiment, name=name, tags=tags, system_metrics=system_metrics)
        activate(run, autolog=autolog)
        return run

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> RemoteProject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
