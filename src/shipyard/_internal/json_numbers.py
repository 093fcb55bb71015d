"""NaN and infinities in the server's JSON, which has no such numbers.

A metric may be NaN, ``inf`` or ``-inf`` (MLflow records them, and so does shipyard). Both of
the server's APIs write such a number as the JSON string ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``: the protobuf JSON mapping, which MLflow's own server and client use, and
which JavaScript's ``Number()`` and Python's ``float()`` read back. Every other value is left
as it is, so an answer stays valid JSON (never a bare ``NaN`` token, never a silent ``null``).

>>> to_json({"loss": float("nan"), "up": [1.5, float("inf")]})
{'loss': 'NaN', 'up': [1.5, 'Infinity']}
>>> from_json("-Infinity"), from_json(0.5), from_json("nan")
(-inf, 0.5, 'nan')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["WORDS", "from_json", "number_to_json", "to_json"]

#: The JSON strings that stand for the numbers JSON lacks, and those numbers.
WORDS: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_PLAIN = frozenset({str, int, bool, type(None)})


def number_to_json(x: float) -> float | str:
    """``x`` itself when finite, else its word (``"NaN"``, ``"Infinity"``, ``"-Infinity"``)."""
    if x - x == 0.0:  # False for NaN and both infinities
        return x
    if x != x:
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def from_json(value: Any) -> Any:
    """The float a word stands for; any other value as it is."""
    if type(value) is str:
        return WORDS.get(value, value)
    return value


def to_json(value: Any) -> Any:
    """``value`` with every non-finite float inside it (in dicts, lists, tuples and numpy
    arrays) replaced by its word; the rest is unchanged."""
    t = type(value)
    if t is float:
        return value if value - value == 0.0 else number_to_json(value)
    if t is dict:
        return {k: to_json(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [to_json(v) for v in value]
    if t in _PLAIN:
        return value
    if isinstance(value, float):  # numpy.float64 and other float subclasses
        return number_to_json(float(value))
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind == "f" and hasattr(value, "tolist"):  # a numpy array or scalar of floats
        return to_json(value.tolist())
    return value
