"""``shipyard login URL`` and ``shipyard logout``: remember a team server and a token, so that
every later command talks to the server instead of a local database."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://shipyard.internal:8000.")],
    token: Annotated[
        str | None,
        typer.Option(
            help="The API token (`shipyard users token create`); default: read from stdin, or "
            "asked for without echo on a terminal.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Check a token against the server and store both in your config folder
    ($XDG_CONFIG_HOME/shipyard/login.json, readable by you only). The token is never printed."""
    from shipyard.client.login import check_url, store_login
    from shipyard.client.project import RemoteProject
    from shipyard.errors import InvalidInputError

    url = check_url(url)
    if token is None:
        if sys.stdin.isatty():
            token = typer.prompt("API token", hide_input=True, err=True)
        else:
            token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise InvalidInputError("no token given: pass --token, or the token on stdin")
    with RemoteProject(url, token) as remote:
        user = remote.users.whoami()
    path = store_login(url, token)
    if json_:
        emit_json({"server": url, "user": user.name, "role": user.role, "config": str(path)})
    else:
        typer.echo(f"logged in to {url} as {user.name} ({user.role}); stored in {path}")


def logout(json_: JsonOpt = False) -> None:
    """Forget the stored server and token."""
    from shipyard.client.login import forget_login

    path = forget_login()
    if json_:
        emit_json({"removed": str(path) if path else None})
    elif path is None:
        typer.echo("not logged in")
    else:
        typer.echo(f"logged out; removed {path}")
