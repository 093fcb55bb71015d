"""User-written text (descriptions, messages, comments, card sections) as safe HTML, for the
web UI and the generated documentation alike:
Markdown rendered by markdown-it-py, then cleaned by nh3 (the Ammonia sanitiser), which keeps
an allow-list of tags and attributes, drops ``<script>``, event handlers and ``style``, and
keeps only http(s) and mailto links (so ``javascript:`` links are removed).

>>> render_markdown("**hi** <script>alert(1)</script>")
'<p><strong>hi</strong> </p>'
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

__all__ = ["render_markdown"]

_TAGS = {
    *("p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "del", "a"),
    *("ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # CommonMark with tables and strikethrough; raw HTML is kept by the parser and removed by
    # the sanitiser, so one place (nh3's allow-list) decides what survives.
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str | None) -> str:
    """``text`` as sanitised HTML, safe to put in a page as it is."""
    if not text:
        return ""
    html = _parser().render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return str(clean).strip()
