"""User-written text (descriptions, messages, comments, card sections) as safe HTML, for the
web UI and the generated documentation alike:
Markdown rendered by markdown-it-py, then cleaned by nh3 (the Ammonia sanitiser), which keeps
an allow-list of tags and attributes, drops ``<script>``, event handlers and ``style``, and
keeps only http(s) and mailto links (so ``javascript:`` links are removed).

>>> render_markdown("**hi** <script>alert(1)</script>")
'<p><strong>hi</strong> </p>'

``@name`` mentions (:data:`MENTION`, the one rule of what a mention is) of the users a
comment names are highlighted outside code:

>>> render_markdown("@abe, see `@abe`", mentions=["abe"])
'<p><span class="mention">@abe</span>, see <code>@abe</code></p>'
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

__all__ = ["MENTION", "render_markdown"]

#: ``@name`` not preceded by a word character, a dot or another @ (so e-mail addresses and
#: ``a@b`` references are not mentions); a trailing dot or dash ends the name, as in prose.
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")

_TAGS = {
    *("p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "del", "a"),
    *("ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("table", "thead", "tbody", "tr", "th", "td", "span"),
}
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
#: The one class a span may carry (the sanitiser drops any other).
_CLASSES = {"span": {"mention"}}


def _highlight_mentions(state: StateCore) -> None:
    """Wraps the mentions of ``env["mentions"]`` in text (not code) in a highlighted span."""
    names = state.env.get("mentions")
    if not names:
        return
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        for token in block.children:
            if token.type != "text" or "@" not in token.content:
                children.append(token)
                continue
            at = 0
            for m in MENTION.finditer(token.content):
                if m.group(1) not in names:
                    continue
                if m.start() > at:
                    children.append(_text(token.content[at : m.start()]))
                children.append(Token("html_inline", "", 0, content='<span class="mention">'))
                children.append(_text(m.group(0)))
                children.append(Token("html_inline", "", 0, content="</span>"))
                at = m.end()
            if at < len(token.content):
                children.append(_text(token.content[at:]))
        block.children = children


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # CommonMark with tables and strikethrough; raw HTML is kept by the parser and removed by
    # the sanitiser, so one place (nh3's allow-list) decides what survives.
    md = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(
        ["table", "strikethrough"]
    )
    md.core.ruler.push("mentions", _highlight_mentions)
    return md


def render_markdown(text: str | None, *, mentions: Collection[str] = ()) -> str:
    """``text`` as sanitised HTML, safe to put in a page as it is; the ``@name`` mentions
    of ``mentions`` (the users a comment names) are highlighted."""
    if not text:
        return ""
    html = _parser().render(text, {"mentions": frozenset(mentions)})
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        allowed_classes=_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return str(clean).strip()
