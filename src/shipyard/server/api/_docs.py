"""OpenAPI documents for routes that return read models: the JSON schema of what
``ReadModel.to_dict()`` writes (field metadata honoured: omitted fields left out, flattened
ones merged, epoch-millisecond times as date-time text), with an example.

>>> @router.get("/users", **returns(User, many=True, example=[...]))   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import date, datetime
from functools import cache
from typing import Any

from pydantic import TypeAdapter

__all__ = ["error_responses", "read_model_schema", "returns", "returns_schema"]

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "the CLI's error code"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}
_ERRORS = {
    401: ("unauthenticated", "no token, or one that is unknown, expired or revoked"),
    403: ("permission", "the token's user lacks the role for this"),
    404: ("not_found", "no such thing"),
    409: ("conflict", "the change conflicts with the current state"),
    422: ("invalid_input", "the request is not acceptable"),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route may answer with."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, text = _ERRORS[status]
        out[status] = {
            "description": text,
            "content": {
                "application/json": {
                    "schema": _ERROR_SCHEMA,
                    "example": {"error": code, "message": text},
                }
            },
        }
    return out


@cache
def read_model_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of ``cls().to_dict()`` for a read model class."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a name only imported for type checking: describe the fields loosely
        hints = {}
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        how = f.metadata.get("json")
        if how == "omit":
            continue
        hint = hints.get(f.name, Any)
        if how == "flatten":
            inner = _type_schema(hint)
            props.update(inner.get("properties", {}))
            required.extend(inner.get("required", []))
            continue
        if how == "epoch_ms":
            schema: dict[str, Any] = {"type": "string", "format": "date-time"}
            if _optional(hint):
                schema = {"anyOf": [schema, {"type": "null"}]}
            props[f.name] = schema
        else:
            props[f.name] = _type_schema(hint)
        required.append(f.name)
    for name in getattr(cls, "json_properties", ()):
        prop = getattr(cls, name, None)
        ret = Any
        if isinstance(prop, property) and prop.fget is not None:
            try:
                ret = typing.get_type_hints(prop.fget).get("return", Any)
            except Exception:
                ret = Any
        props[name] = _type_schema(ret)
        required.append(name)
    return {
        "title": cls.__name__,
        "type": "object",
        "properties": props,
        "required": required,
        "description": (cls.__doc__ or "").strip().split("\n\n")[0],
    }


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _type_schema(hint: Any) -> dict[str, Any]:
    if hint is Any:
        return {}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return read_model_schema(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and getattr(origin, "__name__", "") in ("Sequence", "Collection")
    ):
        item = args[0] if args else Any
        return {"type": "array", "items": _type_schema(item)}
    if origin in (dict, typing.Mapping) or getattr(origin, "__name__", "") == "Mapping":
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": _type_schema(value)}
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        inner = (
            _type_schema(rest[0]) if len(rest) == 1 else {"anyOf": [_type_schema(a) for a in rest]}
        )
        return {"anyOf": [inner, {"type": "null"}]} if inner else {}
    if hint in (datetime, date):
        return {"type": "string", "format": "date-time" if hint is datetime else "date"}
    try:
        schema = TypeAdapter(hint).json_schema()
    except Exception:
        return {}
    schema.pop("title", None)
    return schema if "$defs" not in schema else {}


def returns(
    cls: type, *, many: bool = False, example: Any = None, errors: tuple[int, ...] = (401,)
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: the documented 200 response (a read model,
    or a list of them) with ``example``, and the error responses."""
    schema = read_model_schema(cls)
    if many:
        schema = {"type": "array", "items": schema}
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {"application/json": content}}
    }
    responses.update(error_responses(*errors))
    return {"responses": responses, "response_model": None}


def returns_schema(
    schema: dict[str, Any],
    *,
    example: Any = None,
    errors: tuple[int, ...] = (401,),
    media_type: str = "application/json",
    description: str = "OK",
) -> dict[str, Any]:
    """Like :func:`returns`, for a route whose 200 response is not one read model (a mapping,
    a service's result document, text or bytes): ``schema`` is its JSON schema."""
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": description, "content": {media_type: content}}
    }
    responses.update(error_responses(*errors))
    return {"responses": responses, "response_model": None}
