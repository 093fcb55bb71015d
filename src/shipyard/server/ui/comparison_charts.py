"""Chart figures of the runs comparison page: plain functions from a
:class:`~shipyard.tracking.comparison.RunComparison` (whose series the service already
downsampled) to plotly figure documents, which static/shipyard.js draws. A run keeps its
colour in every chart, so its lines can be followed from one metric to the next.

>>> run_colors(3)
['#1f77b4', '#ff7f0e', '#2ca02c']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.tracking.comparison import ChartSeries, GroupBand, ParallelAxis, RunComparison

__all__ = [
    "group_bands",
    "metric_overlay",
    "parallel_coordinates",
    "run_colors",
    "run_label",
]

Figure = dict[str, Any]

#: Twenty distinguishable colours (D3's category10 and its lighter pairs): one per run of a
#: comparison of at most 20.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)
NONE_LABEL = "(not logged)"


def run_colors(n: int) -> list[str]:
    """A colour for each of ``n`` runs (repeating past twenty)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def run_label(run: Mapping[str, str]) -> str:
    """How a chart names a run: its name and the start of its id (names may repeat)."""
    return f"{run['name']} · {run['id'][:8]}"


def _layout(title: str, **more: Any) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, **more}


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def metric_overlay(key: str, comparison: RunComparison) -> Figure:
    """``key`` over steps, one line per run that logged it, in the run's colour."""
    by_run: dict[str, ChartSeries] = {s.run_id: s for s in comparison.series if s.key == key}
    colours = run_colors(len(comparison.runs))
    data = []
    for run, colour in zip(comparison.runs, colours, strict=True):
        s = by_run.get(run["id"])
        if s is None:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines" if len(s.steps) > 1 else "markers",
                "name": run_label(run),
                "legendgroup": run["id"],
                "x": s.steps,
                "y": s.values,
                "line": {"color": colour, "width": 1.5},
                "marker": {"color": colour},
                "meta": s.total,
                "hovertemplate": "step %{x}: %{y}<extra>%{fullData.name}</extra>",
            }
        )
    downsampled = [s for s in by_run.values() if s.downsampled]
    title = key
    if downsampled:
        most = max(s.total for s in downsampled)
        title += f" (downsampled on the server; longest series {most:,} points)"
    return {
        "data": data,
        "layout": _layout(title, xaxis={"title": {"text": "step"}}, height=320),
    }


def group_bands(key: str, group_by: str, groups: Sequence[GroupBand]) -> Figure:
    """``key``'s mean over steps for each group of runs (by the ``group_by`` parameter's
    value), inside a filled band of ± one standard deviation: two traces per group."""
    colours = run_colors(len(groups))
    data: list[dict[str, Any]] = []
    for band, colour in zip(groups, colours, strict=True):
        name = f"{group_by} = {NONE_LABEL if band.group is None else band.group}"
        upper = [m + s for m, s in zip(band.mean, band.std, strict=True)]
        lower = [m - s for m, s in zip(band.mean, band.std, strict=True)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{name} ± std",
                "legendgroup": name,
                "showlegend": False,
                "x": band.steps + band.steps[::-1],
                "y": upper + lower[::-1],
                "fill": "toself",
                "fillcolor": _rgba(colour, 0.2),
                "line": {"width": 0},
                "hoverinfo": "skip",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines" if len(band.steps) > 1 else "markers",
                "error_y": {"type": "data", "array": band.std, "visible": len(band.steps) == 1},
                "name": f"{name} ({len(band.runs)} run{'s' if len(band.runs) != 1 else ''})",
                "legendgroup": name,
                "x": band.steps,
                "y": band.mean,
                "customdata": band.std,
                "line": {"color": colour, "width": 2},
                "hovertemplate": "step %{x}: %{y} ± %{customdata}<extra>%{fullData.name}</extra>",
            }
        )
    return {
        "data": data,
        "layout": _layout(
            f"{key} by {group_by}: mean ± standard deviation",
            xaxis={"title": {"text": "step"}},
            height=320,
        ),
    }


