"""``shipyard serve``: the model server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import emit_json_line, open_local_project


def serve(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            help="A deployment (NAME), or a protected alias of a model alone "
            "(NAME@ALIAS, e.g. credit-risk@production)."
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    reload_seconds: Annotated[
        float,
        typer.Option(help="How often to re-read the deployment and its aliases.", min=0.1),
    ] = 2.0,
    ingest_token_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding a token that /feedback and /kpi then require as "
            "`Authorization: Bearer <token>` (/predict stays open).",
        ),
    ] = None,
    drift_window: Annotated[
        float,
        typer.Option(
            help="Seconds of traffic the live drift gauges cover (shipyard_feature_drift...), "
            "counted in the bins of each served version's training data; 0 turns them off.",
            min=0,
        ),
    ] = 3600.0,
    drift_min_rows: Annotated[
        int,
        typer.Option(help="Rows the drift window must hold before drift is computed.", min=1),
    ] = 200,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON line on stdout once the server answers (url, deployment, "
            "routes, pid); logs stay on stderr.",
        ),
    ] = False,
) -> None:
    """Serve a deployment over HTTP: /predict, Open Inference Protocol v2, /metrics,
    /feedback, /kpi. The server follows the deployment (routes, weights, shadow) and each
    alias's holder: a promotion, rollback or deployment change is picked up within seconds.
    Only approved versions serve: one that is not (or is rejected or archived) stops the
    server from starting (exit 3) and is never picked up while it runs."""
    # One worker keeps its metrics in memory: a folder named by the environment (left from
    # another server) must not reach the metrics library, which reads it when imported.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from shipyard.refs import parse_ref
    from shipyard.serving.app import ServeConfig
    from shipyard.serving.ingest import read_token
    from shipyard.serving.listen import bind, run
    from shipyard.serving.reload import check_servable

    parsed = parse_ref(ref)
    kind = parsed.selector.kind
    if kind not in ("alias", "latest") or (kind == "latest" and "@" in ref):
        raise typer.BadParameter(
            f"serve a deployment ({parsed.name}) or a protected alias of a model "
            f"({parsed.name}@production), not a version: the server follows what it serves"
        )
    if ingest_token_file is not None:
        read_token(ingest_token_file)  # missing or empty: a clear error before listening
    project = open_local_project(ctx, refuse_remote=False)
    config = ServeConfig(
        project=str(project.root),
        deployment=parsed.name,
        alias=str(parsed.selector) if kind == "alias" else None,
        reload_seconds=reload_seconds,
        ingest_token_file=None if ingest_token_file is None else str(ingest_token_file.resolve()),
        drift_window_seconds=drift_window,
        drift_min_rows=drift_min_rows,
    )
    try:
        deployment, holders = check_servable(project, config)  # exit 1 or 3 before listening
    finally:
        project.close()
    sock = bind(host, port)  # exit 1 on a busy port, before any model loads
    served = [f"{a}={w} ({holders[a].ref})" for a, w in deployment.routes.items()]
    if deployment.shadow:
        served.append(f"shadow {deployment.shadow} ({holders[deployment.shadow].ref})")
    url = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    if not json_:
        typer.echo(
            f"serving {deployment.name} on {url} with {workers} "
            f"worker(s): {', '.join(served)}; metrics at /metrics, docs at /docs",
            err=True,
        )
    ready = {
        "event": "listening",
        "url": url,
        "deployment": deployment.name,
        "alias": config.alias,
        "routes": [
            {"alias": a, "weight": w, "version": holders[a].ref}
            for a, w in deployment.routes.items()
        ],
        "shadow": (
            None
            if not deployment.shadow
            else {"alias": deployment.shadow, "version": holders[deployment.shadow].ref}
        ),
        "workers": workers,
        "pid": os.getpid(),
        "metrics": f"{url}/metrics",
        "docs": f"{url}/docs",
    }
    run(config, sock, workers, on_started=(lambda: emit_json_line(ready)) if json_ else None)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
