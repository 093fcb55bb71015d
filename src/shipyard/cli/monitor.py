"""``shipyard monitor``: drift reports, and monitors that watch a deployment's windows."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard._internal.words import count
from shipyard.cli._common import (
    JsonOpt,
    check_output,
    console,
    emit_json,
    open_local_project,
    open_project,
    table,
    when,
)

if TYPE_CHECKING:
    from shipyard.monitoring.drift import ColumnDrift, DriftReport
    from shipyard.monitoring.monitors import MonitorResult, RunOutcome
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
    if html is not None:
        html = check_output(html, force=force, suffixes=(".html", ".htm"))
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
        f"{report.current} ({count(report.current_rows, 'row')}) against {report.reference} "
        f"({count(report.reference_rows, 'row')})",
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
            f"dataset: insufficient data ({count(report.current_rows, 'current row')}; a "
            "verdict needs "
            f"at least {MIN_ROWS} values in a column)"
        )
        return
    drifted = sum(1 for c in judged if c.drifted)
    share = f"{'weighted ' if weighted else ''}share {report.share:.2f}"
    sign = ">=" if report.drifted else "<"
    out.print(
        f"dataset: {'DRIFT' if report.drifted else 'no drift'} ({drifted} of "
        f"{count(len(judged), 'column')} drifted; {share} {sign} {report.share_threshold:g})"
    )


def _verdict(c: ColumnDrift) -> str:
    if c.verdict == "insufficient data":
        return f"insufficient data ({count(c.current_rows, 'row')})"
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
        f"drift reference of {profile.source} ({count(profile.rows, 'row')})",
        ["column", "kind", "dtype", "nulls", "distribution"],
        rows,
    )


def _num(x: float) -> str:
    return f"{x:.4g}"


# -- monitors -------------------------------------------------------------------------------------


def _result_line(r: MonitorResult) -> str:
    window = f"{when(r.window_start)} .. {when(r.window_end)}"
    broken = f" [{'; '.join(r.breached)}]" if r.breached else ""
    return f"{r.monitor}: {r.status} for {window}: {r.message}{broken}"


def _outcome_line(o: RunOutcome) -> str:
    line = _result_line(o.result) + ("" if o.new else " (measured before)")
    if o.alert is not None and o.alert_event in ("opened", "resolved"):
        line += f"\n  alert {o.alert.id} {o.alert_event}: {o.alert.summary}"
    return line


def _seconds(text: str, what: str) -> int:
    from shipyard.cli.deployments import parse_window

    try:
        return round(parse_window(text))
    except typer.BadParameter as exc:
        raise typer.BadParameter(str(exc), param_hint=what) from None


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor's name.")],
    deployment: Annotated[str, typer.Option(help="The deployment it watches.")],
    kind: Annotated[str, typer.Option(help="drift, quality, performance or kpi.")],
    window: Annotated[str, typer.Option(help="How long a window is: 30m, 1h, 1d.")] = "1h",
    every: Annotated[str, typer.Option(help="How often a window ends: 10m, 1h.")] = "10m",
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            help="A bound: METRIC<=X or METRIC>=X (e.g. accuracy>=0.8), or a bare number for "
            "the kind's main metric; repeat for several (default: the kind's)."
        ),
    ] = None,
    consecutive: Annotated[
        int, typer.Option(min=1, max=1000, help="Breaching windows in a row that open an alert.")
    ] = 1,
    cooldown: Annotated[
        str, typer.Option(help="After an alert resolves, how long before another opens.")
    ] = "1h",
    notify: Annotated[
        list[int] | None,
        typer.Option(
            metavar="WEBHOOK_ID",
            help="Send its alerts to this webhook only (repeat); default: every webhook "
            "subscribed to alert.opened / alert.resolved.",
        ),
    ] = None,
    kpi: Annotated[str | None, typer.Option(help="kpi: the KPI's name.")] = None,
    agg: Annotated[str, typer.Option(help="kpi: sum or mean per window.")] = "sum",
    min_: Annotated[float | None, typer.Option("--min", help="kpi: the band's low end.")] = None,
    max_: Annotated[float | None, typer.Option("--max", help="kpi: the band's high end.")] = None,
    min_rows: Annotated[
        int | None, typer.Option(min=0, help="Fewest rows (labels, events) a window needs.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="quality, drift: the reference dataset (default: the training data)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Add a monitor of a deployment (contributor)."""
    monitor = open_local_project(ctx).monitors.add(
        name,
        deployment=deployment,
        kind=kind,
        window_seconds=_seconds(window, "--window"),
        every_seconds=_seconds(every, "--every"),
        thresholds=threshold or [],
        consecutive=consecutive,
        cooldown_seconds=0 if cooldown.strip() in ("0", "") else _seconds(cooldown, "--cooldown"),
        notify=notify or [],
        kpi=kpi,
        aggregation=agg,
        min_value=min_,
        max_value=max_,
        min_rows=min_rows,
        reference=reference,
    )
    if json_:
        emit_json(monitor.to_dict())
        return
    bounds = ", ".join(t.describe() for t in monitor.thresholds)
    typer.echo(
        f"monitor {monitor.name}: {monitor.kind} of deployment {monitor.deployment}, a "
        f"{monitor.window_seconds} s window every {monitor.every_seconds} s, {bounds}"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment's.")] = None,
    json_: JsonOpt = False,
) -> None:
    """List monitors."""
    found = open_local_project(ctx).monitors.list(deployment=deployment)
    if json_:
        emit_json([m.to_dict() for m in found])
        return
    table(
        None,
        ["name", "deployment", "kind", "window", "every", "thresholds", "K", "notify", "state"],
        [
            [
                m.name,
                m.deployment,
                m.kind,
                f"{m.window_seconds} s",
                f"{m.every_seconds} s",
                ", ".join(t.describe() for t in m.thresholds),
                m.consecutive,
                ", ".join(map(str, m.notify)) or "subscribers",
                "enabled" if m.enabled else "disabled",
            ]
            for m in found
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.")],
    json_: JsonOpt = False,
) -> None:
    """A monitor, its latest result and its open alert."""
    project = open_local_project(ctx)
    monitor = project.monitors.get(name)
    latest = project.monitors.history(name, limit=1)
    open_alerts = project.alerts.list(open_only=True, monitor=name, limit=1)
    if json_:
        emit_json(
            monitor.to_dict()
            | {
                "latest": latest[0].to_dict() if latest else None,
                "open_alert": open_alerts[0].to_dict() if open_alerts else None,
            }
        )
        return
    typer.echo(
        f"{monitor.name}: {monitor.kind} of deployment {monitor.deployment} "
        f"({'enabled' if monitor.enabled else 'disabled'})\n"
        f"  windows: {monitor.window_seconds} s, one ending every {monitor.every_seconds} s\n"
        f"  thresholds: {', '.join(t.describe() for t in monitor.thresholds)}; "
        f"{monitor.consecutive} window(s) in a row open an alert; cooldown "
        f"{monitor.cooldown_seconds} s\n"
        f"  notify: {', '.join(map(str, monitor.notify)) or 'every subscribed webhook'}"
    )
    typer.echo("  latest: " + (_result_line(latest[0]) if latest else "not run yet"))
    if open_alerts:
        typer.echo(f"  OPEN alert {open_alerts[0].id}: {open_alerts[0].summary}")


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.")],
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    json_: JsonOpt = False,
) -> None:
    """A monitor's results, one per window, newest first."""
    results = open_local_project(ctx).monitors.history(name, limit=limit)
    if json_:
        emit_json([r.to_dict() for r in results])
        return
    table(
        None,
        ["window end", "status", "rows", "message", "breached"],
        [[when(r.window_end), r.status, r.rows, r.message, "; ".join(r.breached)] for r in results],
    )


