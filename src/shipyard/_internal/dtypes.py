"""Column types as people read them: polars' short forms for the stored type strings.

Schemas store ``str(dtype)`` (``Datetime(time_unit='us', time_zone=None)``), which reads as
Python. Tables, pages and cards show :func:`readable_dtype` of it instead, in the bracket
notation polars prints above a DataFrame's columns; plain names (``Int64``, ``String``) stay
as they are. Works on the text alone, so showing a schema needs no polars import.

>>> readable_dtype("Datetime(time_unit='us', time_zone=None)")
'datetime[us]'
>>> readable_dtype("Datetime(time_unit='ns', time_zone='UTC')")
'datetime[ns, UTC]'
>>> readable_dtype("List(Datetime(time_unit='ms', time_zone='Europe/Oslo'))")
'list[datetime[ms, Europe/Oslo]]'
>>> readable_dtype("Decimal(precision=10, scale=2)")
'decimal[10, 2]'
>>> readable_dtype("Enum(categories=['a', 'b'])"), readable_dtype("Categorical")
('enum[a, b]', 'Categorical')
>>> readable_dtype("Array(Int64, shape=(3,))"), readable_dtype("Struct({'a': Int64, 'b': Date})")
('array[Int64, 3]', 'struct{a: Int64, b: Date}')
>>> readable_dtype("Int64"), readable_dtype("Date")
('Int64', 'Date')
"""

from __future__ import annotations

import ast
import re
from typing import Any

__all__ = ["readable_dtype"]

_CALL = re.compile(r"^([A-Za-z][A-Za-z0-9]*)\((.*)\)$", re.DOTALL)


def readable_dtype(text: str) -> str:
    """``text`` (a stored ``str(dtype)``) in polars' bracket notation; text that is not a
    type written as a call (a plain name, anything unexpected) is returned unchanged."""
    if not isinstance(text, str):
        return str(text)
    match = _CALL.match(text.strip())
    if match is None:
        return text
    name, inner = match.groups()
    try:
        return _readable(name, inner)
    except (ValueError, SyntaxError, TypeError, KeyError, IndexError):
        return text


def _readable(name: str, inner: str) -> str:
    if name == "List":
        return f"list[{readable_dtype(inner)}]"
    if name == "Array":
        element, _, shape = inner.rpartition(", shape=")
        dims = ", ".join(str(d) for d in ast.literal_eval(shape))
        return f"array[{readable_dtype(element)}, {dims}]"
    if name == "Struct":
        fields = _struct_fields(inner)
        return "struct{" + ", ".join(f"{f}: {readable_dtype(d)}" for f, d in fields) + "}"
    args = _keywords(inner)
    if name in ("Datetime", "Duration", "Time"):
        unit = args.get("time_unit")
        shown = [str(v) for v in (unit, args.get("time_zone")) if v is not None]
        return f"{name.lower()}[{', '.join(shown)}]" if shown else name.lower()
    if name == "Decimal":
        precision = args.get("precision")
        return f"decimal[{'*' if precision is None else precision}, {args.get('scale', 0)}]"
    if name == "Enum":
        return f"enum[{', '.join(map(str, args.get('categories', [])))}]"
    if name == "Categorical":
        return "categorical"
    raise ValueError(name)


def _keywords(inner: str) -> dict[str, Any]:
    """``time_unit='us', time_zone=None`` as a dict of Python values."""
    call = ast.parse(f"f({inner})", mode="eval").body
    if not isinstance(call, ast.Call) or call.args:
        raise ValueError(inner)
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}


def _struct_fields(inner: str) -> list[tuple[str, str]]:
    """``{'a': Int64, 'b': List(String)}`` as ``[("a", "Int64"), ("b", "List(String)")]``."""
    body = inner.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueError(inner)
    fields: list[tuple[str, str]] = []
    for item in _top_level_split(body[1:-1]):
        key, _, dtype = item.partition(":")
        fields.append((ast.literal_eval(key.strip()), dtype.strip()))
    return fields


def _top_level_split(text: str) -> list[str]:
    """``text`` cut at the commas outside brackets and quotes."""
    items: list[str] = []
    depth, quote, start = 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if text[start:].strip():
        items.append(text[start:])
    return items
