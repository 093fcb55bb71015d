"""The inverse of :mod:`shipyard._internal.encode`: a read model rebuilt from the JSON its
``to_dict()`` wrote, so that a client of the team server gets the same classes as a local
project.

Field types come from the class's annotations: nested read models are rebuilt recursively,
lists, tuples and mappings item by item, datetimes and dates from ISO 8601 text. Field
metadata is honoured the other way round: ``omit`` fields keep their default (or take a value
from ``extra``), ``flatten`` fields gather their keys from the top level, ``epoch_ms`` fields
turn ISO text back into milliseconds. A ``float`` field takes ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (how the server writes the numbers JSON lacks) back as floats. Computed
``json_properties`` are ignored on the way in.

>>> from dataclasses import dataclass
>>> from shipyard._internal.encode import ReadModel
>>> @dataclass(frozen=True)
... class Point(ReadModel):
...     x: int
...     when: datetime
>>> decode(Point, {"x": 1, "when": "2026-01-02T00:00:00+00:00"})
Point(x=1, when=datetime.datetime(2026, 1, 2, 0, 0, tzinfo=datetime.timezone.utc))
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from typing import Any, TypeVar

from shipyard._internal.json_numbers import WORDS
from shipyard.errors import InvalidInputError

__all__ = ["decode", "decode_many"]

T = TypeVar("T")


def decode(cls: type[T], doc: Any, **extra: Any) -> T:
    """Rebuild a read model of class ``cls`` from ``doc`` (what its ``to_dict()`` wrote);
    ``extra`` gives values for fields the JSON does not carry (``omit`` fields).

    Raises:
        InvalidInputError: ``doc`` lacks a required field or is not an object.
    """
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"expected a {cls.__name__} object, got {type(doc).__name__}")
    hints = _hints(typing.cast(type, cls))
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    # Keys a flattened mapping must not take: every other field's and the computed ones.
    taken = {f.name for f in fields if f.metadata.get("json") != "flatten"}
    taken.update(getattr(cls, "json_properties", ()))
    kwargs: dict[str, Any] = {}
    for f in fields:
        how = f.metadata.get("json")
        hint = hints.get(f.name, Any)
        if f.name in extra:
            kwargs[f.name] = extra[f.name]
        elif how == "omit":
            continue
        elif how == "flatten":
            target = _strip_optional(hint)
            if dataclasses.is_dataclass(target) and isinstance(target, type):
                kwargs[f.name] = decode(target, doc)
            else:
                kwargs[f.name] = {k: v for k, v in doc.items() if k not in taken}
        elif f.name not in doc:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InvalidInputError(f"{cls.__name__} document lacks the field {f.name!r}")
        elif how == "epoch_ms":
            kwargs[f.name] = _epoch_ms(doc[f.name])
        else:
            kwargs[f.name] = _value(hint, doc[f.name])
    return cls(**kwargs)


def decode_many(cls: type[T], docs: Any, **extra: Any) -> list[T]:
    """A list of read models from a JSON array."""
    if not isinstance(docs, list):
        raise InvalidInputError(f"expected a list of {cls.__name__}, got {type(docs).__name__}")
    return [decode(cls, d, **extra) for d in docs]


@cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:
        pass
    # Some annotations name types imported for type checking only: resolve field by field,
    # reading an unresolvable one as Any (its JSON value is kept as it is).
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module else {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        ann = f.type
        if isinstance(ann, str):
            try:
                ann = eval(ann, namespace)
            except Exception:
                ann = Any
        out[f.name] = ann
    return out


def _strip_optional(hint: Any) -> Any:
    args = typing.get_args(hint)
    if _is_union(hint) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint


def _is_union(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is typing.Union or origin is types.UnionType


def _value(hint: Any, value: Any) -> Any:
    if value is None or hint is Any:
        return value
    if _is_union(hint):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _value(options[0], value)
        for option in options:  # the first member the value fits, else the value as it is
            try:
                return _value(option, value)
            except (TypeError, ValueError, InvalidInputError):
                continue
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return decode(hint, value)
    if hint is datetime:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    if hint is date:
        return date.fromisoformat(value) if isinstance(value, str) else value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and value in WORDS:
        return WORDS[value]  # the server writes NaN and infinities as "NaN", "Infinity"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        items = args[:1] if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) == 1:
            return tuple(_value(items[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(items, value, strict=False))
    if origin in (list, set, frozenset) or _named(origin, "Sequence", "Collection", "Iterable"):
        item = args[0] if args else Any
        seq = [_value(item, v) for v in value]
        return origin(seq) if origin in (set, frozenset) else seq
    if origin is dict or _named(origin, "Mapping", "MutableMapping"):
        inner = args[1] if len(args) == 2 else Any
        return {k: _value(inner, v) for k, v in value.items()}
    return value


def _named(origin: Any, *names: str) -> bool:
    return origin is not None and getattr(origin, "__name__", "") in names


def _epoch_ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return round(datetime.fromisoformat(value).timestamp() * 1000)
