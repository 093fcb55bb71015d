"""``shipyard monitor``: drift reports, and monitors that watch a deployment's windows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli._common import JsonOpt, console, emit_json, open_project, table

if TYPE_CHECKING:
    from shipyard.monitoring.drift import ColumnDrift, DriftReport
    from shipyard.monitoring.reference import ReferenceProfile

app = typer.Typer(
    help="Drift and data-quality reports, and monitors that check a deployment every window.",
    no_args_is_help=True,
)


@app.command("drift")
def drift(
    ctx: typer.Context,
    subject: Annotated[
        str,
        typer.Argument(
            help="MODEL@ALIAS or MODEL@N (reference: its training data, from its lineage), or "
            "DATASET@N (the reference itself). Prefix model: or dataset: when both exist."
        ),
    ],
    current: Annotated[
        str | None, typer.Option(help="The current data: a dataset version, DATASET@N.")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            help="The current data: what the deployment answered over this window up to now "
            "(30m, 1h, 7d)."
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            help="The deployment whose prediction log --window reads (default: the one that "
            "serves the model's alias)."
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Another reference dataset version, DATASET@N.")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Also write the report as a standalone HTML file (opens offline)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --html file.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Compare current data with a reference, column by column: the method, its statistic
    and threshold, and the verdict; then the dataset's verdict (the share of drifted columns,
    weighted by the model's permutation importance when it has an evaluation). Fewer than 200
    current rows give "insufficient data", never drift. Exit 3 when the dataset drifts."""
    from shipyard.cli.deployments import parse_window

    if (current is None) == (window is None):
        raise typer.BadParameter(
            "give the current data: --current DATASET@N or --window 1h (one of them)",
            param_hint="--current / --window",
        )
    seconds = parse_window(window) if window is not None else None
    project = open_project(ctx)
    report = project.drift.compare(
        subject,
        current=current,
        window_seconds=seconds,
        deployment=deployment,
        reference=reference,
    )
    written = project.drift.save_html(report, html, force=force) if html is not None else None
    if json_:
        emit_json(report.to_dict() | ({"html": str(written)} if written else {}))
    else:
        _render(report)
        if written:
            typer.echo(f"report written to {written}")
    if report.drifted:
        raise typer.Exit(3)


@app.command("reference")
def reference_(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="A table version, DATASET@N.")],
    json_: JsonOpt = False,
) -> None:
    """Show the drift reference stored with a table version: per column its kind, bins or
    top values, and null share (the numbers drift is measured against)."""
    profile = open_project(ctx).drift.reference(dataset)
    if json_:
        emit_json(profile.to_json())
        return
    _render_reference(profile)


def _render(report: DriftReport) -> None:
    weighted = any(c.weight != 1.0 for c in report.columns)
    rows = [
        [
            c.column,
            c.method,
            _num(c.statistic),
            _num(c.threshold),
            "" if c.p_adjusted is None else _num(c.p_adjusted),
            *([_num(c.weight)] if weighted else []),
            _verdict(c),
        ]
        for c in report.columns
    ]
    table(
        f"{report.current} ({report.current_rows} rows) against {report.reference} "
        f"({report.reference_rows} rows)",
        [
            "column",
            "method",
            "statistic",
            "threshold",
            "p (adjusted)",
            *(["weight"] if weighted else []),
            "verdict",
        ],
        rows,
    )
    out = console()
    if report.missing_columns:
        out.print(f"not in the current data: {', '.join(report.missing_columns)}")
    judged = [c for c in report.columns if c.verdict != "insufficient data"]
    if report.verdict == "insufficient data":
        from shipyard.monitoring.drift import MIN_ROWS

        out.print(
            f"dataset: insufficient data ({report.current_rows} current rows; a verdict needs "
            f"at least {MIN_ROWS} values in a column)"
        )
        return
    drifted = sum(1 for c in judged if c.drifted)
    share = f"{'weighted ' if weighted else ''}share {report.share:.2f}"
    sign = ">=" if report.drifted else "<"
    out.print(
        f"dataset: {'DRIFT' if report.drifted else 'no drift'} ({drifted} of {len(judged)} "
        f"columns drifted; {share} {sign} {report.share_threshold:g})"
    )


def _verdict(c: ColumnDrift) -> str:
    if c.verdict == "insufficient data":
        return f"insufficient data ({c.current_rows} rows)"
    return "DRIFT" if c.drifted else "no drift"


def _render_reference(profile: ReferenceProfile) -> None:
    rows = []
    for name, c in profile.columns.items():
        if c.kind == "numeric":
            summary = (
                f"mean {_num(c.mean)}, std {_num(c.std)}, {len(c.counts)} bins from "
                f"{_num(c.min)} to {_num(c.max)}"
            )
        else:
            top = ", ".join(f"{v} ({n})" for v, n in zip(c.values[:5], c.counts, strict=False))
            more = len(c.values) - 5
            summary = (
                top
                + (f", {more} more" if more > 0 else "")
                + (f"; other {c.other}" if c.other else "")
            )
        rows.append([name, c.kind, c.dtype, f"{c.null_share:.1%}", summary])
    table(
        f"drift reference of {profile.source} ({profile.rows} rows)",
        ["column", "kind", "dtype", "nulls", "distribution"],
        rows,
    )


def _num(x: float) -> str:
    return f"{x:.4g}"
