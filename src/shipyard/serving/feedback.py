"""Ground-truth labels: which label a model could have been given, and how a label is stored
once per request id.

A label must be something the answering version could have predicted: one of its classes for
a classifier (from the signature's outputs), a finite number for a regressor; for a version
without a signature, a value of the same kind as the logged answer. The first label sent for
a request id is kept; a later one replaces it only when the sender says so, and the label it
replaced is kept beside it (``feedback.replaced_label``, ``replaced_at``). So every request id
counts once in accuracy and in the feedback totals, however often a client retries.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError
from shipyard.stores.db.tables import feedback

__all__ = [
    "FEEDBACK_STATUSES",
    "CheckedLabel",
    "FeedbackItem",
    "FeedbackResult",
    "FeedbackStatus",
    "check_label",
    "feedback_items",
    "request_id_problem",
    "same_answer",
    "show_value",
    "store_labels",
]

FeedbackStatus = Literal["stored", "unchanged", "kept", "replaced"]
FEEDBACK_STATUSES: tuple[FeedbackStatus, ...] = ("stored", "unchanged", "kept", "replaced")

MAX_REQUEST_ID_CHARS = 32
MAX_TEXT_LABEL_CHARS = 200
# Classes listed in a message about a label outside them.
_SHOWN_CLASSES = 50


@dataclass(frozen=True)
class FeedbackItem:
    """One label to store: for ``request_id``, the ``label``; ``replace`` says that it
    replaces a label already stored for the same request id."""

    request_id: str
    label: Any
    replace: bool = False


@dataclass(frozen=True)
class FeedbackResult(ReadModel):
    """What became of one feedback item.

    ``status``: ``stored`` (the first label for the request id), ``unchanged`` (the same
    label was stored already), ``kept`` (another label was stored already and is kept; send
    the item with ``replace`` to replace it) or ``replaced`` (this label replaced
    ``replaced_label``). ``label`` is the label stored now, ``correct`` whether the answer
    of ``model`` (``name@version``) agrees with it.
    """

    request_id: str
    model: str
    status: FeedbackStatus
    label: Any
    correct: bool
    replaced_label: Any = None
    message: str | None = None


def request_id_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a request id, or None."""
    if isinstance(value, str) and 1 <= len(value) <= MAX_REQUEST_ID_CHARS:
        return None
    return (
        f"request_id must be the text of a request id (at most {MAX_REQUEST_ID_CHARS} "
        f"characters), got {show_value(value)}"
    )


def feedback_items(items: Sequence[Any]) -> list[FeedbackItem]:
    """``items`` (:class:`FeedbackItem`, or ``(request_id, label)`` and ``(request_id, label,
    replace)`` tuples) as feedback items, after checking every one of them.

    Raises:
        InvalidInputError: no items, an item of another shape, a malformed request id, a
            ``replace`` that is not true or false, or one request id in two items (every
            problem is listed).
    """
    if not items:
        raise InvalidInputError("no feedback given")
    problems: list[str] = []
    out: list[FeedbackItem] = []
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, FeedbackItem):
            rid, label, replace = item.request_id, item.label, item.replace
        elif isinstance(item, tuple | list) and len(item) in (2, 3):
            rid, label, replace = item[0], item[1], item[2] if len(item) == 3 else False
        else:
            problems.append(
                f"feedback item {i}: expected (request_id, label) or (request_id, label, "
                f"replace), got {show_value(item)}"
            )
            continue
        problem = request_id_problem(rid)
        if problem is not None:
            problems.append(f"feedback item {i}: {problem}")
            continue
        if not isinstance(replace, bool):
            problems.append(
                f"feedback item {i}: replace must be true or false, got {show_value(replace)}"
            )
        if rid in first:
            problems.append(
                f"feedback items {first[rid]} and {i} are both for request id {rid!r}: send one "
                "label per request id"
            )
        first.setdefault(rid, i)
        out.append(FeedbackItem(rid, label, replace))
    if problems:
        raise InvalidInputError.from_problems("the feedback", problems)
    return out


def check_label(label: Any, model: str, outputs: Mapping[str, Any] | None, answer: Any) -> Any:
    """``label`` as stored (a classifier's label as its class: ``1.0`` becomes ``1``), if
    ``model`` could have answered it: one of the classes in its signature's ``outputs``, a
    finite number for a regressor, a value of the kind of its logged ``answer`` without a
    signature.

    >>> check_label(1.0, "churn@3", {"kind": "classification", "classes": [0, 1]}, 0)
    1

    Raises:
        InvalidInputError: the label is not one of those, naming the allowed values.
    """
    kind = outputs.get("kind") if outputs else None
    classes = outputs.get("classes") if outputs else None
    if kind == "classification" and isinstance(classes, list):
        for c in classes:
            if same_label(label, c):
                return c
        allowed = ", ".join(json.dumps(c) for c in classes[:_SHOWN_CLASSES])
        more = (
            f" (and {len(classes) - _SHOWN_CLASSES} more)" if len(classes) > _SHOWN_CLASSES else ""
        )
        raise InvalidInputError(
            f"label {show_value(label)} is not a class of {model}; allowed: {allowed}{more}"
        )
    if kind == "regression" or (kind is None and _is_number(answer)):
        if not _finite(label):
            what = "a regressor" if kind else "its answers are numbers"
            raise InvalidInputError(
                f"label {show_value(label)} is not a finite number, which {model} ({what}) needs"
            )
        return _plain_number(label)
    if kind is None and isinstance(answer, bool):
        if not isinstance(label, bool):
            raise InvalidInputError(
                f"label {show_value(label)} is not true or false, as the answers of {model} are"
            )
        return label
    # No signature, and an answer that is text or something else: a scalar label.
    if isinstance(label, str) and 0 < len(label) <= MAX_TEXT_LABEL_CHARS:
        return label
    if isinstance(label, bool):
        return label
    if _finite(label):
        return _plain_number(label)
    raise InvalidInputError(
        f"label {show_value(label)} is not a number, true/false or a text of 1 to "
        f"{MAX_TEXT_LABEL_CHARS} characters, which {model} (without a signature) needs"
    )


