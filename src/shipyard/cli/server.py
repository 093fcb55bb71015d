"""``shipyard server``: the team server (REST API and MLflow protocol, token auth)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli._common import open_local_project


def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
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
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"shipyard server for {root} on http://{shown}:{port} with {workers} worker(s); "
        f"API docs at http://{shown}:{port}/api/v1/docs",
        err=True,
    )
    run(root, sock, workers)