def _positions(axis: ParallelAxis) -> tuple[list[float | None], list[tuple[float, str]]]:
    """Each run's place on ``axis`` between 0 (bottom) and 1 (top), and the axis's labels
    (place, text): a number axis spans its lowest to highest value; a text axis spreads its
    distinct values evenly. A run without a value has no place (its line breaks there)."""
    if axis.numeric:
        numbers = [float(v) for v in axis.values if v is not None]
        if not numbers:
            return [None] * len(axis.values), []
        low, high = min(numbers), max(numbers)
        if low == high:
            return [None if v is None else 0.5 for v in axis.values], [(0.5, f"{low:.4g}")]
        span = high - low
        places = [None if v is None else (float(v) - low) / span for v in axis.values]
        return places, [(0.0, f"{low:.4g}"), (1.0, f"{high:.4g}")]
    categories = sorted({NONE_LABEL if v is None else str(v) for v in axis.values})
    step = 1 / (len(categories) - 1) if len(categories) > 1 else 0.0
    place = {c: (i * step if len(categories) > 1 else 0.5) for i, c in enumerate(categories)}
    return [place[NONE_LABEL if v is None else str(v)] for v in axis.values], [
        (place[c], c) for c in categories
    ]


#: The most parameter axes the parallel-coordinates chart draws (the metrics come on top).
MAX_PARAM_AXES = 8


def parallel_coordinates(comparison: RunComparison) -> Figure:
    """A line per run (in its colour) across vertical axes: the parameters that differ (all
    of them when none does; at most :data:`MAX_PARAM_AXES`, those every run has first) and
    the chosen metrics' last values, each axis scaled from its
    lowest to its highest value (text values spread evenly), hover showing the values.

    Drawn as SVG lines rather than plotly's ``parcoords`` trace: parcoords renders through
    WebGL code that plotly.js compiles with ``new Function``, which the UI's
    Content-Security-Policy (no ``unsafe-eval``) forbids, so it would draw nothing."""
    differing = {f"params.{p.key}" for p in comparison.params if p.differs}
    params = [
        a
        for a in comparison.parallel
        if not a.name.startswith("metrics.") and (not differing or a.name in differing)
    ]
    # At most MAX_PARAM_AXES parameters, those every run has first: runs of different model
    # families differ in dozens of parameters, and a chart of them all cannot be read.
    params = sorted(params, key=lambda a: sum(v is None for v in a.values))[:MAX_PARAM_AXES]
    kept = {a.name for a in params}
    axes = [a for a in comparison.parallel if a.name.startswith("metrics.") or a.name in kept]
    placed = [_positions(a) for a in axes]
    xs = list(range(len(axes)))
    data = []
    colours = run_colors(len(comparison.runs))
    for i, (run, colour) in enumerate(zip(comparison.runs, colours, strict=True)):
        values = [a.values[i] for a in axes]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": run_label(run),
                "legendgroup": run["id"],
                "x": xs,
                "y": [places[i] for places, _ in placed],
                "customdata": [
                    f"{a.name} = {NONE_LABEL if v is None else v}"
                    for a, v in zip(axes, values, strict=True)
                ],
                "line": {"color": colour, "width": 2},
                "marker": {"color": colour, "size": 6},
                "hovertemplate": "%{customdata}<extra>%{fullData.name}</extra>",
            }
        )
    shapes = [
        {"type": "line", "x0": x, "x1": x, "y0": 0, "y1": 1, "line": {"color": "#98a2b3"}}
        for x in xs
    ]
    annotations = [
        {
            "x": x,
            "y": place,
            "text": text,
            "showarrow": False,
            "xanchor": "right",
            "xshift": -4,
            "font": {"size": 10, "color": "#475467"},
        }
        for x, (_, labels) in zip(xs, placed, strict=True)
        for place, text in labels
    ]
    return {
        "data": data,
        "layout": _layout(
            "Parallel coordinates: parameters and last metric values",
            height=420,
            xaxis={
                "tickvals": xs,
                "ticktext": [a.name for a in axes],
                "side": "top",
                "showgrid": False,
                "zeroline": False,
                "range": [-0.6, len(axes) - 0.6],
            },
            yaxis={"visible": False, "range": [-0.06, 1.06]},
            shapes=shapes,
            annotations=annotations,
            margin={"l": 40, "r": 20, "t": 90, "b": 20},
            hovermode="closest",
        ),
    }
