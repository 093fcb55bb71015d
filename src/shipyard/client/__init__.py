"""The team server's client: the service interface of a project over HTTP.

``shipyard.open_project()`` and the CLI return a :class:`RemoteProject` when
``SHIPYARD_SERVER`` (with ``SHIPYARD_TOKEN``) is set or ``shipyard login URL`` stored a login;
its services have the local services' verbs and return the same read models.

>>> from shipyard.client import RemoteProject
>>> project = RemoteProject("http://127.0.0.1:8000", "shp_…")      # doctest: +SKIP
>>> project.datasets.list()                                       # doctest: +SKIP
"""

from __future__ import annotations

from shipyard.client.connection import ServerConnection, ServerUnreachableError
from shipyard.client.login import RemoteTarget, forget_login, remote_target, store_login
from shipyard.client.project import RemoteProject
from shipyard.client.runs import RemoteRun
from shipyard.client.unsupported import NotAvailableRemotelyError

__all__ = [
    "NotAvailableRemotelyError",
    "RemoteProject",
    "RemoteRun",
    "RemoteTarget",
    "ServerConnection",
    "ServerUnreachableError",
    "forget_login",
    "remote_target",
    "store_login",
]
