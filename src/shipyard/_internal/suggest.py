"""What a mistyped name was probably meant to be."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``" (did you mean 'credit'?)"`` when one of ``known`` is close to ``word``, else ``""``.

    >>> did_you_mean("crdit", ["credit", "loans"])
    " (did you mean 'credit'?)"
    """
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
