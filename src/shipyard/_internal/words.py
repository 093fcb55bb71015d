"""Counts and numbers as people read them, for every message and table shipyard prints.

>>> count(1, "row"), count(1200, "row"), count(2, "entry", "entries")
('1 row', '1,200 rows', '2 entries')
>>> number(30000.0), number(60000), number(0.123456), number(123.456), number(None)
('30,000', '60,000', '0.1235', '123.5', '-')
>>> number(5.405e-05), number(2.5e-06)
('0.00005405', '2.5e-06')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["count", "number"]


def count(n: int, one: str, many: str | None = None) -> str:
    """``n`` with its noun in the singular or plural (``one + "s"`` unless ``many``)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def number(x: Any, missing: str = "-") -> str:
    """A number with thousands separators and at most 4 significant digits, never in
    exponent form between 0.00001 and 10^15 (``30,000``, not ``3e+04``; ``0.00005405``, not
    ``5.405e-05``); ``missing`` for None,
    ``NaN`` and ``inf`` as such; anything else as ``str``."""
    if x is None:
        return missing
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if not isinstance(x, float):
        return str(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    size = abs(x)
    if not 1e-5 <= size < 1e15:
        return f"{x:.4g}"
    digits = max(0, 3 - math.floor(math.log10(size)))
    text = f"{x:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
