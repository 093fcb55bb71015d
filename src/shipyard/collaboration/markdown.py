"""User-written Markdown (descriptions, card sections) as HTML that is safe to embed.

markdown-it-py with raw HTML switched off: any ``<tag>`` a user writes comes out escaped, and
its link check refuses ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` (except images)
URLs, so the output carries no script whatever the input.

>>> render_markdown("**bold** <script>x</script>")
'<p><strong>bold</strong> &lt;script&gt;x&lt;/script&gt;</p>\\n'
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = ["render_markdown"]


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """``text`` (CommonMark with tables) as sanitised HTML."""
    return str(_parser().render(text))
