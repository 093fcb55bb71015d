"""Errors raised by shipyard.

Every error carries a machine-readable ``code``, the HTTP status a server answers with, and
the exit code the CLI ends with (DESIGN.md: 1 error, 2 usage error, 3 a check that ran and did
not pass)::

    ShipyardError                       code            http  exit
    ├── InvalidInputError (ValueError)  invalid_input    422   1
    │   ├── InvalidReferenceError       invalid_ref      422   1
    │   └── InvalidArgumentError        invalid_input    422   2
    ├── NotFoundError (LookupError)     not_found        404   1
    │   ├── ProjectNotFoundError        no_project       404   1
    │   └── DeletedError                deleted          410   1
    ├── ConflictError                   conflict         409   1
    ├── PermissionDeniedError           permission       403   1
    ├── UnauthenticatedError            unauthenticated  401   1
    ├── IntegrityError                  integrity        500   3
    ├── CheckFailedError                check_failed     422   3
    └── MissingDependencyError (ImportError)  missing_dependency  500  1

Messages name the offending thing and, where there is one, the fix.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckFailedError",
    "ConflictError",
    "DeletedError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidInputError",
    "InvalidReferenceError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProjectNotFoundError",
    "ShipyardError",
    "UnauthenticatedError",
]


class ShipyardError(Exception):
    """Base of every error shipyard raises on purpose."""

    code: str = "error"
    http_status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready document (used by ``--json`` and the HTTP API)."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InvalidInputError(ShipyardError, ValueError):
    """The input (a file, an argument, a document) is not acceptable."""

    code = "invalid_input"
    http_status = 422

    @classmethod
    def from_problems(cls, what: str, problems: list[str]) -> InvalidInputError:
        """One error listing every problem found in ``what`` ("2 problems in contract: …"),
        with the list in ``details["problems"]``."""
        n = len(problems)
        return cls(
            f"{n} problem{'s' if n != 1 else ''} in {what}: " + "; ".join(problems),
            details={"problems": list(problems)},
        )


class InvalidArgumentError(InvalidInputError):
    """A value the caller chose does not fit what the call offers: an unknown format or
    executor, a param the pipeline does not take or cannot convert, a schedule that cannot be
    used. On the command line it is a usage error (exit 2), as a bad option value is."""

    exit_code = 2


class InvalidReferenceError(InvalidInputError):
    """A reference such as ``churn@3`` cannot be parsed."""

    code = "invalid_ref"


class NotFoundError(ShipyardError, LookupError):
    """The named thing does not exist."""

    code = "not_found"
    http_status = 404


class ProjectNotFoundError(NotFoundError):
    """No ``shipyard.toml`` was found."""

    code = "no_project"


class DeletedError(NotFoundError):
    """The named version exists but was deleted; ``details`` say by whom, when and why."""

    code = "deleted"
    http_status = 410


class ConflictError(ShipyardError):
    """The change conflicts with the current state (e.g. the name is taken)."""

    code = "conflict"
    http_status = 409


class PermissionDeniedError(ShipyardError):
    """The actor's role does not allow the action."""

    code = "permission"
    http_status = 403


class UnauthenticatedError(ShipyardError):
    """The request names no one: no token, or one that is unknown, expired or revoked."""

    code = "unauthenticated"
    http_status = 401


class IntegrityError(ShipyardError):
    """Stored bytes or history do not match their recorded digest."""

    code = "integrity"
    http_status = 500
    exit_code = 3


class CheckFailedError(ShipyardError):
    """A check ran and did not pass (validation, policy gate, audit verification)."""

    code = "check_failed"
    http_status = 422
    exit_code = 3


class MissingDependencyError(ShipyardError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""

    code = "missing_dependency"

    @classmethod
    def for_extra(cls, package: str, extra: str, purpose: str) -> MissingDependencyError:
        return cls(
            f"{purpose} needs the '{package}' package, which is not installed; "
            f"install it with: pip install 'shipyard[{extra}]'"
        )
