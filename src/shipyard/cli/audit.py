"""``shipyard audit``: the tamper-evident log of every change and data read."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_project, table

app = typer.Typer(help="Read and verify the audit log.")


@app.command("log")
def log(
    ctx: typer.Context,
    entity: Annotated[
        str | None,
        typer.Option(help="Only events about this entity: NAME, NAME@N or KIND:NAME."),
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only actions starting with this (e.g. dataset.read).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only events by this user.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many (newest).", min=1)] = None,
    json_: JsonOpt = False,
) -> None:
    """Show audit events, oldest first."""
    events = open_project(ctx).audit.list(
        entity=entity, action=action, actor=actor, limit=limit, newest_first=limit is not None
    )
    if limit is not None:
        events.reverse()
    if json_:
        emit_json([e.to_dict() for e in events])
        return
    table(
        None,
        ["seq", "time", "actor", "action", "entity", "details"],
        [
            [
                e.seq,
                e.time[:19].replace("T", " "),
                e.actor,
                e.action,
                f"{e.entity_kind}:{e.entity}",
                _short(json.dumps(e.payload, default=str)),
            ]
            for e in events
        ],
    )


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@app.command("verify")
def verify(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Recompute the hash chain; exit 3 at the first edited, deleted or reordered event."""
    report = open_project(ctx).audit.verify()
    if json_:
        emit_json(report.to_dict())
    elif report.ok:
        typer.echo(f"audit chain ok: {report.events} events, head {report.head_hash}")
    else:
        typer.echo(f"audit chain BROKEN at event {report.first_bad_seq}: {report.reason}", err=True)
    if not report.ok:
        raise typer.Exit(3)
