"""``shipyard serve``: the model server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import open_project
from shipyard.cli.deployments import parse_routes


def serve(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@ALIAS to serve, e.g. credit-risk@production.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    route: Annotated[
        str | None,
        typer.Option(help="Split traffic between aliases, e.g. production=90,challenger=10."),
    ] = None,
    shadow: Annotated[
        str | None, typer.Option(help="Also score with this alias in the background.")
    ] = None,
    reload_seconds: Annotated[
        float, typer.Option(help="How often to check whether the aliases moved.", min=0.1)
    ] = 2.0,
    ingest_token_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding a token that /feedback and /kpi then require as "
            "`Authorization: Bearer <token>` (/predict stays open).",
        ),
    ] = None,
) -> None:
    """Serve a model over HTTP: /predict, Open Inference Protocol v2, /metrics, /feedback,
    /kpi. The server follows its aliases: a promotion or rollback is picked up within
    seconds."""
    import uvicorn

    from shipyard.refs import parse_ref
    from shipyard.serving.app import ServeConfig, create_app, prepare_multiprocess_dir
    from shipyard.serving.ingest import read_token

    parsed = parse_ref(ref)
    if parsed.selector.kind != "alias" and not route:
        raise typer.BadParameter(
            f"serve an alias (e.g. {parsed.name}@production) so the server can follow its moves"
        )
    routes = parse_routes(route) if route else {str(parsed.selector): 100}
    if ingest_token_file is not None:
        read_token(ingest_token_file)  # missing or empty: a clear error before listening
    project = open_project(ctx)
    for alias in [*routes, *([shadow] if shadow else [])]:
        project.models.get(f"{parsed.name}@{alias}")  # a clear error before listening
    config = ServeConfig(
        project=str(project.root),
        model=parsed.name,
        routes=routes,
        shadow=shadow,
        reload_seconds=reload_seconds,
        ingest_token_file=None if ingest_token_file is None else str(ingest_token_file.resolve()),
    )
    project.close()
    typer.echo(
        f"serving {parsed.name} ({', '.join(f'{a}={w}' for a, w in routes.items())}"
        f"{', shadow ' + shadow if shadow else ''}) on http://{host}:{port} "
        f"with {workers} worker(s); metrics at /metrics, docs at /docs",
        err=True,
    )
    if workers == 1:
        uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prepare_multiprocess_dir(project.root))
    os.environ["SHIPYARD_SERVE_CONFIG"] = config.to_json()
    uvicorn.run(
        "shipyard.serving.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
