"""``shipyard alerts``: what monitors found, open or resolved."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_local_project, table, when

app = typer.Typer(help="Alerts opened by monitors, and when they resolved.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    open_: Annotated[bool, typer.Option("--open", help="Only the open ones.")] = False,
    monitor: Annotated[str | None, typer.Option(help="Only this monitor's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 100,
    json_: JsonOpt = False,
) -> None:
    """List alerts, newest first."""
    found = open_local_project(ctx).alerts.list(open_only=open_, monitor=monitor, limit=limit)
    if json_:
        emit_json([a.to_dict() for a in found])
        return
    table(
        None,
        ["id", "status", "monitor", "deployment", "opened", "resolved", "summary"],
        [
            (
                a.id,
                a.status,
                a.monitor,
                a.deployment,
                when(a.opened_at),
                when(a.resolved_at),
                a.summary,
            )
            for a in found
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    json_: JsonOpt = False,
) -> None:
    """One alert, with the thresholds it broke and the values."""
    a = open_local_project(ctx).alerts.get(alert_id)
    if json_:
        emit_json(a.to_dict())
        return
    typer.echo(f"alert {a.id} ({a.status}): {a.summary}")
    typer.echo(
        f"  opened {when(a.opened_at)}"
        + (f", resolved {when(a.resolved_at)}" if a.resolved_at else "")
    )
    typer.echo(f"  results {a.first_result_id} .. {a.last_result_id} of monitor {a.monitor}")
    typer.echo("  " + json.dumps(a.details, default=str, indent=2).replace("\n", "\n  "))
