"""``shipyard serve`` and ``shipyard deployments``: the model server and what it logged."""

from __future__ import annotations

import math
import os
import re
from typing import Annotated

import typer

from shipyard.cli._common import JsonOpt, console, emit_json, open_project, table

deployments_app = typer.Typer(help="What served models answered: metrics from the log.")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


_WINDOW = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([smhd])")


def parse_window(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``7d`` → seconds (ASCII digits only: ``²h`` is refused)."""
    text = text.strip().lower()
    match = _WINDOW.fullmatch(text)
    if match:
        seconds = float(match[1]) * _UNITS[match[2]]
        if math.isfinite(seconds) and seconds < 1e12:
            return seconds
    raise typer.BadParameter(f"expected a window like 30m, 1h or 7d, got {text!r}")


def parse_routes(text: str) -> dict[str, int]:
    """``production=90,challenger=10`` → ``{"production": 90, "challenger": 10}``: whole
    weights in ASCII digits, at least one above 0."""
    routes: dict[str, int] = {}
    for part in text.split(","):
        alias, sep, weight = part.strip().partition("=")
        weight = weight.strip()
        # isdigit() would let "²" through, which int() then refuses.
        if (
            not sep
            or not alias.strip()
            or not (weight.isascii() and weight.isdecimal() and len(weight) <= 9)
        ):
            raise typer.BadParameter(
                f"expected ALIAS=WEIGHT pairs like production=90,challenger=10, with whole "
                f"weights of 0 or more, got {part!r}"
            )
        routes[alias.strip()] = int(weight)
    if not any(routes.values()):
        raise typer.BadParameter("at least one route needs a weight above 0")
    return routes


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
    from shipyard.serving.listen import bind, run
    from shipyard.serving.reload import check_servable

    parsed = parse_ref(ref)
    kind = parsed.selector.kind
    if kind not in ("alias", "latest") or (kind == "latest" and "@" in ref):
        raise typer.BadParameter(
            f"serve a deployment ({parsed.name}) or a protected alias of a model "
            f"({parsed.name}@production), not a version: the server follows what it serves"
        )
    project = open_project(ctx)
    config = ServeConfig(
        project=str(project.root),
        deployment=parsed.name,
        alias=str(parsed.selector) if kind == "alias" else None,
        reload_seconds=reload_seconds,
    )
    try:
        deployment, holders = check_servable(project, config)  # exit 1 or 3 before listening
    finally:
        project.close()
    sock = bind(host, port)  # exit 1 on a busy port, before any model loads
    served = [f"{a}={w} ({holders[a].ref})" for a, w in deployment.routes.items()]
    if deployment.shadow:
        served.append(f"shadow {deployment.shadow} ({holders[deployment.shadow].ref})")
    typer.echo(
        f"serving {deployment.name} on http://{_url_host(host)}:{port} with {workers} "
        f"worker(s): {', '.join(served)}; metrics at /metrics, docs at /docs",
        err=True,
    )
    run(config, sock, workers)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@deployments_app.command("metrics")
def metrics(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment (model) name.")],
    window: Annotated[str, typer.Option(help="How far back: 30m, 1h, 7d.")] = "1h",
    json_: JsonOpt = False,
) -> None:
    """Throughput, latency percentiles, accuracy and KPIs from the prediction log."""
    doc = open_project(ctx).predictions.metrics(name, window_seconds=parse_window(window))
    if json_:
        emit_json(doc)
        return
    out = console()
    lat = doc["latency_ms"]
    out.print(
        f"[bold]{name}[/bold], last {window}: {doc['predictions']:,} predictions, "
        f"{doc['throughput_per_second']:.1f}/s, {doc['feedback']:,} labels"
    )
    if lat["p50"] is not None:
        out.print(f"latency ms: p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  p99 {lat['p99']:.2f}")
    table(
        None,
        ["model", "predictions", "p50 ms", "p99 ms", "accuracy"],
        [
            [
                m,
                v["predictions"],
                f"{v['latency_ms']['p50']:.2f}",
                f"{v['latency_ms']['p99']:.2f}",
                "" if v["accuracy"] is None else f"{v['accuracy']:.3f}",
            ]
            for m, v in doc["by_model"].items()
        ],
    )
    for k, v in doc["kpis"].items():
        out.print(f"kpi {k}: {v['events']:,} events, sum {v['sum']:,.2f}")
