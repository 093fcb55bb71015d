"""The charts of a standalone HTML model card, as inline SVG: ROC and precision–recall
curves, calibration, the confusion matrix, per-group metrics, permutation importance and,
for a regressor, residuals. Drawn from a stored evaluation report (its ``curves`` and
metrics), so the card needs neither the model nor the data, and opens offline.

The SVG is written here rather than with a plotting library: these are a few lines, points
and bars each, a library that writes SVG (matplotlib) would be a large dependency for that,
and writing it here keeps the output byte-for-byte stable for the same report.

>>> svg = report_charts(report_dict)        # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["report_charts"]

WIDTH, HEIGHT = 320, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 40
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
#: Per-group bars drawn for each task: the measures a reviewer compares first.
GROUP_METRICS = {
    "binary": ("selection_rate", "recall", "false_positive_rate"),
    "multiclass": ("accuracy", "recall"),
    "regression": ("mae",),
}


class _Plot:
    """One chart: a frame with axes mapping data ranges onto the drawing area."""

    def __init__(
        self,
        title: str,
        x_label: str,
        y_label: str,
        x_range: tuple[float, float] = (0.0, 1.0),
        y_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1.0
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1.0
        self.parts: list[str] = [
            f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">'
            f"{_esc(title)}</text>",
            f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{HEIGHT - TOP - BOTTOM}" fill="none" stroke="#999"/>',
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 6}" '
            f'text-anchor="middle">{_esc(x_label)}</text>',
            f'<text x="12" y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" text-anchor="middle" '
            f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2:.0f})">{_esc(y_label)}</text>',
        ]
        for value in _ticks(self.x0, self.x1):
            self.parts.append(
                f'<text x="{self.x(value):.1f}" y="{HEIGHT - BOTTOM + 14}" '
                f'text-anchor="middle" font-size="10">{_tick(value)}</text>'
            )
        for value in _ticks(self.y0, self.y1):
            self.parts.append(
                f'<text x="{LEFT - 4}" y="{self.y(value) + 3:.1f}" text-anchor="end" '
                f'font-size="10">{_tick(value)}</text>'
            )

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def line(
        self, xs: Sequence[float], ys: Sequence[float], color: str, dash: bool = False
    ) -> None:
        points = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in zip(xs, ys, strict=True))
        style = ' stroke-dasharray="4 3"' if dash else ""
        self.parts.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"{style}/>'
        )

    def points(self, xs: Sequence[float], ys: Sequence[float], color: str, r: float = 2.5) -> None:
        self.parts.extend(
            f'<circle cx="{self.x(a):.1f}" cy="{self.y(b):.1f}" r="{r}" fill="{color}" '
            'fill-opacity="0.7"/>'
            for a, b in zip(xs, ys, strict=True)
        )

    def legend(self, labels: Sequence[str], corner: str = "top left") -> None:
        """A key in a ``corner`` of the drawing area ("top left", "bottom right"...) where
        the chart's lines do not usually run."""
        rows = len(labels)
        x = LEFT + 6 if corner.endswith("left") else WIDTH - RIGHT - 110
        first = TOP + 12 if corner.startswith("top") else HEIGHT - BOTTOM - 6 - 13 * (rows - 1)
        for i, label in enumerate(labels):
            y = first + 13 * i
            self.parts.append(
                f'<rect x="{x}" y="{y - 8}" width="10" height="10" '
                f'fill="{COLORS[i % len(COLORS)]}"/><text x="{x + 14}" y="{y + 1}" '
                f'font-size="10">{_esc(label[:18])}</text>'
            )

    def svg(self, label: str) -> str:
        return _svg(label, self.parts)


def report_charts(report: Mapping[str, Any]) -> list[str]:
    """The SVG charts of one stored evaluation report (``EvaluationReport.to_dict()``), in
    the card's order; none for what the report does not hold."""
    curves = report.get("curves") or {}
    charts: list[str] = []
    roc = curves.get("roc") or []
    if roc:
        plot = _Plot("ROC curve", "false positive rate", "true positive rate")
        plot.line([0, 1], [0, 1], "#bbb", dash=True)
        for i, c in enumerate(roc):
            plot.line(c["fpr"], c["tpr"], COLORS[i % len(COLORS)])
        plot.legend([f"{c['label']} (AUC {c['auc']:.3f})" for c in roc], "bottom right")
        charts.append(plot.svg("ROC curve"))
    pr = curves.get("pr") or []
    if pr:
        plot = _Plot("Precision–recall", "recall", "precision")
        for i, c in enumerate(pr):
            plot.line(c["recall"], c["precision"], COLORS[i % len(COLORS)])
        plot.legend([f"{c['label']} (AP {c['average_precision']:.3f})" for c in pr], "bottom left")
        charts.append(plot.svg("Precision-recall curve"))
    calibration = curves.get("calibration") or []
    if calibration:
        plot = _Plot("Calibration", "mean predicted probability", "observed frequency")
        plot.line([0, 1], [0, 1], "#bbb", dash=True)
        for i, c in enumerate(calibration):
            color = COLORS[i % len(COLORS)]
            plot.line(c["predicted"], c["observed"], color)
            plot.points(c["predicted"], c["observed"], color)
        plot.legend([str(c["label"]) for c in calibration], "top left")
        charts.append(plot.svg("Calibration plot"))
    confusion = report.get("confusion_matrix")
    if confusion and confusion.get("matrix"):
        charts.append(_confusion(confusion["labels"], confusion["matrix"]))
    residuals = curves.get("residuals")
    if residuals and residuals.get("predicted"):
        xs, ys = residuals["predicted"], residuals["residual"]
        spread = max(abs(v) for v in ys) or 1.0
        plot = _Plot(
            f"Residuals ({len(xs)} of {residuals.get('rows', len(xs))} rows)",
            "prediction",
            "label − prediction",
            (min(xs), max(xs)),
            (-spread, spread),
        )
        plot.line([min(xs), max(xs)], [0, 0], "#bbb", dash=True)
        plot.points(xs, ys, COLORS[0], r=2)
        charts.append(plot.svg("Residual plot"))
    task = str(report.get("task", ""))
    for column, group in sorted((report.get("groups") or {}).items()):
        chart = _groups(column, group.get("metrics") or {}, GROUP_METRICS.get(task, ()))
        if chart:
            charts.append(chart)
    importance = report.get("importance") or []
    if importance:
        charts.append(
            _importance(
                importance[:10], str(report.get("settings", {}).get("importance_metric", "score"))
            )
        )
    return charts


