"""The team server's client: the service interface of a project over HTTP.

``shipyard.open_project()`` and the CLI return a :class:`RemoteProject` when
``SHIPYARD_SERVER`` (with ``SHIPYARD_TOKEN``) is set or ``shipyard login URL`` stored a login;
its services have the local services' verbs and return the same read models.

>>> from shipyard.client import RemoteProject
>>> project = RemoteProject("http://127.0.0.1:8000", "shp_…")      # doctest: +SKIP
>>> project.datasets.list()                                       # doctest: +SKIP

The names are imported when first used: opening a local project reads the stored login
(``shipyard.client.login``) and must not pay for httpx and every remote service.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULE_OF = {
    "NotAvailableRemotelyError": "unsupported",
    "RemoteProject": "project",
    "RemoteRun": "runs",
    "RemoteTarget": "login",
    "ServerConnection": "connection",
    "ServerUnreachableError": "connection",
    "forget_login": "login",
    "remote_target": "login",
    "store_login": "login",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
