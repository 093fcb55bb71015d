"""A :class:`~shipyard.collaboration.digest.Digest` as Markdown, as an HTML page, or as a Slack
message (``{"text", "blocks"}`` for an incoming webhook): one list of sections, written in three
markups.

Every section appears, with "None." when empty, so readers learn where to look; each shows at
most :data:`MAX_ITEMS` items and says how many more there are. Every text that comes from users
(messages, comments, names) is escaped for the markup it goes into.

>>> render_digest(project.digests.get("7d"), "md")    # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.collaboration.digest import Digest

__all__ = ["FORMATS", "MAX_ITEMS", "render_digest", "slack_payload"]

FORMATS = ("md", "html")
MAX_ITEMS = 8
# Slack refuses a section text over 3,000 characters and a header over 150.
SLACK_TEXT_LIMIT = 3000
SLACK_HEADER_LIMIT = 150


@dataclass(frozen=True)
class _Markup:
    esc: Callable[[str], str]
    bold: Callable[[str], str]
    code: Callable[[str], str]


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
MARKDOWN = _Markup(
    esc=lambda s: _MD_SPECIAL.sub(r"\\\1", s),
    bold=lambda s: f"**{s}**",
    code=lambda s: f"`{s.replace('`', '')}`",
)
HTML = _Markup(
    esc=lambda s: html.escape(s, quote=True),
    bold=lambda s: f"<strong>{s}</strong>",
    code=lambda s: f"<code>{html.escape(s)}</code>",
)
SLACK = _Markup(
    # Slack's mrkdwn: only &, < and > are control characters.
    esc=lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
    bold=lambda s: f"*{s}*",
    code=lambda s: f"`{s.replace('`', '')}`",
)


def _when(dt: datetime) -> str:
    return f"{dt:%Y-%m-%d %H:%M}"


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def summary(d: Digest) -> str:
    """One line of counts: ``3 new dataset versions · 1 failed validation · ...``."""
    c = d.counts
    parts = [
        _plural(c["dataset_versions"] or 0, "new dataset version"),
        _plural(c["failed_validations"] or 0, "failed validation"),
        f"{_plural(c['runs'] or 0, 'run')} in {_plural(c['experiments'] or 0, 'experiment')}",
        _plural(c["models_registered"] or 0, "model registered", "models registered"),
        _plural(c["approvals_waiting"] or 0, "approval waiting", "approvals waiting"),
        _plural(c["promotions"] or 0, "promotion"),
        _plural(c["rollbacks"] or 0, "rollback"),
    ]
    if c["alerts"] is not None:
        parts.append(_plural(c["alerts"], "alert"))
    if c["mentions"] is not None:
        parts.append(_plural(c["mentions"], "mention"))
    return " · ".join(parts)


def _sections(d: Digest, m: _Markup) -> Iterator[tuple[str, list[str]]]:
    """(title, lines) of every section, in order, written in the markup ``m``."""
    e, b, code = m.esc, m.bold, m.code

    def by(actor: str, when: datetime) -> str:
        return f"by {e(actor)}, {_when(when)}"

    yield (
        "New dataset versions",
        [
            f"{code(x.ref)}{f' ({x.deleted} since)' if x.deleted else ''}: "
            f"{_num(x.rows) + ' rows' if x.rows is not None else 'files'}, "
            f"{e(x.status)}, {by(x.actor, x.time)}" + (f": {e(x.message)}" if x.message else "")
            for x in d.dataset_versions
        ],
    )
    yield (
        "Failed validations",
        [
            f"{code(x.ref)} failed {code(x.contract) if x.contract else 'its contract'} "
            + ("at ingestion" if x.how == "ingest" else "when validated")
            + (f" ({_plural(x.failures, 'failing check')})" if x.failures else "")
            + f", {by(x.actor, x.time)}"
            for x in d.failed_validations
        ],
    )
    runs = []
    for x in d.experiments:
        line = (
            f"{b(e(x.experiment))}: {_plural(x.runs, 'run')} ({x.finished} finished, "
            f"{x.failed} failed)"
        )
        if x.best_run is not None and x.metric is not None:
            line += (
                f"; best {code(x.metric)} {_num(x.best_value)} ({x.goal}imised) in run "
                f"{e(x.best_run_name or '')} {code(x.best_run[:8])} by {e(x.by or '')}"
                f" (metric: {e(x.chosen_by)})"
            )
        else:
            line += f"; {e(x.chosen_by)}"
        runs.append(line)
    yield "Runs", runs
    yield (
        "Models registered",
        [
            f"{code(x.ref)} {by(x.actor, x.time)}"
            + (f", from run {code(x.run_id[:8])}" if x.run_id else "")
            for x in d.models_registered
        ],
    )
    yield (
        "Approvals waiting",
        [
            f"{code(x.ref)}, registered {by(x.registered_by, x.registered_at)} "
            f"({_plural(max(0, (d.until - x.registered_at).days), 'day')} ago)"
            for x in d.approvals_waiting
        ],
    )
    yield (
        "Promotions and rollbacks",
        [
            f"{code(x.model + '@' + x.alias)}: "
            f"{'v' + str(x.from_version) if x.from_version else 'none'} → v{x.to_version} "
            f"({'promoted' if x.kind == 'promote' else 'rolled back'}) {by(x.actor, x.time)}"
            + (f": {e(x.comment)}" if x.comment else "")
            for x in d.promotions
        ],
    )
    if d.alerts is None:
        yield "Alerts", ["Not available yet: this project has no monitoring set up."]
    else:
        yield (
            "Alerts",
            [
                f"{b(e(x.severity))} {e(x.name)} on {code(x.entity)}: {e(x.message)}, "
                f"{_when(x.time)}"
                for x in d.alerts
            ],
        )
    if d.mentions is None:
        yield "Mentions", ["Not available yet: this project has no comments."]
    else:
        yield (
            "Mentions",
            [
                f"{e(x.author)} mentioned {', '.join(e('@' + p) for p in x.mentioned)} on "
                f"{code(x.entity)}: {e(x.excerpt)}"
                for x in d.mentions
            ],
        )


def _capped(lines: list[str]) -> list[str]:
    if not lines:
        return ["None."]
    if len(lines) <= MAX_ITEMS:
        return lines
    return [*lines[:MAX_ITEMS], f"… and {len(lines) - MAX_ITEMS} more"]


def _title(d: Digest) -> str:
    return f"shipyard digest: {d.project}"


def _window(d: Digest) -> str:
    return f"{_when(d.since)} → {_when(d.until)} UTC"


def render_digest(d: Digest, fmt: str = "md") -> str:
    """The digest as Markdown (``md``) or a standalone HTML page (``html``).

    Raises:
        InvalidInputError: another format.
    """
    if fmt == "md":
        out = [f"# {MARKDOWN.esc(_title(d))}", "", _window(d), "", f"**{summary(d)}**", ""]
        for title, lines in _sections(d, MARKDOWN):
            out += [f"## {title}", "", *(f"- {line}" for line in _capped(lines)), ""]
        return "\n".join(out)
    if fmt == "html":
        body = [
            f"<h1>{HTML.esc(_title(d))}</h1>",
            f"<p class='window'>{HTML.esc(_window(d))}</p>",
            f"<p><strong>{HTML.esc(summary(d))}</strong></p>",
        ]
        for title, lines in _sections(d, HTML):
            body.append(f"<h2>{HTML.esc(title)}</h2>")
            body.append("<ul>" + "".join(f"<li>{line}</li>" for line in _capped(lines)) + "</ul>")
        return (
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{HTML.esc(_title(d))}</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:50em;margin:2em auto;"
            "line-height:1.5;color:#1d2330}h2{font-size:1.15em;margin-top:1.4em}"
            "code{font-size:.92em;background:#f3f4f6;padding:0 .2em}.window{color:#6a7282}"
            "</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )
    raise InvalidInputError(f"unknown digest format {fmt!r}: choose one of {', '.join(FORMATS)}")


def slack_payload(d: Digest) -> dict[str, Any]:
    """The digest as a Slack incoming-webhook message: ``text`` (the one-line summary, shown
    in notifications) and ``blocks`` (a header, the window, and one section per part)."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _title(d)[:SLACK_HEADER_LIMIT]},
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": SLACK.esc(f"{_window(d)} · {summary(d)}")}],
        },
    ]
    for title, lines in _sections(d, SLACK):
        text = f"*{title}*\n" + "\n".join(f"• {line}" for line in _capped(lines))
        if len(text) > SLACK_TEXT_LIMIT:
            text = text[: SLACK_TEXT_LIMIT - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {"text": SLACK.esc(f"{_title(d)}: {summary(d)}"), "blocks": blocks}


def webhook_message(d: Digest) -> dict[str, Any]:
    """The digest as the data of a webhook delivery (``Webhooks.post``): the one-line
    ``summary``, the Markdown digest, its counts and window, and the Slack message that a
    Slack webhook sends as it is."""
    return {
        "summary": f"{_title(d)}: {summary(d)}",
        "project": d.project,
        "since": d.since.isoformat(),
        "until": d.until.isoformat(),
        "counts": d.counts,
        "markdown": render_digest(d, "md"),
        "slack": slack_payload(d),
    }
