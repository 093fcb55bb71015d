"""How the server fails: one request alone, and saying why without saying too much.

A row the model cannot score because of its values (a missing, NaN or infinite value after
preprocessing, a number too large for its type) is the client's to fix: a 422. Anything else
is the server's: a 500 whose body carries the request id and a generic sentence, never the
exception's text (it may quote inputs or internals); the server logs the error with that
request id, with credentials in URLs masked.
"""

from __future__ import annotations

import logging
import re
import traceback

from shipyard.errors import ShipyardError

__all__ = ["describe", "internal_error_message", "log_internal_error", "unscorable"]

log = logging.getLogger("shipyard.serving")

# user:password@ in a URL a driver may quote in its message
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
# What scikit-learn's input checks say about values it cannot take (check_array,
# _assert_all_finite): "Input X contains NaN", "... infinity or a value too large for
# dtype('float64')", "... does not accept missing values encoded as NaN natively"; and its
# encoders with handle_unknown="error": "Found unknown categories ['x'] in column 2".
_NOT_FINITE = re.compile(r"\bNaN\b|infinity|too large|missing values", re.IGNORECASE)
_UNKNOWN_CATEGORY = re.compile(r"unknown categor", re.IGNORECASE)


def unscorable(exc: BaseException) -> str | None:
    """The client-facing reason when ``exc``, raised while scoring checked rows, comes from
    values the model cannot take; None when it is the server's failure."""
    if isinstance(exc, OverflowError):
        return "a number in these rows is too large for the model's column type"
    if isinstance(exc, ValueError):
        text = str(exc)
        if _NOT_FINITE.search(text):
            return (
                "the model cannot score these rows: after its preprocessing a value is "
                "missing, NaN or infinite (a missing value where it has no imputer, or a "
                "number too large)"
            )
        if _UNKNOWN_CATEGORY.search(text):
            return "the model cannot score these rows: a category it did not see in training"
    return None


def internal_error_message(request_id: str) -> str:
    """The 500 body's sentence: what happened in general, and the id to quote."""
    return (
        f"the server failed to answer this request; it logged the error with request id "
        f"{request_id}: quote it to the server's operator"
    )


def log_internal_error(request_id: str, where: str, exc: BaseException) -> None:
    """Log ``exc`` with ``request_id`` and its traceback, credentials in URLs masked."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log.error(
        "shipyard serve: request %s to %s failed: %s\n%s",
        request_id,
        where,
        describe(exc),
        _CREDENTIALS.sub("***@", text),
    )


def describe(exc: BaseException) -> str:
    """The error's type and the first line of its message, for a log: a database error is
    described by the driver's error (not the SQL statement and parameters SQLAlchemy adds),
    and credentials in a URL are masked."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    shown = orig if isinstance(orig, BaseException) else exc
    text = shown.message if isinstance(shown, ShipyardError) else str(shown)
    first = (text.strip().splitlines() or [""])[0][:300]
    return f"{type(shown).__name__}: {_CREDENTIALS.sub('***@', first)}"
