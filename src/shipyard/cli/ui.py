"""``shipyard ui``: the web UI of an embedded project, on 127.0.0.1, as the local user."""

from __future__ import annotations

import contextlib
import os
from typing import Annotated

import typer

from shipyard.cli._common import emit_json_line, open_local_project


def ui(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option(help="Port to listen on (127.0.0.1 only).", min=1, max=65535)
    ] = 8000,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON line on stdout once the UI answers (url, login_url with "
            "this launch's key, host, port, project, user, pid) instead of the sentence.",
        ),
    ] = False,
) -> None:
    """Open this project's web UI on http://127.0.0.1:PORT, acting as you (SHIPYARD_USER or
    the OS user) without a login: it listens on the loopback address only, answers only to
    the host names 127.0.0.1 and localhost, and only to a browser that opened the address it
    prints (which carries a random key of this launch, so other users of the machine cannot
    use it). For a team, run `shipyard server`, whose UI
    asks everyone to log in with a token. Stop it with Ctrl-C."""
    import uvicorn

    from shipyard.server.app import create_app
    from shipyard.serving.listen import bind, notifying_server

    project = open_local_project(ctx)
    sock = bind("127.0.0.1", port)  # a busy port is an error before the app is built
    app = create_app(project, ui_actor=project.actor)
    bound = sock.getsockname()[1]
    url = f"http://127.0.0.1:{bound}"
    login_url = f"{url}/local-login?key={app.state.ui.local_key}"
    ready = {
        "event": "listening",
        "url": url,
        "login_url": login_url,
        "host": "127.0.0.1",
        "port": bound,
        "project": str(project.root),
        "user": project.actor,
        "pid": os.getpid(),
    }
    if not json_:
        typer.echo(f"shipyard UI for {project.root} as {project.actor}: {login_url}")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = notifying_server(config, (lambda: emit_json_line(ready)) if json_ else None)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    project.close()
