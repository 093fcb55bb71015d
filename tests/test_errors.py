"""The error tree: codes, HTTP statuses, CLI exit codes and built-in bases callers rely on."""

from __future__ import annotations

import pytest

from shipyard import errors
from shipyard.errors import (
    CheckFailedError,
    ConflictError,
    DeletedError,
    IntegrityError,
    InvalidArgumentError,
    InvalidInputError,
    InvalidReferenceError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    ProjectNotFoundError,
    ShipyardError,
    UnauthenticatedError,
)

# class, code, HTTP status, exit code, the base classes callers catch it by
ERROR_TABLE = [
    (ShipyardError, "error", 500, 1, (Exception,)),
    (InvalidInputError, "invalid_input", 422, 1, (ShipyardError, ValueError)),
    (InvalidReferenceError, "invalid_ref", 422, 1, (InvalidInputError, ValueError)),
    (InvalidArgumentError, "invalid_input", 422, 2, (InvalidInputError, ValueError)),
    (NotFoundError, "not_found", 404, 1, (ShipyardError, LookupError)),
    (ProjectNotFoundError, "no_project", 404, 1, (NotFoundError, LookupError)),
    (DeletedError, "deleted", 410, 1, (NotFoundError, LookupError)),
    (ConflictError, "conflict", 409, 1, (ShipyardError,)),
    (PermissionDeniedError, "permission", 403, 1, (ShipyardError,)),
    (UnauthenticatedError, "unauthenticated", 401, 1, (ShipyardError,)),
    (IntegrityError, "integrity", 500, 3, (ShipyardError,)),
    (CheckFailedError, "check_failed", 422, 3, (ShipyardError,)),
    (MissingDependencyError, "missing_dependency", 500, 1, (ShipyardError, ImportError)),
]


@pytest.mark.parametrize(
    ("cls", "code", "http_status", "exit_code", "bases"),
    ERROR_TABLE,
    ids=[row[0].__name__ for row in ERROR_TABLE],
)
def test_error_contract(
    cls: type[ShipyardError],
    code: str,
    http_status: int,
    exit_code: int,
    bases: tuple[type[BaseException], ...],
) -> None:
    """Each error class has its documented code, HTTP status, exit code and base classes."""
    err = cls("something went wrong")
    assert (err.code, err.http_status, err.exit_code) == (code, http_status, exit_code)
    for base in bases:
        assert isinstance(err, base)
    assert str(err) == err.message == "something went wrong"


def test_table_covers_every_exported_error() -> None:
    """The table above names every error class the errors module exports."""
    assert {row[0].__name__ for row in ERROR_TABLE} == set(errors.__all__)


def test_errors_are_caught_by_builtin_exceptions() -> None:
    """Callers can catch shipyard errors with the built-in exceptions they already know."""
    with pytest.raises(LookupError):
        raise NotFoundError("no dataset 'x'")
    with pytest.raises(ValueError):
        raise InvalidReferenceError("bad ref")
    with pytest.raises(ImportError):
        raise MissingDependencyError("needs s3fs")


def test_to_dict_without_details() -> None:
    """An error without details renders as a JSON document with its code and message."""
    assert ConflictError("name taken").to_dict() == {"error": "conflict", "message": "name taken"}


def test_to_dict_with_details() -> None:
    """Structured details travel with the error into its JSON document."""
    err = PermissionDeniedError("no", details={"actor": "bob", "needed": "admin"})
    assert err.to_dict() == {
        "error": "permission",
        "message": "no",
        "details": {"actor": "bob", "needed": "admin"},
    }


def test_missing_dependency_names_the_extra_to_install() -> None:
    """A missing optional package produces a message naming the package and the extra."""
    err = MissingDependencyError.for_extra("s3fs", "s3", "an S3 artifact store")
    assert isinstance(err, MissingDependencyError)
    assert "an S3 artifact store needs the 's3fs' package" in err.message
    assert "pip install 'shipyard[s3]'" in err.message


def test_module_docstring_draws_every_error() -> None:
    """The error tree in the module docstring names every exported error class."""
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc
