"""A drift report as one standalone HTML file: the dataset verdict at the top, the table of
columns (method, statistic, threshold, verdict), then per column the reference and current
distributions overlaid, most drifted first.

Charts are inline SVG bars written here, as the model card's are (``governance/card_charts``):
no script, no stylesheet or font to fetch, so the file opens offline and is byte-for-byte the
same for the same report. Every name that comes from data (columns, values, dataset names) is
escaped.

>>> path = write_html(report, "drift.html")        # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path

from shipyard._internal.files import write_text_atomic
from shipyard._internal.words import count
from shipyard.monitoring.drift import ColumnDrift, DriftReport

__all__ = ["MAX_BARS", "render_html", "write_html"]

#: Bins drawn per column; a categorical column with more keeps its largest ones.
MAX_BARS = 24
WIDTH, HEIGHT = 560, 230
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 30, 70
REFERENCE_COLOR, CURRENT_COLOR = "#9aa5b1", "#d62728"
VERDICT_COLORS = {"drift": "#b42318", "no drift": "#067647", "insufficient data": "#6b7280"}
METHOD_NAMES = {
    "ks": "Kolmogorov–Smirnov",
    "chisquare": "chi-square",
    "z": "z-test (two proportions)",
    "wasserstein": "Wasserstein (normed)",
    "jensenshannon": "Jensen–Shannon distance",
    "psi": "PSI",
}
_STYLE = (
    "body{font-family:sans-serif;max-width:64em;margin:2em auto;padding:0 1em;color:#111}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".verdict{display:inline-block;white-space:nowrap;padding:.1em .6em;border-radius:.3em;"
    "color:#fff}"
    "figure{margin:1.5em 0}figcaption{margin-bottom:.3em}.muted{color:#555}"
)


def render_html(report: DriftReport, *, title: str | None = None) -> str:
    """The report as a complete HTML document (``title``: defaults to the two data names)."""
    heading = title or f"Drift: {report.current or 'current data'} against " + (
        report.reference or "the reference"
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_esc(heading)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(heading)}</h1>",
        _summary(report),
        _table(report.columns),
    ]
    if report.columns:
        parts.append("<h2>Distributions</h2>")
        parts.append(
            "<p class='muted'>Share of each column's non-null values per bin: the reference "
            f"{_swatch(REFERENCE_COLOR)} as wide bars, the current data "
            f"{_swatch(CURRENT_COLOR)} as narrow ones over them. Numeric bins are cut at the "
            "reference's quantiles, so its bars are about level.</p>"
        )
        parts.extend(_figure(column) for column in report.columns)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(
    report: DriftReport, path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write :func:`render_html` to ``path`` (a temporary name, then a rename) and return it."""
    return write_text_atomic(path, render_html(report, title=title))


def _summary(report: DriftReport) -> str:
    judged = [c for c in report.columns if c.verdict != "insufficient data"]
    lines = [
        f"<p>Dataset: {_badge(report.verdict)} — {len(report.drifted_columns)} of "
        f"{len(judged)} columns with a verdict drift; weighted share "
        f"<b>{report.share:.1%}</b> (drift from {report.share_threshold:.0%}).</p>",
        f"<p class='muted'>Reference {_esc(report.reference or '–')}: "
        f"{count(report.reference_rows, 'row')}. Current {_esc(report.current or '–')}: "
        f"{count(report.current_rows, 'row')}.</p>",
    ]
    short = [c.column for c in report.columns if c.verdict == "insufficient data"]
    if short:
        lines.append(
            "<p class='muted'>Too few current values for a verdict: "
            + ", ".join(f"<code>{_esc(n)}</code>" for n in short)
            + ".</p>"
        )
    if report.missing_columns:
        lines.append(
            "<p>Reference columns absent from the current data, not compared: "
            + ", ".join(f"<code>{_esc(n)}</code>" for n in report.missing_columns)
            + ".</p>"
        )
    return "\n".join(lines)


def _table(columns: Sequence[ColumnDrift]) -> str:
    head = (
        "<table><tr><th>column</th><th>kind</th><th>method</th><th>statistic</th>"
        "<th>p-value (adjusted)</th><th>threshold</th><th>verdict</th><th>current values</th>"
        "<th>nulls ref / cur</th></tr>"
    )
    rows = []
    for c in columns:
        if c.p_value is None:
            p = "–"
        elif c.p_adjusted is None:
            p = _num(c.p_value)
        else:
            p = f"{_num(c.p_value)} ({_num(c.p_adjusted)})"
        rows.append(
            f"<tr><td><a href='#{_anchor(c.column)}'>{_esc(c.column)}</a></td>"
            f"<td>{c.kind}</td><td>{_esc(METHOD_NAMES.get(c.method, c.method))}</td>"
            f"<td class='n'>{_num(c.statistic)}</td><td class='n'>{p}</td>"
            f"<td class='n'>{_num(c.threshold)}</td><td>{_badge(c.verdict)}</td>"
            f"<td class='n'>{c.current_rows:,}</td>"
            f"<td class='n'>{c.reference_null_share:.1%} / {c.current_null_share:.1%}</td></tr>"
        )
    return head + "".join(rows) + "</table>"


def _figure(c: ColumnDrift) -> str:
    caption = (
        f"<b>{_esc(c.column)}</b> {_badge(c.verdict)} "
        f"<span class='muted'>{_esc(METHOD_NAMES.get(c.method, c.method))} "
        f"{_num(c.statistic)}, threshold {_num(c.threshold)}</span>"
    )
    return (
        f"<figure id='{_anchor(c.column)}'><figcaption>{caption}</figcaption>"
        f"{_bars_svg(c)}</figure>"
    )


def _bars_svg(c: ColumnDrift) -> str:
    ref_total = sum(c.reference_counts) or 1
    cur_total = sum(c.current_counts) or 1
    bins = [
        (label, r / ref_total, k / cur_total)
        for label, r, k in zip(c.bins, c.reference_counts, c.current_counts, strict=True)
    ]
    note = ""
    if c.kind == "categorical":
        bins = [b for b in bins if b[1] or b[2]]
        if len(bins) > MAX_BARS:
            keep = sorted(range(len(bins)), key=lambda i: -max(bins[i][1], bins[i][2]))
            kept = sorted(keep[:MAX_BARS])
            note = f"{len(bins) - MAX_BARS} smaller bins not drawn"
            bins = [bins[i] for i in kept]
    top = max([max(r, k) for _, r, k in bins] + [1e-12])
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM
    slot = span_x / max(len(bins), 1)
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{span_x}" height="{span_y}" fill="none" '
        'stroke="#ccc"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" font-size="10">{top:.0%}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + span_y}" text-anchor="end" font-size="10">0%</text>',
    ]
    for i, (label, r, k) in enumerate(bins):
        x = LEFT + i * slot
        rh, kh = r / top * span_y, k / top * span_y
        parts.append(
            f'<rect x="{x + slot * 0.08:.1f}" y="{TOP + span_y - rh:.1f}" '
            f'width="{slot * 0.84:.1f}" height="{rh:.1f}" fill="{REFERENCE_COLOR}">'
            f"<title>{_esc(label)}: reference {r:.2%}</title></rect>"
            f'<rect x="{x + slot * 0.3:.1f}" y="{TOP + span_y - kh:.1f}" '
            f'width="{slot * 0.4:.1f}" height="{kh:.1f}" fill="{CURRENT_COLOR}" '
            f'fill-opacity="0.85"><title>{_esc(label)}: current {k:.2%}</title></rect>'
        )
        cx, cy = x + slot / 2, TOP + span_y + 10
        parts.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="9" text-anchor="end" '
            f'transform="rotate(-40 {cx:.1f} {cy:.1f})">{_esc(_short(label))}</text>'
        )
    if note:
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{TOP - 8}" text-anchor="end" font-size="10">'
            f"{_esc(note)}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{_esc(c.column)}: reference and current distributions" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'font-family="sans-serif" font-size="12">' + "".join(parts) + "</svg>"
    )


def _badge(verdict: str) -> str:
    color = VERDICT_COLORS.get(verdict, "#6b7280")
    return f"<span class='verdict' style='background:{color}'>{_esc(verdict)}</span>"


def _swatch(color: str) -> str:
    return (
        f"<svg width='10' height='10' aria-hidden='true'><rect width='10' height='10' "
        f"fill='{color}'/></svg>"
    )


def _anchor(column: str) -> str:
    # Ids only need to be unique and safe in an attribute; the hex of the name is both.
    return "col-" + column.encode().hex()


def _num(x: float) -> str:
    if math.isnan(x):
        return "–"
    if x >= 1e300:
        return "∞"
    return f"{x:.4g}"


def _short(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)
