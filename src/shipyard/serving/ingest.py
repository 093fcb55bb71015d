"""What clients send to ``/feedback`` and ``/kpi``: who may send it (an optional bearer
token), the shape of the bodies, and how feedback waits for the log row of an answer given a
moment ago.

The rules on the values themselves (which labels, which KPI names and values) belong to the
:class:`~shipyard.serving.predictions.Predictions` service, so the Python API obeys them too;
this module only reads the HTTP side.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.serving.feedback import FeedbackItem, show_value
from shipyard.serving.inputs import RequestError

if TYPE_CHECKING:
    from shipyard.serving.feedback import FeedbackResult
    from shipyard.serving.prediction_log import PredictionLog
    from shipyard.serving.predictions import Predictions

__all__ = [
    "IngestAuth",
    "Unauthorized",
    "feedback_body",
    "kpi_body",
    "read_token",
    "store_feedback",
]

FEEDBACK_KEYS = ("request_id", "label", "replace")
KPI_KEYS = ("name", "value", "request_id")
# How often a request waiting for another process's log rows looks at the table again, and
# how often it looks whether this process's own log has been written.
_POLL_SECONDS = 0.25
_SETTLE_STEP = 0.02


class Unauthorized(RequestError):
    """A request to an ingest endpoint without the right bearer token: 401, with the
    ``WWW-Authenticate`` challenge to send."""

    def __init__(self, message: str, challenge: str) -> None:
        super().__init__(401, "unauthorized", message)
        self.challenge = challenge


def read_token(path: str | Path) -> str:
    """The bearer token in the file at ``path``: its content, without surrounding
    whitespace.

    Raises:
        InvalidInputError: the file cannot be read, is empty, or holds more than one word
            (the message names the file, never its content).
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InvalidInputError(
            f"cannot read the ingest token file {path}: {reason}; write the token that "
            "/feedback and /kpi clients will send into it (e.g. `openssl rand -hex 32 > "
            f"{path}`)"
        ) from None
    if not token:
        raise InvalidInputError(
            f"the ingest token file {path} is empty; write the token that /feedback and /kpi "
            f"clients will send into it (e.g. `openssl rand -hex 32 > {path}`)"
        )
    if any(c.isspace() or not c.isprintable() for c in token):
        raise InvalidInputError(
            f"the ingest token in {path} holds spaces or control characters; a bearer token "
            "is one word of printable characters"
        )
    return token


class IngestAuth:
    """Who may post to ``/feedback`` and ``/kpi``: anyone (no token), or requests with
    ``Authorization: Bearer <token>``."""

    def __init__(self, token: str | None) -> None:
        self._token = None if token is None else token.encode()

    @classmethod
    def from_file(cls, path: str | None) -> IngestAuth:
        """The token in ``path`` (see :func:`read_token`); open to anyone when None."""
        return cls(None if path is None else read_token(path))

    @property
    def required(self) -> bool:
        return self._token is not None

    def check(self, authorization: str | None) -> None:
        """Refuse a request whose ``Authorization`` header does not carry the token.

        Raises:
            Unauthorized: the header is missing, not a bearer token, or the wrong token.
        """
        if self._token is None:
            return
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized(
                "this server takes feedback and KPIs only with the ingest token: send "
                "`Authorization: Bearer <token>` (the token is in the file given to "
                "`shipyard serve --ingest-token-file`)",
                challenge='Bearer realm="shipyard"',
            )
        # Headers arrive as latin-1 text: compare the bytes that were sent.
        sent = credentials.strip().encode("latin-1", errors="replace")
        if not hmac.compare_digest(sent, self._token):
            raise Unauthorized(
                "the bearer token is not this server's ingest token; send the token in the "
                "file given to `shipyard serve --ingest-token-file`",
                challenge='Bearer realm="shipyard", error="invalid_token"',
            )


def feedback_body(doc: Any) -> list[FeedbackItem]:
    """The items of a ``/feedback`` body: one object or a list of objects with
    ``request_id``, ``label`` and optionally ``replace``.

    Raises:
        RequestError: 422 when an item has another shape (the values are the service's
            to check).
    """
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for i, item in enumerate(items):
        _check_keys(item, i, "feedback", required=("request_id", "label"), allowed=FEEDBACK_KEYS)
        out.append(FeedbackItem(item["request_id"], item["label"], item.get("replace", False)))
    return out


def kpi_body(doc: Any) -> list[tuple[Any, Any, Any]]:
    """The events of a ``/kpi`` body: one object or a list of objects with ``name``,
    ``value`` and optionally ``request_id``.

    Raises:
        RequestError: 422 when an event has another shape.
    """
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for i, item in enumerate(items):
        _check_keys(item, i, "kpi", required=("name", "value"), allowed=KPI_KEYS)
        out.append((item["name"], item["value"], item.get("request_id")))
    return out


def _check_keys(
    item: Any, i: int, what: str, *, required: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    optional = [k for k in allowed if k not in required]
    shape = (
        "{"
        + ", ".join([*(f'"{k}": ...' for k in required), *(f'"{k}" (optional)' for k in optional)])
        + "}"
    )
    if not isinstance(item, dict):
        raise RequestError(
            422, "invalid_input", f"{what} item {i}: expected {shape}, got {show_value(item)}"
        )
    missing = [k for k in required if k not in item]
    unknown = [k for k in item if k not in allowed]
    if missing or unknown:
        problems = [f"no {k!r}" for k in missing] + [
            f"unknown key {show_value(k)}" for k in unknown
        ]
        raise RequestError(
            422, "invalid_input", f"{what} item {i}: {', '.join(problems)}; expected {shape}"
        )


async def store_feedback(
    predictions: Predictions,
    deployment: str,
    items: list[FeedbackItem],
    *,
    log: PredictionLog,
    issued_here: Callable[[str], bool],
    wait_seconds: float,
) -> list[FeedbackResult]:
    """Store feedback through ``predictions``, waiting at most ``wait_seconds`` for request
    ids whose answers are not in the log's table yet.

    An answer reaches the table up to a second or two after it was given: this process
    hands its ``log`` to the writer at once and waits for it; an id that another worker or
    server issued (``issued_here`` is false) is looked up again every quarter second until
    the time is up, as that worker writes its log within its flush interval.

    Raises:
        NotFoundError: request ids still unknown (an id this process issued is known to be
            missing as soon as its own log is written).
        InvalidInputError: as :meth:`Predictions.record_feedback`.
    """
    deadline = time.monotonic() + wait_seconds
    own_log_written = False
    for _ in range(int(wait_seconds / _POLL_SECONDS) + 3):
        try:
            return await asyncio.to_thread(predictions.record_feedback, deployment, items)
        except NotFoundError as exc:
            missing = exc.details.get("request_ids") or []
            ours = all(issued_here(rid) for rid in missing)
            if not missing or time.monotonic() >= deadline or (ours and own_log_written):
                raise
        mark = log.flush()
        for _ in range(int(wait_seconds / _SETTLE_STEP) + 1):
            if log.settled(mark) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(_SETTLE_STEP)
        own_log_written = log.settled(mark)
        if not ours:
            await asyncio.sleep(max(0.0, min(_POLL_SECONDS, deadline - time.monotonic())))
    return await asyncio.to_thread(predictions.record_feedback, deployment, items)