def _confusion(labels: Sequence[Any], matrix: Sequence[Sequence[int]]) -> str:
    """The matrix as shaded cells: rows the true class, columns the predicted one; each
    cell's shade is its share of its row."""
    n = len(labels)
    size = min(40.0, (HEIGHT - TOP - BOTTOM) / max(n, 1))
    parts = [
        f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">'
        "Confusion matrix</text>",
        f'<text x="{LEFT + n * size / 2:.0f}" y="{TOP + n * size + 28:.0f}" '
        'text-anchor="middle">predicted</text>',
        f'<text x="12" y="{TOP + n * size / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + n * size / 2:.0f})">true</text>',
    ]
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            x, y = LEFT + j * size, TOP + i * size
            text = "#fff" if share > 0.5 else "#000"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{size:.1f}" height="{size:.1f}" '
                f'fill="#1f77b4" fill-opacity="{0.08 + 0.92 * share:.3f}" stroke="#fff"/>'
                f'<text x="{x + size / 2:.1f}" y="{y + size / 2 + 4:.1f}" text-anchor="middle" '
                f'font-size="10" fill="{text}">{count}</text>'
            )
    for k, label in enumerate(labels):
        parts.append(
            f'<text x="{LEFT + k * size + size / 2:.1f}" y="{TOP + n * size + 12:.1f}" '
            f'text-anchor="middle" font-size="10">{_esc(str(label)[:8])}</text>'
            f'<text x="{LEFT - 4}" y="{TOP + k * size + size / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="10">{_esc(str(label)[:8])}</text>'
        )
    return _svg("Confusion matrix", parts)


def _bars(title: str, rows: Sequence[tuple[str, float | None, float | None]], note: str) -> str:
    """Horizontal bars (name, value, optional ± error) from zero, in the given order; a row
    without a value is a heading for the rows after it."""
    top = max([abs(v) + (e or 0.0) for _, v, e in rows if v is not None] + [1e-12])
    height = TOP + 14 * len(rows) + 28
    span = WIDTH - 120 - RIGHT - 44  # room for the value after the longest bar
    parts = [
        f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">'
        f"{_esc(title)}</text>",
        f'<text x="{WIDTH / 2:.0f}" y="{height - 6}" text-anchor="middle" font-size="10">'
        f"{_esc(note)}</text>",
    ]
    for i, (name, value, error) in enumerate(rows):
        y = TOP + 14 * i
        if value is None:
            parts.append(
                f'<text x="4" y="{y + 10}" font-size="10" font-weight="bold">{_esc(name)}</text>'
            )
            continue
        length = abs(value) / top * span
        end = length
        if error:
            low = max(abs(value) - error, 0.0) / top * span
            end = max(length, (abs(value) + error) / top * span)
            parts.append(
                f'<line x1="{120 + low:.1f}" x2="{120 + end:.1f}" y1="{y + 7}" y2="{y + 7}" '
                'stroke="#333"/>'
            )
        parts.insert(
            2,
            f'<text x="116" y="{y + 10}" text-anchor="end" font-size="10">{_esc(name[:20])}</text>'
            f'<rect x="120" y="{y + 2}" width="{length:.1f}" height="10" fill="{COLORS[0]}"/>',
        )
        parts.append(f'<text x="{120 + end + 3:.1f}" y="{y + 10}" font-size="9">{value:.3g}</text>')
    return _svg(title, parts, height)


def _groups(column: str, metrics: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> str:
    rows: list[tuple[str, float | None, float | None]] = []
    for name in names:
        values = [
            (str(group), float(v[name]))
            for group, v in sorted(metrics.items())
            if isinstance(v.get(name), int | float)
        ]
        if values:
            rows.append((name.replace("_", " "), None, None))
            rows.extend((group, value, None) for group, value in values)
    if not rows:
        return ""
    return _bars(f"By {column}", rows, "per group, on the evaluation data")


def _importance(items: Sequence[Mapping[str, Any]], metric: str) -> str:
    rows: list[tuple[str, float | None, float | None]] = [
        (str(i["feature"]), float(i["mean"]), float(i.get("std") or 0.0)) for i in items
    ]
    return _bars("Permutation importance", rows, f"drop in {metric} when shuffled, ± std")


def _svg(label: str, parts: Sequence[str], height: int | float = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_esc(label)}" '
        f'width="{WIDTH}" height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" '
        'font-family="sans-serif" font-size="12">' + "".join(parts) + "</svg>"
    )


def _ticks(low: float, high: float) -> list[float]:
    step = (high - low) / 4
    return [low + step * i for i in range(5)]


def _tick(value: float) -> str:
    return f"{value:.2g}" if abs(value) < 1000 else f"{value:.3g}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
