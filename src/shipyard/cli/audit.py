"""``shipyard audit``: the tamper-evident log of every change and data read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import (
    JsonOpt,
    check_output,
    emit_json,
    open_local_project,
    open_project,
    table,
)

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
def verify(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Also check that the chain still extends this signed checkpoint "
            "(written by `shipyard audit checkpoint`).",
            dir_okay=False,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Recompute the hash chain and rebuild the governance state from it; exit 3 at the
    first edited, deleted or reordered event, for every governance row (users, model
    versions, approvals, aliases, policies, deployments...) that differs from what the
    events say, or when the chain no longer extends the checkpoint."""
    report = open_project(ctx).audit.verify(checkpoint=checkpoint)
    if json_:
        emit_json(report.to_dict())
    elif report.chain_ok:
        typer.echo(f"audit chain ok: {report.events} events, head {report.head_hash}")
    else:
        typer.echo(f"audit chain BROKEN at event {report.first_bad_seq}: {report.reason}", err=True)
    if not json_:
        for m in report.state:
            typer.echo(
                f"TABLE {m.table} {m.key}: {m.problem} (audit log: {_shown(m.expected)}; "
                f"table: {_shown(m.found)})",
                err=True,
            )
        if report.chain_ok and not report.state:
            typer.echo("governance tables match the audit log")
    check = report.checkpoint
    if check is not None and not json_:
        if check.ok:
            typer.echo(
                f"checkpoint ok: event {check.seq} ({check.hash}) of {check.time} is still in "
                f"the chain; signed by {check.actor} with {check.trust_detail}"
            )
        else:
            typer.echo(f"checkpoint FAILED: {check.reason}", err=True)
    if not report.ok:
        raise typer.Exit(3)


def _shown(value: object) -> str:
    return "absent" if value is None else _short(json.dumps(value, default=str), 80)


@app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The checkpoint file (.json).", dir_okay=False),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the file if it exists.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Sign the head of the audit chain with your key (outside the project) and write it to a
    file; keep the file where the database's writers cannot change it, and check it later
    with `shipyard audit verify --checkpoint FILE`."""
    output = check_output(output, force=force, suffixes=(".json",))
    cp = open_local_project(ctx).audit.checkpoint(output, force=force)
    if json_:
        emit_json(cp.to_dict())
        return
    if cp.key_created:
        typer.echo(f"created a new audit key: {cp.key_file}")
    if cp.key_recorded:
        typer.echo(f"recorded its public key in the project (fingerprint {cp.key_fingerprint})")
    typer.echo(
        f"checkpoint written to {cp.file}: event {cp.seq} ({cp.hash}), signed with {cp.key_file}"
    )