@app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The monitor (or --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every enabled monitor.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Measure the latest complete window (one pass, for cron or CI); exit 3 if an alert
    opened."""
    if (name is None) == (not all_):
        raise typer.BadParameter("name one monitor or give --all, not both")
    project = open_local_project(ctx)
    outcomes = project.monitors.run_all() if all_ else [project.monitors.run(name or "")]
    if json_:
        emit_json([o.to_dict() for o in outcomes])
    else:
        for o in outcomes:
            typer.echo(_outcome_line(o))
    if any(o.fired for o in outcomes):
        raise typer.Exit(3)


@app.command("watch")
def watch(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment's.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Run every enabled monitor as its windows complete, until Ctrl-C (with --json, the
    results as one JSON document when it stops)."""
    project = open_local_project(ctx)
    seen: list[RunOutcome] = []

    def show(o: RunOutcome) -> None:
        if json_:
            seen.append(o)
        else:
            typer.echo(_outcome_line(o))

    if not json_:
        typer.echo("watching monitors; Ctrl-C to stop", err=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the loop cleanly
        project.monitors.watch(deployment=deployment, on_outcome=show)
    if json_:
        emit_json([o.to_dict() for o in seen])


@app.command("enable")
def enable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.")],
    json_: JsonOpt = False,
) -> None:
    """Let `monitor run --all` and `monitor watch` run a monitor again (contributor)."""
    m = open_local_project(ctx).monitors.enable(name)
    emit_json(m.to_dict()) if json_ else typer.echo(f"monitor {m.name} is enabled")


@app.command("disable")
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.")],
    json_: JsonOpt = False,
) -> None:
    """Leave a monitor out of `monitor run --all` and `monitor watch` (contributor)."""
    m = open_local_project(ctx).monitors.disable(name)
    emit_json(m.to_dict()) if json_ else typer.echo(f"monitor {m.name} is disabled")


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.")],
    json_: JsonOpt = False,
) -> None:
    """Remove a monitor and its results (admin); its alerts stay listed."""
    m = open_local_project(ctx).monitors.remove(name)
    emit_json(m.to_dict()) if json_ else typer.echo(f"monitor {m.name} is removed")
