"""The one error for what the team server cannot do yet."""

from __future__ import annotations

from shipyard.errors import ShipyardError

__all__ = ["NotAvailableRemotelyError", "not_available"]


class NotAvailableRemotelyError(ShipyardError):
    """An operation that works on a local project but not through the team server (yet)."""

    code = "not_available_remotely"
    http_status = 501


def not_available(what: str, server: str) -> NotAvailableRemotelyError:
    """The refusal of ``what`` (a command such as ``shipyard data split``) in remote mode."""
    return NotAvailableRemotelyError(
        f"`{what}` is not available through the shipyard server ({server}) yet; run it where "
        "the project's database is reachable (unset SHIPYARD_SERVER, or `shipyard logout`), "
        "with --project DIR"
    )