def same_label(a: Any, b: Any) -> bool:
    """Whether two labels are the same value: numbers by value (``1 == 1.0``), but true and
    false are not the numbers 1 and 0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def same_answer(prediction: Any, label: Any) -> bool:
    """Whether a logged answer agrees with a label (numbers by value, else as text)."""
    if isinstance(prediction, int | float) and isinstance(label, int | float):
        return float(prediction) == float(label)
    return str(prediction) == str(label)


@dataclass(frozen=True)
class CheckedLabel:
    """A feedback item whose label :func:`check_label` accepted for the ``model`` that gave
    ``answer``; ``label`` is the label as stored."""

    item: FeedbackItem
    model: str
    answer: Any
    label: Any


def store_labels(
    conn: Connection, deployment: str, checked: Sequence[CheckedLabel], now: int
) -> list[FeedbackResult]:
    """Store checked labels in ``conn``'s transaction, one per request id: the first is
    kept, a replacement is recorded beside the label it replaced."""
    rids = [c.item.request_id for c in checked]
    stored = _stored_labels(conn, rids)
    fresh = [c for c in checked if c.item.request_id not in stored]
    inserted: set[str] = set()
    if fresh:
        # A concurrent request may store a label for the same request id first: the unique
        # index decides, and the loser treats that label as the one already stored.
        rows = [
            {
                "request_id": c.item.request_id,
                "deployment": deployment,
                "label": _json(c.label),
                "time": now,
            }
            for c in fresh
        ]
        inserted = {
            r.request_id
            for r in conn.execute(_insert_new(conn).returning(feedback.c.request_id), rows)
        }
        lost = [c.item.request_id for c in fresh if c.item.request_id not in inserted]
        if lost:
            stored.update(_stored_labels(conn, lost))
    results = []
    for c in checked:
        rid = c.item.request_id
        if rid in inserted:
            results.append(_result(c, "stored", c.label))
            continue
        before = json.loads(stored[rid])
        if same_label(before, c.label):
            results.append(_result(c, "unchanged", before))
        elif not c.item.replace:
            message = (
                f"request id {rid} already has the label {show_value(before)}, which is kept; send "
                'the item again with "replace": true to replace it'
            )
            results.append(_result(c, "kept", before, message=message))
        else:
            results.append(_replace(conn, c, now))
    return results


def _replace(conn: Connection, c: CheckedLabel, now: int) -> FeedbackResult:
    rid, text = c.item.request_id, _json(c.label)
    # The old label moves to replaced_label in the same statement, so a concurrent
    # replacement cannot make this one report a label it did not replace.
    row = conn.execute(
        update(feedback)
        .where(feedback.c.request_id == rid)
        .where(feedback.c.label != text)
        .values(replaced_label=feedback.c.label, label=text, replaced_at=now)
        .returning(feedback.c.replaced_label)
    ).first()
    if row is None:  # replaced by the same label meanwhile
        return _result(c, "unchanged", c.label)
    return _result(c, "replaced", c.label, replaced=json.loads(row.replaced_label))


def _result(
    c: CheckedLabel,
    status: FeedbackStatus,
    label: Any,
    *,
    replaced: Any = None,
    message: str | None = None,
) -> FeedbackResult:
    correct = same_answer(c.answer, label)
    return FeedbackResult(c.item.request_id, c.model, status, label, correct, replaced, message)


def _stored_labels(conn: Connection, rids: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(rids), 500):
        chunk = rids[start : start + 500]
        query = select(feedback.c.request_id, feedback.c.label).where(
            feedback.c.request_id.in_(chunk)
        )
        out.update({r.request_id: r.label for r in conn.execute(query)})
    return out


def _insert_new(conn: Connection) -> Any:
    """``INSERT ... ON CONFLICT (request_id) DO NOTHING`` for the connection's database."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(feedback).on_conflict_do_nothing(index_elements=["request_id"])
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(feedback).on_conflict_do_nothing(index_elements=["request_id"])
    return insert(feedback)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    if not _is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond a double
        return False


def _plain_number(value: Any) -> int | float:
    """A finite number as a Python int or float (NumPy scalars included), for JSON."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def show_value(value: Any) -> str:
    """A value for a message: JSON, cut at 80 characters (newlines escaped)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
