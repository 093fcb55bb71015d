"""References to versioned things: ``NAME``, ``NAME@3``, ``NAME@latest``, ``NAME@production``,
``NAME@<digest prefix>``.

One parser serves datasets, contracts and models. Parsing is pure; resolving a reference to a
version is the job of the service that owns the entity.

>>> parse_ref("churn@3")
Ref(name='churn', selector=Selector(kind='version', value='3'))
>>> parse_ref("churn").selector.kind
'latest'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shipyard.errors import InvalidInputError, InvalidReferenceError

__all__ = ["NAME_PATTERN", "Ref", "Selector", "parse_ref", "validate_name"]

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_NAME_RE = re.compile(rf"{NAME_PATTERN}")
_ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_HEX_RE = re.compile(r"[0-9a-f]{6,64}")
DIGEST_PREFIX = "blake3:"
# Version numbers are stored as 32-bit integers, so they never have ten digits or more.
_DIGITS_DIGEST = 10

SelectorKind = Literal["latest", "version", "digest", "alias"]


@dataclass(frozen=True)
class Selector:
    """Which version of a name a reference points at."""

    kind: SelectorKind
    value: str = ""

    def __str__(self) -> str:
        if self.kind == "latest":
            return "latest"
        return DIGEST_PREFIX + self.value if self.kind == "digest" else self.value


@dataclass(frozen=True)
class Ref:
    """A parsed reference: a name and a selector."""

    name: str
    selector: Selector

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"

    @property
    def version(self) -> int | None:
        """The version number, when the selector is one."""
        return int(self.selector.value) if self.selector.kind == "version" else None


def validate_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a valid entity name, else raise InvalidInputError.

    Names start with a letter or digit, then letters, digits, ``.``, ``_`` or ``-``; at most
    128 characters.
    """
    if not _NAME_RE.fullmatch(name):
        raise InvalidInputError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, at most 128 characters"
        )
    return name


def parse_ref(text: str) -> Ref:
    """Parse a reference.

    Raises:
        InvalidReferenceError: the text is not ``NAME`` or ``NAME@SELECTOR``.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReferenceError("empty reference: expected NAME or NAME@VERSION")
    name, sep, sel = text.partition("@")
    if not _NAME_RE.fullmatch(name):
        raise InvalidReferenceError(
            f"invalid reference {text!r}: the name part {name!r} must use letters, digits, "
            "'.', '_' or '-'"
        )
    if not sep:
        return Ref(name, Selector("latest"))
    if sel == "" or "@" in sel:
        raise InvalidReferenceError(
            f"invalid reference {text!r}: expected NAME@N, NAME@latest, NAME@ALIAS or "
            "NAME@DIGEST_PREFIX"
        )
    if sel == "latest":
        return Ref(name, Selector("latest"))
    if sel.isascii() and sel.isdigit():
        if len(sel) >= _DIGITS_DIGEST or (len(sel) >= 6 and sel[0] == "0"):
            # A digest prefix that happens to hold no letter: the 12-character prefixes the
            # CLI prints are all digits about once in 300 versions.
            return Ref(name, Selector("digest", sel))
        if int(sel) < 1:
            raise InvalidReferenceError(f"invalid reference {text!r}: versions start at 1")
        return Ref(name, Selector("version", str(int(sel))))
    if sel.startswith(DIGEST_PREFIX):
        hexpart = sel[len(DIGEST_PREFIX) :]
        if not _HEX_RE.fullmatch(hexpart):
            raise InvalidReferenceError(
                f"invalid reference {text!r}: a digest prefix needs 6 to 64 lowercase hex digits"
            )
        return Ref(name, Selector("digest", hexpart))
    if _HEX_RE.fullmatch(sel) and any(c in "0123456789" for c in sel):
        # Hex-looking selectors with a digit are digest prefixes; aliases are words.
        return Ref(name, Selector("digest", sel))
    if _ALIAS_RE.fullmatch(sel):
        return Ref(name, Selector("alias", sel))
    raise InvalidReferenceError(
        f"invalid reference {text!r}: {sel!r} is not a version number, 'latest', an alias or a "
        "digest prefix"
    )
