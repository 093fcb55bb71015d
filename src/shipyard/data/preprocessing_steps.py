"""The per-column steps of a preprocessing spec, and the helpers that gather problems.

:class:`Impute`, :class:`Encode` and :class:`ColumnStep` say what happens to one column; each
checks itself when built and raises one :class:`~shipyard.errors.InvalidInputError` listing
every problem. ``raise_problems`` and ``gather_problems`` carry those problems up through the
layers that build a spec, each prefixing its own path. Import the steps from
:mod:`shipyard.data.preprocessing`, which re-exports them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, cast, get_args

from shipyard.errors import InvalidInputError

__all__ = [
    "ColumnStep",
    "Encode",
    "Impute",
    "gather_problems",
    "not_one_of",
    "raise_problems",
]

ImputeStrategy = Literal["mean", "median", "most_frequent", "constant"]
ScaleMethod = Literal["standard", "minmax", "robust", "none"]
EncodeMethod = Literal["onehot", "ordinal"]
HandleUnknown = Literal["ignore", "error"]

IMPUTE_STRATEGIES: tuple[str, ...] = get_args(ImputeStrategy)
SCALE_METHODS: tuple[str, ...] = get_args(ScaleMethod)
ENCODE_METHODS: tuple[str, ...] = get_args(EncodeMethod)
HANDLE_UNKNOWN: tuple[str, ...] = get_args(HandleUnknown)

_NUMERIC_STRATEGIES = ("mean", "median")
_STEP_KEYS = ("impute", "scale", "encode", "drop")
_IMPUTE_KEYS = ("strategy", "fill_value")
_ENCODE_KEYS: dict[str, tuple[str, ...]] = {
    "onehot": ("method", "categories", "handle_unknown"),
    "ordinal": ("method", "categories", "unknown_value"),
}

Scalar = str | int | float | bool


# --------------------------------------------------------------------------------------------
# Gathering problems


# A problem reads "<path>: <message>"; the path is empty (the text starts with ": ") when the
# problem is about the object itself. Each layer prefixes the path of the part it built.


def raise_problems(what: str, problems: list[str]) -> None:
    if problems:
        shown = [p[2:] if p.startswith(": ") else p for p in problems]
        error = InvalidInputError.from_problems(what, shown)
        error.__dict__["_paths"] = list(problems)  # kept for gather_problems in an enclosing layer
        raise error


def _join(path: str, problem: str) -> str:
    if problem.startswith(": ") or not path:
        return f"{path}{problem}"
    return f"{path}.{problem}"


def gather_problems(path: str, problems: list[str], build: Callable[[], Any]) -> Any:
    """Call ``build``; on InvalidInputError record its problems under ``path``, return None."""
    try:
        return build()
    except InvalidInputError as exc:
        inner = exc.__dict__.get("_paths") or exc.details.get("problems") or [exc.message]
        problems.extend(_join(path, p) for p in inner)
        return None


def not_one_of(value: Any, choices: tuple[str, ...]) -> str:
    return f"{value!r} is not one of {', '.join(choices)}"


def _unknown_keys(data: Mapping[Any, Any], known: tuple[str, ...]) -> list[str]:
    out = []
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"{key}: unknown key{hint}; expected {', '.join(known)}")
    return out


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


# --------------------------------------------------------------------------------------------
# Read models


@dataclass(frozen=True)
class Impute:
    """How missing values of a column are filled.

    ``constant`` needs ``fill_value``; the other strategies learn the value from the training
    data (``mean`` and ``median`` only make sense for numbers).

    >>> Impute("constant", fill_value=0).to_dict()
    {'strategy': 'constant', 'fill_value': 0}

    Raises:
        InvalidInputError: unknown strategy, or a ``fill_value`` that is missing or not a
            finite number, string or boolean.
    """

    strategy: ImputeStrategy
    fill_value: Scalar | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.strategy not in IMPUTE_STRATEGIES:
            problems.append(f"strategy: {not_one_of(self.strategy, IMPUTE_STRATEGIES)}")
        if self.strategy == "constant":
            if self.fill_value is None:
                problems.append("fill_value: strategy 'constant' needs a fill_value")
            elif not _is_scalar(self.fill_value):
                problems.append(
                    f"fill_value: {self.fill_value!r} is not a finite number, a string or a boolean"
                )
        elif self.fill_value is not None:
            problems.append(
                f"fill_value: only strategy 'constant' takes a fill_value, not {self.strategy!r}"
            )
        raise_problems("impute step", problems)

    @classmethod
    def from_dict(cls, data: str | Mapping[str, Any]) -> Impute:
        """``"median"`` or ``{"strategy": "constant", "fill_value": 0}``.

        Raises:
            InvalidInputError: the document is not one of those forms, or is invalid.
        """
        if isinstance(data, str):
            return cls(cast(ImputeStrategy, data))
        if not isinstance(data, Mapping):
            raise_problems(
                "impute step", [f": expected a strategy name or a mapping, got {data!r}"]
            )
        problems = _unknown_keys(data, _IMPUTE_KEYS)
        if "strategy" not in data:
            problems.append("strategy: missing; expected one of " + ", ".join(IMPUTE_STRATEGIES))
        raise_problems("impute step", problems)
        return cls(data["strategy"], data.get("fill_value"))

    def to_dict(self) -> str | dict[str, Any]:
        """The short form (``"median"``) when there is no ``fill_value``."""
        if self.fill_value is None:
            return self.strategy
        return {"strategy": self.strategy, "fill_value": self.fill_value}


@dataclass(frozen=True)
class Encode:
    """How a categorical column becomes numbers.

    ``onehot`` makes one 0/1 column per category; a category not seen in training gives all
    zeros (``handle_unknown="ignore"``, the default) or an error (``"error"``). ``ordinal``
    gives each category its position in ``categories`` (0, 1, 2…) and unknown ones
    ``unknown_value`` (default -1). Without ``categories`` they are learned from the training
    data, sorted.

    >>> Encode("ordinal", categories=("A", "B", "C")).to_dict()
    {'method': 'ordinal', 'categories': ['A', 'B', 'C'], 'unknown_value': -1}

    Raises:
        InvalidInputError: unknown method or handle_unknown, an option that belongs to the
            other method, repeated or mixed-type categories, or an ``unknown_value`` that
            collides with a category's code.
    """

    method: EncodeMethod
    categories: tuple[Scalar, ...] | None = None
    handle_unknown: HandleUnknown = "ignore"
    unknown_value: int = -1

    def __post_init__(self) -> None:
        if self.categories is not None and not isinstance(self.categories, tuple):
            object.__setattr__(self, "categories", tuple(self.categories))
        problems: list[str] = []
        if self.method not in ENCODE_METHODS:
            problems.append(f"method: {not_one_of(self.method, ENCODE_METHODS)}")
        if self.handle_unknown not in HANDLE_UNKNOWN:
            problems.append(f"handle_unknown: {not_one_of(self.handle_unknown, HANDLE_UNKNOWN)}")
        elif self.method == "ordinal" and self.handle_unknown != "ignore":
            problems.append(
                "handle_unknown: applies to onehot only; ordinal maps unknown categories to "
                "unknown_value"
            )
        uv = self.unknown_value
        uv_ok = isinstance(uv, int) and not isinstance(uv, bool)
        if not uv_ok:
            problems.append(f"unknown_value: {uv!r} is not an integer")
        elif self.method == "onehot" and uv != -1:
            problems.append("unknown_value: applies to ordinal only; onehot uses handle_unknown")
        if self.categories is not None:
            problems += _category_problems(self.categories)
        if self.method == "ordinal" and uv_ok and uv >= 0:
            n = len(self.categories or ())
            if self.categories is None:
                problems.append(
                    "unknown_value: must be negative when categories are learned from the data "
                    "(a non-negative value could be a category's code)"
                )
            elif uv < n:
                problems.append(
                    f"unknown_value: {uv} is already the code of category "
                    f"{self.categories[uv]!r}; use a negative number or {n} or more"
                )
        raise_problems("encode step", problems)

    @classmethod
    def from_dict(cls, data: str | Mapping[str, Any]) -> Encode:
        """``"onehot"`` or ``{"method": "ordinal", "categories": [...], ...}``.

        Raises:
            InvalidInputError: the document is not one of those forms, or is invalid.
        """
        if isinstance(data, str):
            return cls(cast(EncodeMethod, data))
        if not isinstance(data, Mapping):
            raise_problems("encode step", [f": expected a method name or a mapping, got {data!r}"])
        method = data.get("method")
        problems: list[str] = []
        if method is None:
            problems.append("method: missing; expected one of " + ", ".join(ENCODE_METHODS))
        if method in _ENCODE_KEYS:
            problems += _unknown_keys(data, _ENCODE_KEYS[method])
        categories = data.get("categories")
        if categories is not None and not isinstance(categories, list | tuple):
            problems.append(f"categories: expected a list, got {categories!r}")
        raise_problems("encode step", problems)
        return cls(
            cast(EncodeMethod, method),
            tuple(categories) if categories is not None else None,
            data.get("handle_unknown", "ignore"),
            data.get("unknown_value", -1),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.method == "onehot":
            out["handle_unknown"] = self.handle_unknown
        else:
            out["unknown_value"] = self.unknown_value
        return out


def _category_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def _category_problems(categories: tuple[Any, ...]) -> list[str]:
    problems: list[str] = []
    if not categories:
        return ["categories: the list is empty"]
    bad = [c for c in categories if not _is_scalar(c)]
    if bad:
        problems.append(f"categories: {bad[0]!r} is not a finite number, a string or a boolean")
        return problems
    kinds = {_category_kind(c) for c in categories}
    if len(kinds) > 1:
        problems.append(
            f"categories: mixes {' and '.join(sorted(kinds))} values; quote them in YAML if "
            "they are strings"
        )
        return problems
    seen: set[Any] = set()
    for c in categories:
        if c in seen:
            problems.append(f"categories: {c!r} is listed twice")
            return problems
        seen.add(c)
    if kinds == {"number"} and list(categories) != sorted(categories):
        # scikit-learn's encoders reject unsorted numeric categories at fit time.
        problems.append("categories: numeric categories must be listed in increasing order")
    return problems


@dataclass(frozen=True, init=False)
class ColumnStep:
    """What happens to one column: impute, then scale (numbers) or encode (categories).

    A step with nothing set keeps the column as it is; ``drop=True`` removes it. Strings are
    accepted for the common forms:

    >>> ColumnStep(impute="median", scale="standard").to_dict()
    {'impute': 'median', 'scale': 'standard'}
    >>> ColumnStep(impute="most_frequent", encode="onehot").encode
    Encode(method='onehot', categories=None, handle_unknown='ignore', unknown_value=-1)

    Raises:
        InvalidInputError: an invalid part, ``scale`` together with ``encode``, ``drop``
            together with anything else, or ``mean``/``median`` imputation of an encoded
            (categorical) column.
    """

    impute: Impute | None
    scale: ScaleMethod | None
    encode: Encode | None
    drop: bool

    def __init__(
        self,
        impute: Impute | ImputeStrategy | Mapping[str, Any] | None = None,
        scale: ScaleMethod | None = None,
        encode: Encode | EncodeMethod | Mapping[str, Any] | None = None,
        drop: bool = False,
    ) -> None:
        problems: list[str] = []
        imp = (
            gather_problems("impute", problems, lambda: Impute.from_dict(impute))
            if isinstance(impute, str | Mapping)
            else impute
        )
        enc = (
            gather_problems("encode", problems, lambda: Encode.from_dict(encode))
            if isinstance(encode, str | Mapping)
            else encode
        )
        if imp is not None and not isinstance(imp, Impute):
            problems.append(f"impute: expected a strategy name or Impute, got {imp!r}")
        if enc is not None and not isinstance(enc, Encode):
            problems.append(f"encode: expected a method name or Encode, got {enc!r}")
        if scale is not None and scale not in SCALE_METHODS:
            problems.append(f"scale: {not_one_of(scale, SCALE_METHODS)}")
        if not isinstance(drop, bool):
            problems.append(f"drop: expected true or false, got {drop!r}")
        elif drop and (imp is not None or enc is not None or scale not in (None, "none")):
            problems.append("drop: a dropped column cannot also be imputed, scaled or encoded")
        if scale not in (None, "none") and enc is not None:
            problems.append(
                "scale and encode cannot both be set: scale is for numeric columns, encode for "
                "categorical ones"
            )
        if (
            isinstance(imp, Impute)
            and isinstance(enc, Encode)
            and imp.strategy in _NUMERIC_STRATEGIES
        ):
            problems.append(
                f"impute: {imp.strategy!r} needs numbers but the column is encoded as a "
                "category; use most_frequent or constant"
            )
        raise_problems("column step", problems)
        object.__setattr__(self, "impute", imp)
        # "none" and None mean the same; keep one spelling so equal steps compare equal.
        object.__setattr__(self, "scale", None if scale == "none" else scale)
        object.__setattr__(self, "encode", enc)
        object.__setattr__(self, "drop", drop)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ColumnStep:
        """Build from ``{"impute": ..., "scale": ..., "encode": ..., "drop": ...}``.

        ``None`` (an empty YAML value) means "keep the column as it is".

        Raises:
            InvalidInputError: unknown keys or invalid values; every problem is listed.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise_problems(
                "column step", [f": expected a mapping with {', '.join(_STEP_KEYS)}, got {data!r}"]
            )
        problems = _unknown_keys(data, _STEP_KEYS)
        step = gather_problems(
            "",
            problems,
            partial(
                cls,
                impute=data.get("impute"),
                scale=data.get("scale"),
                encode=data.get("encode"),
                drop=data.get("drop", False),
            ),
        )
        raise_problems("column step", problems)
        return cast(ColumnStep, step)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.drop:
            out["drop"] = True
        if self.impute is not None:
            out["impute"] = self.impute.to_dict()
        if self.scale is not None:
            out["scale"] = self.scale
        if self.encode is not None:
            out["encode"] = self.encode.to_dict()
        return out

    @property
    def label(self) -> str:
        """A short readable name, used for the transformer of this step (``median_standard``)."""
        if self.drop:
            return "drop"
        parts = [
            self.impute.strategy if self.impute else "",
            self.scale or "",
            self.encode.method if self.encode else "",
        ]
        return "_".join(p for p in parts if p) or "keep"
