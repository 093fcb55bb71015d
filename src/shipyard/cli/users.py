"""``shipyard users``: who may do what."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_project, table, when

app = typer.Typer(help="Manage users and their roles (viewer < contributor < approver < admin).")


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (as in SHIPYARD_USER).")],
    role: Annotated[
        str, typer.Option(help="viewer, contributor, approver or admin.")
    ] = "contributor",
    json_: JsonOpt = False,
) -> None:
    """Add a user, or change an existing user's role (admin only)."""
    user = open_project(ctx).users.add(name, role)
    if json_:
        emit_json(user.to_dict())
    else:
        typer.echo(f"{user.name} is {user.role}")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List users and roles."""
    users = open_project(ctx).users.list()
    if json_:
        emit_json([u.to_dict() for u in users])
        return
    table(
        None,
        ["user", "role", "added", "by"],
        [[u.name, u.role, when(u.created_at), u.created_by] for u in users],
    )


@app.command("whoami")
def whoami(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Show the acting user and their role."""
    user = open_project(ctx).users.whoami()
    if json_:
        emit_json(user.to_dict())
    else:
        note = "" if user.registered else " (not registered: treated as viewer)"
        typer.echo(f"{user.name}: {user.role}{note}")
