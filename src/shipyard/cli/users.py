"""``shipyard users``: who may do what."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_local_project, open_project, table, when

if TYPE_CHECKING:
    from shipyard.governance.tokens import Token

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


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    json_: JsonOpt = False,
) -> None:
    """Remove a user (admin); revokes their tokens."""
    user = open_local_project(ctx).users.remove(name, reason=reason)
    if json_:
        emit_json(user.to_dict())
    else:
        typer.echo(f"removed {user.name} (was {user.role}); their API tokens are revoked")


@app.command("restore")
def restore(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    json_: JsonOpt = False,
) -> None:
    """Register a removed user again (admin)."""
    user = open_local_project(ctx).users.restore(name)
    if json_:
        emit_json(user.to_dict())
    else:
        typer.echo(f"{user.name} is {user.role} again")


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


token_app = typer.Typer(help="API tokens for the team server (`shipyard server`).")
app.add_typer(token_app, name="token")


def _token_row(t: Token) -> list[str]:
    state = "active" if t.active else ("revoked" if t.revoked_at else "expired")
    return [t.id, t.user, t.label, when(t.created_at), when(t.expires_at) or "never", state]


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Argument(help="Whose token (default: you; others need admin).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d, 12h, 2w (default: never).")
    ] = None,
    label: Annotated[str, typer.Option(help="A note to recognise the token by.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Make an API token. The secret is printed this once and stored only as a hash."""
    new = open_project(ctx).tokens.create(user, expires=expires, label=label)
    if json_:
        emit_json(new.to_dict())
        return
    typer.echo(new.token)
    expiry = when(new.info.expires_at) if new.info.expires_at else "never"
    typer.echo(
        f"token {new.info.id} for {new.info.user} (expires: {expiry}); it is shown only now: "
        "keep it in a secret store",
        err=True,
    )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Argument(help="Whose tokens (default: yours).")] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every user's tokens (admin).")] = False,
    json_: JsonOpt = False,
) -> None:
    """List API tokens (never their secrets)."""
    tokens = open_project(ctx).tokens.list(user, all_users=all_users)
    if json_:
        emit_json([t.to_dict() for t in tokens])
        return
    table(
        None,
        ["id", "user", "label", "created", "expires", "state"],
        [_token_row(t) for t in tokens],
    )


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")],
    json_: JsonOpt = False,
) -> None:
    """Revoke an API token: the server refuses it from the next request on."""
    token = open_project(ctx).tokens.revoke(token_id)
    if json_:
        emit_json(token.to_dict())
    else:
        typer.echo(f"token {token.id} of {token.user} is revoked")
