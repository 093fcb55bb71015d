"""Searching the MLflow view of the registry: MLflow's filters (read with the run search
grammar, restricted to names, run ids and tags), its order-by terms and opaque page tokens.

Registries hold hundreds of entries, not millions, so matching is done on the loaded entries.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.tracking.search import Expr

__all__ = [
    "MODEL_ORDER",
    "VERSION_ORDER",
    "RegistryPage",
    "equal_name",
    "limit",
    "matches",
    "offset",
    "page",
    "parse_filter",
    "parse_order",
    "sort",
]


@dataclass(frozen=True)
class RegistryPage(ReadModel):
    """One page of a search and the token of the next (None on the last page)."""

    items: list[Any] = field(default_factory=list)
    next_page_token: str | None = None


# -- searching ------------------------------------------------------------------------------------

MODEL_ORDER = {
    "name": lambda m: m.name,
    "creation_timestamp": lambda m: m.created_at,
    "timestamp": lambda m: m.created_at,
    "last_updated_timestamp": lambda m: m.updated_at,
}
VERSION_ORDER = {
    "name": lambda v: v.name,
    "version_number": lambda v: v.version,
    "creation_timestamp": lambda v: v.created_at,
    "timestamp": lambda v: v.created_at,
    "last_updated_timestamp": lambda v: v.created_at,
}


def parse_filter(text: str | None, attributes: dict[str, str], what: str) -> Expr | None:
    """The run search grammar (:func:`shipyard.tracking.search.parse_filter`), restricted to
    what registry entries have: ``attributes`` (the grammar's attribute name → ours) and
    ``tags.<key>``."""
    from shipyard.tracking.search import And, Comparison, Or
    from shipyard.tracking.search import parse_filter as parse_grammar

    if not text or not text.strip():
        return None
    where = parse_grammar(_qualify(text)).where

    def check(e: Expr) -> None:
        if isinstance(e, And | Or):
            for t in e.terms:
                check(t)
            return
        assert isinstance(e, Comparison)
        if e.entity == "tag" or (e.entity == "attribute" and e.key in attributes):
            return
        known = ", ".join(sorted({*attributes.values()})) + " and tags.<key>"
        raise InvalidInputError(
            f"invalid filter for {what}: {e.identifier} is not searchable here; filter on "
            f"{known} (for example name LIKE 'credit%')"
        )

    if where is not None:
        check(where)
    return where


# A quoted string or backquoted key (left alone), or a bare registry attribute about to be
# compared (MLflow's registry filters write ``name = 'x'``, the run grammar
# ``attributes.name``).
_BARE = re.compile(
    r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)"""
    r"|(?<![.\w])(name|run_id|source_run_id)(?=\s*(?:=|!=|<>|LIKE\b|ILIKE\b|IN\b|NOT\b|IS\b))",
    re.IGNORECASE,
)


def _qualify(text: str) -> str:
    """``text`` with bare ``name``, ``run_id`` and ``source_run_id`` (a logged model's run)
    written as the run grammar's ``attributes.name`` and ``attributes.run_id``."""

    def qualified(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1)
        word = m.group(2).lower()
        return f"attributes.{'run_id' if word == 'source_run_id' else word}"

    return _BARE.sub(qualified, text)


def equal_name(where: Expr | None) -> str | None:
    """The model name an ``and`` of comparisons pins with ``name = '…'``, if any (lets the
    search read one model's versions)."""
    from shipyard.tracking.search import And, Comparison

    terms = where.terms if isinstance(where, And) else (where,)
    for t in terms:
        if (
            isinstance(t, Comparison)
            and t.entity == "attribute"
            and t.key == "run_name"
            and t.op == "="
            and isinstance(t.value, str)
        ):
            return t.value
    return None


_GRAMMAR_ATTRIBUTE = {"run_name": "name", "run_id": "run_id"}


def matches(where: Expr | None, attributes: dict[str, Any], tags: dict[str, str]) -> bool:
    from shipyard.tracking.search import And, Or

    if where is None:
        return True
    if isinstance(where, And):
        return all(matches(t, attributes, tags) for t in where.terms)
    if isinstance(where, Or):
        return any(matches(t, attributes, tags) for t in where.terms)
    if where.entity == "tag":
        have = tags.get(where.key)
    else:
        have = attributes.get(_GRAMMAR_ATTRIBUTE.get(where.key, where.key))
    return _compare(have, where.op, where.value)


def _compare(have: Any, op: str, want: Any) -> bool:
    if op == "IS NULL":
        return have is None
    if op == "IS NOT NULL":
        return have is not None
    if have is None:
        # MLflow's registry: a missing tag is not equal to any value (the client itself
        # filters with ``tags.`mlflow.prompt.is_prompt` != 'true'``).
        return op in ("!=", "<>", "NOT IN")
    if op == "=":
        return bool(have == want)
    if op in ("!=", "<>"):
        return bool(have != want)
    if op in ("LIKE", "ILIKE"):
        return _like(str(want), op == "ILIKE").fullmatch(str(have)) is not None
    if op == "IN":
        return have in want
    if op == "NOT IN":
        return have not in want
    raise InvalidInputError(f"operator {op} does not apply to names, run ids or tags")


def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def parse_order(
    terms: builtins.list[str] | None,
    keys: Mapping[str, Callable[[Any], Any]],
    *,
    default: builtins.list[str],
) -> builtins.list[tuple[Callable[[Any], Any], bool]]:
    out = []
    for term in [t for t in (terms or []) if t.strip()] or default:
        words = term.split()
        key = words[0].removeprefix("attributes.").removeprefix("attribute.")
        direction = words[1].upper() if len(words) > 1 else "ASC"
        if key not in keys or len(words) > 2 or direction not in ("ASC", "DESC"):
            raise InvalidInputError(
                f"invalid order_by {term!r}: use one of {', '.join(keys)}, optionally followed "
                "by ASC or DESC"
            )
        out.append((keys[key], direction == "DESC"))
    return out


def sort(
    items: builtins.list[Any], sort: builtins.list[tuple[Callable[[Any], Any], bool]]
) -> builtins.list[Any]:
    # Stable sorts from the last key to the first give a multi-key order with mixed directions.
    for key, descending in reversed(sort):
        items = sorted(items, key=key, reverse=descending)
    return items


def limit(max_results: int, ceiling: int = 1000) -> int:
    if not isinstance(max_results, int) or not 1 <= max_results <= ceiling:
        raise InvalidInputError(
            f"invalid max_results {max_results!r}: it must be between 1 and {ceiling}"
        )
    return max_results


def offset(page_token: str | None) -> int:
    if not page_token:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(page_token.encode()))
        offset = decoded["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInputError(
            f"invalid page_token {page_token[:40]!r}: pass the next_page_token of the "
            "previous page unchanged"
        ) from None
    return offset


def page(items: builtins.list[Any], offset: int, limit: int) -> RegistryPage:
    end = offset + limit
    token = (
        base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode()
        if end < len(items)
        else None
    )
    return RegistryPage(items[offset:end], token)
