"""``shipyard server``: the team server (REST API and MLflow protocol, token auth)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from shipyard.cli._common import emit_json_line, open_local_project


def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON line on stdout once the server answers (url, host, port, "
            "project, workers, pid); logs, the access log included, stay on stderr.",
        ),
    ] = False,
) -> None:
    """Run the team server over this project's stores (SQLite and files, or PostgreSQL and
    S3): the REST API under /api/v1 (docs at /api/v1/docs), the MLflow tracking protocol under
    /api/2.0/mlflow, /health and /version. Every other route needs
    `Authorization: Bearer <token>`; make tokens with `shipyard users token create`."""
    from shipyard.server.run import run
    from shipyard.serving.listen import bind

    project = open_local_project(ctx, refuse_remote=False)
    with project.db.read() as conn:  # an unreachable or old database fails before listening
        conn.exec_driver_sql("SELECT 1")
    root = str(project.root)
    project.close()
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    if not json_:
        typer.echo(
            f"shipyard server for {root} on {url} with {workers} worker(s); "
            f"API docs at {url}/api/v1/docs",
            err=True,
        )
    ready = {
        "event": "listening",
        "url": url,
        "host": host,
        "port": bound,
        "project": root,
        "workers": workers,
        "pid": os.getpid(),
        "docs": f"{url}/api/v1/docs",
    }
    run(root, sock, workers, on_started=(lambda: emit_json_line(ready)) if json_ else None)
