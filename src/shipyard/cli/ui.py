"""``shipyard ui``: the web UI of an embedded project, on 127.0.0.1, as the local user."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from shipyard.cli._common import open_local_project


def ui(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option(help="Port to listen on (127.0.0.1 only).", min=1, max=65535)
    ] = 8000,
) -> None:
    """Open this project's web UI on http://127.0.0.1:PORT, acting as you (SHIPYARD_USER or
    the OS user) without a login: it listens on the loopback address only, answers only to
    the host names 127.0.0.1 and localhost, and only to a browser that opened the address it
    prints (which carries a random key of this launch, so other users of the machine cannot
    use it). For a team, run `shipyard server`, whose UI
    asks everyone to log in with a token. Stop it with Ctrl-C."""
    import uvicorn

    from shipyard.server.app import create_app
    from shipyard.serving.listen import bind

    project = open_local_project(ctx)
    app = create_app(project, ui_actor=project.actor)
    sock = bind("127.0.0.1", port)
    key = app.state.ui.local_key
    typer.echo(
        f"shipyard UI for {project.root} as {project.actor}: "
        f"http://127.0.0.1:{port}/local-login?key={key}"
    )
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
    project.close()
