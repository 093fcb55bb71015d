"""One encoder for every read model: a frozen dataclass (and whatever it holds) as JSON-ready
values, for ``--json`` output and HTTP responses.

Fields are written in declaration order; datetimes as ISO 8601 text, tuples and sets as
lists, nested read models recursively. A field's ``metadata`` may say how it is written:

- ``{"json": "omit"}``: left out;
- ``{"json": "flatten"}``: a mapping whose keys are written at the top level instead;
- ``{"json": "epoch_ms"}``: milliseconds since the epoch, written as ISO 8601 UTC text.

A class lists computed properties to add after the fields in ``json_properties``. Read models
get ``to_dict()`` from :class:`ReadModel`.

>>> @dataclass(frozen=True)
... class Point(ReadModel):
...     x: int
...     when: datetime
>>> Point(1, datetime(2026, 1, 2, tzinfo=UTC)).to_dict()
{'x': 1, 'when': '2026-01-02T00:00:00+00:00'}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from pathlib import PurePath
from typing import Any, ClassVar

__all__ = ["ReadModel", "encode"]

#: The types :func:`encode` writes as they are.
_PLAIN = frozenset({int, float, str, bool, type(None)})


def encode(value: Any, *, exclude: Collection[str] = ()) -> Any:
    """``value`` as JSON-ready values; ``exclude`` names top-level fields to leave out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            how = f.metadata.get("json")
            if how == "omit" or f.name in exclude:
                continue
            item = getattr(value, f.name)
            if how == "flatten":
                out.update(encode(item))
            elif how == "epoch_ms":
                out[f.name] = _epoch_ms(item)
            else:
                out[f.name] = encode(item)
        for name in getattr(type(value), "json_properties", ()):
            if name not in exclude:
                out[name] = encode(getattr(value, name))
        return out
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        # A list of plain values (a metric series: thousands of numbers) is copied as it is;
        # encoding item by item took longer than computing the series.
        if set(map(type, value)) <= _PLAIN:
            return list(value)
        return [encode(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    return value


def _epoch_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


class ReadModel:
    """Base of the frozen dataclasses services return: ``to_dict()`` through :func:`encode`."""

    json_properties: ClassVar[tuple[str, ...]] = ()

    def to_dict(self, *, exclude: Collection[str] = ()) -> dict[str, Any]:
        """The read model as a JSON-ready mapping (``exclude``: fields to leave out)."""
        doc: dict[str, Any] = encode(self, exclude=exclude)
        return doc
