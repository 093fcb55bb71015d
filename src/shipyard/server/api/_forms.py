"""Multipart form fields that carry JSON (tags, parents, input examples), parsed with a 422
that names the field."""

from __future__ import annotations

import json
from typing import Any

from shipyard.errors import InvalidInputError

__all__ = ["json_field"]


def json_field(text: str | None, what: str, kind: type[dict[Any, Any]] | type[list[Any]]) -> Any:
    """The JSON ``text`` of form field ``what``, which must be a ``kind`` (dict or list);
    None when the field is empty.

    Raises:
        InvalidInputError: not JSON, or not a ``kind``.
    """
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"form field {what!r} is not JSON: {exc.msg}") from None
    if not isinstance(value, kind):
        shape = "object" if kind is dict else "list"
        raise InvalidInputError(f"form field {what!r} must be a JSON {shape}")
    return value
